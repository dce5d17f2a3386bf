package bus_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/mftflow/mftflow/pipeline/bus"
	"github.com/mftflow/mftflow/testkit"
	"github.com/mftflow/mftflow/testkit/natscluster"
)

func newJS(t *testing.T, url string) jetstream.JetStream {
	t.Helper()
	js, err := jetstream.New(testkit.ConnectNATS(t, url))
	if err != nil {
		t.Fatal(err)
	}
	return js
}

// ensure sets up flow f with two sinks and the given replica count.
func ensure(t *testing.T, js jetstream.JetStream, flow string, replicas int) *bus.FlowBus {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	fb, err := bus.Ensure(ctx, js, bus.Setup{Flow: flow, Sinks: []string{"a", "b"}, Replicas: replicas, AckWait: 5 * time.Second, MaxAckPending: 8})
	if err != nil {
		t.Fatalf("Ensure(%s, replicas %d): %v", flow, replicas, err)
	}
	return fb
}

// checkReplicas checks that every stream and consumer of flow has want
// replicas, as configured and as placed.
func checkReplicas(t *testing.T, js jetstream.JetStream, flow string, want int) {
	t.Helper()
	ctx := context.Background()
	n := bus.Names{Flow: flow}
	for _, name := range []string{n.ChunkStream(), n.TaskStream(), n.KVStream()} {
		s, err := js.Stream(ctx, name)
		if err != nil {
			t.Fatalf("stream %s: %v", name, err)
		}
		info := s.CachedInfo()
		if info.Config.Replicas != want {
			t.Errorf("stream %s: %d replicas configured, want %d", name, info.Config.Replicas, want)
		}
		if want > 1 && (info.Cluster == nil || len(info.Cluster.Replicas) != want-1) {
			t.Errorf("stream %s: placed on %+v, want a leader and %d replicas", name, info.Cluster, want-1)
		}
	}
	tasks, err := js.Stream(ctx, n.TaskStream())
	if err != nil {
		t.Fatal(err)
	}
	// Consumers follow a changed count in the background.
	deadline := time.Now().Add(time.Minute)
	for _, sink := range []string{"a", "b"} {
		for {
			c, err := tasks.Consumer(ctx, n.Consumer(sink))
			if err != nil {
				t.Fatalf("consumer of sink %s: %v", sink, err)
			}
			info := c.CachedInfo()
			placed := 1
			if info.Cluster != nil {
				placed += len(info.Cluster.Replicas)
			}
			if info.Config.Replicas == want && placed == want {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("consumer of sink %s: %d replicas configured, on %d servers; want %d", sink, info.Config.Replicas, placed, want)
			}
			time.Sleep(200 * time.Millisecond)
		}
	}
}

func TestEnsureOnClusterDefaultsToThreeReplicas(t *testing.T) {
	c := natscluster.Start(t, 3)
	js := newJS(t, c.URLs())
	r, err := bus.DetectReplicas(context.Background(), js)
	if err != nil || r != 3 {
		t.Fatalf("DetectReplicas on a 3-node cluster = %d, %v; want 3", r, err)
	}
	fb := ensure(t, js, "orders", 0)
	if fb.Replicas != 3 {
		t.Errorf("FlowBus.Replicas = %d, want 3", fb.Replicas)
	}
	checkReplicas(t, js, "orders", 3)
	// The KV bucket works through the replicated stream.
	if _, err := fb.Store.KV.Put(context.Background(), "probe", []byte("x")); err != nil {
		t.Fatalf("writing to the R3 bucket: %v", err)
	}
	// The probe stream is gone.
	for name := range js.StreamNames(context.Background()).Name() {
		if strings.HasPrefix(name, "MFT_PROBE_") {
			t.Errorf("probe stream %s left behind", name)
		}
	}
}

func TestEnsureChangesReplicasOfExistingStreams(t *testing.T) {
	c := natscluster.Start(t, 3)
	js := newJS(t, c.URLs())
	for _, step := range []struct {
		set, want int
	}{
		{1, 1},
		{3, 3}, // explicit: more
		{1, 1}, // explicit: fewer
		{0, 3}, // chosen: the cluster's count
	} {
		start := time.Now()
		fb := ensure(t, js, "grow", step.set)
		if fb.Replicas != step.want {
			t.Errorf("Ensure(replicas %d): FlowBus.Replicas = %d, want %d", step.set, fb.Replicas, step.want)
		}
		checkReplicas(t, js, "grow", step.want)
		t.Logf("replicas %d → %d took %v", step.set, step.want, time.Since(start))
	}
}

func TestEnsureOnSingleServerUsesOneReplica(t *testing.T) {
	js := newJS(t, testkit.StartNATS(t))
	r, err := bus.DetectReplicas(context.Background(), js)
	if err != nil || r != 1 {
		t.Fatalf("DetectReplicas on one server = %d, %v; want 1", r, err)
	}
	fb := ensure(t, js, "single", 0)
	if fb.Replicas != 1 {
		t.Errorf("FlowBus.Replicas = %d, want 1", fb.Replicas)
	}
	checkReplicas(t, js, "single", 1)

	_, err = bus.Ensure(context.Background(), js, bus.Setup{Flow: "three", Sinks: []string{"a"}, Replicas: 3, AckWait: time.Second})
	want := "3 replicas need a JetStream cluster of at least 3 servers: lower the replica count"
	if err == nil || !strings.Contains(err.Error(), want) {
		t.Fatalf("Ensure with 3 replicas on one server: %v; want an error containing %q", err, want)
	}
}

func TestDetectReplicasOnTwoNodeCluster(t *testing.T) {
	c := natscluster.Start(t, 2)
	js := newJS(t, c.URLs())
	r, err := bus.DetectReplicas(context.Background(), js)
	if err != nil || r != 1 {
		t.Fatalf("DetectReplicas on a 2-node cluster = %d, %v; want 1", r, err)
	}
}

func TestTransient(t *testing.T) {
	for _, tc := range []struct {
		err  error
		want bool
	}{
		{nats.ErrTimeout, true},
		{fmt.Errorf("reading file.x: %w", context.DeadlineExceeded), true},
		{nats.ErrNoResponders, true},
		{&jetstream.APIError{Code: 503, ErrorCode: 10008, Description: "JetStream system temporarily unavailable"}, true},
		{jetstream.ErrKeyExists, false},
		{&jetstream.APIError{Code: 400, ErrorCode: jetstream.JSErrCodeStreamWrongLastSequence}, false},
		{errors.New("disk full"), false},
	} {
		if got := bus.Transient(tc.err); got != tc.want {
			t.Errorf("Transient(%v) = %v, want %v", tc.err, got, tc.want)
		}
	}
}
