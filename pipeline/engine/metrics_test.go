package engine_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/mftflow/mftflow/pipeline"
	"github.com/mftflow/mftflow/pipeline/bus"
	"github.com/mftflow/mftflow/pipeline/engine"
	"github.com/mftflow/mftflow/testkit"
)

// series returns the value of the series name{labels} gathered from g (a
// counter's or gauge's value, a histogram's sample count) and whether it
// exists. labels are name, value pairs.
func series(t *testing.T, g prometheus.Gatherer, name string, labels ...string) (float64, bool) {
	t.Helper()
	families, err := g.Gather()
	if err != nil {
		t.Fatalf("gathering metrics: %v", err)
	}
	for _, f := range families {
		if f.GetName() != name {
			continue
		}
	next:
		for _, m := range f.GetMetric() {
			got := map[string]string{}
			for _, l := range m.GetLabel() {
				got[l.GetName()] = l.GetValue()
			}
			if len(got) != len(labels)/2 {
				continue
			}
			for i := 0; i < len(labels); i += 2 {
				if got[labels[i]] != labels[i+1] {
					continue next
				}
			}
			switch f.GetType() {
			case dto.MetricType_COUNTER:
				return m.GetCounter().GetValue(), true
			case dto.MetricType_GAUGE:
				return m.GetGauge().GetValue(), true
			case dto.MetricType_HISTOGRAM:
				return float64(m.GetHistogram().GetSampleCount()), true
			}
		}
	}
	return 0, false
}

// wantSeries checks that name{labels} is want.
func wantSeries(t *testing.T, g prometheus.Gatherer, want float64, name string, labels ...string) {
	t.Helper()
	got, ok := series(t, g, name, labels...)
	if !ok {
		t.Errorf("%s%q: no such series", name, labels)
	} else if got != want {
		t.Errorf("%s%q = %v, want %v", name, labels, got, want)
	}
}

func TestMetricsCountWhatWasDelivered(t *testing.T) {
	e := newEnv(t)
	reg := prometheus.NewRegistry()
	files := sampleFiles()
	var total float64
	chunks := 0
	const chunk = 64 << 10
	for _, b := range files {
		total += float64(len(b))
		if len(b) > 32<<10 { // smaller files travel in groups, one chunk a group
			chunks += (len(b) + chunk - 1) / chunk
		}
	}
	plain := testkit.NewMemorySink()
	flakyMem := testkit.NewMemorySink()
	flakyMem.SetPlan(pipeline.PartPlan{PartSize: 1 << 20, Concurrency: 3})
	flaky := testkit.FailEveryNth(flakyMem, 4, nil) // retryable
	runToEnd(t, e.engine(t, engine.Options{Metrics: reg}), pipeline.Flow{
		Name:   "counted",
		Source: pipeline.SourceOf(testkit.NewMemorySource(files, true)),
		Sinks:  []pipeline.SinkSpec{pipeline.SinkOf("plain", plain), fastRetry(pipeline.SinkOf("flaky", flaky), 10)},
		Bus:    pipeline.BusSpec{ChunkSize: chunk},
	})
	checkDelivered(t, files, plain.Files())
	checkDelivered(t, files, flakyMem.Files())

	n := float64(len(files))
	wantSeries(t, reg, n, "mftflow_read_files_total", "flow", "counted")
	wantSeries(t, reg, total, "mftflow_read_bytes_total", "flow", "counted")
	wantSeries(t, reg, float64(chunks+groups(t, e, "counted")), "mftflow_chunk_publish_seconds", "flow", "counted")
	for _, s := range []struct {
		name string
		mem  *testkit.MemorySink
	}{{"plain", plain}, {"flaky", flakyMem}} {
		wantSeries(t, reg, n, "mftflow_delivered_files_total", "flow", "counted", "sink", s.name)
		wantSeries(t, reg, total, "mftflow_delivered_bytes_total", "flow", "counted", "sink", s.name)
		wantSeries(t, reg, float64(s.mem.PartWrites()), "mftflow_part_write_seconds", "flow", "counted", "sink", s.name)
		wantSeries(t, reg, 0, "mftflow_deliveries_in_flight", "flow", "counted", "sink", s.name)
		wantSeries(t, reg, 0, "mftflow_delivery_failures_total", "flow", "counted", "sink", s.name)
	}
	wantSeries(t, reg, 0, "mftflow_part_retries_total", "flow", "counted", "sink", "plain")
	if v, _ := series(t, reg, "mftflow_part_retries_total", "flow", "counted", "sink", "flaky"); v == 0 {
		t.Error("no part retries counted for a sink failing every fourth write")
	}
	// The run has ended: its bus gauges are gone.
	if _, ok := series(t, reg, "mftflow_bus_chunks_stored", "flow", "counted"); ok {
		t.Error("bus gauges still reported for a run that ended")
	}
}

