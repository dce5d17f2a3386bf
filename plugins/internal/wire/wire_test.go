package wire

import (
	"errors"
	"fmt"
	"io/fs"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/mftflow/mftflow/pipeline"
)

// An outcome crosses with its attributes, which a source's Ack reads
// (pipeline.Companions).
func TestOutcomeRoundTrip(t *testing.T) {
	o := pipeline.Outcome{
		Status: pipeline.Passed, RunID: "r1",
		Sinks: map[string]pipeline.SinkResult{"out": {Committed: true}},
		Attrs: map[string]string{pipeline.AttrCompanions: "{name}.sha256\n{name}.md5", "k": "v"},
	}
	if diff := cmp.Diff(o, OutcomeFromPB(OutcomeToPB(o))); diff != "" {
		t.Fatalf("outcome after the round trip (-sent +received):\n%s", diff)
	}
}

// A missing file keeps its identity, and its permanence, in the answers of
// ReadSibling; elsewhere it keeps the kind older hosts know.
func TestNotFoundRoundTrip(t *testing.T) {
	missing := fmt.Errorf("opening x.sha256: %w", fs.ErrNotExist)
	for _, c := range []struct {
		name      string
		err       error
		toStatus  func(error) error
		notExist  bool
		permanent bool
	}{
		{"retryable", missing, NotFoundToStatus, true, false},
		{"permanent", pipeline.Permanent(missing), NotFoundToStatus, true, true},
		{"bad name first", fmt.Errorf("%w: %w", pipeline.ErrBadName, fs.ErrNotExist), NotFoundToStatus, false, true},
		{"elsewhere", pipeline.Permanent(missing), ErrorToStatus, false, true},
	} {
		t.Run(c.name, func(t *testing.T) {
			got := ErrorFromStatus(c.toStatus(c.err))
			if got.Error() != c.err.Error() {
				t.Errorf("message %q, want %q", got, c.err)
			}
			if errors.Is(got, fs.ErrNotExist) != c.notExist || pipeline.IsPermanent(got) != c.permanent {
				t.Errorf("fs.ErrNotExist %v, permanent %v; want %v, %v",
					errors.Is(got, fs.ErrNotExist), pipeline.IsPermanent(got), c.notExist, c.permanent)
			}
		})
	}
}
