package testkit

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math/rand/v2"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/mftflow/mftflow/pipeline"
)

// SuiteChunkSize is the bus chunk size the sink suite assumes. Like the
// engine, the suite rounds a plan's part size up to a whole number of chunks;
// it uses a small chunk so that files of a few parts stay small.
const SuiteChunkSize = 64 << 10

// RoundPartSize returns partSize rounded up to a whole number of
// SuiteChunkSize chunks. A partSize of 0 (or less) means one chunk per part.
func RoundPartSize(partSize int64) int64 {
	if partSize <= 0 {
		return SuiteChunkSize
	}
	return (partSize + SuiteChunkSize - 1) / SuiteChunkSize * SuiteChunkSize
}

// PartsFor cuts a file of size bytes into parts of RoundPartSize(partSize)
// bytes, the last one shorter if need be. Every part but the last has the
// full part size and Offset = Number × part size; the last has Last set. A
// 0-byte file is one empty part, Part{Number: 0, Offset: 0, Size: 0,
// Last: true}, so a sink always sees at least one WritePart before Commit.
// PartsFor panics if size is negative: parts need a known size.
func PartsFor(size, partSize int64) []pipeline.Part {
	if size < 0 {
		panic(fmt.Sprintf("testkit.PartsFor: negative size %d", size))
	}
	if size == 0 {
		return []pipeline.Part{{Number: 0, Offset: 0, Size: 0, Last: true}}
	}
	ps := RoundPartSize(partSize)
	n := (size + ps - 1) / ps
	parts := make([]pipeline.Part, n)
	for i := range parts {
		off := int64(i) * ps
		parts[i] = pipeline.Part{Number: i, Offset: off, Size: min(ps, size-off), Last: i == len(parts)-1}
	}
	return parts
}

// WriteParts writes the parts of content numbered numbers (every part if
// none are given) to u, one after the other in the order given, each cut as
// PartsFor cuts content for u's plan. t fails if a write fails.
func WriteParts(t testing.TB, u pipeline.Upload, content []byte, numbers ...int) {
	t.Helper()
	parts := PartsFor(int64(len(content)), u.Plan().PartSize)
	if numbers == nil {
		for i := range parts {
			numbers = append(numbers, i)
		}
	}
	for _, n := range numbers {
		p := parts[n]
		if err := u.WritePart(t.Context(), p, bytes.NewReader(content[p.Offset:p.Offset+p.Size])); err != nil {
			t.Fatalf("WritePart(%d): %v", n, err)
		}
	}
}

// SinkHarness tells RunSinkTests how to build and inspect a sink.
type SinkHarness struct {
	// New returns a fresh sink for this subtest, writing to storage that
	// starts empty. The suite closes the sink when the subtest ends.
	New func(t *testing.T) pipeline.Sink
	// Read returns the committed content stored for the file called name (as
	// in File.Name; the harness maps it to the sink's naming), and false if
	// there is none.
	Read func(t *testing.T, name string) ([]byte, bool)
	// List returns every name visible at the sink's storage: committed
	// objects or files and any temporary leftovers. The suite checks that a
	// Commit adds exactly one name and that Abort leaves nothing behind. If
	// List is nil those checks are skipped.
	List func(t *testing.T) []string
}

// ListFiles returns the slash-separated names of every file below the local
// directory dir, relative to it, as a sink harness's List does. Errors are
// passed over: a sink may rename or remove files while the walk runs.
func ListFiles(dir string) []string {
	var names []string
	_ = filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			rel, _ := filepath.Rel(dir, p)
			names = append(names, filepath.ToSlash(rel))
		}
		return nil
	})
	return names
}

