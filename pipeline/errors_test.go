package pipeline_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"testing"

	"github.com/mftflow/mftflow/pipeline"
)

func TestPermanent(t *testing.T) {
	base := errors.New("403 forbidden")
	p := pipeline.Permanent(base)
	if p.Error() != "403 forbidden" || !errors.Is(p, base) || !pipeline.IsPermanent(p) {
		t.Errorf("Permanent(%v) = %v: want the same message, wrapping it, permanent", base, p)
	}
	if pipeline.Permanent(p) != p {
		t.Errorf("Permanent of a permanent error wraps it again")
	}
	if pipeline.Permanent(nil) != nil {
		t.Errorf("Permanent(nil) != nil")
	}
	for _, tt := range []struct {
		err  error
		want bool
	}{
		{nil, false},
		{base, false},
		{io.ErrUnexpectedEOF, false},
		{context.Canceled, false},
		{pipeline.ErrSkip, false},
		{pipeline.ErrExists, true},
		{pipeline.ErrBadName, true},
		{fmt.Errorf("writing part 3: %w", p), true},
		{fmt.Errorf("opening: %w", pipeline.ErrExists), true},
		{errors.Join(base, p), true},
		{permanence(false), false},
		{permanence(true), true},
	} {
		if got := pipeline.IsPermanent(tt.err); got != tt.want {
			t.Errorf("IsPermanent(%v) = %v, want %v", tt.err, got, tt.want)
		}
	}
}

// permanence is an error type with its own Permanent method, as a connector
// might define.
type permanence bool

func (p permanence) Error() string   { return fmt.Sprintf("permanent=%v", bool(p)) }
func (p permanence) Permanent() bool { return bool(p) }

func TestFileWithAttr(t *testing.T) {
	f := pipeline.File{Name: "a", Attrs: map[string]string{"x": "1"}}
	g := f.WithAttr("y", "2").WithAttr("x", "3")
	if f.Attr("x") != "1" || f.Attr("y") != "" || len(f.Attrs) != 1 {
		t.Errorf("WithAttr changed the original: %v", f.Attrs)
	}
	if g.Attr("x") != "3" || g.Attr("y") != "2" {
		t.Errorf("got %v", g.Attrs)
	}
	var empty pipeline.File
	if empty.Attr("x") != "" || empty.WithAttr("k", "v").Attr("k") != "v" {
		t.Errorf("attributes of a zero File")
	}
}

func TestStatusString(t *testing.T) {
	var got []string
	for _, s := range []pipeline.Status{pipeline.Passed, pipeline.Failed, pipeline.Mixed, pipeline.Skipped, 0, 9} {
		got = append(got, s.String())
	}
	if want := "passed failed mixed skipped unknown unknown"; strings.Join(got, " ") != want {
		t.Errorf("got %q, want %q", strings.Join(got, " "), want)
	}
}