func TestMetricsCountFailures(t *testing.T) {
	e := newEnv(t)
	reg := prometheus.NewRegistry()
	files := map[string][]byte{"a.txt": []byte("a\n"), "b.txt": []byte("b\n")}
	runToEnd(t, e.engine(t, engine.Options{Metrics: reg}), pipeline.Flow{
		Name:   "failing",
		Source: pipeline.SourceOf(testkit.NewMemorySource(files, true)),
		Sinks:  []pipeline.SinkSpec{fastRetry(pipeline.SinkOf("down", testkit.FailAlways(testkit.NewMemorySink(), nil)), 3)},
	})
	// Three attempts each: two retried, the third fails for good.
	wantSeries(t, reg, 4, "mftflow_delivery_retries_total", "flow", "failing", "sink", "down")
	wantSeries(t, reg, 2, "mftflow_delivery_failures_total", "flow", "failing", "sink", "down")
	wantSeries(t, reg, 0, "mftflow_delivered_files_total", "flow", "failing", "sink", "down")
	wantSeries(t, reg, 0, "mftflow_delivered_bytes_total", "flow", "failing", "sink", "down")
}

// Two engines share a registry; a delivery stopped half-way and resumed by
// the second counts every part once.
func TestMetricsSharedRegistryResumeCountsPartsOnce(t *testing.T) {
	e := newEnv(t)
	reg := prometheus.NewRegistry()
	const size = 24 << 20
	files := map[string][]byte{"big.bin": testkit.RandomContent(9, size)}
	src := testkit.NewMemorySource(files, true)
	mem := testkit.NewMemorySink()
	mem.SetPlan(pipeline.PartPlan{PartSize: 1 << 20, Concurrency: 2})
	flow := func(s pipeline.Source, k pipeline.Sink) pipeline.Flow {
		return pipeline.Flow{Name: "shared", Source: pipeline.SourceOf(s), Sinks: []pipeline.SinkSpec{pipeline.SinkOf("mem", k)}, Bus: pipeline.BusSpec{ChunkSize: 256 << 10}}
	}
	run, err := e.engine(t, engine.Options{Metrics: reg}).Start(context.Background(), flow(src, testkit.Stall(mem, 50*time.Millisecond)))
	if err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(30 * time.Second)
	for mem.PartWrites() < 4 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if err := run.Stop(context.Background()); err != nil {
		t.Fatal(err)
	}
	before, _ := series(t, reg, "mftflow_delivered_bytes_total", "flow", "shared", "sink", "mem")
	if before == 0 || before >= size || mem.Commits() != 0 {
		t.Fatalf("after the stop: %v bytes counted, %d commits; want some parts and no commit", before, mem.Commits())
	}

	second, err := engine.New(e.nc, engine.Options{Metrics: reg, AckWait: 5 * time.Second})
	if err != nil {
		t.Fatalf("second engine on the same registry: %v", err)
	}
	runToEnd(t, second, flow(src.Reopen(), mem))
	checkDelivered(t, files, mem.Files())
	wantSeries(t, reg, size, "mftflow_delivered_bytes_total", "flow", "shared", "sink", "mem")
	wantSeries(t, reg, 1, "mftflow_delivered_files_total", "flow", "shared", "sink", "mem")
	wantSeries(t, reg, 24, "mftflow_part_write_seconds", "flow", "shared", "sink", "mem")
	if mem.PartWrites() != 24 {
		t.Errorf("%d part writes, want 24", mem.PartWrites())
	}
}

