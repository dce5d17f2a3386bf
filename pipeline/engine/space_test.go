package engine_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"math/rand/v2"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/mftflow/mftflow/pipeline"
	"github.com/mftflow/mftflow/pipeline/bus"
	"github.com/mftflow/mftflow/pipeline/engine"
	"github.com/mftflow/mftflow/testkit"
)

// A file larger than the room in the bus store: its writes wait for room
// for Options.BusFullWait, then the file fails with a message that says
// what is full, where, how much and what to do; Problems and the metrics
// say so while it lasts, and the run ends. The source keeps the file, and
// once the store has room a new run delivers it.
func TestBusStoreFullFailsTheFileAndEnds(t *testing.T) {
	dir := t.TempDir()
	srv, err := bus.StartEmbedded(dir, bus.WithMaxStore(4<<20))
	if err != nil {
		t.Fatal(err)
	}
	defer func() { srv.Shutdown() }()
	nc := testkit.ConnectNATS(t, srv.URL())
	reg := prometheus.NewRegistry()
	const wait = 2 * time.Second
	eng, err := engine.New(nc, engine.Options{AckWait: 5 * time.Second, Metrics: reg, BusFullWait: wait, BusStore: bus.EmbeddedStoreHint(dir, "")})
	if err != nil {
		t.Fatal(err)
	}
	data := make([]byte, 24<<20)
	rng := rand.New(rand.NewPCG(1, 2))
	for i := range data {
		data[i] = byte(rng.Uint32())
	}
	src := testkit.NewMemorySource(map[string][]byte{"big.bin": data}, true)
	sink := testkit.NewMemorySink()
	sink.SetPlan(pipeline.PartPlan{PartSize: 16 << 20}) // nothing leaves the bus before 16 chunks are written
	flow := pipeline.Flow{Name: "full", Source: pipeline.SourceOf(src), Sinks: []pipeline.SinkSpec{pipeline.SinkOf("mem", sink)}}

	start := time.Now()
	run, err := eng.Start(context.Background(), flow)
	if err != nil {
		t.Fatal(err)
	}
	var problems []string
	for problems == nil && time.Since(start) < 20*time.Second {
		time.Sleep(20 * time.Millisecond)
		problems = run.Problems()
	}
	store := filepath.Join(dir, "jetstream")
	if len(problems) != 1 || !strings.HasPrefix(problems[0], "flow full: the bus store is full: the embedded server's store in "+store+" has refused writes for ") ||
		!strings.HasSuffix(problems[0], " (a file waiting for room fails after 2s): free space on that file system and run again (the embedded server takes up to 75% of the space free when it starts), move the data directory to a larger file system, or lower bus.window or bus.retention") {
		t.Errorf("problems while the store is full: %q", problems)
	}
	wantSeries(t, reg, 1, "mftflow_bus_store_full", "flow", "full")

	waitRun(t, run, time.Minute)
	if took := time.Since(start); took > wait+20*time.Second {
		t.Errorf("the run took %s to end with a store full for good; the wait is %s", took, wait)
	}
	if s := run.Stats(); s.FilesFailed != 1 || s.FilesPassed != 0 {
		t.Errorf("stats %+v, want the file failed", s)
	}
	if p := run.Problems(); p != nil {
		t.Errorf("problems once the failed file made room: %q", p)
	}
	if n, _ := series(t, reg, "mftflow_bus_writes_refused_total", "flow", "full"); n < 1 {
		t.Errorf("mftflow_bus_writes_refused_total = %v, want at least 1", n)
	}
	if o := src.Acked()["big.bin"]; o.Status != pipeline.Failed || !src.Has("big.bin") {
		t.Errorf("the source was acked %+v; want failed, keeping the file", o)
	}

	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	st, err := engine.ReadStatus(context.Background(), js, "full")
	if err != nil {
		t.Fatal(err)
	}
	if len(st) != 1 || len(st[0].Files) != 1 || len(st[0].Files[0].Deliveries) != 1 {
		t.Fatalf("status: %+v", st)
	}
	f := st[0].Files[0]
	want := regexp.MustCompile(`^big\.bin did not reach the bus: publishing chunk \d+: the bus store is full: the embedded server's store in ` + regexp.QuoteMeta(store) +
		` refused a write of 1\.0 MiB with \d+\.0 MiB of the file still to go, and no room came for 2s: free space on that file system and run again \(the embedded server takes up to 75% of the space free when it starts\), move the data directory to a larger file system, or lower bus\.window or bus\.retention \(JetStream: insufficient resources, error 10023\)$`)
	if d := f.Deliveries[0]; d.State != bus.DeliveryFailed || !want.MatchString(d.Error) {
		t.Errorf("delivery %s: %s\nwant the error to match %s", d.State, d.Error, want)
	}
	if f.Manifest.Outcome != pipeline.Failed.String() || !strings.HasPrefix(f.Manifest.Error, "mem: big.bin did not reach the bus: publishing chunk ") {
		t.Errorf("manifest outcome %q, error %q", f.Manifest.Outcome, f.Manifest.Error)
	}

	// Room: the store's limit raised, as freeing disk space does for the
	// embedded server's next start.
	nc.Close()
	srv.Shutdown()
	srv, err = bus.StartEmbedded(dir)
	if err != nil {
		t.Fatal(err)
	}
	eng = newEngineOn(t, srv.URL())
	sink2 := testkit.NewMemorySink()
	flow.Source, flow.Sinks = pipeline.SourceOf(src.Reopen()), []pipeline.SinkSpec{pipeline.SinkOf("mem", sink2)}
	run = runToEnd(t, eng, flow)
	if s := run.Stats(); s.FilesPassed != 1 || s.FilesFailed != 0 {
		t.Errorf("rerun with room: %+v, want the file passed", s)
	}
	if got := sink2.Files()["big.bin"]; sha256.Sum256(got) != sha256.Sum256(data) || !bytes.Equal(got, data) {
		t.Errorf("rerun delivered %d bytes, not the file's %d", len(got), len(data))
	}
}

