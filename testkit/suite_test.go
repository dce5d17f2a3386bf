package testkit

import (
	"bytes"
	"context"
	"errors"
	"io"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mftflow/mftflow/pipeline"
)

// The suites must fail for broken connectors. These tests run single checks
// against deliberately broken doubles and expect an error; the same doubles
// with no fault pass the whole suite, so the error comes from the fault.

// fastTiming shortens the suites' waits for the length of a test.
func fastTiming(t *testing.T) {
	p, q, r := promptly, quietWait, reofferWait
	promptly, quietWait, reofferWait = 300*time.Millisecond, 100*time.Millisecond, time.Second
	t.Cleanup(func() { promptly, quietWait, reofferWait = p, q, r })
}

func findCheck[H any](t *testing.T, checks []check[H], name string) check[H] {
	t.Helper()
	for _, c := range checks {
		if c.name == name {
			return c
		}
	}
	t.Fatalf("no check %q", name)
	return check[H]{}
}

// expectFailure runs the named checks and wants each to fail (not skip).
func expectFailure[H any](t *testing.T, h H, checks []check[H], names ...string) {
	t.Helper()
	for _, name := range names {
		c := findCheck(t, checks, name)
		ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
		err := c.run(ctx, t, h)
		cancel()
		var skip *skipError
		switch {
		case err == nil:
			t.Errorf("check %s passed; want it to fail", name)
		case errors.As(err, &skip):
			t.Errorf("check %s skipped (%v); want it to fail", name, err)
		default:
			t.Logf("check %s fails as it should: %v", name, firstLine(err))
		}
	}
}

func firstLine(err error) string {
	s, _, _ := strings.Cut(err.Error(), "\n")
	return s
}

// sinkFaults are the ways a faultySink can misbehave.
type sinkFaults struct {
	dropPart      int  // writes of this part number (if > 0) are silently lost
	corrupt       bool // part 0 is stored with its first byte flipped
	visibleEarly  bool // every WritePart also stores what it has under the final name
	leakOnAbort   bool // Abort leaves the temporary name behind
	leakOnCommit  bool // Commit leaves the temporary name behind
	ignoreReadErr bool // WritePart returns nil if its reader fails
	keepFirst     bool // a part written twice keeps its first bytes
	noResume      bool // State returns nil
	forgetResume  bool // Open with state starts an empty upload
}

// faultySink is a simple map-backed sink that can be told to misbehave.
// Unlike MemorySink it validates nothing at Commit, so only the suite's own
// checks can catch its faults.
type faultySink struct {
	faults sinkFaults
	mu     sync.Mutex
	files  map[string][]byte
	temps  map[string]map[int][]byte // parts by upload id; "tmp/ID" in List
}

func (f sinkFaults) harness() SinkHarness {
	var last *faultySink
	return SinkHarness{
		New: func(t *testing.T) pipeline.Sink {
			last = &faultySink{faults: f, files: map[string][]byte{}, temps: map[string]map[int][]byte{}}
			return last
		},
		Read: func(t *testing.T, name string) ([]byte, bool) {
			last.mu.Lock()
			defer last.mu.Unlock()
			b, ok := last.files[name]
			return bytes.Clone(b), ok
		},
		List: func(t *testing.T) []string {
			last.mu.Lock()
			defer last.mu.Unlock()
			var names []string
			for n := range last.files {
				names = append(names, n)
			}
			for id := range last.temps {
				names = append(names, "tmp/"+id)
			}
			sort.Strings(names)
			return names
		},
	}
}

func (s *faultySink) Open(ctx context.Context, f pipeline.File, resume []byte) (pipeline.Upload, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if resume == nil || s.faults.forgetResume || s.temps[f.ID] == nil {
		s.temps[f.ID] = map[int][]byte{}
	}
	return &faultyUpload{s: s, f: f}, nil
}

func (s *faultySink) Close() error { return nil }

type faultyUpload struct {
	s *faultySink
	f pipeline.File
}

