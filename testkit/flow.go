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
	r, err := eng.Start(t.Context(), f)
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- r.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("run: %v", err)
		}
	case <-time.After(2 * time.Minute):
		_ = r.Stop(context.Background()) // the run is failed below either way
		t.Fatalf("the run did not finish: %+v", r.Stats())
	}
	return r
}
