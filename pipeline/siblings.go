package pipeline

import (
	"context"
	"fmt"
	"io"
	"strings"
)

// SiblingOpener is an optional Item ability: opening another file of the
// same source by its name relative to the source root, such as the checksum
// file beside this one. A file that is not there gives an error matching
// fs.ErrNotExist. It must be safe for concurrent use.
type SiblingOpener interface {
	OpenSibling(ctx context.Context, name string) (io.ReadCloser, error)
}

type itemKey struct{}

// WithItem returns a copy of ctx carrying the source item whose file the
// stages process; the engine calls stages with it.
func WithItem(ctx context.Context, it Item) context.Context {
	return context.WithValue(ctx, itemKey{}, it)
}

// ItemOf returns the source item carried by ctx (see WithItem): a stage
// reads the file's name at its source from it, and other files beside it
// when the item is a SiblingOpener.
func ItemOf(ctx context.Context) (Item, bool) {
	it, ok := ctx.Value(itemKey{}).(Item)
	return it, ok
}

// AttrCompanions is the attribute listing a file's companions, one per
// line: other files of the same source that go with it, such as its
// checksum file. Each is a name relative to the source root in which
// "{name}" stands for the file's own name there (so "{name}.sha256"), which
// keeps names that are not UTF-8 whole. A source's after action (delete,
// move) applies to the companions too, after the file itself.
const AttrCompanions = "mftflow.companions"

// WithCompanion returns a copy of f listing pattern (see AttrCompanions)
// among its companions.
func (f File) WithCompanion(pattern string) File {
	list := f.Attr(AttrCompanions)
	for _, c := range strings.Split(list, "\n") {
		if c == pattern {
			return f
		}
	}
	if list != "" {
		pattern = list + "\n" + pattern
	}
	return f.WithAttr(AttrCompanions, pattern)
}

// Companions returns the names of the companions listed in o's attributes
// for the file called name at its source, each checked with
// CheckSourceName: a source applies its after action to them too.
func Companions(o Outcome, name string) ([]string, error) {
	list := o.Attrs[AttrCompanions]
	if list == "" {
		return nil, nil
	}
	var names []string
	for _, p := range strings.Split(list, "\n") {
		n := strings.ReplaceAll(p, "{name}", name)
		if n == name {
			return nil, Permanent(fmt.Errorf("companion %q of %q names the file itself", p, name))
		}
		if err := CheckSourceName(n); err != nil {
			return nil, Permanent(fmt.Errorf("companion %q of %q: %w", p, name, err))
		}
		names = append(names, n)
	}
	return names, nil
}
