package engine_test

import (
	"context"
	"testing"
	"time"

	"github.com/mftflow/mftflow/pipeline"
	"github.com/mftflow/mftflow/pipeline/bus"
	"github.com/mftflow/mftflow/pipeline/engine"
	"github.com/mftflow/mftflow/testkit"
)

// A second task message for a delivery in progress (a restart published it
// again after JetStream's dedupe window) is dropped: the delivery keeps its
// owner and its attempt, and the file is committed once.
func TestDuplicateTaskIsDropped(t *testing.T) {
	e := newEnv(t)
	data := testkit.RandomContent(9, 3*64<<10)
	src := testkit.NewMemorySource(map[string][]byte{"f.bin": data}, true)
	sink := gatedSink{testkit.NewMemorySink(), make(chan struct{})}
	spec := pipeline.SinkOf("out", sink)
	spec.Files = 2 // a free worker to take the duplicate
	run, err := e.engine(t, engine.Options{}).Start(context.Background(), pipeline.Flow{
		Name:   "dup",
		Source: pipeline.SourceOf(src),
		Sinks:  []pipeline.SinkSpec{spec},
		Bus:    pipeline.BusSpec{ChunkSize: 64 << 10, Compression: "none"},
	})
	if err != nil {
		t.Fatal(err)
	}
	// Wait until the delivery is being worked on (held at Open).
	var d bus.Delivery
	for deadline := time.Now().Add(30 * time.Second); d.State != bus.DeliveryActive; time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the delivery did not start within 30s")
		}
		if st, err := engine.ReadStatus(context.Background(), e.js, "dup"); err == nil && len(st) == 1 && len(st[0].Files) == 1 && len(st[0].Files[0].Deliveries) == 1 {
			d = st[0].Files[0].Deliveries[0]
		}
	}
	names := bus.Names{Flow: "dup"}
	if _, err := e.js.Publish(context.Background(), names.TaskSubject("out"), []byte(d.File)); err != nil {
		t.Fatal(err)
	}
	// The duplicate is acked: only the first task stays on the queue.
	tasks, err := e.js.Stream(context.Background(), names.TaskStream())
	if err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		info, err := tasks.Info(context.Background())
		if err == nil && info.State.Msgs == 1 && info.State.LastSeq > d.Task {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the duplicate task was not dropped within 30s (stream state %+v)", info.State)
		}
	}
	close(sink.gate)
	waitRun(t, run, time.Minute)
	checkDelivered(t, map[string][]byte{"f.bin": data}, sink.Files())
	st, err := engine.ReadStatus(context.Background(), e.js, "dup")
	if err != nil {
		t.Fatal(err)
	}
	final := st[0].Files[0].Deliveries[0]
	if final.State != bus.DeliveryCommitted || final.Attempts != 1 || final.Owner != d.Owner || final.Task != d.Task || sink.Commits() != 1 {
		t.Fatalf("delivery %s after %d attempts by %s under task %d, %d commits; want committed after 1 attempt by %s under task %d, 1 commit",
			final.State, final.Attempts, final.Owner, final.Task, sink.Commits(), d.Owner, d.Task)
	}
}

// Reading a file's chunks leaves no consumer behind on the chunk stream:
// many small files would otherwise reach the stream's consumer limit.
func TestNoChunkConsumerOutlivesItsDelivery(t *testing.T) {
	e := newEnv(t)
	files := map[string][]byte{}
	for i := range 30 {
		files[string(rune('a'+i%26))+string(rune('a'+i/26))+".txt"] = testkit.RandomContent(int64(i), 100)
	}
	sink := testkit.NewMemorySink()
	runToEnd(t, e.engine(t, engine.Options{}), pipeline.Flow{
		Name:   "consumers",
		Source: pipeline.SourceOf(testkit.NewMemorySource(files, true)),
		Sinks:  []pipeline.SinkSpec{pipeline.SinkOf("out", sink)},
	})
	checkDelivered(t, files, sink.Files())
	chunks, err := e.js.Stream(context.Background(), bus.Names{Flow: "consumers"}.ChunkStream())
	if err != nil {
		t.Fatal(err)
	}
	info, err := chunks.Info(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if info.State.Consumers != 0 {
		t.Fatalf("%d consumers left on the chunk stream after the run; want 0", info.State.Consumers)
	}
}