func (u *faultyUpload) Plan() pipeline.PartPlan { return pipeline.PartPlan{} }

func (u *faultyUpload) State() []byte {
	if u.s.faults.noResume {
		return nil
	}
	return []byte(u.f.ID)
}

func (u *faultyUpload) WritePart(ctx context.Context, p pipeline.Part, r io.Reader) error {
	b := make([]byte, p.Size)
	if _, err := io.ReadFull(r, b); err != nil && !u.s.faults.ignoreReadErr {
		return err
	}
	s := u.s
	s.mu.Lock()
	defer s.mu.Unlock()
	parts := s.temps[u.f.ID]
	switch {
	case parts == nil:
		return errors.New("no such upload")
	case s.faults.dropPart > 0 && p.Number == s.faults.dropPart:
		return nil
	case s.faults.keepFirst && parts[p.Number] != nil:
		return nil
	}
	if s.faults.corrupt && p.Number == 0 && len(b) > 0 {
		b[0] ^= 0xff
	}
	parts[p.Number] = b
	if s.faults.visibleEarly {
		s.files[u.f.Name] = join(parts)
	}
	return nil
}

func join(parts map[int][]byte) []byte {
	numbers := make([]int, 0, len(parts))
	for n := range parts {
		numbers = append(numbers, n)
	}
	sort.Ints(numbers)
	var b []byte
	for _, n := range numbers {
		b = append(b, parts[n]...)
	}
	return b
}

func (u *faultyUpload) Commit(ctx context.Context, f pipeline.File) error {
	s := u.s
	s.mu.Lock()
	defer s.mu.Unlock()
	s.files[f.Name] = join(s.temps[u.f.ID])
	if !s.faults.leakOnCommit {
		delete(s.temps, u.f.ID)
	}
	return nil
}

func (u *faultyUpload) Abort(ctx context.Context, cause error) error {
	s := u.s
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.faults.visibleEarly {
		delete(s.files, u.f.Name)
	}
	if !s.faults.leakOnAbort {
		delete(s.temps, u.f.ID)
	}
	return nil
}

func TestSinkSuiteCatchesFaults(t *testing.T) {
	fastTiming(t)
	t.Run("NoFault", func(t *testing.T) { RunSinkTests(t, sinkFaults{}.harness()) })
	for _, tc := range []struct {
		name   string
		faults sinkFaults
		checks []string
	}{
		{"DroppedPart", sinkFaults{dropPart: 1}, []string{"ManyParts", "OddLastPart", "Resume"}},
		{"Corrupt", sinkFaults{corrupt: true}, []string{"SinglePart", "ManyParts", "ShortReads"}},
		{"VisibleEarly", sinkFaults{visibleEarly: true}, []string{"NotVisibleBeforeCommit", "ManyParts", "Resume"}},
		{"LeakOnAbort", sinkFaults{leakOnAbort: true}, []string{"Abort", "CancelWritePart", "SinglePart"}},
		{"LeakOnCommit", sinkFaults{leakOnCommit: true}, []string{"SinglePart", "EmptyFile", "ConcurrentUploads"}},
		{"IgnoreReadError", sinkFaults{ignoreReadErr: true}, []string{"CancelWritePart"}},
		{"KeepFirstWrite", sinkFaults{keepFirst: true}, []string{"RewritePart"}},
		{"ForgetResume", sinkFaults{forgetResume: true}, []string{"Resume"}},
	} {
		t.Run(tc.name, func(t *testing.T) { expectFailure(t, tc.faults.harness(), sinkChecks, tc.checks...) })
	}
	t.Run("NoResumeSkips", func(t *testing.T) {
		err := findCheck(t, sinkChecks, "Resume").run(t.Context(), t, sinkFaults{noResume: true}.harness())
		var skip *skipError
		if !errors.As(err, &skip) {
			t.Errorf("Resume with State nil: %v, want a skip", err)
		}
	})
}

