package thru_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/mftflow/mftflow/connectors/thru"
	"github.com/mftflow/mftflow/pipeline"
	"github.com/mftflow/mftflow/pipeline/engine"
	"github.com/mftflow/mftflow/testkit"
	"github.com/mftflow/mftflow/testkit/thrusim"
)

// Files picked up from one flow go through the engine to a drop-off (as
// responses carrying the pickup's File Code) and to a Content API endpoint,
// with 503s injected into chunk calls; every pickup gets its outcome.
func TestFlowThroughEngine(t *testing.T) {
	if testing.Short() {
		t.Skip("starts NATS")
	}
	site := newSite(t, func(c *thrusim.Config) { c.MaxChunkSize = 128 << 10 })
	files := map[string][]byte{
		"small.csv": []byte("id\n1\n"),
		"empty.txt": nil,
		"big.bin":   testkit.RandomContent(11, 700_000),
	}
	codes := map[string]string{}
	for name, b := range files {
		code, err := site.AddPickup("TRN1", name, b)
		if err != nil {
			t.Fatal(err)
		}
		codes[code] = name
	}
	site.SetFaults(thrusim.Faults{FailRate: 0.2, Kinds: []string{thrusim.KindChunk, thrusim.KindSessionPut}})

	src, err := thru.NewSource(context.Background(), thru.SourceConfig{Client: clientConfig(t, site), PollInterval: 20 * time.Millisecond, SpoolDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	drop := newSink(t, site, func(c *thru.SinkConfig) { c.PartSize = 128 << 10 })
	content := newSink(t, site, func(c *thru.SinkConfig) { c.Mode, c.SimpleThreshold = thru.ModeContent, 100_000 })

	nc := testkit.ConnectNATS(t, testkit.StartNATS(t))
	eng, err := engine.New(nc, engine.Options{RunID: "run-e2e"})
	if err != nil {
		t.Fatal(err)
	}
	run, err := eng.Start(t.Context(), pipeline.Flow{
		Name:   "thru-e2e",
		Source: pipeline.SourceOf(src),
		Sinks:  []pipeline.SinkSpec{pipeline.SinkOf("dropoff", drop), pipeline.SinkOf("content", content)},
	})
	if err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(60 * time.Second)
	for len(site.Outcomes()) < len(files) && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := run.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	outcomes := site.Outcomes()
	if len(outcomes) != len(files) {
		t.Fatalf("outcomes = %+v", outcomes)
	}
	for _, o := range outcomes {
		if o.FlowOutcome != thru.OutcomePassed || o.FlowInstanceCode != "run-e2e" || codes[o.FileCode] == "" {
			t.Errorf("outcome %+v", o)
		}
	}
	got := map[string]int{}
	for _, d := range site.Deliveries() {
		want := files[d.Name]
		if d.SHA256 != testkit.SHA256Hex(want) {
			t.Errorf("delivery %s via %s: wrong content", d.Name, d.Via)
		}
		if d.Via == "dropoff" && codes[d.FileCode] != d.Name {
			t.Errorf("drop-off of %s does not reuse its pickup File Code: %s", d.Name, d.FileCode)
		}
		got[d.Via+" "+d.Name]++
	}
	for name := range files {
		for _, via := range []string{"dropoff", "content"} {
			if got[via+" "+name] != 1 {
				t.Errorf("%s %s delivered %d times", via, name, got[via+" "+name])
			}
		}
	}
}

// TestCutPickupReportedFailed cuts the download of the first of two picked
// up files. The site counts it picked up and will not offer it again, so
// it must hear of it: outcome 2 with the reason, and the run counts the
// file failed; the other file passes. A source started again on the spool
// before the outcome went out offers the lost file again.
func TestCutPickupReportedFailed(t *testing.T) {
	if testing.Short() {
		t.Skip("starts NATS")
	}
	site := newSite(t, nil)
	lost, _ := site.AddPickup("TRN1", "lost.bin", testkit.RandomContent(12, 256<<10))
	kept, _ := site.AddPickup("TRN1", "kept.csv", []byte("id\n1\n"))
	site.FailNth(thrusim.KindPickup, 1, 0) // the first answer's body is cut
	spool := t.TempDir()
	newSource := func() *thru.Source {
		src, err := thru.NewSource(context.Background(), thru.SourceConfig{Client: clientConfig(t, site), PollInterval: 10 * time.Millisecond, SpoolDir: spool})
		if err != nil {
			t.Fatal(err)
		}
		return src
	}
	it, err := newSource().Next(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if f := it.File(); f.Attrs[thru.AttrFileCode] != lost || f.Name != "lost.bin" {
		t.Fatalf("first item %+v; want the cut pickup %s", f, lost)
	}
	if _, err := it.Open(t.Context()); err == nil || !pipeline.IsPermanent(err) || !strings.Contains(err.Error(), "Thru counts it as picked up") {
		t.Fatalf("opening the cut pickup: %v; want a permanent error saying the site counts it picked up", err)
	}

	sink := testkit.NewMemorySink()
	nc := testkit.ConnectNATS(t, testkit.StartNATS(t))
	eng, err := engine.New(nc, engine.Options{RunID: "run-cut"})
	if err != nil {
		t.Fatal(err)
	}
	run, err := eng.Start(t.Context(), pipeline.Flow{Name: "thru-cut", Source: pipeline.SourceOf(newSource()), Sinks: []pipeline.SinkSpec{pipeline.SinkOf("out", sink)}})
	if err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(30 * time.Second)
	for len(site.Outcomes()) < 2 && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := run.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	byCode := map[string]thru.FlowOutcome{}
	for _, o := range site.Outcomes() {
		byCode[o.FileCode] = o
	}
	if o := byCode[lost]; o.FlowOutcome != thru.OutcomeFailed || !strings.Contains(o.ActivityMessage, "was cut") {
		t.Errorf("outcome of the cut pickup %+v; want 2 (failed) saying the download was cut", o)
	}
	if o := byCode[kept]; o.FlowOutcome != thru.OutcomePassed {
		t.Errorf("outcome of the other file %+v; want 1 (passed)", o)
	}
	if s := run.Stats(); s.FilesFailed != 1 || s.FilesPassed != 1 {
		t.Errorf("stats %+v; want one file failed, one passed", s)
	}
	if _, ok := sink.Files()["kept.csv"]; !ok || len(sink.Files()) != 1 {
		t.Errorf("sink holds %d files; want kept.csv alone", len(sink.Files()))
	}
}
