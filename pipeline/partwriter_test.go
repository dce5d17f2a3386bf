package pipeline_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"strings"
	"testing"
	"testing/iotest"

	"github.com/mftflow/mftflow/pipeline"
)

// bufferAt is an io.WriterAt over a byte slice.
type bufferAt []byte

func (b bufferAt) WriteAt(p []byte, off int64) (int, error) { return copy(b[off:], p), nil }

func TestCopyAt(t *testing.T) {
	data := bytes.Repeat([]byte("0123456789"), 100_000)
	dst := make(bufferAt, len(data)+10)
	if err := pipeline.CopyAt(context.Background(), dst, 10, iotest.HalfReader(bytes.NewReader(data)), int64(len(data))); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(dst[10:], data) {
		t.Fatal("copied bytes differ")
	}

	err := pipeline.CopyAt(context.Background(), dst, 0, strings.NewReader("short"), 10)
	var rerr *pipeline.PartReadError
	if !errors.As(err, &rerr) || !errors.Is(err, io.ErrUnexpectedEOF) || err.Error() != "the part ended after 5 of 10 bytes: unexpected EOF" {
		t.Fatalf("short reader: got %v, want a PartReadError wrapping io.ErrUnexpectedEOF", err)
	}

	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := pipeline.CopyAt(ctx, dst, 0, strings.NewReader("0123456789"), 10); !errors.As(err, &rerr) || !errors.Is(err, context.Canceled) {
		t.Fatalf("ended context: got %v, want a PartReadError wrapping context.Canceled", err)
	}

	werr := errors.New("disk full")
	_, err = pipeline.CopyBuffered(strings.NewReader("0123456789"), 10, func([]byte, int64) (int, error) { return 0, werr })
	if err != werr {
		t.Fatalf("failing writer: got %v, want its error as it is", err)
	}
}

func TestTempFileParts(t *testing.T) {
	kept := pipeline.NewTempFileParts(pipeline.TempFileState{Written: pipeline.ByteRanges{{0, 5}}})
	kept.Wrote(5, 5)
	if st := kept.State(); st.Lost || st.Written != nil {
		t.Fatalf("temporary file kept: state %+v, want zero", st)
	}
	if lost, _ := kept.Complete(10); lost {
		t.Fatal("temporary file kept: reported lost")
	}

	lost := pipeline.NewTempFileParts(pipeline.TempFileState{Lost: true, Written: pipeline.ByteRanges{{0, 5}}})
	if _, complete := lost.Complete(10); complete {
		t.Fatal("half written: reported complete")
	}
	lost.Wrote(5, 5)
	if l, complete := lost.Complete(10); !l || !complete {
		t.Fatalf("all written since the loss: lost %v complete %v, want both", l, complete)
	}
}

func TestUploadEnd(t *testing.T) {
	var e pipeline.UploadEnd
	if e.Settle(errors.New("timeout")) {
		t.Fatal("a retryable error finished the upload")
	}
	if done, _ := e.Finished(); done {
		t.Fatal("finished after a retryable error")
	}
	if !e.Settle(pipeline.Permanent(errors.New("bad"))) {
		t.Fatal("a permanent error did not finish the upload")
	}
	e.Abort("a.csv", nil) // finished already: no change
	if done, err := e.Finished(); !done || err.Error() != "bad" || e.Committed() {
		t.Fatalf("after a permanent error: finished %v, %v", done, err)
	}

	var committed pipeline.UploadEnd
	committed.Settle(nil)
	if !committed.Abort("a.csv", nil) {
		t.Fatal("Abort after a commit did not report it")
	}

	var aborted pipeline.UploadEnd
	if aborted.Abort("a.csv", io.ErrClosedPipe) {
		t.Fatal("Abort of an open upload reported a commit")
	}
	if _, err := aborted.Finished(); !errors.Is(err, io.ErrClosedPipe) || err.Error() != `writing "a.csv": the upload was aborted: io: read/write on closed pipe` {
		t.Fatalf("aborted: %v", err)
	}
}

func TestTargetExists(t *testing.T) {
	if err := pipeline.TargetExists(pipeline.OverwriteReplace, "a", "/x/a"); err != nil {
		t.Fatalf("replace: %v", err)
	}
	if err := pipeline.TargetExists(pipeline.OverwriteSkip, "a", "/x/a"); !errors.Is(err, pipeline.ErrSkip) {
		t.Fatalf("skip: %v", err)
	}
	if err := pipeline.TargetAppeared(pipeline.OverwriteFail, "a", "/x/a"); !errors.Is(err, pipeline.ErrExists) {
		t.Fatalf("fail: %v", err)
	}
}

func TestCheckPart(t *testing.T) {
	if err := pipeline.CheckPart(pipeline.Part{Number: 1, Offset: 5, Size: 5}, "a.csv", "/x/a.csv", false); err != nil {
		t.Fatal(err)
	}
	if err := pipeline.CheckPart(pipeline.Part{Number: 1, Offset: -1}, "a.csv", "/x/a.csv", true); err == nil || !strings.Contains(err.Error(), "invalid offset -1") {
		t.Fatalf("negative offset: %v", err)
	}
	if err := pipeline.CheckPart(pipeline.Part{Number: 1}, "a.csv", "/x/a.csv", true); err == nil || !strings.Contains(err.Error(), "already finished") {
		t.Fatalf("finished: %v", err)
	}
}

func TestUploadEndLocation(t *testing.T) {
	var e pipeline.UploadEnd
	if got := e.Location("sftp://h/a"); got != "" {
		t.Fatalf("before Commit: %q", got)
	}
	e.Settle(nil)
	if got := e.Location("sftp://h/a"); got != "sftp://h/a" {
		t.Fatalf("after Commit: %q", got)
	}
}
