package main

import (
	"bytes"
	"testing"

	"github.com/mftflow/mftflow/pipeline/bus"
	"github.com/mftflow/mftflow/pipeline/engine"
)

func statusFixture() []engine.FlowStatus {
	return []engine.FlowStatus{{
		Flow: "orders",
		Files: []engine.FileStatus{
			{Manifest: bus.Manifest{Name: "a.csv", State: bus.FileDone}, Deliveries: []bus.Delivery{
				{Sink: "archive", State: bus.DeliveryCommitted, Attempts: 1},
				{Sink: "s3", State: bus.DeliveryFailed, Attempts: 5, Error: "writing part 3:\n  503 Slow Down"},
			}},
			{Manifest: bus.Manifest{Name: "b.csv", State: bus.FileReady}, Deliveries: []bus.Delivery{
				{Sink: "archive", State: bus.DeliveryActive, Attempts: 1},
				{Sink: "s3", State: bus.DeliveryPending},
			}},
			{Manifest: bus.Manifest{Name: "c.csv", State: bus.FileFailed, Error: "reading: permission denied"},
				Error: "reading: permission denied"},
			{Manifest: bus.Manifest{Name: "d\tname", State: bus.FileDone, Outcome: "failed", Error: "refused"}, Error: "refused"},
		},
		Sinks: []engine.SinkCounts{
			{Sink: "archive", InFlight: 1, Committed: 1},
			{Sink: "s3", InFlight: 1, Failed: 1},
		},
	}}
}

func TestWriteStatus(t *testing.T) {
	var b bytes.Buffer
	if err := writeStatus(&b, reportsOf(statusFixture()), false); err != nil {
		t.Fatal(err)
	}
	want := `flow orders: 4 files (1 done, 1 in progress, 2 failed before delivery)
  SINK     IN FLIGHT  COMMITTED  FAILED  SKIPPED
  archive  1          1          0       0
  s3       1          0          1       0
  1 failed delivery, 2 files failed before delivery; list with "runner status --failed --flow orders"
`
	if b.String() != want {
		t.Errorf("got:\n%s\nwant:\n%s", b.String(), want)
	}
}

func TestWriteStatusFailed(t *testing.T) {
	flows := statusFixture()
	flows[0].Files = failedFiles(flows[0].Files)
	if len(flows[0].Files) != 3 {
		t.Fatalf("failedFiles kept %d files, want a.csv, c.csv and d\tname", len(flows[0].Files))
	}
	var b bytes.Buffer
	if err := writeStatus(&b, reportsOf(flows), true); err != nil {
		t.Fatal(err)
	}
	want := `flow orders
  SINK     IN FLIGHT  COMMITTED  FAILED  SKIPPED
  archive  1          1          0       0
  s3       1          0          1       0

  FILE       SINK  ATTEMPTS  ERROR
  "d\tname"  -     -         refused
  a.csv      s3    5         writing part 3: 503 Slow Down
  c.csv      -     -         reading: permission denied
`
	if b.String() != want {
		t.Errorf("got:\n%s\nwant:\n%s", b.String(), want)
	}
}

// Nothing failed: the list says so, naming both kinds of failure.
func TestWriteStatusNothingFailed(t *testing.T) {
	flows := []engine.FlowStatus{{Flow: "orders", Sinks: []engine.SinkCounts{{Sink: "s3", Committed: 1}}}}
	var b bytes.Buffer
	if err := writeStatus(&b, reportsOf(flows), true); err != nil {
		t.Fatal(err)
	}
	want := `flow orders
  SINK  IN FLIGHT  COMMITTED  FAILED  SKIPPED
  s3    0          1          0       0
  no failed deliveries or files
`
	if b.String() != want {
		t.Errorf("got:\n%s\nwant:\n%s", b.String(), want)
	}
}

func reportsOf(flows []engine.FlowStatus) []flowReport {
	out := make([]flowReport, len(flows))
	for i, f := range flows {
		out[i] = flowReport{FlowStatus: f}
	}
	return out
}
