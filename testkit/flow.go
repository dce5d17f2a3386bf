package testkit

import (
	"context"
	"testing"
	"time"

	"github.com/mftflow/mftflow/pipeline"
	"github.com/mftflow/mftflow/pipeline/engine"
)

// RunFlow runs f to its end on a NATS server of its own, with an engine
// whose registry is reg, and returns the run. t fails if the run fails or
// has not ended after two minutes.
func RunFlow(t *testing.T, reg *pipeline.Registry, f pipeline.Flow) *engine.Run {
	t.Helper()
	nc := ConnectNATS(t, StartNATS(t))
	eng, err := engine.New(nc, engine.Options{Registry: reg, AckWait: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	return RunToEnd(t, eng, f)
}

// RunToEnd starts f on eng, waits for the run to end by itself, and returns
// it. t fails if f does not start, if the run fails, or if it has not ended
// after two minutes (it is then stopped).
func RunToEnd(t *testing.T, eng *engine.Engine, f pipeline.Flow) *engine.Run {
	t.Helper()
	r, err := eng.Start(t.Context(), f)
	if err != nil {
		t.Fatal(err)
	}
	WaitRun(t, r, 2*time.Minute)
	return r
}

// WaitRun waits up to limit for r to end. t fails if the run fails or has
// not ended in time; it is then stopped, so the test does not leave it
// running.
func WaitRun(t *testing.T, r *engine.Run, limit time.Duration) {
	t.Helper()
	done := make(chan error, 1)
	go func() { done <- r.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("run: %v", err)
		}
	case <-time.After(limit):
		st := r.Stats()                  // before the stop, which ends what is in flight
		_ = r.Stop(context.Background()) // the run is failed below either way
		t.Fatalf("the run did not finish within %v: %+v", limit, st)
	}
}
