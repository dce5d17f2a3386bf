package engine_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"

	"github.com/mftflow/mftflow/pipeline"
	"github.com/mftflow/mftflow/pipeline/engine"
	"github.com/mftflow/mftflow/testkit"
)

// opLog records, in order, what the engine does to a flow's ends: commits,
// flushes (when each began and ended) and acks.
type opLog struct {
	mu      sync.Mutex
	n       int
	commits map[[2]string]int // {sink, file} -> step
	flushes []flushCall
	acks    map[string]int // file -> step
}

type flushCall struct {
	sink       string
	start, end int
	err        error
}

func newOpLog() *opLog {
	return &opLog{commits: map[[2]string]int{}, acks: map[string]int{}}
}

func (l *opLog) step() int {
	l.n++
	return l.n
}

func (l *opLog) commit(sink, file string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.commits[[2]string{sink, file}] = l.step()
}

func (l *opLog) ack(file string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.acks[file] = l.step()
}

// flush records a Flush of sink around f.
func (l *opLog) flush(sink string, f func() error) error {
	l.mu.Lock()
	start := l.step()
	l.mu.Unlock()
	err := f()
	l.mu.Lock()
	defer l.mu.Unlock()
	l.flushes = append(l.flushes, flushCall{sink: sink, start: start, end: l.step(), err: err})
	return err
}

// flushedBetween reports whether a Flush of sink began after step from and
// returned nil before step to.
func (l *opLog) flushedBetween(sink string, from, to int) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, c := range l.flushes {
		if c.sink == sink && c.err == nil && c.start > from && c.end < to {
			return true
		}
	}
	return false
}

// recordingSource's items record their Acks and say through
// pipeline.AckRemover that Ack with Passed removes the file, if removes.
type recordingSource struct {
	pipeline.Source
	log     *opLog
	removes bool
}

func (s *recordingSource) Next(ctx context.Context) (pipeline.Item, error) {
	it, err := s.Source.Next(ctx)
	if err != nil {
		return nil, err
	}
	return &recordingItem{Item: it, src: s}, nil
}

type recordingItem struct {
	pipeline.Item
	src *recordingSource
}

func (it *recordingItem) AckRemoves(s pipeline.Status) bool {
	return it.src.removes && s == pipeline.Passed
}

func (it *recordingItem) Ack(ctx context.Context, o pipeline.Outcome) error {
	it.src.log.ack(it.File().Name)
	return it.Item.Ack(ctx, o)
}

// flushingSink is a memory sink with the pipeline.Flusher ability that
// records its commits and flushes; Flush fails with fail when set.
type flushingSink struct {
	*testkit.MemorySink
	name string
	log  *opLog
	fail error
}

func (s *flushingSink) Open(ctx context.Context, f pipeline.File, resume []byte) (pipeline.Upload, error) {
	u, err := s.MemorySink.Open(ctx, f, resume)
	if err != nil {
		return nil, err
	}
	return &recordingUpload{Upload: u, sink: s}, nil
}

func (s *flushingSink) Flush(ctx context.Context) error {
	return s.log.flush(s.name, func() error { return s.fail })
}

type recordingUpload struct {
	pipeline.Upload
	sink *flushingSink
}

func (u *recordingUpload) Commit(ctx context.Context, f pipeline.File) error {
	err := u.Upload.Commit(ctx, f)
	if err == nil {
		u.sink.log.commit(u.sink.name, f.Name)
	}
	return err
}

var (
	_ pipeline.AckRemover = (*recordingItem)(nil)
	_ pipeline.Flusher    = (*flushingSink)(nil)
)

func durableFiles() map[string][]byte {
	files := map[string][]byte{}
	for i, n := range []int{0, 100, 40 << 10, 200 << 10} {
		files[fmt.Sprintf("f%d.bin", i)] = testkit.RandomContent(int64(i), n)
	}
	return files
}

