package testkit

import (
	"context"
	"errors"
	"io"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/mftflow/mftflow/pipeline"
)

func memorySourceHarness(finite bool, wrap func(pipeline.Source) pipeline.Source) SourceHarness {
	var last *MemorySource
	return SourceHarness{
		New: func(t *testing.T, files map[string][]byte) pipeline.Source {
			last = NewMemorySource(files, finite)
			return wrap(last)
		},
		Finite:      finite,
		Exists:      func(t *testing.T, name string) bool { return last.Has(name) },
		AfterPassed: KeepsFile,
		Reopen:      func(t *testing.T) pipeline.Source { return wrap(last.Reopen()) },
	}
}

func same(s pipeline.Source) pipeline.Source { return s }

func TestMemorySourceSuite(t *testing.T) {
	t.Run("Finite", func(t *testing.T) { RunSourceTests(t, memorySourceHarness(true, same)) })
	t.Run("Endless", func(t *testing.T) { RunSourceTests(t, memorySourceHarness(false, same)) })
	t.Run("ShortReads", func(t *testing.T) { RunSourceTests(t, memorySourceHarness(true, ShortReads)) })
}

// memorySinkHarness lists committed files by name and open uploads as
// "upload:KEY", so a forgotten Abort shows.
func memorySinkHarness(plan pipeline.PartPlan, wrap func(pipeline.Sink) pipeline.Sink) SinkHarness {
	var last *MemorySink
	return SinkHarness{
		New: func(t *testing.T) pipeline.Sink {
			last = NewMemorySink()
			last.SetPlan(plan)
			return wrap(last)
		},
		Read: func(t *testing.T, name string) ([]byte, bool) {
			b, ok := last.Files()[name]
			return b, ok
		},
		List: func(t *testing.T) []string {
			names := sortedNames(last.Files())
			for _, key := range last.Pending() {
				names = append(names, "upload:"+key)
			}
			return names
		},
	}
}

func TestMemorySinkSuite(t *testing.T) {
	keep := func(s pipeline.Sink) pipeline.Sink { return s }
	for _, tc := range []struct {
		name string
		plan pipeline.PartPlan
		wrap func(pipeline.Sink) pipeline.Sink
	}{
		{"OneChunkParts", pipeline.PartPlan{}, keep},
		{"RoundedParts", pipeline.PartPlan{PartSize: 100_000, Concurrency: 2}, keep},
		{"Stalled", pipeline.PartPlan{}, func(s pipeline.Sink) pipeline.Sink { return Stall(s, time.Millisecond) }},
		{"FailNever", pipeline.PartPlan{}, func(s pipeline.Sink) pipeline.Sink { return FailEveryNth(s, 1<<30, nil) }},
	} {
		t.Run(tc.name, func(t *testing.T) { RunSinkTests(t, memorySinkHarness(tc.plan, tc.wrap)) })
	}
}

func TestPartsFor(t *testing.T) {
	const c = SuiteChunkSize
	for _, tc := range []struct {
		size, partSize int64
		want           []pipeline.Part
	}{
		{0, 0, []pipeline.Part{{Number: 0, Offset: 0, Size: 0, Last: true}}},
		{0, 5 << 20, []pipeline.Part{{Number: 0, Offset: 0, Size: 0, Last: true}}},
		{1, 0, []pipeline.Part{{Number: 0, Offset: 0, Size: 1, Last: true}}},
		{c, 0, []pipeline.Part{{Number: 0, Offset: 0, Size: c, Last: true}}},
		{c + 1, 0, []pipeline.Part{{Number: 0, Offset: 0, Size: c}, {Number: 1, Offset: c, Size: 1, Last: true}}},
		// 100000 rounds up to two chunks.
		{3*2*c + 17, 100_000, []pipeline.Part{
			{Number: 0, Offset: 0, Size: 2 * c},
			{Number: 1, Offset: 2 * c, Size: 2 * c},
			{Number: 2, Offset: 4 * c, Size: 2 * c},
			{Number: 3, Offset: 6 * c, Size: 17, Last: true},
		}},
	} {
		if diff := cmp.Diff(tc.want, PartsFor(tc.size, tc.partSize)); diff != "" {
			t.Errorf("PartsFor(%d, %d) (-want +got):\n%s", tc.size, tc.partSize, diff)
		}
	}
	for in, want := range map[int64]int64{-1: c, 0: c, 1: c, c: c, c + 1: 2 * c, 5 << 20: 5 << 20} {
		if got := RoundPartSize(in); got != want {
			t.Errorf("RoundPartSize(%d) = %d, want %d", in, got, want)
		}
	}
}

