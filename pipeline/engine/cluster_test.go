package engine_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/mftflow/mftflow/pipeline/bus"
	"github.com/mftflow/mftflow/testkit"
	"github.com/mftflow/mftflow/testkit/natscluster"
)

// Two runners share a flow on a three-node cluster: its streams get three
// replicas by default, one runner polls the source, both deliver, and each
// file reaches the sink once.
func TestTwoRunnersOnThreeNodeCluster(t *testing.T) {
	c := natscluster.Start(t, 3)
	js, err := jetstream.New(testkit.ConnectNATS(t, c.URLs()))
	if err != nil {
		t.Fatal(err)
	}
	files := map[string][]byte{}
	for i := range 24 {
		files[fmt.Sprintf("f%02d.bin", i)] = testkit.RandomContent(int64(100+i), (i%6)*700<<10+i)
	}
	srcA := testkit.NewMemorySource(files, false)
	srcB := srcA.Reopen()
	mem := testkit.NewMemorySink()
	// The default lease TTL: with a short one a loaded machine (-race, the
	// whole suite at once) lets the lease change hands mid-run, which this
	// test is not about.
	a := startLeaseRunner(t, c.URLs(), "runner-a", "clustered", 0, srcA, mem)
	b := startLeaseRunner(t, c.URLs(), "runner-b", "clustered", 0, srcB, mem)

	n := bus.Names{Flow: "clustered"}
	for _, name := range []string{n.ChunkStream(), n.TaskStream(), n.KVStream()} {
		s, err := js.Stream(context.Background(), name)
		if err != nil {
			t.Fatal(err)
		}
		if r := s.CachedInfo().Config.Replicas; r != 3 {
			t.Errorf("stream %s: %d replicas, want 3 on a three-node cluster", name, r)
		}
	}

	waitUntil(t, "every file is delivered", func() bool { return len(srcA.Acked()) == len(files) })

	checkDelivered(t, files, mem.Files())
	if got := mem.Commits(); got != len(files) {
		t.Errorf("sink saw %d commits for %d files; want one each", got, len(files))
	}
	for name, o := range srcA.Acked() {
		if o.Status.String() != "passed" {
			t.Errorf("%s: outcome %s (%s)", name, o.Status, o.Message)
		}
	}
	if a.src.calls.Load() > 0 && b.src.calls.Load() > 0 {
		t.Errorf("both runners polled the source (runner-a %d calls, runner-b %d)", a.src.calls.Load(), b.src.calls.Load())
	}
	t.Logf("runner-a: %+v", a.run.Stats())
	t.Logf("runner-b: %+v", b.run.Stats())
}
