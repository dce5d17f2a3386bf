package engine_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/mftflow/mftflow/pipeline"
	"github.com/mftflow/mftflow/pipeline/bus"
	"github.com/mftflow/mftflow/pipeline/engine"
	"github.com/mftflow/mftflow/testkit"
)

// pollCounter counts the calls of its source's Next, and those in progress.
type pollCounter struct {
	pipeline.Source
	calls, active atomic.Int64
}

func (s *pollCounter) Next(ctx context.Context) (pipeline.Item, error) {
	s.calls.Add(1)
	s.active.Add(1)
	defer s.active.Add(-1)
	return s.Source.Next(ctx)
}

// leaseRunner is one runner of a flow on its own NATS connection.
type leaseRunner struct {
	name string
	nc   *nats.Conn
	eng  *engine.Engine
	src  *pollCounter
	run  *engine.Run
}

// newLeaseRunner connects to url for a runner with run id name.
func newLeaseRunner(t *testing.T, url, name string, ttl time.Duration) *leaseRunner {
	t.Helper()
	nc := testkit.ConnectNATS(t, url)
	eng, err := engine.New(nc, engine.Options{RunID: name, LeaseTTL: ttl, AckWait: 5 * time.Second, Grace: time.Second, Logger: testLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	return &leaseRunner{name: name, nc: nc, eng: eng}
}

// start starts flow, polling src; the run is stopped when t ends.
func (lr *leaseRunner) start(t *testing.T, flow string, src pipeline.Source, sink pipeline.Sink) error {
	lr.src = &pollCounter{Source: src}
	run, err := lr.eng.Start(context.Background(), pipeline.Flow{
		Name:   flow,
		Source: pipeline.SourceOf(lr.src),
		Sinks:  []pipeline.SinkSpec{pipeline.SinkOf("mem", sink)},
	})
	if err != nil {
		return fmt.Errorf("%s: %w", lr.name, err)
	}
	lr.run = run
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		run.Stop(ctx)
	})
	return nil
}

// startLeaseRunner starts flow on its own connection to url with run id
// name, polling src.
func startLeaseRunner(t *testing.T, url, name, flow string, ttl time.Duration, src pipeline.Source, sink pipeline.Sink) *leaseRunner {
	t.Helper()
	lr := newLeaseRunner(t, url, name, ttl)
	if err := lr.start(t, flow, src, sink); err != nil {
		t.Fatal(err)
	}
	return lr
}

// waitUntil polls cond until it holds, failing the test after a minute: far
// more than the few lease TTLs any of these waits needs.
func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(3 * time.Minute)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("still waiting, after 3 minutes, until %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// leaseHolder returns the run id in flow's lease record, or "" if none.
func leaseHolder(t *testing.T, js jetstream.JetStream, flow string) string {
	t.Helper()
	kv, err := js.KeyValue(context.Background(), bus.Names{Flow: flow}.Bucket())
	if err != nil {
		t.Fatal(err)
	}
	e, err := kv.Get(context.Background(), engine.LeaseKey)
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return ""
	}
	if err != nil {
		t.Fatal(err)
	}
	var l engine.Lease
	if err := json.Unmarshal(e.Value(), &l); err != nil {
		t.Fatalf("lease record %q: %v", e.Value(), err)
	}
	return l.Holder
}

func leaseFiles(n int) map[string][]byte {
	files := map[string][]byte{}
	for i := range n {
		files[fmt.Sprintf("f%02d.bin", i)] = testkit.RandomContent(int64(i), 10<<10+i)
	}
	return files
}