func TestMetricsBusGauges(t *testing.T) {
	e := newEnv(t)
	reg := prometheus.NewRegistry()
	files := map[string][]byte{}
	for i := range 5 {
		files[string(rune('a'+i))+".bin"] = testkit.RandomContent(int64(i), 100<<10) // two 64 KiB chunks
	}
	stuck := pipeline.SinkOf("stuck", testkit.Stall(testkit.NewMemorySink(), time.Hour))
	stuck.Files = 1
	eng := e.engine(t, engine.Options{Metrics: reg, Grace: 100 * time.Millisecond})
	run, err := eng.Start(context.Background(), pipeline.Flow{
		Name:   "lagging",
		Source: pipeline.SourceOf(testkit.NewMemorySource(files, false)),
		Sinks:  []pipeline.SinkSpec{stuck},
		Bus:    pipeline.BusSpec{ChunkSize: 64 << 10},
	})
	if err != nil {
		t.Fatal(err)
	}
	defer run.Stop(context.Background())
	idle, err := eng.Start(context.Background(), pipeline.Flow{
		Name:   "idle",
		Source: pipeline.SourceOf(testkit.NewMemorySource(nil, false)),
		Sinks:  []pipeline.SinkSpec{pipeline.SinkOf("mem", testkit.NewMemorySink())},
	})
	if err != nil {
		t.Fatal(err)
	}
	defer idle.Stop(context.Background())

	// One worker holds one task; the other four wait, and every chunk of
	// every file is on the bus.
	// Stored bytes count subjects and headers too: at least the content.
	want := map[string]float64{"pending": 4, "ack": 1, "chunks": 10, "enough bytes": 1}
	var got map[string]float64
	deadline := time.Now().Add(30 * time.Second)
	for {
		got = map[string]float64{}
		got["pending"], _ = series(t, reg, "mftflow_bus_tasks_pending", "flow", "lagging", "sink", "stuck")
		got["ack"], _ = series(t, reg, "mftflow_bus_tasks_ack_pending", "flow", "lagging", "sink", "stuck")
		got["chunks"], _ = series(t, reg, "mftflow_bus_chunks_stored", "flow", "lagging")
		if b, _ := series(t, reg, "mftflow_bus_chunk_bytes_stored", "flow", "lagging"); b >= 5*100<<10 {
			got["enough bytes"] = 1
		}
		if cmp.Equal(got, want) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("bus gauges %v, want %v", got, want)
		}
		time.Sleep(20 * time.Millisecond)
	}
	wantSeries(t, reg, 1, "mftflow_deliveries_in_flight", "flow", "lagging", "sink", "stuck")
	wantSeries(t, reg, 0, "mftflow_bus_tasks_pending", "flow", "idle", "sink", "mem")
	wantSeries(t, reg, 0, "mftflow_bus_chunks_stored", "flow", "idle")

	// A second run of the same flow in the process: the flow is still
	// reported once (a duplicate series would fail the gather).
	again, err := e.engine(t, engine.Options{Metrics: reg, Grace: 100 * time.Millisecond}).Start(context.Background(), pipeline.Flow{
		Name:   "idle",
		Source: pipeline.SourceOf(testkit.NewMemorySource(nil, false)),
		Sinks:  []pipeline.SinkSpec{pipeline.SinkOf("mem", testkit.NewMemorySink())},
	})
	if err != nil {
		t.Fatal(err)
	}
	defer again.Stop(context.Background())
	wantSeries(t, reg, 0, "mftflow_bus_chunks_stored", "flow", "idle")
}

// groups counts the groups of small files of flow on the bus.
func groups(t *testing.T, e env, flow string) int {
	t.Helper()
	n := 0
	for _, k := range flowKeys(t, e, flow) {
		if strings.HasPrefix(k, "grp.") {
			n++
		}
	}
	return n
}

// flowKeys lists the keys of flow's KV bucket.
func flowKeys(t *testing.T, e env, flow string) []string {
	t.Helper()
	kv, err := e.js.KeyValue(context.Background(), bus.Names{Flow: flow}.Bucket())
	if err != nil {
		t.Fatal(err)
	}
	keys, err := kv.ListKeys(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for k := range keys.Keys() {
		out = append(out, k)
	}
	return out
}
