package stages

import (
	"context"
	"fmt"
	"io"
	"time"

	"github.com/mftflow/mftflow/pipeline"
)

// RenameConfig sets a Rename stage's name template.
type RenameConfig struct {
	// Name is a template filled by pipeline.ExpandName: {name} {base} {dir}
	// {stem} {ext} {date} {time} {id} {attr.KEY}. For example
	// "archive/{date}/{stem}-{attr.code}{ext}".
	Name string `config:"name"`
}

// Rename gives each file a new name from a template; the content passes
// through unchanged. It is safe for concurrent use.
//
// {date} and {time} come from the file's ModTime in UTC, so running the stage
// again on the same file after a crash gives the same name. A file without a
// ModTime uses the current time instead.
type Rename struct {
	tmpl string
	now  func() time.Time
}

// NewRename checks the template and returns the stage.
func NewRename(cfg RenameConfig) (*Rename, error) {
	if cfg.Name == "" {
		return nil, fmt.Errorf("rename: the name template is empty")
	}
	if err := pipeline.CheckTemplate(cfg.Name); err != nil {
		return nil, fmt.Errorf("rename: %w", err)
	}
	return &Rename{tmpl: cfg.Name, now: time.Now}, nil
}

// Process returns f under its new name, checked with pipeline.CleanName, and r
// unchanged. A name that is unsafe (absolute, with "..", empty...) is an
// error wrapping pipeline.ErrBadName, which is permanent.
func (s *Rename) Process(ctx context.Context, f pipeline.File, r io.Reader) (pipeline.File, io.Reader, error) {
	when := f.ModTime
	if when.IsZero() {
		when = s.now()
	}
	name, err := pipeline.ExpandName(s.tmpl, f, when.UTC())
	if err != nil {
		return pipeline.File{}, nil, pipeline.Permanent(fmt.Errorf("rename %q: %w", f.Name, err))
	}
	clean, err := pipeline.CleanName(name)
	if err != nil {
		return pipeline.File{}, nil, fmt.Errorf("rename %q with template %q: %w", f.Name, s.tmpl, err)
	}
	f.Name = clean
	return f, r, nil
}

var _ pipeline.Stage = (*Rename)(nil)

// KeepsContent reports true: a new name, the same bytes. It implements
// pipeline.ContentKeeper.
func (s *Rename) KeepsContent() bool { return true }
