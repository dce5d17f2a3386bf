package engine_test

import (
	"context"
	"errors"
	"io"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mftflow/mftflow/pipeline"
	"github.com/mftflow/mftflow/pipeline/bus"
	"github.com/mftflow/mftflow/pipeline/engine"
	"github.com/mftflow/mftflow/testkit"
)

// A delivery that failed for good (a full disk) after some of its file's
// chunks left the bus is delivered when the source offers the file again:
// the file is read again for that sink, and the sink that has it is not
// sent it again.
func TestFailedDeliveryIsReadAgainWhenOffered(t *testing.T) {
	e := newEnv(t)
	big, small := testkit.RandomContent(31, 1<<20), []byte("small\n")
	files := map[string][]byte{"big.bin": big, "small.txt": small}
	src := testkit.NewMemorySource(files, true)
	good, disk := testkit.NewMemorySink(), testkit.NewMemorySink()
	disk.SetPlan(pipeline.PartPlan{PartSize: 128 << 10})
	var full atomic.Bool
	full.Store(true)
	filling := testkit.FailParts(disk, func(p pipeline.Part) error {
		if full.Load() && p.Number >= 2 {
			return pipeline.Permanent(errors.New("no space left on device"))
		}
		return nil
	})
	flow := func(s pipeline.Source) pipeline.Flow {
		return pipeline.Flow{Name: "reread", Source: pipeline.SourceOf(s),
			Sinks: []pipeline.SinkSpec{pipeline.SinkOf("good", good), fastRetry(pipeline.SinkOf("disk", filling), 2)},
			Bus:   pipeline.BusSpec{ChunkSize: 64 << 10}}
	}
	runToEnd(t, e.engine(t, engine.Options{}), flow(src))
	if o := src.Acked()["big.bin"]; o.Status != pipeline.Mixed {
		t.Fatalf("first run acked big.bin %v %q; want mixed", o.Status, o.Message)
	}
	goodCommits := good.Commits()

	full.Store(false) // space freed
	run := runToEnd(t, e.engine(t, engine.Options{}), flow(src.Reopen()))
	checkDelivered(t, files, disk.Files())
	checkDelivered(t, files, good.Files())
	if good.Commits() != goodCommits {
		t.Errorf("good: %d commits after the second run, %d before; want none again", good.Commits(), goodCommits)
	}
	if o := src.Acked()["big.bin"]; o.Status != pipeline.Passed {
		t.Errorf("second run acked big.bin %v %q; want passed", o.Status, o.Message)
	}
	if s := run.Stats(); s.FilesPassed != 1 || s.FilesEarlier != 1 || s.FilesFailed+s.FilesMixed != 0 {
		t.Errorf("second run stats %+v: want big.bin passed, small.txt finished earlier", s)
	}
}

// delayedSource offers its files only after a delay: a runner that starts,
// and takes a while before its source offers the file another one left
// half-read.
type delayedSource struct {
	pipeline.Source
	until time.Time
}

func (s delayedSource) Next(ctx context.Context) (pipeline.Item, error) {
	select {
	case <-time.After(time.Until(s.until)):
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	return s.Source.Next(ctx)
}

// Runners that stop while reading a file, and a while passing before
// another reads on, spend none of the sink's retry budget: the sink did not
// fail. The delivery waits, and ends when the read does.
func TestReadersRestartingSpendNoRetries(t *testing.T) {
	e := newEnv(t)
	data := testkit.RandomContent(4, 1<<20)
	mem := testkit.NewMemorySource(map[string][]byte{"half.bin": data}, true)
	stalling := flakySource{mem, func(it pipeline.Item, ctx context.Context) (io.ReadCloser, error) {
		return io.NopCloser(&stallingReader{ctx: ctx, data: data[:256<<10]}), nil
	}}
	sink := testkit.NewMemorySink()
	opts := engine.Options{AckWait: 300 * time.Millisecond, Logger: testLogger(t)}
	flow := func(src pipeline.Source) pipeline.Flow {
		return pipeline.Flow{Name: "restarts", Source: pipeline.SourceOf(src),
			Sinks: []pipeline.SinkSpec{fastRetry(pipeline.SinkOf("mem", sink), 2)}, Bus: pipeline.BusSpec{ChunkSize: 64 << 10}}
	}
	first, err := e.engine(t, opts).Start(context.Background(), flow(stalling))
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(500 * time.Millisecond) // some chunks are on the bus, the read stalls
	first.Stop(context.Background())

	// Nobody reads for several stale periods (0.9s each) while the
	// delivery waits: with a budget of 2, each counted would fail it.
	later := delayedSource{mem.Reopen(), time.Now().Add(4 * time.Second)}
	runToEnd(t, e.engine(t, opts), flow(later))
	checkDelivered(t, map[string][]byte{"half.bin": data}, sink.Files())
	st, err := engine.ReadStatus(context.Background(), e.js, "restarts")
	if err != nil {
		t.Fatal(err)
	}
	d := st[0].Files[0].Deliveries[0]
	if d.State != bus.DeliveryCommitted || d.Failures != 0 || d.Attempts < 3 {
		t.Errorf("delivery %s after %d attempts, %d failures (%q); want committed, several attempts, no failure", d.State, d.Attempts, d.Failures, d.Error)
	}
}
