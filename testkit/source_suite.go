package testkit

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"reflect"
	"runtime"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/mftflow/mftflow/pipeline"
)

// SourceHarness tells RunSourceTests how to build and inspect a source.
type SourceHarness struct {
	// New returns a fresh source, created for this subtest, that offers
	// exactly files (name -> content; names may contain "/"). It fails t if it
	// cannot. The suite closes the source when the subtest ends.
	New func(t *testing.T, files map[string][]byte) pipeline.Source
	// Finite says the source returns io.EOF from Next once every file was
	// offered. If false, the suite stops reading after len(files) items.
	Finite bool
	// Exists, if set, reports whether the named file is still at the source.
	// The suite uses it to check that an Ack other than Passed leaves the file
	// where it is, and to check AfterPassed. Optional.
	Exists func(t *testing.T, name string) bool
	// AfterPassed says what Ack(Passed) does to a file at the sources New
	// builds, checked with Exists. The zero value does not check it.
	AfterPassed AfterAction
	// Reopen, if set, returns a new source over the same storage as the last
	// New of this subtest, as a restarted runner would build it. The suite
	// checks that files offered but never acked are offered again with the
	// same Key and content. Optional.
	Reopen func(t *testing.T) pipeline.Source
}

// AfterAction is what a source does with a file once it is acked as Passed.
type AfterAction int

// The after actions a SourceHarness can declare.
const (
	AfterUnchecked AfterAction = iota // not checked
	KeepsFile                         // the file stays at the source
	RemovesFile                       // the file is deleted or moved away
)

// RunSourceTests checks that the sources h builds keep the pipeline.Source
// and pipeline.Item contracts. Each subtest builds its own source:
//
//   - Offered: every file is offered exactly once, with its Name, a Size equal
//     to the content's length (or -1), a non-empty Key unique to the file and
//     an empty ID; Open returns the content, again on a second Open; after the
//     last file Next offers nothing more.
//   - EmptyFile: a 0-byte file is offered and opens to no bytes.
//   - NestedNames: names with directories come through as given.
//   - DistinctKeys: files with identical content have different Keys.
//   - RangeRead: OpenRange returns the right bytes for random ranges,
//     zero-length ones and the last byte, also from concurrent calls.
//     Skipped if items do not implement pipeline.RangeOpener.
//   - NextCancel: with nothing left to offer, Next returns promptly once its
//     context ends (deadline, cancelled before or during the call), with the
//     context's error; a Finite source may return io.EOF instead.
//   - AckTwice: Ack with Passed returns nil, and nil again the second time.
//   - AckLeavesFile: Ack with Failed, Mixed or Skipped leaves the file at the
//     source, and Ack(Passed) does what AfterPassed says. Needs Exists.
//   - Close: Close returns nil; Next afterwards returns an error (io.EOF
//     counts) promptly instead of hanging; no goroutine running the source's
//     code outlives Close.
//   - Reoffer: a source built by Reopen offers again, with the same Keys and
//     content, the files the closed source offered but never saw acked.
//     Needs Reopen.
//
// The suite never runs its subtests in parallel.
func RunSourceTests(t *testing.T, h SourceHarness) {
	t.Helper()
	if h.New == nil {
		t.Fatal("testkit: SourceHarness.New is nil")
	}
	runChecks(t, h, sourceChecks)
}

var sourceChecks = []check[SourceHarness]{
	{"Offered", checkOffered},
	{"EmptyFile", checkSourceEmptyFile},
	{"NestedNames", checkNestedNames},
	{"DistinctKeys", checkDistinctKeys},
	{"RangeRead", checkRangeRead},
	{"NextCancel", checkNextCancel},
	{"AckTwice", checkAckTwice},
	{"AckLeavesFile", checkAckLeavesFile},
	{"Close", checkSourceClose},
	{"Reoffer", checkReoffer},
}

// sourceFiles is the mix of files most source subtests use.
func sourceFiles() map[string][]byte {
	return map[string][]byte{
		"hello.txt":          []byte("hello, world\n"),
		"empty.dat":          {},
		"big.bin":            RandomContent(1, 300_000),
		"dir/chunk.bin":      RandomContent(2, 65_537),
		"dir/sub/deep.txt":   []byte("deep\n"),
		"dir/with space.txt": []byte("a name with a space\n"),
	}
}