// RunSinkTests checks that the sinks h builds keep the pipeline.Sink and
// pipeline.Upload contracts, playing the engine as the package documentation
// describes. Each subtest builds its own sink:
//
//   - SinglePart: a small file and a file of exactly one part size, each one
//     part, are committed byte for byte.
//   - ManyParts: a file of several full parts, written concurrently in
//     shuffled order while State is called alongside, is invisible before
//     Commit and byte-identical after it.
//
// A sink whose plan is InOrder gets its parts one at a time in order
// throughout, and parts written again as the engine writes them: from one
// part to the last.
//   - OddLastPart: three full parts and a 17-byte last part.
//   - NotVisibleBeforeCommit: Read finds nothing under the final name while
//     parts are written, even once the last part is in, until Commit.
//   - RewritePart: a part written first with wrong bytes and again with the
//     right ones, and parts written twice, give the right content.
//   - ShortReads: part readers that return a few bytes per Read.
//   - Abort: Abort, with parts written or none, returns nil and leaves List
//     as it was.
//   - Resume: an upload dropped half-way (no Commit, no Abort) is resumed
//     with Sink.Open and its State; writing only the missing parts and
//     committing gives the right content. Skipped if State returns nil.
//   - EmptyFile: a 0-byte file (one empty Last part) commits to an empty file.
//   - UnknownSize: Open with Size -1, as the engine does while it is still
//     reading the file. Skipped for pipeline.ManifestFirst sinks.
//   - ConcurrentUploads: several files, some with directories in their names,
//     uploaded at once through one sink.
//   - CancelWritePart: WritePart whose reader blocks returns an error
//     promptly once its context is cancelled; Abort then leaves nothing.
//
// The suite never runs its subtests in parallel.
func RunSinkTests(t *testing.T, h SinkHarness) {
	t.Helper()
	if h.New == nil || h.Read == nil {
		t.Fatal("testkit: SinkHarness.New and SinkHarness.Read must be set")
	}
	runChecks(t, h, sinkChecks)
}

var sinkChecks = []check[SinkHarness]{
	{"SinglePart", checkSinglePart},
	{"ManyParts", checkManyParts},
	{"OddLastPart", checkOddLastPart},
	{"NotVisibleBeforeCommit", checkNotVisible},
	{"RewritePart", checkRewritePart},
	{"ShortReads", checkSinkShortReads},
	{"Abort", checkAbort},
	{"Resume", checkResume},
	{"EmptyFile", checkSinkEmptyFile},
	{"UnknownSize", checkUnknownSize},
	{"ConcurrentUploads", checkConcurrentUploads},
	{"CancelWritePart", checkCancelWritePart},
}

// manyPartsBytes bounds the ManyParts file unless that leaves fewer than
// three parts.
const manyPartsBytes = 4 << 20

// newSink builds a sink for t and closes it when t ends.
func newSink(t *testing.T, h SinkHarness) pipeline.Sink {
	s := h.New(t)
	if s == nil {
		t.Fatal("testkit: the harness returned a nil sink")
	}
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Errorf("closing the sink: %v", err)
		}
	})
	return s
}

// fileID is a stable hex id, as the engine derives one from flow and Key.
func fileID(scope, name string) string {
	sum := sha256.Sum256([]byte(scope + "\x00" + name))
	return hex.EncodeToString(sum[:16])
}

var suiteModTime = time.Date(2024, 2, 29, 12, 0, 0, 0, time.UTC)

// newFile describes a file of the given content for a subtest.
func newFile(t *testing.T, name string, content []byte) pipeline.File {
	return pipeline.File{
		ID:      fileID(t.Name(), name),
		Key:     name + "|" + SHA256Hex(content)[:16],
		Name:    name,
		Size:    int64(len(content)),
		ModTime: suiteModTime,
	}
}

// suiteUpload is one file the suite is writing, as the engine would.
type suiteUpload struct {
	up      pipeline.Upload
	plan    pipeline.PartPlan
	parts   []pipeline.Part
	content []byte
	final   pipeline.File // what Commit gets: final Size and SHA256
}

// startUpload opens f. The caller sets f.Size to the content's size or -1;
// a ManifestFirst sink gets the final Size and SHA256 at Open regardless.
func startUpload(ctx context.Context, s pipeline.Sink, f pipeline.File, content []byte, resume []byte) (*suiteUpload, error) {
	final := f
	final.Size = int64(len(content))
	final.SHA256 = SHA256Hex(content)
	open := f
	open.SHA256 = ""
	if mf, ok := s.(pipeline.ManifestFirst); ok && mf.ManifestFirst(open) {
		open = final
	}
	up, err := s.Open(ctx, open, resume)
	if err != nil {
		return nil, fmt.Errorf("Open(%q): %w", f.Name, err)
	}
	if up == nil {
		return nil, fmt.Errorf("Open(%q) returned a nil Upload and no error", f.Name)
	}
	plan := up.Plan()
	if plan.PartSize < 0 || plan.Concurrency < 0 {
		return nil, fmt.Errorf("Open(%q): plan %+v has a negative field", f.Name, plan)
	}
	return &suiteUpload{up: up, plan: plan, parts: PartsFor(final.Size, plan.PartSize), content: content, final: final}, nil
}