func TestSourceLeaseOnlyOneRunnerPolls(t *testing.T) {
	url := testkit.StartNATS(t)
	js, err := jetstream.New(testkit.ConnectNATS(t, url))
	if err != nil {
		t.Fatal(err)
	}
	files := leaseFiles(8)
	srcA := testkit.NewMemorySource(files, false)
	srcB := srcA.Reopen() // the same files, as a second runner would see them
	mem := testkit.NewMemorySink()

	// Both start at once: one creates the lease record, the other finds it.
	a := newLeaseRunner(t, url, "runner-a", 2*time.Second)
	b := newLeaseRunner(t, url, "runner-b", 2*time.Second)
	errs := make(chan error, 2)
	go func() { errs <- a.start(t, "lease-one", srcA, mem) }()
	go func() { errs <- b.start(t, "lease-one", srcB, mem) }()
	for range 2 {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	waitUntil(t, "every file is delivered and acked", func() bool { return len(srcA.Acked()) == len(files) })
	checkDelivered(t, files, mem.Files())

	holder := leaseHolder(t, js, "lease-one")
	polled, idle := a, b
	if holder == b.name {
		polled, idle = b, a
	}
	if holder != polled.name {
		t.Fatalf("lease held by %q, want runner-a or runner-b", holder)
	}
	waitUntil(t, polled.name+" waits in Next for more files", func() bool { return polled.src.active.Load() == 1 })
	if n := idle.src.calls.Load(); n != 0 {
		t.Errorf("%s, not holding the lease, called Next %d times; want 0", idle.name, n)
	}
	// One call per file, and one waiting for the next file, which renewals
	// of the lease do not interrupt.
	last, renewals := leaseRevision(t, js, "lease-one"), 0
	waitUntil(t, "the lease is renewed three times", func() bool {
		if r := leaseRevision(t, js, "lease-one"); r != last {
			last, renewals = r, renewals+1
		}
		return renewals >= 3
	})
	if n := polled.src.calls.Load(); n != int64(len(files))+1 {
		t.Errorf("%s, holding the lease, called Next %d times; want %d", polled.name, n, len(files)+1)
	}
	if n := idle.src.calls.Load(); n != 0 {
		t.Errorf("%s, not holding the lease, called Next %d times; want 0", idle.name, n)
	}
}

// leaseRevision returns the KV revision of flow's lease record.
func leaseRevision(t *testing.T, js jetstream.JetStream, flow string) uint64 {
	t.Helper()
	kv, err := js.KeyValue(context.Background(), bus.Names{Flow: flow}.Bucket())
	if err != nil {
		t.Fatal(err)
	}
	e, err := kv.Get(context.Background(), engine.LeaseKey)
	if err != nil {
		t.Fatalf("reading the lease of %s: %v", flow, err)
	}
	return e.Revision()
}

func TestSourceLeaseTakenOverWhenHolderDies(t *testing.T) {
	url := testkit.StartNATS(t)
	js, err := jetstream.New(testkit.ConnectNATS(t, url))
	if err != nil {
		t.Fatal(err)
	}
	const ttl = time.Second
	files := leaseFiles(4)
	srcA := testkit.NewMemorySource(files, false)
	srcB := srcA.Reopen()
	mem := testkit.NewMemorySink()

	a := startLeaseRunner(t, url, "runner-a", "lease-die", ttl, srcA, mem)
	waitUntil(t, "runner-a holds the lease and waits in Next", func() bool {
		return leaseHolder(t, js, "lease-die") == "runner-a" && a.src.active.Load() == 1
	})
	b := startLeaseRunner(t, url, "runner-b", "lease-die", ttl, srcB, mem)
	waitUntil(t, "every file is delivered", func() bool { return len(srcA.Acked()) == len(files) })
	if n := b.src.calls.Load(); n != 0 {
		t.Fatalf("runner-b called Next %d times while runner-a held the lease; want 0", n)
	}

	// runner-a loses NATS for good, as if it died: it cannot renew.
	a.nc.Close()
	waitUntil(t, "runner-a stops polling", func() bool { return a.src.active.Load() == 0 })
	waitUntil(t, "runner-b takes the lease over and polls", func() bool {
		return leaseHolder(t, js, "lease-die") == "runner-b" && b.src.active.Load() == 1
	})
	aCalls := a.src.calls.Load()

	// New files reach the sink through runner-b.
	srcB.Add("late.bin", []byte("after the takeover"))
	waitUntil(t, "late.bin is delivered", func() bool { return string(mem.Files()["late.bin"]) == "after the takeover" })
	if n := a.src.calls.Load(); n != aCalls {
		t.Errorf("runner-a called Next %d more times after losing the lease", n-aCalls)
	}
}

func TestSourceLeaseReleasedOnStop(t *testing.T) {
	url := testkit.StartNATS(t)
	js, err := jetstream.New(testkit.ConnectNATS(t, url))
	if err != nil {
		t.Fatal(err)
	}
	// A TTL far beyond the waits below: only a release lets runner-b in.
	const ttl = 10 * time.Minute
	srcA := testkit.NewMemorySource(leaseFiles(2), false)
	srcB := srcA.Reopen()
	mem := testkit.NewMemorySink()

	a := startLeaseRunner(t, url, "runner-a", "lease-stop", ttl, srcA, mem)
	waitUntil(t, "runner-a holds the lease and waits in Next", func() bool {
		return leaseHolder(t, js, "lease-stop") == "runner-a" && a.src.active.Load() == 1
	})
	b := startLeaseRunner(t, url, "runner-b", "lease-stop", ttl, srcB, mem)
	waitUntil(t, "both files are delivered", func() bool { return len(srcA.Acked()) == 2 })

	if err := a.run.Stop(context.Background()); err != nil {
		t.Fatalf("stopping runner-a: %v", err)
	}
	if h := leaseHolder(t, js, "lease-stop"); h == "runner-a" {
		t.Fatalf("lease still held by runner-a after Stop")
	}
	waitUntil(t, "runner-b takes the released lease and polls", func() bool {
		return leaseHolder(t, js, "lease-stop") == "runner-b" && b.src.active.Load() == 1
	})
}

func TestSourceLeaseLostStopsPolling(t *testing.T) {
	url := testkit.StartNATS(t)
	js, err := jetstream.New(testkit.ConnectNATS(t, url))
	if err != nil {
		t.Fatal(err)
	}
	const ttl = time.Second
	src := testkit.NewMemorySource(nil, false)
	a := startLeaseRunner(t, url, "runner-a", "lease-lost", ttl, src, testkit.NewMemorySink())
	waitUntil(t, "runner-a holds the lease and waits in Next", func() bool {
		return leaseHolder(t, js, "lease-lost") == "runner-a" && a.src.active.Load() == 1
	})

	// Another runner writes its own record over runner-a's and keeps
	// renewing it: runner-a's next renewal fails and it stops polling.
	kv, err := js.KeyValue(context.Background(), bus.Names{Flow: "lease-lost"}.Bucket())
	if err != nil {
		t.Fatal(err)
	}
	record, _ := json.Marshal(engine.Lease{Holder: "intruder", TTL: ttl})
	ctx, cancel := context.WithCancel(context.Background())
	renewed := make(chan struct{})
	go func() {
		defer close(renewed)
		for ctx.Err() == nil {
			kv.Put(context.Background(), engine.LeaseKey, record)
			select {
			case <-ctx.Done():
			case <-time.After(ttl / 10):
			}
		}
	}()
	waitUntil(t, "runner-a stops polling", func() bool { return a.src.active.Load() == 0 })
	calls := a.src.calls.Load()
	src.Add("while-intruded.bin", []byte("x"))
	// Give runner-a several TTLs in which it must not poll.
	time.Sleep(3 * ttl)
	if n := a.src.calls.Load(); n != calls {
		t.Errorf("runner-a called Next %d times while another runner held the lease", n-calls)
	}

	// The intruder stops renewing: runner-a takes the lease back and reads the file.
	cancel()
	<-renewed
	waitUntil(t, "runner-a takes the lease back", func() bool { return leaseHolder(t, js, "lease-lost") == "runner-a" })
	waitUntil(t, "runner-a reads the waiting file", func() bool { return len(src.Acked()) == 1 })
}

// A runner whose connection to NATS is gone (its process died) is taken
// over at once, not after its TTL: runners restarted faster than the TTL
// still read the source. A runner that is alive is never taken over so.
func TestSourceLeaseTakenAtOnceWhenHoldersConnectionIsGone(t *testing.T) {
	url := testkit.StartNATS(t)
	js, err := jetstream.New(testkit.ConnectNATS(t, url))
	if err != nil {
		t.Fatal(err)
	}
	// A TTL no wait below comes near: only the liveness check lets
	// another runner in.
	const ttl = time.Hour
	srcA := testkit.NewMemorySource(leaseFiles(2), false)
	mem := testkit.NewMemorySink()
	a := startLeaseRunner(t, url, "runner-a", "lease-gone", ttl, srcA, mem)
	waitUntil(t, "runner-a holds the lease and waits in Next", func() bool {
		return leaseHolder(t, js, "lease-gone") == "runner-a" && a.src.active.Load() == 1
	})
	b := startLeaseRunner(t, url, "runner-b", "lease-gone", ttl, srcA.Reopen(), mem)
	waitUntil(t, "both files are delivered", func() bool { return len(srcA.Acked()) == 2 })
	time.Sleep(time.Second) // runner-b asks runner-a several times meanwhile
	if n := b.src.calls.Load(); n != 0 {
		t.Fatalf("runner-b called Next %d times while runner-a was alive; want 0", n)
	}

	a.nc.Close() // as a SIGKILL does: the server drops the connection
	waitUntil(t, "runner-a stops polling", func() bool { return a.src.active.Load() == 0 })
	waitUntil(t, "runner-b takes the lease over and polls", func() bool {
		return leaseHolder(t, js, "lease-gone") == "runner-b" && b.src.active.Load() == 1
	})
}

// A sole runner (its own embedded server) takes a lease left by another run
// at once; a holder that sees another runner's record in its watch stops
// polling at once.
func TestSoleRunnerTakesTheLeaseAtOnce(t *testing.T) {
	url := testkit.StartNATS(t)
	js, err := jetstream.New(testkit.ConnectNATS(t, url))
	if err != nil {
		t.Fatal(err)
	}
	const ttl = time.Hour
	srcA := testkit.NewMemorySource(nil, false)
	mem := testkit.NewMemorySink()
	a := startLeaseRunner(t, url, "runner-a", "lease-sole", ttl, srcA, mem)
	waitUntil(t, "runner-a holds the lease and waits in Next", func() bool {
		return leaseHolder(t, js, "lease-sole") == "runner-a" && a.src.active.Load() == 1
	})

	b := newLeaseRunner(t, url, "runner-b", ttl)
	eng, err := engine.New(b.nc, engine.Options{RunID: "runner-b", LeaseTTL: ttl, SoleRunner: true, Grace: time.Second, Logger: testLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	b.eng = eng
	if err := b.start(t, "lease-sole", srcA.Reopen(), mem); err != nil {
		t.Fatal(err)
	}
	waitUntil(t, "runner-b takes the lease and polls", func() bool {
		return leaseHolder(t, js, "lease-sole") == "runner-b" && b.src.active.Load() == 1
	})
	waitUntil(t, "runner-a stops polling", func() bool { return a.src.active.Load() == 0 })
}