func TestRandomContent(t *testing.T) {
	a, b := RandomContent(1, 1000), RandomContent(1, 1000)
	if !cmp.Equal(a, b) {
		t.Error("RandomContent with the same seed differs")
	}
	if cmp.Equal(a, RandomContent(2, 1000)) {
		t.Error("RandomContent with different seeds is the same")
	}
	if got, want := SHA256Hex(nil), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"; got != want {
		t.Errorf("SHA256Hex(nil) = %s, want %s", got, want)
	}
}

func TestMemorySourceAddWakesNext(t *testing.T) {
	src := NewMemorySource(nil, false)
	defer src.Close()
	got := nextAsync(t.Context(), src)
	time.Sleep(20 * time.Millisecond)
	src.Add("late.txt", []byte("late"))
	select {
	case r := <-got:
		if r.err != nil || r.item.File().Name != "late.txt" {
			t.Fatalf("Next = %v, %v; want late.txt", r.item, r.err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Next did not wake up on Add")
	}
}

func TestMemorySourceAcked(t *testing.T) {
	ctx := t.Context()
	src := NewMemorySource(map[string][]byte{"a": []byte("a"), "b": nil}, true)
	defer src.Close()
	items, err := drain(ctx, src, true, 2)
	if err != nil {
		t.Fatal(err)
	}
	if err := items[0].Ack(ctx, pipeline.Outcome{Status: pipeline.Passed}); err != nil {
		t.Fatal(err)
	}
	want := map[string]pipeline.Outcome{"a": {Status: pipeline.Passed}}
	if diff := cmp.Diff(want, src.Acked()); diff != "" {
		t.Errorf("Acked (-want +got):\n%s", diff)
	}
	// Keys are stable: a restart offers the same file under the same Key.
	again := NewMemorySource(map[string][]byte{"a": []byte("a")}, true)
	it, err := again.Next(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := it.File().Key, items[0].File().Key; got != want {
		t.Errorf("Key after restart %q, want %q", got, want)
	}
}

// TestMemorySinkStrict checks that the reference sink rejects what an engine
// must never do, so engine tests against it catch those mistakes.
func TestMemorySinkStrict(t *testing.T) {
	ctx := t.Context()
	content := RandomContent(1, 3*SuiteChunkSize+5)
	parts := PartsFor(int64(len(content)), 0)
	open := func(t *testing.T, s *MemorySink) pipeline.Upload {
		t.Helper()
		u, err := s.Open(ctx, pipeline.File{ID: "f1", Name: "f", Size: -1}, nil)
		if err != nil {
			t.Fatal(err)
		}
		return u
	}
	write := func(t *testing.T, u pipeline.Upload, numbers ...int) {
		t.Helper()
		for _, n := range numbers {
			p := parts[n]
			if err := u.WritePart(ctx, p, plainReader(content[p.Offset:p.Offset+p.Size])); err != nil {
				t.Fatal(err)
			}
		}
	}
	final := pipeline.File{Name: "f", Size: int64(len(content)), SHA256: SHA256Hex(content)}

	t.Run("MissingPart", func(t *testing.T) {
		u := open(t, NewMemorySink())
		write(t, u, 0, 2, 3)
		if err := u.Commit(ctx, final); err == nil {
			t.Error("Commit with part 1 missing succeeded")
		}
	})
	t.Run("WrongSHA256", func(t *testing.T) {
		u := open(t, NewMemorySink())
		write(t, u, 0, 1, 2, 3)
		bad := final
		bad.SHA256 = SHA256Hex([]byte("other"))
		if err := u.Commit(ctx, bad); !pipeline.IsPermanent(err) {
			t.Errorf("Commit with a wrong sha256: %v, want a permanent error", err)
		}
	})
	t.Run("ShortReader", func(t *testing.T) {
		u := open(t, NewMemorySink())
		p := parts[0]
		if err := u.WritePart(ctx, p, plainReader(content[:p.Size-1])); !errors.Is(err, io.ErrUnexpectedEOF) {
			t.Errorf("WritePart of a part one byte short: %v, want io.ErrUnexpectedEOF", err)
		}
	})
	t.Run("EmptyPartInTheMiddle", func(t *testing.T) {
		u := open(t, NewMemorySink())
		if err := u.WritePart(ctx, pipeline.Part{Number: 1, Offset: SuiteChunkSize}, plainReader(nil)); !pipeline.IsPermanent(err) {
			t.Errorf("WritePart of an empty part that is not the last: %v, want a permanent error", err)
		}
	})
	t.Run("ResumeCommitted", func(t *testing.T) {
		s := NewMemorySink()
		u := open(t, s)
		write(t, u, 0, 1, 2, 3)
		state := u.State()
		if err := u.Commit(ctx, final); err != nil {
			t.Fatal(err)
		}
		if _, err := s.Open(ctx, pipeline.File{ID: "f1", Name: "f"}, state); !errors.Is(err, pipeline.ErrSkip) {
			t.Errorf("resuming a committed upload: %v, want pipeline.ErrSkip", err)
		}
		if s.Commits() != 1 || s.PartWrites() != 4 || len(s.Pending()) != 0 {
			t.Errorf("Commits %d, PartWrites %d, Pending %q; want 1, 4, none", s.Commits(), s.PartWrites(), s.Pending())
		}
	})
	t.Run("WriteAfterAbort", func(t *testing.T) {
		u := open(t, NewMemorySink())
		if err := u.Abort(ctx, nil); err != nil {
			t.Fatal(err)
		}
		p := parts[0]
		if err := u.WritePart(ctx, p, plainReader(content[:p.Size])); err == nil {
			t.Error("WritePart after Abort succeeded")
		}
	})
}

func TestRegister(t *testing.T) {
	ctx := t.Context()
	r := pipeline.NewRegistry()
	if err := Register(r); err != nil {
		t.Fatal(err)
	}
	if err := Register(r); err == nil {
		t.Error("registering twice succeeded")
	}
	src, err := r.NewSource(ctx, "memory", map[string]any{
		"files": map[string]any{"a.txt": "alpha", "dir/b.txt": "beta"},
		"name":  "register-test",
	})
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	if MemorySourceNamed("register-test") != src {
		t.Error("MemorySourceNamed does not return the source built under that name")
	}
	items, err := drain(ctx, src, true, 2) // finite by default
	if err != nil {
		t.Fatal(err)
	}
	if err := offeredOnce(ctx, items, map[string][]byte{"a.txt": []byte("alpha"), "dir/b.txt": []byte("beta")}); err != nil {
		t.Error(err)
	}

	sink, err := r.NewSink(ctx, "memory", map[string]any{"name": "register-test", "part_size": "100KiB"})
	if err != nil {
		t.Fatal(err)
	}
	if sink != MemorySinkNamed("register-test") {
		t.Error("the sink built under a name is not MemorySinkNamed of it")
	}
	content := RandomContent(5, 300_000)
	writes := MemorySinkNamed("register-test").PartWrites() // the sink outlives one run with -count
	if err := Deliver(ctx, sink, pipeline.File{ID: "abc", Name: "x.bin"}, content); err != nil {
		t.Fatal(err)
	}
	ms := MemorySinkNamed("register-test")
	if err := compareContent("x.bin", ms.Files()["x.bin"], content); err != nil {
		t.Error(err)
	}
	// 100 KiB rounds up to 128 KiB: three parts.
	if got := ms.PartWrites() - writes; got != 3 {
		t.Errorf("PartWrites grew by %d, want 3", got)
	}
	def, err := r.NewSink(ctx, "memory", nil)
	if err != nil {
		t.Fatal(err)
	}
	if def != MemorySinkNamed("default") {
		t.Error(`the sink without a name is not MemorySinkNamed("default")`)
	}
	if _, err := r.NewSource(ctx, "memory", map[string]any{"finite": "maybe"}); err == nil {
		t.Error("finite: maybe was accepted")
	}
}

func TestDeliverAbortsOnFailure(t *testing.T) {
	ctx := context.Background()
	ms := NewMemorySink()
	err := Deliver(ctx, FailEveryNth(ms, 2, nil), pipeline.File{ID: "id", Name: "n"}, RandomContent(1, 3*SuiteChunkSize))
	if !errors.Is(err, ErrInjected) {
		t.Fatalf("Deliver = %v, want ErrInjected", err)
	}
	if len(ms.Pending()) != 0 || len(ms.Files()) != 0 {
		t.Errorf("after a failed Deliver: pending %q, files %d; want none", ms.Pending(), len(ms.Files()))
	}
}
