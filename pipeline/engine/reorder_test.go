package engine_test

import (
	"context"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/mftflow/mftflow/pipeline"
	"github.com/mftflow/mftflow/pipeline/bus"
	"github.com/mftflow/mftflow/pipeline/engine"
	"github.com/mftflow/mftflow/testkit"
)

// gatedSink holds every Open until the test lets it through.
type gatedSink struct {
	*testkit.MemorySink
	gate chan struct{}
}

func (s gatedSink) Open(ctx context.Context, f pipeline.File, resume []byte) (pipeline.Upload, error) {
	select {
	case <-s.gate:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	return s.MemorySink.Open(ctx, f, resume)
}

// moveChunk rewrites the stream so that chunk index of the flow's one file
// comes last, as when its first publish failed and it was sent again after
// the later ones had landed; with drop it is removed instead.
func moveChunk(t *testing.T, js jetstream.JetStream, flow string, index int, drop bool) {
	t.Helper()
	ctx := context.Background()
	names := bus.Names{Flow: flow}
	stream, err := js.Stream(ctx, names.ChunkStream())
	if err != nil {
		t.Fatal(err)
	}
	// The chunk's stream sequence: chunks were published in order from 1.
	seq := uint64(index + 1)
	raw, err := stream.GetMsg(ctx, seq)
	if err != nil {
		t.Fatal(err)
	}
	if got := raw.Header.Get(bus.HeaderIndex); got != strconv.Itoa(index) {
		t.Fatalf("stream sequence %d holds chunk %s, want %d", seq, got, index)
	}
	if err := stream.DeleteMsg(ctx, seq); err != nil {
		t.Fatal(err)
	}
	if drop {
		return
	}
	msg := nats.NewMsg(raw.Subject)
	msg.Data, msg.Header = raw.Data, raw.Header
	msg.Header.Del("Nats-Msg-Id") // a new id: the old one is still within dedupe
	if _, err := js.PublishMsg(ctx, msg); err != nil {
		t.Fatal(err)
	}
}

// waitReady waits until the flow's one file is wholly on the bus.
func waitReady(t *testing.T, js jetstream.JetStream, flow string) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		st, err := engine.ReadStatus(context.Background(), js, flow)
		if err == nil && len(st) == 1 && len(st[0].Files) == 1 && st[0].Files[0].Manifest.State != bus.FileIngesting {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatal("the file was not read within 30s")
}

func TestChunksOutOfOrderOnTheBusAreReordered(t *testing.T) {
	e := newEnv(t)
	data := testkit.RandomContent(7, 10*64<<10+100) // 11 chunks
	src := testkit.NewMemorySource(map[string][]byte{"f.bin": data}, true)
	sink := gatedSink{testkit.NewMemorySink(), make(chan struct{})}
	sink.SetPlan(pipeline.PartPlan{PartSize: 3 * 64 << 10})
	run, err := e.engine(t, engine.Options{}).Start(context.Background(), pipeline.Flow{
		Name:   "reorder",
		Source: pipeline.SourceOf(src),
		Sinks:  []pipeline.SinkSpec{pipeline.SinkOf("out", sink)},
		Bus:    pipeline.BusSpec{ChunkSize: 64 << 10, Compression: "none"},
	})
	if err != nil {
		t.Fatal(err)
	}
	waitReady(t, e.js, "reorder")
	moveChunk(t, e.js, "reorder", 1, false)
	moveChunk(t, e.js, "reorder", 4, false)
	close(sink.gate)
	waitRun(t, run, time.Minute)
	checkDelivered(t, map[string][]byte{"f.bin": data}, sink.Files())
	if o := src.Acked()["f.bin"]; o.Status != pipeline.Passed {
		t.Fatalf("acked %v (%s), want passed", o.Status, o.Message)
	}
}

// startGated starts flow name moving data as f.bin to a sink held shut until
// the returned gate is closed, with 500 ms AckWaits and attempts tries per
// delivery, and waits until the file is wholly on the bus.
func startGated(t *testing.T, e env, name string, data []byte, attempts int) (*engine.Run, *testkit.MemorySource, chan struct{}) {
	t.Helper()
	src := testkit.NewMemorySource(map[string][]byte{"f.bin": data}, true)
	sink := gatedSink{testkit.NewMemorySink(), make(chan struct{})}
	run, err := e.engine(t, engine.Options{AckWait: 500 * time.Millisecond}).Start(context.Background(), pipeline.Flow{
		Name:   name,
		Source: pipeline.SourceOf(src),
		Sinks:  []pipeline.SinkSpec{fastRetry(pipeline.SinkOf("out", sink), attempts)},
		Bus:    pipeline.BusSpec{ChunkSize: 64 << 10, Compression: "none"},
	})
	if err != nil {
		t.Fatal(err)
	}
	waitReady(t, e.js, name)
	return run, src, sink.gate
}

// checkFailed checks that f.bin was acked failed with an error containing want.
func checkFailed(t *testing.T, src *testkit.MemorySource, want string) {
	t.Helper()
	o := src.Acked()["f.bin"]
	if o.Status != pipeline.Failed || !strings.Contains(o.Sinks["out"].Error, want) {
		t.Fatalf("acked %v, sink result %+v; want failed with %q", o.Status, o.Sinks["out"], want)
	}
}

func TestMissingChunkFailsTheDelivery(t *testing.T) {
	e := newEnv(t)
	run, src, gate := startGated(t, e, "missing", testkit.RandomContent(8, 4*64<<10), 3)
	moveChunk(t, e.js, "missing", 2, true)
	close(gate)
	waitRun(t, run, time.Minute)
	checkFailed(t, src, "f.bin: chunk 2 is missing from the bus; were the chunks purged?")
}

// A reader that gets nothing while the whole file should be on the bus gives
// the attempt up instead of waiting for ever (a consumer can stall in a
// cluster's leadership change; here every chunk is gone), and the delivery
// fails once its attempts are spent.
func TestDeliveryGivesUpWhenNothingComes(t *testing.T) {
	e := newEnv(t)
	run, src, gate := startGated(t, e, "nothing", testkit.RandomContent(9, 4*64<<10), 2)
	chunks, err := e.js.Stream(context.Background(), bus.Names{Flow: "nothing"}.ChunkStream())
	if err != nil {
		t.Fatal(err)
	}
	if err := chunks.Purge(context.Background()); err != nil {
		t.Fatal(err)
	}
	close(gate)
	waitRun(t, run, time.Minute)
	checkFailed(t, src, "waiting for chunk 0 of f.bin: nothing came from the bus for 1s though the whole file should be there (were the chunks purged?)")
}