// faultySource wraps a MemorySource with faults.
type faultySource struct {
	*MemorySource
	faults sourceFaults

	mu      sync.Mutex
	first   *faultyItem
	redone  bool
	release chan struct{} // unblocks a deaf Next when the test ends
	removed map[string]bool
}

type sourceFaults struct {
	duplicate   bool // offers the first file again after the last
	wrongSize   bool // Size one too big
	sameKey     bool // every Key is "key"
	flakyOpen   bool // the second Open of an item returns other bytes
	setsID      bool // sets File.ID
	deaf        bool // with nothing left, Next ignores ctx
	badRange    bool // OpenRange is off by one
	ackOnce     bool // a second Ack fails
	removeOnAck bool // any Ack removes the file
	leak        bool // New starts a goroutine that outlives Close
	forget      bool // Reopen offers nothing
	hangClosed  bool // Next after Close blocks until its context ends
	dropLast    bool // never offers the last file
}

func faultySourceHarness(t *testing.T, f sourceFaults, finite bool) SourceHarness {
	var last *faultySource
	build := func(m *MemorySource) *faultySource {
		s := &faultySource{MemorySource: m, faults: f, release: make(chan struct{}), removed: map[string]bool{}}
		t.Cleanup(func() { close(s.release) })
		if f.leak {
			go s.linger()
		}
		return s
	}
	return SourceHarness{
		New: func(t *testing.T, files map[string][]byte) pipeline.Source {
			if f.dropLast {
				names := sortedNames(files)
				kept := map[string][]byte{}
				for _, n := range names[:len(names)-1] {
					kept[n] = files[n]
				}
				files = kept
			}
			last = build(NewMemorySource(files, finite))
			return last
		},
		Finite: finite,
		Exists: func(t *testing.T, name string) bool {
			last.mu.Lock()
			defer last.mu.Unlock()
			return last.Has(name) && !last.removed[name]
		},
		AfterPassed: KeepsFile,
		Reopen: func(t *testing.T) pipeline.Source {
			if f.forget {
				return build(NewMemorySource(nil, finite))
			}
			return build(last.Reopen())
		},
	}
}

func (s *faultySource) linger() { <-s.release }

func (s *faultySource) Next(ctx context.Context) (pipeline.Item, error) {
	if s.faults.hangClosed && s.isClosed() {
		<-ctx.Done()
		return nil, ctx.Err()
	}
	if s.faults.duplicate {
		// With nothing queued, offer the first file again, once.
		done, cancel := context.WithCancel(ctx)
		cancel()
		if it, err := s.MemorySource.Next(done); err == nil {
			return s.wrap(it), nil
		}
		s.mu.Lock()
		first := s.first
		again := first != nil && !s.redone
		s.redone = s.redone || again
		s.mu.Unlock()
		if again {
			return first, nil
		}
	}
	if s.faults.deaf {
		// Wait for a file or the end of the test, whatever ctx says.
		deaf, cancel := context.WithCancel(context.Background())
		defer cancel()
		go func() {
			select {
			case <-s.release:
				cancel()
			case <-deaf.Done():
			}
		}()
		ctx = deaf
	}
	it, err := s.MemorySource.Next(ctx)
	if err != nil {
		return nil, err
	}
	return s.wrap(it), nil
}

func (s *faultySource) wrap(it pipeline.Item) *faultyItem {
	w := &faultyItem{Item: it, s: s}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.first == nil {
		s.first = w
	}
	return w
}

func (s *faultySource) isClosed() bool {
	s.MemorySource.mu.Lock()
	defer s.MemorySource.mu.Unlock()
	return s.MemorySource.closed
}

type faultyItem struct {
	pipeline.Item
	s     *faultySource
	opens int
	acks  int
}

func (it *faultyItem) File() pipeline.File {
	f := it.Item.File()
	if it.s.faults.wrongSize {
		f.Size++
	}
	if it.s.faults.sameKey {
		f.Key = "key"
	}
	if it.s.faults.setsID {
		f.ID = "0123"
	}
	return f
}

