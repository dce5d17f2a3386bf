package engine_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/mftflow/mftflow/pipeline"
	"github.com/mftflow/mftflow/pipeline/bus"
	"github.com/mftflow/mftflow/pipeline/engine"
	"github.com/mftflow/mftflow/testkit"
)

// FlowRecords fed from a watch of the bucket gives what ReadStatus reads,
// small grouped files, failed deliveries and redacted errors included, and
// forgets what is deleted.
func TestFlowRecordsFollowTheBucket(t *testing.T) {
	e := newEnv(t)
	files := sampleFiles()
	files["tiny/a.txt"], files["tiny/b.txt"] = []byte("a\n"), []byte("bb\n")
	down := testkit.FailAlways(testkit.NewMemorySink(), pipeline.Permanent(errors.New("refused by https://user:secret@partner.example/in")))
	runToEnd(t, e.engine(t, engine.Options{}), pipeline.Flow{
		Name:   "watched",
		Source: pipeline.SourceOf(testkit.NewMemorySource(files, true)),
		Sinks:  []pipeline.SinkSpec{pipeline.SinkOf("good", testkit.NewMemorySink()), fastRetry(pipeline.SinkOf("down", down), 1)},
		Bus:    pipeline.BusSpec{ChunkSize: 64 << 10},
	})
	ctx := context.Background()
	want, err := engine.ReadStatus(ctx, e.js, "watched")
	if err != nil {
		t.Fatal(err)
	}
	kv, err := e.js.KeyValue(ctx, bus.Names{Flow: "watched"}.Bucket())
	if err != nil {
		t.Fatal(err)
	}
	w, err := kv.WatchAll(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Stop()
	recs := engine.NewFlowRecords("watched")
	for e := range w.Updates() {
		if e == nil {
			break // every current value is in
		}
		if e.Operation() != jetstream.KeyValuePut {
			recs.Delete(e.Key())
		} else if err := recs.Put(e.Key(), e.Value()); err != nil {
			t.Fatal(err)
		}
	}
	got := recs.Status()
	if diff := cmp.Diff(want[0], got); diff != "" {
		t.Errorf("FlowRecords.Status differs from ReadStatus (-ReadStatus +FlowRecords):\n%s", diff)
	}
	if recs.Files() != len(files) || len(got.Files) != len(files) {
		t.Errorf("%d files in the records, %d in the status; want %d", recs.Files(), len(got.Files), len(files))
	}
	for _, f := range got.Files {
		for _, d := range f.Deliveries {
			if d.Sink == "down" && (d.State != bus.DeliveryFailed || !containsRedacted(d.Error)) {
				t.Errorf("%s to down: %s %q; want failed with the password hidden", f.Manifest.Name, d.State, d.Error)
			}
		}
	}

	first := got.Files[0]
	recs.Delete(bus.ManifestKey(first.Manifest.ID))
	for _, d := range first.Deliveries {
		recs.Delete(bus.DeliveryKey(first.Manifest.ID, d.Sink))
	}
	if n := len(recs.Status().Files); n != len(files)-1 {
		t.Errorf("after deleting %s's records: %d files, want %d", first.Manifest.Name, n, len(files)-1)
	}
	if err := recs.Put(bus.ManifestKey("x"), []byte("{not json")); err == nil {
		t.Error("Put of a broken record: no error")
	}
	if err := recs.Put("lease.source", []byte("{not json")); err != nil {
		t.Errorf("Put of a record no status is made of: %v, want it ignored", err)
	}
}

func containsRedacted(s string) bool {
	return !strings.Contains(s, "secret") && strings.Contains(s, "user:"+pipeline.Redacted+"@")
}