// openSource builds a source for t and closes it when t ends. The returned
// function closes it earlier; it closes only once and returns Close's error.
func openSource(t *testing.T, build func(t *testing.T) pipeline.Source) (pipeline.Source, func() error) {
	src := build(t)
	if src == nil {
		t.Fatal("testkit: the harness returned a nil source")
	}
	var once sync.Once
	var closeErr error
	closeSrc := func() error {
		once.Do(func() { closeErr = src.Close() })
		return closeErr
	}
	t.Cleanup(func() {
		if err := closeSrc(); err != nil {
			t.Errorf("closing the source: %v", err)
		}
	})
	return src, closeSrc
}

func newSource(t *testing.T, h SourceHarness, files map[string][]byte) (pipeline.Source, func() error) {
	return openSource(t, func(t *testing.T) pipeline.Source { return h.New(t, files) })
}

type nextResult struct {
	item pipeline.Item
	err  error
}

// nextAsync calls Next in a goroutine. The goroutine ends when Next returns;
// a source that ignores ctx leaks it, and the check reports that.
func nextAsync(ctx context.Context, src pipeline.Source) <-chan nextResult {
	ch := make(chan nextResult, 1)
	go func() {
		it, err := src.Next(ctx)
		ch <- nextResult{it, err}
	}()
	return ch
}

// nextWithin calls Next and waits at most wait for it; ok is false if Next
// did not return in time.
func nextWithin(ctx context.Context, src pipeline.Source, wait time.Duration) (r nextResult, ok bool) {
	timer := time.NewTimer(wait)
	defer timer.Stop()
	select {
	case r := <-nextAsync(ctx, src):
		return r, true
	case <-timer.C:
		return nextResult{}, false
	}
}

// drain reads every file a source offers: up to io.EOF for a finite source,
// want items for an endless one.
func drain(ctx context.Context, src pipeline.Source, finite bool, want int) ([]pipeline.Item, error) {
	var items []pipeline.Item
	for finite || len(items) < want {
		if finite && len(items) > want+10 {
			return items, fmt.Errorf("a finite source offered %d items for %d files and no io.EOF", len(items), want)
		}
		r, ok := nextWithin(ctx, src, subtestTimeout)
		switch {
		case !ok:
			return items, fmt.Errorf("Next did not return within %v after %d of %d files", subtestTimeout, len(items), want)
		case finite && errors.Is(r.err, io.EOF):
			if r.item != nil {
				return items, errors.New("Next returned an item together with io.EOF")
			}
			return items, nil
		case r.err != nil:
			return items, fmt.Errorf("Next after %d of %d files: %w", len(items), want, r.err)
		case r.item == nil:
			return items, errors.New("Next returned a nil item and a nil error")
		}
		items = append(items, r.item)
	}
	return items, nil
}