func newEngineOn(t *testing.T, url string) *engine.Engine {
	t.Helper()
	eng, err := engine.New(testkit.ConnectNATS(t, url), engine.Options{AckWait: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	return eng
}

// A run on a store that is full from the start, with nothing of its own to
// remove, cannot even take its source lease: it does not hang but stops
// once the store has refused every write for twice the wait and three
// lease TTLs, with an error that says the bus store is full.
func TestBusStoreFullFromTheStartStopsTheRun(t *testing.T) {
	srv, err := bus.StartEmbedded(t.TempDir(), bus.WithMaxStore(2<<20))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv.Shutdown)
	nc := testkit.ConnectNATS(t, srv.URL())
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	// Another program's stream takes every byte.
	if _, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: "OTHER", Subjects: []string{"other"}}); err != nil {
		t.Fatal(err)
	}
	for i := 0; ; i++ {
		if _, err := js.Publish(ctx, "other", make([]byte, 256<<10)); bus.IsStoreFull(err) {
			break
		} else if err != nil || i > 64 {
			t.Fatalf("filling the store: %v after %d messages", err, i)
		}
	}
	eng, err := engine.New(nc, engine.Options{AckWait: 2 * time.Second, LeaseTTL: time.Second, BusFullWait: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	src := testkit.NewMemorySource(map[string][]byte{"a.bin": make([]byte, 100<<10)}, true)
	start := time.Now()
	run, err := eng.Start(ctx, pipeline.Flow{Name: "wedged", Source: pipeline.SourceOf(src), Sinks: []pipeline.SinkSpec{pipeline.SinkOf("mem", testkit.NewMemorySink())}})
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- run.Wait() }()
	select {
	case err = <-done:
	case <-time.After(time.Minute):
		run.Stop(ctx)
		t.Fatalf("the run did not end within a minute on a full store: %+v", run.Stats())
	}
	if !errors.Is(err, bus.ErrStoreFull) || !strings.HasPrefix(err.Error(), "the bus store is full: the NATS server's JetStream storage refused a write, and no room came for ") {
		t.Errorf("run ended with %v; want the bus store full", err)
	}
	if took := time.Since(start); took < 5*time.Second {
		t.Errorf("the run stopped after %s, before twice the wait and three lease TTLs", took)
	}
	if len(src.Acked()) != 0 {
		t.Errorf("files were acked: %v", src.Acked())
	}
}
