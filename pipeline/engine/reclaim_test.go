package engine_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/mftflow/mftflow/pipeline"
	"github.com/mftflow/mftflow/pipeline/engine"
	"github.com/mftflow/mftflow/testkit"
)

// reclaimingSink records the Reclaim calls it gets.
type reclaimingSink struct {
	gatedSink
	mu    sync.Mutex
	calls []time.Time
}

func (s *reclaimingSink) Reclaim(ctx context.Context, f pipeline.File, since time.Time) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.calls = append(s.calls, since)
	return nil
}

// TestReclaimAfterAnAttemptThatRecordedNothing stops a run while its one
// delivery is in the sink's Open, before any resume state is on record, and
// checks that the next run has the sink reclaim what that attempt may have
// left, since the first attempt began, before it opens anew; and that a
// first attempt reclaims nothing.
func TestReclaimAfterAnAttemptThatRecordedNothing(t *testing.T) {
	e := newEnv(t)
	files := map[string][]byte{"a.bin": testkit.RandomContent(9, 1<<20)}
	src := testkit.NewMemorySource(files, true)
	sink := &reclaimingSink{gatedSink: gatedSink{MemorySink: testkit.NewMemorySink(), gate: make(chan struct{})}}
	flow := func(s pipeline.Source) pipeline.Flow {
		return pipeline.Flow{Name: "reclaim", Source: pipeline.SourceOf(s), Sinks: []pipeline.SinkSpec{pipeline.SinkOf("out", sink)}}
	}
	before := time.Now()
	run, err := e.engine(t, engine.Options{Grace: 100 * time.Millisecond}).Start(context.Background(), flow(src))
	if err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		st, err := engine.ReadStatus(context.Background(), e.js, "reclaim")
		if err == nil && len(st) == 1 && len(st[0].Files) == 1 && len(st[0].Files[0].Deliveries) == 1 && st[0].Files[0].Deliveries[0].Attempts == 1 {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	run.Stop(context.Background()) // the attempt waits in Open: it records nothing
	if len(sink.calls) != 0 {
		t.Fatalf("a first attempt reclaimed since %v", sink.calls)
	}
	close(sink.gate)
	runToEnd(t, e.engine(t, engine.Options{}), flow(src.Reopen()))
	checkDelivered(t, files, sink.Files())
	if len(sink.calls) != 1 || sink.calls[0].Before(before) || sink.calls[0].After(time.Now()) {
		t.Fatalf("Reclaim calls since %v; want one, since the first attempt began (after %v)", sink.calls, before)
	}
}
