package testkit

import (
	"context"
	"errors"
	"io"
	"testing"
	"testing/iotest"
	"time"

	"github.com/mftflow/mftflow/pipeline"
)

func TestShortReader(t *testing.T) {
	data := RandomContent(1, 1000)
	if err := iotest.TestReader(ShortReader(plainReader(data)), data); err != nil {
		t.Fatal(err)
	}
	r := ShortReader(plainReader(data))
	buf := make([]byte, 100)
	for i := range 20 {
		n, err := r.Read(buf)
		if err != nil || n < 1 || n > 7 {
			t.Fatalf("Read %d = %d, %v; want 1 to 7 bytes", i, n, err)
		}
	}
}

func TestShortReadsKeepsAbilities(t *testing.T) {
	src := ShortReads(NewMemorySource(map[string][]byte{"a": []byte("abcdefghijklmnop")}, true))
	defer src.Close()
	it, err := src.Next(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := it.(pipeline.RangeOpener); !ok {
		t.Error("ShortReads hides RangeOpener")
	}
	plain := ShortReads(noRange{NewMemorySource(map[string][]byte{"a": nil}, true)})
	it, err = plain.Next(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := it.(pipeline.RangeOpener); ok {
		t.Error("ShortReads adds RangeOpener to items without it")
	}
}

func TestFailingReader(t *testing.T) {
	boom := errors.New("boom")
	got, err := io.ReadAll(FailingReader([]byte("hello world"), 5, boom))
	if string(got) != "hello" || !errors.Is(err, boom) {
		t.Errorf("ReadAll = %q, %v; want \"hello\", boom", got, err)
	}
	got, err = io.ReadAll(FailingReader([]byte("hi"), 50, nil))
	if string(got) != "hi" || !errors.Is(err, ErrInjected) {
		t.Errorf("ReadAll = %q, %v; want \"hi\", ErrInjected", got, err)
	}
}

func TestFailEveryNth(t *testing.T) {
	ctx := t.Context()
	ms := NewMemorySink()
	s := FailEveryNth(ms, 3, nil)
	u, err := s.Open(ctx, pipeline.File{ID: "id", Name: "f"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	var failed []int
	for i := range 9 {
		p := pipeline.Part{Number: 0, Size: 1, Last: true}
		if err := u.WritePart(ctx, p, plainReader([]byte("x"))); err != nil {
			if !errors.Is(err, ErrInjected) || pipeline.IsPermanent(err) {
				t.Errorf("call %d: %v, want retryable ErrInjected", i+1, err)
			}
			failed = append(failed, i+1)
		}
	}
	if len(failed) != 3 || failed[0] != 3 || failed[1] != 6 || failed[2] != 9 {
		t.Errorf("failed calls %v, want [3 6 9]", failed)
	}
	if got := string(u.State()); got != "id" {
		t.Errorf("State passes through as %q, want \"id\"", got)
	}
	if err := u.Commit(ctx, pipeline.File{Name: "f", Size: 1}); err != nil {
		t.Fatal(err)
	}
	if ms.Commits() != 1 {
		t.Errorf("Commit did not pass through")
	}
}

type manifestFirstSink struct{ *MemorySink }

func (manifestFirstSink) ManifestFirst(pipeline.File) bool { return true }

func TestWrappersKeepManifestFirst(t *testing.T) {
	for name, wrap := range map[string]func(pipeline.Sink) pipeline.Sink{
		"FailEveryNth": func(s pipeline.Sink) pipeline.Sink { return FailEveryNth(s, 2, nil) },
		"FailAlways":   func(s pipeline.Sink) pipeline.Sink { return FailAlways(s, nil) },
		"Stall":        func(s pipeline.Sink) pipeline.Sink { return Stall(s, time.Millisecond) },
	} {
		mf, ok := wrap(manifestFirstSink{NewMemorySink()}).(pipeline.ManifestFirst)
		if !ok || !mf.ManifestFirst(pipeline.File{}) {
			t.Errorf("%s hides ManifestFirst", name)
		}
		if mf, ok := wrap(NewMemorySink()).(pipeline.ManifestFirst); ok && mf.ManifestFirst(pipeline.File{}) {
			t.Errorf("%s makes a sink ManifestFirst", name)
		}
	}
}

func TestFailAlways(t *testing.T) {
	fire := pipeline.Permanent(errors.New("disk on fire"))
	ms := NewMemorySink()
	_, err := FailAlways(ms, fire).Open(t.Context(), pipeline.File{ID: "id", Name: "f"}, nil)
	if !pipeline.IsPermanent(err) || err.Error() != `opening "f": disk on fire` {
		t.Errorf("Open = %v, want the permanent error", err)
	}
	if len(ms.Pending()) != 0 {
		t.Error("FailAlways opened an upload at the wrapped sink")
	}
}

func TestStall(t *testing.T) {
	s := Stall(NewMemorySink(), time.Hour)
	u, err := s.Open(t.Context(), pipeline.File{ID: "id", Name: "f"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 50*time.Millisecond)
	defer cancel()
	start := time.Now()
	err = u.WritePart(ctx, pipeline.Part{Size: 1, Last: true}, plainReader([]byte("x")))
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("WritePart = %v, want context.DeadlineExceeded", err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("WritePart returned after %v, want soon after its deadline", d)
	}
}