// TestSinksFlushBeforeTheSourceRemovesAFile watches the order of operations:
// for a source whose Ack removes the file, every sink's Flush begins after
// its Commit of the file and returns before the source's Ack; for a source
// that keeps the file, no Flush is needed.
func TestSinksFlushBeforeTheSourceRemovesAFile(t *testing.T) {
	e := newEnv(t)
	for _, removes := range []bool{true, false} {
		t.Run(fmt.Sprintf("removes=%v", removes), func(t *testing.T) {
			files := durableFiles()
			log := newOpLog()
			mem := testkit.NewMemorySource(files, true)
			src := &recordingSource{Source: mem, log: log, removes: removes}
			a := &flushingSink{MemorySink: testkit.NewMemorySink(), name: "a", log: log}
			b := &flushingSink{MemorySink: testkit.NewMemorySink(), name: "b", log: log}
			plain := testkit.NewMemorySink() // durable at commit: no Flusher
			runToEnd(t, e.engine(t, engine.Options{Logger: testLogger(t)}), pipeline.Flow{
				Name:   fmt.Sprintf("durable-%v", removes),
				Source: pipeline.SourceOf(src),
				Sinks:  []pipeline.SinkSpec{pipeline.SinkOf("a", a), pipeline.SinkOf("b", b), pipeline.SinkOf("plain", plain)},
				Bus:    pipeline.BusSpec{ChunkSize: 64 << 10},
			})
			checkDelivered(t, files, a.Files())
			checkDelivered(t, files, b.Files())
			checkDelivered(t, files, plain.Files())
			for name := range files {
				if o, ok := mem.Acked()[name]; !ok || o.Status != pipeline.Passed {
					t.Errorf("%s: acked %v (%v), want passed", name, o.Status, ok)
				}
			}
			if !removes {
				if len(log.flushes) != 0 {
					t.Errorf("%d flushes for a source that keeps its files, want none", len(log.flushes))
				}
				return
			}
			for name := range files {
				acked := log.acks[name]
				for _, sink := range []string{"a", "b"} {
					committed, ok := log.commits[[2]string{sink, name}]
					if !ok {
						t.Errorf("%s: no commit to %s recorded", name, sink)
						continue
					}
					if !log.flushedBetween(sink, committed, acked) {
						t.Errorf("%s: no flush of sink %s between its commit (step %d) and the source's ack (step %d); flushes: %+v",
							name, sink, committed, acked, log.flushes)
					}
				}
			}
		})
	}
}

// TestFailedFlushFailsTheDelivery checks that a sink that cannot make its
// copy durable does not have its commit recorded: its delivery fails with
// the reason, the source is told (mixed: it keeps the file), and the next
// run reads the file again for that sink, flushes and acks it as passed.
func TestFailedFlushFailsTheDelivery(t *testing.T) {
	e := newEnv(t)
	files := durableFiles()
	log := newOpLog()
	mem := testkit.NewMemorySource(files, true)
	a := &flushingSink{MemorySink: testkit.NewMemorySink(), name: "a", log: log}
	b := &flushingSink{MemorySink: testkit.NewMemorySink(), name: "b", log: log, fail: errors.New("disk on fire")}
	flow := pipeline.Flow{
		Name:   "durable-fail",
		Source: pipeline.SourceOf(&recordingSource{Source: mem, log: log, removes: true}),
		Sinks:  []pipeline.SinkSpec{pipeline.SinkOf("a", a), fastRetry(pipeline.SinkOf("b", b), 2)},
		Bus:    pipeline.BusSpec{ChunkSize: 64 << 10},
	}
	runToEnd(t, e.engine(t, engine.Options{Logger: testLogger(t)}), flow)
	for name := range files {
		o := mem.Acked()[name]
		if want := fmt.Sprintf("making %s durable on sink b: disk on fire", name); o.Status != pipeline.Mixed || o.Sinks["b"].Error != want {
			t.Errorf("%s: acked %v, b %+v; want mixed, b failing with %q", name, o.Status, o.Sinks["b"], want)
		}
	}
	if len(log.flushes) == 0 {
		t.Fatal("no flush was tried")
	}

	// The next run is offered the files again and reads them again for b,
	// whose copies it could not make durable; a has them already.
	b.fail = nil
	aCommits := a.Commits()
	flow.Source = pipeline.SourceOf(&recordingSource{Source: mem.Reopen(), log: log, removes: true})
	runToEnd(t, e.engine(t, engine.Options{Logger: testLogger(t)}), flow)
	checkDelivered(t, files, b.Files())
	for name := range files {
		if o, ok := mem.Acked()[name]; !ok || o.Status != pipeline.Passed {
			t.Errorf("%s: acked %v (%v) on the second run, want passed", name, o.Status, ok)
		}
		if !log.flushedBetween("b", log.commits[[2]string{"b", name}], log.acks[name]) {
			t.Errorf("%s: acked on the second run without a flush of b after its commit", name)
		}
	}
	if a.Commits() != aCommits {
		t.Errorf("a: %d commits, %d before the second run; want none again", a.Commits(), aCommits)
	}
}