// ReadItem reads the whole content of it and closes it, failing t on any
// error.
func ReadItem(t testing.TB, it pipeline.Item) []byte {
	t.Helper()
	b, err := readItem(t.Context(), it)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// readItem reads the whole content of it.
func readItem(ctx context.Context, it pipeline.Item) ([]byte, error) {
	rc, err := it.Open(ctx)
	if err != nil {
		return nil, err
	}
	return readClose(rc)
}

func readClose(rc io.ReadCloser) ([]byte, error) {
	b, err := io.ReadAll(rc)
	if cerr := rc.Close(); err == nil && cerr != nil {
		err = fmt.Errorf("closing: %w", cerr)
	}
	return b, err
}

// checkItem checks one item's metadata and content against files.
func checkItem(ctx context.Context, it pipeline.Item, files map[string][]byte) error {
	f := it.File()
	want, known := files[f.Name]
	if !known {
		return fmt.Errorf("offered %q, which is not one of the files %q", f.Name, sortedNames(files))
	}
	var errs []error
	if f.Key == "" {
		errs = append(errs, fmt.Errorf("%q: empty Key", f.Name))
	}
	if f.ID != "" {
		errs = append(errs, fmt.Errorf("%q: ID %q is set; sources leave it to the engine", f.Name, f.ID))
	}
	if f.Size != int64(len(want)) && f.Size != -1 {
		errs = append(errs, fmt.Errorf("%q: Size %d, want %d or -1", f.Name, f.Size, len(want)))
	}
	if f.SHA256 != "" && f.SHA256 != SHA256Hex(want) {
		errs = append(errs, fmt.Errorf("%q: SHA256 %s, want %s or empty", f.Name, f.SHA256, SHA256Hex(want)))
	}
	for _, attempt := range []string{"first", "second"} {
		got, err := readItem(ctx, it)
		if err != nil {
			errs = append(errs, fmt.Errorf("%q: %s Open: %w", f.Name, attempt, err))
			continue
		}
		if err := compareContent(fmt.Sprintf("%q: %s Open", f.Name, attempt), got, want); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

func sortedNames[V any](m map[string]V) []string {
	names := make([]string, 0, len(m))
	for n := range m {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// offeredOnce checks items against files: each offered once, metadata and
// content right, Keys distinct.
func offeredOnce(ctx context.Context, items []pipeline.Item, files map[string][]byte) error {
	var errs []error
	count := map[string]int{}
	byKey := map[string]string{}
	for _, it := range items {
		f := it.File()
		count[f.Name]++
		if count[f.Name] > 1 {
			continue
		}
		if err := checkItem(ctx, it, files); err != nil {
			errs = append(errs, err)
		}
		if other, dup := byKey[f.Key]; dup && f.Key != "" {
			errs = append(errs, fmt.Errorf("%q and %q share the Key %q", other, f.Name, f.Key))
		}
		byKey[f.Key] = f.Name
	}
	for _, name := range sortedNames(files) {
		if count[name] == 0 {
			errs = append(errs, fmt.Errorf("%q was never offered", name))
		}
	}
	for _, name := range sortedNames(count) {
		if count[name] > 1 {
			errs = append(errs, fmt.Errorf("%q was offered %d times", name, count[name]))
		}
	}
	return errors.Join(errs...)
}

// quiet checks that Next offers nothing more within quietWait.
func quiet(ctx context.Context, src pipeline.Source) error {
	qctx, cancel := context.WithTimeout(ctx, quietWait)
	defer cancel()
	r, ok := nextWithin(qctx, src, quietWait+promptly)
	switch {
	case !ok:
		return fmt.Errorf("with nothing left to offer, Next did not return within %v of its context's deadline", promptly)
	case r.item != nil:
		return fmt.Errorf("after every file was offered, Next offered %q (Key %q) again", r.item.File().Name, r.item.File().Key)
	}
	return nil
}

func checkOffered(ctx context.Context, t *testing.T, h SourceHarness) error {
	files := sourceFiles()
	src, _ := newSource(t, h, files)
	items, err := drain(ctx, src, h.Finite, len(files))
	if err != nil {
		return err
	}
	if err := offeredOnce(ctx, items, files); err != nil {
		return err
	}
	return quiet(ctx, src)
}

func checkSourceEmptyFile(ctx context.Context, t *testing.T, h SourceHarness) error {
	files := map[string][]byte{"empty": {}}
	src, _ := newSource(t, h, files)
	items, err := drain(ctx, src, h.Finite, len(files))
	if err != nil {
		return err
	}
	return offeredOnce(ctx, items, files)
}

func checkNestedNames(ctx context.Context, t *testing.T, h SourceHarness) error {
	files := map[string][]byte{
		"top.txt":               []byte("top"),
		"a/one.txt":             []byte("one"),
		"a/b/two.txt":           []byte("two"),
		"a/b/c/d/e/f/three.txt": []byte("three"),
	}
	src, _ := newSource(t, h, files)
	items, err := drain(ctx, src, h.Finite, len(files))
	if err != nil {
		return err
	}
	var got []string
	for _, it := range items {
		got = append(got, it.File().Name)
	}
	sort.Strings(got)
	if diff := cmp.Diff(sortedNames(files), got); diff != "" {
		return fmt.Errorf("names offered (-want +got):\n%s", diff)
	}
	return offeredOnce(ctx, items, files)
}

func checkDistinctKeys(ctx context.Context, t *testing.T, h SourceHarness) error {
	same := []byte("the same content in every file\n")
	files := map[string][]byte{"same-1.txt": same, "same-2.txt": same, "dir/same-1.txt": same}
	src, _ := newSource(t, h, files)
	items, err := drain(ctx, src, h.Finite, len(files))
	if err != nil {
		return err
	}
	return offeredOnce(ctx, items, files)
}

func checkRangeRead(ctx context.Context, t *testing.T, h SourceHarness) error {
	data := RandomContent(3, 300_001)
	files := map[string][]byte{"range.bin": data}
	src, _ := newSource(t, h, files)
	items, err := drain(ctx, src, h.Finite, len(files))
	if err != nil {
		return err
	}
	if len(items) != 1 {
		return fmt.Errorf("offered %d items for 1 file", len(items))
	}
	ro, ok := items[0].(pipeline.RangeOpener)
	if !ok {
		return skipf("items do not implement pipeline.RangeOpener")
	}
	size := int64(len(data))
	type span struct{ off, n int64 }
	spans := []span{{0, 0}, {0, 1}, {0, size}, {size - 1, 1}, {size, 0}, {12345, 65536}, {size - 17, 17}, {size / 2, 0}}
	rng := rand.New(rand.NewPCG(3, 3))
	for range 12 {
		off := rng.Int64N(size)
		spans = append(spans, span{off, rng.Int64N(size - off + 1)})
	}
	readSpan := func(s span) error {
		rc, err := ro.OpenRange(ctx, s.off, s.n)
		if err != nil {
			return fmt.Errorf("OpenRange(%d, %d): %w", s.off, s.n, err)
		}
		got, err := readClose(rc)
		if err != nil {
			return fmt.Errorf("OpenRange(%d, %d): reading: %w", s.off, s.n, err)
		}
		return compareContent(fmt.Sprintf("OpenRange(%d, %d)", s.off, s.n), got, data[s.off:s.off+s.n])
	}
	var errs []error
	for _, s := range spans {
		if err := readSpan(s); err != nil {
			errs = append(errs, err)
		}
	}
	// The engine reads several chunks of one file at once.
	var mu sync.Mutex
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			for i := range 4 {
				if err := readSpan(spans[(g*4+i)%len(spans)]); err != nil {
					mu.Lock()
					errs = append(errs, fmt.Errorf("concurrently: %w", err))
					mu.Unlock()
				}
			}
		})
	}
	wg.Wait()
	return errors.Join(errs...)
}

// ackAll acks every item with status.
func ackAll(ctx context.Context, items []pipeline.Item, status pipeline.Status) error {
	var errs []error
	for _, it := range items {
		if err := it.Ack(ctx, outcome(status)); err != nil {
			errs = append(errs, fmt.Errorf("Ack(%v) of %q: %w", status, it.File().Name, err))
		}
	}
	return errors.Join(errs...)
}

func outcome(s pipeline.Status) pipeline.Outcome {
	o := pipeline.Outcome{Status: s, RunID: "testkit"}
	switch s {
	case pipeline.Passed:
		o.Sinks = map[string]pipeline.SinkResult{"a": {Committed: true}, "b": {Committed: true}}
	case pipeline.Failed:
		o.Message = "no sink committed the file"
		o.Sinks = map[string]pipeline.SinkResult{"a": {Error: "injected"}, "b": {Error: "injected"}}
	case pipeline.Mixed:
		o.Message = "sink b failed"
		o.Sinks = map[string]pipeline.SinkResult{"a": {Committed: true}, "b": {Error: "injected"}}
	case pipeline.Skipped:
		o.Message = "dropped by a stage"
	}
	return o
}

func checkNextCancel(ctx context.Context, t *testing.T, h SourceHarness) error {
	files := map[string][]byte{"only.txt": []byte("only\n")}
	src, _ := newSource(t, h, files)
	items, err := drain(ctx, src, h.Finite, len(files))
	if err != nil {
		return err
	}
	if err := ackAll(ctx, items, pipeline.Passed); err != nil {
		return err
	}
	judge := func(how string, r nextResult, ok bool) error {
		switch {
		case !ok:
			return fmt.Errorf("Next with a context %s did not return within %v", how, promptly)
		case r.item != nil:
			return fmt.Errorf("Next with a context %s offered %q, with nothing left to offer", how, r.item.File().Name)
		case r.err == nil:
			return fmt.Errorf("Next with a context %s returned neither an item nor an error", how)
		case isCtxErr(r.err), h.Finite && errors.Is(r.err, io.EOF):
			return nil
		}
		return fmt.Errorf("Next with a context %s returned %q, want the context's error", how, r.err)
	}
	var errs []error

	dctx, cancel := context.WithTimeout(ctx, 200*time.Millisecond)
	r, ok := nextWithin(dctx, src, 200*time.Millisecond+promptly)
	cancel()
	errs = append(errs, judge("that times out", r, ok))

	cctx, cancel := context.WithCancel(ctx)
	cancel()
	r, ok = nextWithin(cctx, src, promptly)
	errs = append(errs, judge("cancelled before the call", r, ok))

	cctx, cancel = context.WithCancel(ctx)
	ch := nextAsync(cctx, src)
	time.Sleep(100 * time.Millisecond)
	cancel()
	select {
	case r = <-ch:
		ok = true
	case <-time.After(promptly):
		ok = false
	}
	errs = append(errs, judge("cancelled during the call", r, ok))
	return errors.Join(errs...)
}

func checkAckTwice(ctx context.Context, t *testing.T, h SourceHarness) error {
	files := map[string][]byte{"a.txt": []byte("a"), "dir/b.txt": []byte("b")}
	src, _ := newSource(t, h, files)
	items, err := drain(ctx, src, h.Finite, len(files))
	if err != nil {
		return err
	}
	var errs []error
	for _, it := range items {
		for _, attempt := range []string{"first", "second"} {
			if err := it.Ack(ctx, outcome(pipeline.Passed)); err != nil {
				errs = append(errs, fmt.Errorf("%s Ack(passed) of %q: %w", attempt, it.File().Name, err))
			}
		}
	}
	return errors.Join(errs...)
}

func checkAckLeavesFile(ctx context.Context, t *testing.T, h SourceHarness) error {
	if h.Exists == nil {
		return skipf("SourceHarness.Exists is not set")
	}
	status := map[string]pipeline.Status{
		"failed.txt":  pipeline.Failed,
		"mixed.txt":   pipeline.Mixed,
		"skipped.txt": pipeline.Skipped,
		"passed.txt":  pipeline.Passed,
	}
	files := map[string][]byte{}
	for name := range status {
		files[name] = []byte(name)
	}
	src, _ := newSource(t, h, files)
	items, err := drain(ctx, src, h.Finite, len(files))
	if err != nil {
		return err
	}
	var errs []error
	for _, name := range sortedNames(files) {
		if !h.Exists(t, name) {
			errs = append(errs, fmt.Errorf("before any Ack, Exists(%q) is false", name))
		}
	}
	if len(errs) > 0 {
		return errors.Join(errs...)
	}
	for _, it := range items {
		name := it.File().Name
		s, known := status[name]
		if !known {
			return fmt.Errorf("offered %q, which is not one of the files", name)
		}
		for range 2 {
			if err := it.Ack(ctx, outcome(s)); err != nil {
				errs = append(errs, fmt.Errorf("Ack(%v) of %q: %w", s, name, err))
			}
		}
	}
	for _, name := range sortedNames(status) {
		s := status[name]
		exists := h.Exists(t, name)
		switch {
		case s != pipeline.Passed && !exists:
			errs = append(errs, fmt.Errorf("Ack(%v) removed %q; only Passed may apply the after action", s, name))
		case s == pipeline.Passed && h.AfterPassed == KeepsFile && !exists:
			errs = append(errs, fmt.Errorf("Ack(passed) removed %q; the harness says the source keeps it", name))
		case s == pipeline.Passed && h.AfterPassed == RemovesFile && exists:
			errs = append(errs, fmt.Errorf("Ack(passed) left %q at the source; the harness says the source removes it", name))
		}
	}
	return errors.Join(errs...)
}

func checkSourceClose(ctx context.Context, t *testing.T, h SourceHarness) error {
	files := map[string][]byte{"one.txt": []byte("one"), "two.txt": []byte("two")}
	before := goroutineStacks()
	src, closeSrc := newSource(t, h, files)
	r, ok := nextWithin(ctx, src, subtestTimeout)
	if !ok || r.err != nil || r.item == nil {
		return fmt.Errorf("first Next: item %v, error %v", r.item != nil, r.err)
	}
	if err := r.item.Ack(ctx, outcome(pipeline.Passed)); err != nil {
		return fmt.Errorf("Ack before Close: %w", err)
	}
	if err := closeSrc(); err != nil {
		return fmt.Errorf("Close: %w", err)
	}
	r, ok = nextWithin(ctx, src, promptly)
	switch {
	case !ok:
		return fmt.Errorf("Next after Close did not return within %v", promptly)
	case r.item != nil:
		return fmt.Errorf("Next after Close offered %q", r.item.File().Name)
	case r.err == nil:
		return errors.New("Next after Close returned neither an item nor an error")
	}
	return leakedGoroutines(src, before)
}

// leakedGoroutines reports goroutines started since before that still run
// code of the package that defines src's type, after waiting up to promptly
// for them to end. Goroutines of the test itself and of libraries the source
// uses (an HTTP client's idle connections) are not counted.
func leakedGoroutines(src any, before map[string]string) error {
	typ := reflect.TypeOf(src)
	for typ.Kind() == reflect.Pointer {
		typ = typ.Elem()
	}
	pkg := typ.PkgPath()
	if pkg == "" {
		return nil
	}
	deadline := time.Now().Add(promptly)
	for {
		var leaked []string
		for id, stack := range goroutineStacks() {
			if _, old := before[id]; old || strings.Contains(stack, "testing.tRunner") {
				continue
			}
			if strings.Contains(stack, pkg+".") {
				leaked = append(leaked, stack)
			}
		}
		if len(leaked) == 0 {
			return nil
		}
		if time.Now().After(deadline) {
			slices.Sort(leaked)
			return fmt.Errorf("%d goroutine(s) of package %s still run %v after Close:\n\n%s",
				len(leaked), pkg, promptly, strings.Join(leaked, "\n\n"))
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// goroutineStacks returns the stack of every goroutine by its id.
func goroutineStacks() map[string]string {
	buf := make([]byte, 1<<16)
	for {
		n := runtime.Stack(buf, true)
		if n < len(buf) {
			buf = buf[:n]
			break
		}
		buf = make([]byte, 2*len(buf))
	}
	stacks := map[string]string{}
	for _, g := range strings.Split(string(buf), "\n\n") {
		header, _, _ := strings.Cut(g, "\n")
		if id, ok := strings.CutPrefix(header, "goroutine "); ok {
			id, _, _ = strings.Cut(id, " ")
			stacks[id] = g
		}
	}
	return stacks
}

func checkReoffer(ctx context.Context, t *testing.T, h SourceHarness) error {
	if h.Reopen == nil {
		return skipf("SourceHarness.Reopen is not set")
	}
	files := map[string][]byte{
		"first.txt":       []byte("first\n"),
		"dir/second.bin":  RandomContent(4, 70_000),
		"dir/sub/third.t": []byte("third\n"),
	}
	src, closeSrc := newSource(t, h, files)
	items, err := drain(ctx, src, h.Finite, len(files))
	if err != nil {
		return err
	}
	if err := offeredOnce(ctx, items, files); err != nil {
		return err
	}
	keys := map[string]string{}
	for _, it := range items {
		keys[it.File().Name] = it.File().Key
	}
	// The runner stops with nothing acked.
	if err := closeSrc(); err != nil {
		return fmt.Errorf("Close: %w", err)
	}
	again, _ := openSource(t, h.Reopen)
	rctx, cancel := context.WithTimeout(ctx, reofferWait)
	defer cancel()
	var reoffered []pipeline.Item
	seen := map[string]bool{}
	for len(seen) < len(files) {
		r, ok := nextWithin(rctx, again, reofferWait+promptly)
		if !ok {
			return fmt.Errorf("Next on the reopened source did not return within %v of its context's deadline", promptly)
		}
		if (h.Finite && errors.Is(r.err, io.EOF)) || (isCtxErr(r.err) && rctx.Err() != nil) {
			break
		}
		if r.err != nil {
			return fmt.Errorf("Next on the reopened source: %w", r.err)
		}
		reoffered = append(reoffered, r.item)
		seen[r.item.File().Name] = true
	}
	var errs []error
	for _, name := range sortedNames(files) {
		if !seen[name] {
			errs = append(errs, fmt.Errorf("%q was offered but never acked, and the reopened source did not offer it again", name))
		}
	}
	for _, it := range reoffered {
		f := it.File()
		if want, ok := keys[f.Name]; ok && f.Key != want {
			errs = append(errs, fmt.Errorf("%q: reoffered with Key %q, first offered with %q", f.Name, f.Key, want))
		}
		if err := checkItem(ctx, it, files); err != nil {
			errs = append(errs, fmt.Errorf("reopened source: %w", err))
		}
	}
	return errors.Join(errs...)
}
