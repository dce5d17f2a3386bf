package stages

import (
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/mftflow/mftflow/pipeline"
)

// AttrsConfig sets an Attrs stage's attributes.
type AttrsConfig struct {
	// Set maps attribute names to templates filled by pipeline.ExpandName
	// ({name} {base} {dir} {stem} {ext} {date} {time} {id} {attr.KEY}), for
	// example {"thru.batch_total": "{attr.records}", "thru.recipients": "ORG1,ORG2"}.
	Set map[string]string `config:"set"`
}

// Attrs sets file attributes from templates, for later stages, name
// templates, sinks and the source's Ack (the Thru source reports
// thru.batch_total, thru.batch_failed and thru.recipients in the file's
// flow outcome). The content passes through unchanged. It is safe for
// concurrent use.
//
// Every template is filled from the file as it comes in, so the order of
// the attributes does not matter and one cannot read another set by the
// same stage (a second attrs stage can). {date} and {time} come from the
// file's ModTime in UTC, as in rename, so a file run through again after a
// crash gets the same values.
type Attrs struct {
	keys []string // sorted, for errors that come out the same every time
	set  map[string]string
	now  func() time.Time
}

// NewAttrs checks the attribute names and templates and returns the stage.
func NewAttrs(cfg AttrsConfig) (*Attrs, error) {
	if err := checkAttrSet(cfg.Set); err != nil {
		return nil, fmt.Errorf("attrs: %w", err)
	}
	return &Attrs{keys: slices.Sorted(maps.Keys(cfg.Set)), set: maps.Clone(cfg.Set), now: time.Now}, nil
}

// checkAttrSet reports what is wrong with the attributes of set: none at
// all, an empty or padded name, a template that cannot be filled.
func checkAttrSet(set map[string]string) error {
	if len(set) == 0 {
		return errors.New(`set names no attribute: give at least one, such as set: {thru.batch_total: "{attr.records}"}`)
	}
	var errs []error
	for _, k := range slices.Sorted(maps.Keys(set)) {
		switch {
		case strings.TrimSpace(k) == "":
			errs = append(errs, errors.New("an attribute name is empty: name each attribute, such as thru.batch_total"))
		case strings.TrimSpace(k) != k:
			errs = append(errs, fmt.Errorf("attribute name %q has spaces around it: remove them, or templates ({attr.KEY}) and sources will not find it", k))
		default:
			if err := pipeline.CheckTemplate(set[k]); err != nil {
				errs = append(errs, fmt.Errorf("attribute %s: %v", k, err))
			}
		}
	}
	return errors.Join(errs...)
}

// Process returns f with its attributes set, and r unchanged.
func (s *Attrs) Process(ctx context.Context, f pipeline.File, r io.Reader) (pipeline.File, io.Reader, error) {
	when := f.ModTime
	if when.IsZero() {
		when = s.now()
	}
	attrs := maps.Clone(f.Attrs)
	if attrs == nil {
		attrs = make(map[string]string, len(s.keys))
	}
	for _, k := range s.keys {
		v, err := pipeline.ExpandName(s.set[k], f, when.UTC())
		if err != nil {
			return pipeline.File{}, nil, pipeline.Permanent(fmt.Errorf("attrs: file %q: attribute %s: %w", f.Name, k, err))
		}
		attrs[k] = v
	}
	f.Attrs = attrs
	return f, r, nil
}

// KeepsContent reports true: new attributes, the same bytes. It implements
// pipeline.ContentKeeper.
func (s *Attrs) KeepsContent() bool { return true }

var _ pipeline.Stage = (*Attrs)(nil)