func (u *suiteUpload) partSize() int64 { return RoundPartSize(u.plan.PartSize) }

func (u *suiteUpload) all() []int {
	n := make([]int, len(u.parts))
	for i := range n {
		n[i] = i
	}
	return n
}

// every returns the part numbers i with i%step == from.
func (u *suiteUpload) every(step, from int) []int {
	var n []int
	for i := range u.parts {
		if i%step == from {
			n = append(n, i)
		}
	}
	return n
}

// from returns the part numbers from n to the last.
func (u *suiteUpload) from(n int) []int { return u.all()[n:] }

// pick returns inOrder for a sink whose plan asks for parts in order (see
// pipeline.PartPlan.InOrder), else any: what a check writes in each case.
func (u *suiteUpload) pick(any, inOrder []int) []int {
	if u.plan.InOrder {
		return inOrder
	}
	return any
}

// write writes the numbered parts concurrently in shuffled order (one at a
// time in order for an InOrder plan), each from newReader over the part's
// bytes. It returns the first error.
func (u *suiteUpload) write(ctx context.Context, numbers []int, seed uint64, newReader func([]byte) io.Reader) error {
	order := slices.Clone(numbers)
	rand.New(rand.NewPCG(seed, uint64(len(order)))).Shuffle(len(order), func(i, j int) {
		order[i], order[j] = order[j], order[i]
	})
	workers := u.plan.Concurrency
	if workers <= 0 {
		workers = pipeline.DefaultParallelism
	}
	if u.plan.InOrder {
		slices.Sort(order)
		workers = 1
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var (
		once     sync.Once
		firstErr error
		wg       sync.WaitGroup
		work     = make(chan int)
	)
	for range min(workers, len(order)) {
		wg.Go(func() {
			for n := range work {
				p := u.parts[n]
				if err := u.up.WritePart(ctx, p, newReader(u.content[p.Offset:p.Offset+p.Size])); err != nil {
					once.Do(func() {
						firstErr = fmt.Errorf("WritePart(%q, part %d of %d, offset %d, size %d): %w",
							u.final.Name, p.Number, len(u.parts), p.Offset, p.Size, err)
						cancel()
					})
				}
			}
		})
	}
feed:
	for _, n := range order {
		select {
		case work <- n:
		case <-ctx.Done():
			break feed
		}
	}
	close(work)
	wg.Wait()
	if firstErr == nil && ctx.Err() != nil {
		firstErr = fmt.Errorf("writing %q: %w", u.final.Name, context.Cause(ctx))
	}
	return firstErr
}

func (u *suiteUpload) commit(ctx context.Context) error {
	if err := u.up.Commit(ctx, u.final); err != nil {
		return fmt.Errorf("Commit(%q): %w", u.final.Name, err)
	}
	return nil
}

// Deliver writes content to s as the file f, the way the engine does: Open,
// the parts of the plan (see PartsFor) written concurrently in shuffled order
// from plain readers, then Commit with f's Size and SHA256 set from content.
// f.Size is also set at Open. If a part fails, Deliver aborts the upload and
// returns the error. Tests of code that takes a Sink use it to put files in.
func Deliver(ctx context.Context, s pipeline.Sink, f pipeline.File, content []byte) error {
	f.Size = int64(len(content))
	u, err := startUpload(ctx, s, f, content, nil)
	if err != nil {
		return err
	}
	if err := u.write(ctx, u.all(), uint64(len(content)), plainReader); err != nil {
		if aerr := u.up.Abort(context.WithoutCancel(ctx), err); aerr != nil {
			err = fmt.Errorf("%w (and Abort: %v)", err, aerr)
		}
		return err
	}
	return u.commit(ctx)
}

// probePartSize opens and aborts a throwaway upload to learn the sink's
// rounded part size, from which the checks size their files.
func probePartSize(ctx context.Context, s pipeline.Sink) (int64, error) {
	const size = 1 << 20
	f := pipeline.File{
		ID:      fileID("testkit-probe", "probe"),
		Key:     "testkit-probe",
		Name:    "testkit-probe.bin",
		Size:    size,
		ModTime: suiteModTime,
	}
	if mf, ok := s.(pipeline.ManifestFirst); ok && mf.ManifestFirst(f) {
		f.SHA256 = SHA256Hex(make([]byte, size))
	}
	up, err := s.Open(ctx, f, nil)
	if err != nil {
		return 0, fmt.Errorf("Open of a probe upload: %w", err)
	}
	if up == nil {
		return 0, errors.New("Open of a probe upload returned a nil Upload and no error")
	}
	ps := RoundPartSize(up.Plan().PartSize)
	if err := up.Abort(ctx, nil); err != nil {
		return 0, fmt.Errorf("Abort of a probe upload with no parts: %w", err)
	}
	return ps, nil
}

func expectInvisible(t *testing.T, h SinkHarness, name, when string) error {
	if _, ok := h.Read(t, name); ok {
		return fmt.Errorf("%q is visible %s, before Commit", name, when)
	}
	return nil
}

func expectContent(t *testing.T, h SinkHarness, name string, want []byte) error {
	got, ok := h.Read(t, name)
	if !ok {
		return fmt.Errorf("after Commit, Read(%q) finds nothing", name)
	}
	return compareContent(fmt.Sprintf("after Commit, Read(%q)", name), got, want)
}

func list(t *testing.T, h SinkHarness) []string {
	if h.List == nil {
		return nil
	}
	return h.List(t)
}

// expectListed checks that List gained exactly n names since before and lost
// none.
func expectListed(t *testing.T, h SinkHarness, before []string, n int, what string) error {
	if h.List == nil {
		return nil
	}
	count := map[string]int{}
	for _, name := range before {
		count[name]--
	}
	for _, name := range h.List(t) {
		count[name]++
	}
	var added, lost []string
	for _, name := range sortedNames(count) {
		for c := count[name]; c > 0; c-- {
			added = append(added, name)
		}
		for c := count[name]; c < 0; c++ {
			lost = append(lost, name)
		}
	}
	if len(added) != n || len(lost) != 0 {
		return fmt.Errorf("%s: List gained %q and lost %q; want exactly %d new name(s), nothing half-written left behind",
			what, added, lost, n)
	}
	return nil
}

// roundTrip uploads content as name: every part, Commit, then checks that the
// file was invisible before Commit and is byte-identical after it.
type roundTrip struct {
	reader      func([]byte) io.Reader // plainReader if nil
	unknownSize bool                   // Open with Size -1
	pollState   bool                   // call State while parts are written
}

func (rt roundTrip) run(ctx context.Context, t *testing.T, h SinkHarness, s pipeline.Sink, name string, content []byte) error {
	f := newFile(t, name, content)
	if rt.unknownSize {
		f.Size = -1
	}
	u, err := startUpload(ctx, s, f, content, nil)
	if err != nil {
		return err
	}
	reader := rt.reader
	if reader == nil {
		reader = plainReader
	}
	done := make(chan struct{})
	var polled sync.WaitGroup
	if rt.pollState {
		// The engine stores State after parts complete, while others run.
		polled.Go(func() {
			for {
				_ = u.up.State()
				select {
				case <-done:
					return
				case <-time.After(time.Millisecond):
				}
			}
		})
	}
	err = u.write(ctx, u.all(), uint64(len(content)), reader)
	close(done)
	polled.Wait()
	if err != nil {
		return err
	}
	if err := expectInvisible(t, h, name, "once every part is written"); err != nil {
		return err
	}
	if err := u.commit(ctx); err != nil {
		return err
	}
	return expectContent(t, h, name, content)
}

func checkSinglePart(ctx context.Context, t *testing.T, h SinkHarness) error {
	s := newSink(t, h)
	before := list(t, h)
	ps, err := probePartSize(ctx, s)
	if err != nil {
		return err
	}
	for i, size := range []int64{1000, ps} {
		if err := (roundTrip{}).run(ctx, t, h, s, fmt.Sprintf("single-%d.bin", i), RandomContent(int64(10+i), int(size))); err != nil {
			return err
		}
	}
	return expectListed(t, h, before, 2, "after two Commits")
}

func checkManyParts(ctx context.Context, t *testing.T, h SinkHarness) error {
	s := newSink(t, h)
	before := list(t, h)
	ps, err := probePartSize(ctx, s)
	if err != nil {
		return err
	}
	n := min(max(manyPartsBytes/ps, 3), 12)
	if err := (roundTrip{pollState: true}).run(ctx, t, h, s, "many.bin", RandomContent(20, int(n*ps))); err != nil {
		return err
	}
	return expectListed(t, h, before, 1, "after one Commit")
}

func checkOddLastPart(ctx context.Context, t *testing.T, h SinkHarness) error {
	s := newSink(t, h)
	before := list(t, h)
	ps, err := probePartSize(ctx, s)
	if err != nil {
		return err
	}
	if err := (roundTrip{}).run(ctx, t, h, s, "odd.bin", RandomContent(30, int(3*ps+17))); err != nil {
		return err
	}
	return expectListed(t, h, before, 1, "after one Commit")
}

func checkNotVisible(ctx context.Context, t *testing.T, h SinkHarness) error {
	s := newSink(t, h)
	ps, err := probePartSize(ctx, s)
	if err != nil {
		return err
	}
	content := RandomContent(40, int(2*ps+5))
	name := "dir/invisible.bin"
	u, err := startUpload(ctx, s, newFile(t, name, content), content, nil)
	if err != nil {
		return err
	}
	if err := expectInvisible(t, h, name, "right after Open"); err != nil {
		return err
	}
	last := len(u.parts) - 1
	if err := u.write(ctx, u.all()[:last], 40, plainReader); err != nil {
		return err
	}
	if err := expectInvisible(t, h, name, "with every part but the last written"); err != nil {
		return err
	}
	if err := u.write(ctx, []int{last}, 41, plainReader); err != nil {
		return err
	}
	if err := expectInvisible(t, h, name, "with every part written"); err != nil {
		return err
	}
	if err := u.commit(ctx); err != nil {
		return err
	}
	return expectContent(t, h, name, content)
}

func checkRewritePart(ctx context.Context, t *testing.T, h SinkHarness) error {
	s := newSink(t, h)
	before := list(t, h)
	ps, err := probePartSize(ctx, s)
	if err != nil {
		return err
	}
	content := RandomContent(50, int(3*ps+17))
	name := "rewritten.bin"
	u, err := startUpload(ctx, s, newFile(t, name, content), content, nil)
	if err != nil {
		return err
	}
	// A first attempt at part 1 wrote other bytes, then failed.
	if err := u.write(ctx, u.pick(nil, []int{0}), 50, plainReader); err != nil {
		return err
	}
	p := u.parts[1]
	if err := u.up.WritePart(ctx, p, plainReader(RandomContent(51, int(p.Size)))); err != nil {
		return fmt.Errorf("WritePart(part 1, wrong bytes): %w", err)
	}
	if err := u.write(ctx, u.pick(u.all(), u.from(1)), 50, plainReader); err != nil {
		return err
	}
	// A retry after a crash writes parts again that were already done
	// (in order: from one of them to the last).
	if err := u.write(ctx, u.pick([]int{0, 1, len(u.parts) - 1}, u.from(1)), 52, plainReader); err != nil {
		return fmt.Errorf("writing parts a second time: %w", err)
	}
	if err := u.commit(ctx); err != nil {
		return err
	}
	if err := expectContent(t, h, name, content); err != nil {
		return err
	}
	return expectListed(t, h, before, 1, "after one Commit")
}

func checkSinkShortReads(ctx context.Context, t *testing.T, h SinkHarness) error {
	s := newSink(t, h)
	ps, err := probePartSize(ctx, s)
	if err != nil {
		return err
	}
	return (roundTrip{reader: func(b []byte) io.Reader { return ShortReader(plainReader(b)) }}).
		run(ctx, t, h, s, "short-reads.bin", RandomContent(60, int(2*ps+3)))
}

func checkAbort(ctx context.Context, t *testing.T, h SinkHarness) error {
	s := newSink(t, h)
	before := list(t, h)
	ps, err := probePartSize(ctx, s)
	if err != nil {
		return err
	}
	content := RandomContent(70, int(3*ps+17))
	name := "aborted.bin"
	u, err := startUpload(ctx, s, newFile(t, name, content), content, nil)
	if err != nil {
		return err
	}
	if err := u.write(ctx, u.pick([]int{0, 2}, []int{0, 1}), 70, plainReader); err != nil {
		return err
	}
	if err := u.up.Abort(ctx, errors.New("testkit: the delivery gave up")); err != nil {
		return fmt.Errorf("Abort with parts written: %w", err)
	}
	if err := expectInvisible(t, h, name, "after Abort"); err != nil {
		return err
	}
	if err := expectListed(t, h, before, 0, "after Abort with parts written"); err != nil {
		return err
	}
	empty := "aborted-before-any-part.bin"
	u, err = startUpload(ctx, s, newFile(t, empty, content), content, nil)
	if err != nil {
		return err
	}
	if err := u.up.Abort(ctx, nil); err != nil {
		return fmt.Errorf("Abort with no parts written: %w", err)
	}
	if err := expectInvisible(t, h, empty, "after Abort"); err != nil {
		return err
	}
	return expectListed(t, h, before, 0, "after Abort with no parts written")
}

func checkResume(ctx context.Context, t *testing.T, h SinkHarness) error {
	s := newSink(t, h)
	before := list(t, h)
	ps, err := probePartSize(ctx, s)
	if err != nil {
		return err
	}
	content := RandomContent(80, int(4*ps+100))
	name := "dir/resumed.bin"
	f := newFile(t, name, content)
	first, err := startUpload(ctx, s, f, content, nil)
	if err != nil {
		return err
	}
	// Parts 0, 2 and 4 (the last) land before the crash; in order, 0 to 2.
	if err := first.write(ctx, first.pick(first.every(2, 0), []int{0, 1, 2}), 80, plainReader); err != nil {
		return err
	}
	state := first.up.State()
	if state == nil {
		if err := first.up.Abort(ctx, nil); err != nil {
			return fmt.Errorf("Abort: %w", err)
		}
		return skipf("State returns nil: the sink does not resume uploads")
	}
	state = slices.Clone(state)
	// The runner dies here: no Commit, no Abort. The next one resumes.
	second, err := startUpload(ctx, s, f, content, state)
	if err != nil {
		return fmt.Errorf("resuming: %w", err)
	}
	if got, want := second.partSize(), first.partSize(); got != want {
		return fmt.Errorf("the resumed upload plans %d-byte parts, the first one %d", got, want)
	}
	if err := expectInvisible(t, h, name, "after resuming"); err != nil {
		return err
	}
	// In order, the resumed upload starts again at part 2, which it has.
	if err := second.write(ctx, second.pick(second.every(2, 1), second.from(2)), 81, plainReader); err != nil {
		return fmt.Errorf("resumed upload: %w", err)
	}
	if err := expectInvisible(t, h, name, "with every part written"); err != nil {
		return err
	}
	if err := second.commit(ctx); err != nil {
		return fmt.Errorf("resumed upload: %w", err)
	}
	if err := expectContent(t, h, name, content); err != nil {
		return err
	}
	return expectListed(t, h, before, 1, "after one resumed Commit")
}

func checkSinkEmptyFile(ctx context.Context, t *testing.T, h SinkHarness) error {
	s := newSink(t, h)
	before := list(t, h)
	if err := (roundTrip{}).run(ctx, t, h, s, "empty.dat", []byte{}); err != nil {
		return err
	}
	return expectListed(t, h, before, 1, "after committing an empty file")
}

func checkUnknownSize(ctx context.Context, t *testing.T, h SinkHarness) error {
	s := newSink(t, h)
	if mf, ok := s.(pipeline.ManifestFirst); ok && mf.ManifestFirst(pipeline.File{Name: "unknown-size.bin", Size: -1}) {
		return skipf("the sink waits for the whole file when the size is unknown: it always learns the size at Open")
	}
	before := list(t, h)
	ps, err := probePartSize(ctx, s)
	if err != nil {
		return err
	}
	if err := (roundTrip{unknownSize: true}).run(ctx, t, h, s, "unknown-size.bin", RandomContent(90, int(3*ps+17))); err != nil {
		return err
	}
	return expectListed(t, h, before, 1, "after one Commit")
}

func checkConcurrentUploads(ctx context.Context, t *testing.T, h SinkHarness) error {
	s := newSink(t, h)
	before := list(t, h)
	ps, err := probePartSize(ctx, s)
	if err != nil {
		return err
	}
	files := map[string][]byte{
		"concurrent-0.bin":         RandomContent(100, int(ps+1)),
		"dir/concurrent-1.bin":     RandomContent(101, int(2*ps)),
		"dir/sub/concurrent-2.txt": RandomContent(102, 1000),
		"concurrent-3.bin":         RandomContent(103, int(3*ps+17)),
	}
	var mu sync.Mutex
	var errs []error
	var wg sync.WaitGroup
	for name, content := range files {
		f := newFile(t, name, content)
		wg.Go(func() {
			err := func() error {
				u, err := startUpload(ctx, s, f, content, nil)
				if err != nil {
					return err
				}
				if err := u.write(ctx, u.all(), uint64(len(content)), plainReader); err != nil {
					return err
				}
				return u.commit(ctx)
			}()
			if err != nil {
				mu.Lock()
				errs = append(errs, err)
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	// Read from this goroutine only: the harness may call t.Fatal.
	for _, name := range sortedNames(files) {
		if err := expectContent(t, h, name, files[name]); err != nil {
			errs = append(errs, err)
		}
	}
	if len(errs) == 0 {
		errs = append(errs, expectListed(t, h, before, len(files), "after concurrent Commits"))
	}
	return errors.Join(errs...)
}

// blockingReader yields head, then blocks until ctx ends, as a reader of bus
// chunks does when the next chunk is late.
type blockingReader struct {
	ctx     context.Context
	head    []byte
	blocked chan struct{}
	once    sync.Once
}

func (r *blockingReader) Read(p []byte) (int, error) {
	if len(r.head) > 0 {
		n := copy(p, r.head)
		r.head = r.head[n:]
		return n, nil
	}
	r.once.Do(func() { close(r.blocked) })
	<-r.ctx.Done()
	return 0, r.ctx.Err()
}

func checkCancelWritePart(ctx context.Context, t *testing.T, h SinkHarness) error {
	s := newSink(t, h)
	before := list(t, h)
	ps, err := probePartSize(ctx, s)
	if err != nil {
		return err
	}
	content := RandomContent(110, int(2*ps))
	name := "cancelled.bin"
	u, err := startUpload(ctx, s, newFile(t, name, content), content, nil)
	if err != nil {
		return err
	}
	p := u.parts[0]
	wctx, cancel := context.WithCancel(ctx)
	defer cancel()
	r := &blockingReader{ctx: wctx, head: u.content[:p.Size/2], blocked: make(chan struct{})}
	done := make(chan error, 1)
	go func() { done <- u.up.WritePart(wctx, p, r) }()
	select {
	case <-r.blocked:
	case err := <-done:
		return fmt.Errorf("WritePart returned %v before reading its whole part", err)
	case <-time.After(promptly):
		return fmt.Errorf("WritePart did not read the first half of its part within %v", promptly)
	}
	cancel()
	select {
	case err := <-done:
		if err == nil {
			return errors.New("WritePart returned nil after its context was cancelled half-way through the part")
		}
	case <-time.After(promptly):
		return fmt.Errorf("WritePart did not return within %v of its context being cancelled", promptly)
	}
	if err := u.up.Abort(ctx, context.Canceled); err != nil {
		return fmt.Errorf("Abort after a cancelled WritePart: %w", err)
	}
	if err := expectInvisible(t, h, name, "after Abort"); err != nil {
		return err
	}
	return expectListed(t, h, before, 0, "after a cancelled WritePart and Abort")
}