func (it *faultyItem) Open(ctx context.Context) (io.ReadCloser, error) {
	it.s.mu.Lock()
	it.opens++
	second := it.opens == 2
	it.s.mu.Unlock()
	if it.s.faults.flakyOpen && second {
		return io.NopCloser(strings.NewReader("other bytes")), nil
	}
	return it.Item.Open(ctx)
}

func (it *faultyItem) OpenRange(ctx context.Context, offset, length int64) (io.ReadCloser, error) {
	if it.s.faults.badRange && offset > 0 {
		offset--
	}
	return it.Item.(pipeline.RangeOpener).OpenRange(ctx, offset, length)
}

func (it *faultyItem) Ack(ctx context.Context, o pipeline.Outcome) error {
	it.s.mu.Lock()
	it.acks++
	n := it.acks
	if it.s.faults.removeOnAck {
		it.s.removed[it.Item.File().Name] = true
	}
	it.s.mu.Unlock()
	if it.s.faults.ackOnce && n > 1 {
		return errors.New("already acked")
	}
	return it.Item.Ack(ctx, o)
}

func TestSourceSuiteCatchesFaults(t *testing.T) {
	fastTiming(t)
	t.Run("NoFault", func(t *testing.T) { RunSourceTests(t, faultySourceHarness(t, sourceFaults{}, true)) })
	t.Run("NoFaultEndless", func(t *testing.T) { RunSourceTests(t, faultySourceHarness(t, sourceFaults{}, false)) })
	for _, tc := range []struct {
		name   string
		faults sourceFaults
		finite bool
		checks []string
	}{
		{"Duplicate", sourceFaults{duplicate: true}, true, []string{"Offered"}},
		{"DuplicateEndless", sourceFaults{duplicate: true}, false, []string{"Offered"}},
		{"WrongSize", sourceFaults{wrongSize: true}, true, []string{"Offered", "EmptyFile"}},
		{"SameKey", sourceFaults{sameKey: true}, true, []string{"Offered", "DistinctKeys"}},
		{"FlakyOpen", sourceFaults{flakyOpen: true}, true, []string{"Offered", "NestedNames"}},
		{"SetsID", sourceFaults{setsID: true}, true, []string{"Offered"}},
		{"Deaf", sourceFaults{deaf: true}, false, []string{"NextCancel"}},
		{"BadRange", sourceFaults{badRange: true}, true, []string{"RangeRead"}},
		{"AckOnce", sourceFaults{ackOnce: true}, true, []string{"AckTwice", "AckLeavesFile"}},
		{"RemoveOnAck", sourceFaults{removeOnAck: true}, true, []string{"AckLeavesFile"}},
		{"Leak", sourceFaults{leak: true}, true, []string{"Close"}},
		{"Forget", sourceFaults{forget: true}, true, []string{"Reoffer"}},
		{"ForgetEndless", sourceFaults{forget: true}, false, []string{"Reoffer"}},
		{"HangAfterClose", sourceFaults{hangClosed: true}, false, []string{"Close"}},
		{"DropLast", sourceFaults{dropLast: true}, true, []string{"Offered", "NestedNames"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			expectFailure(t, faultySourceHarness(t, tc.faults, tc.finite), sourceChecks, tc.checks...)
		})
	}
	t.Run("NoRangeSkips", func(t *testing.T) {
		h := memorySourceHarness(true, func(s pipeline.Source) pipeline.Source { return noRange{s} })
		err := findCheck(t, sourceChecks, "RangeRead").run(t.Context(), t, h)
		var skip *skipError
		if !errors.As(err, &skip) {
			t.Errorf("RangeRead without RangeOpener: %v, want a skip", err)
		}
	})
}

// noRange hides RangeOpener from a source's items.
type noRange struct{ pipeline.Source }

func (s noRange) Next(ctx context.Context) (pipeline.Item, error) {
	it, err := s.Source.Next(ctx)
	if err != nil {
		return nil, err
	}
	return struct{ pipeline.Item }{it}, nil
}
