package main

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/mftflow/mftflow/pipeline/bus"
	"github.com/mftflow/mftflow/pipeline/engine"
)

// delivery reads the one delivery record of flow through js.
func delivery(ctx context.Context, js jetstream.JetStream, flow string) (bus.Manifest, bus.Delivery, bool) {
	st, err := engine.ReadStatus(ctx, js, flow)
	if err != nil || len(st) == 0 || len(st[0].Files) == 0 || len(st[0].Files[0].Deliveries) == 0 {
		return bus.Manifest{}, bus.Delivery{}, false
	}
	f := st[0].Files[0]
	return f.Manifest, f.Deliveries[0], true
}

// killMidDelivery starts the runner with args, waits until the flow's one
// delivery has recorded some parts (and is not final) and the read has
// passed a checkpoint, and SIGKILLs the runner with its embedded NATS server. The kill must land while the file
// is still being read, past a checkpoint: reading is bounded by the bus
// window (32 MiB), far below the file's size.
func killMidDelivery(t *testing.T, args []string, data, flow string) (int, bus.Manifest) {
	t.Helper()
	run, js, log := startWatched(t, args, data)
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		m, d, ok := delivery(context.Background(), js, flow)
		if !ok || d.Done.Count() < 3 || (m.Checkpoint == nil && m.State == bus.FileIngesting) {
			time.Sleep(5 * time.Millisecond)
			continue
		}
		if bus.Final(d.State) {
			t.Fatalf("the delivery finished before it could be killed (state %s): the scenario did not happen", d.State)
		}
		if err := run.Process.Signal(syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
		run.Wait()
		if m.State != bus.FileIngesting || m.Checkpoint == nil {
			t.Fatalf("at the kill the file was %s with checkpoint %+v; want it being read, past a checkpoint", m.State, m.Checkpoint)
		}
		return d.Done.Count(), m
	}
	t.Fatalf("no part was recorded within 30s\n%s", log.String())
	return 0, bus.Manifest{}
}

// startWatched starts the runner with args on the data directory data and
// connects to its embedded server once it publishes its address. The
// runner is killed when the test ends, if it has not ended before.
func startWatched(t *testing.T, args []string, data string) (*exec.Cmd, jetstream.JetStream, *strings.Builder) {
	t.Helper()
	os.Remove(filepath.Join(data, "nats.url")) // left by a run killed before
	run := exec.Command(runnerBin, args...)
	log := &strings.Builder{}
	run.Stdout, run.Stderr = log, log
	if err := run.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { run.Process.Kill() })
	return run, connectRunner(t, data, log), log
}

// openData starts an embedded server on a data directory that no runner
// holds any more, until the test ends, and connects to it.
func openData(t *testing.T, data string) jetstream.JetStream {
	t.Helper()
	srv, err := bus.StartEmbedded(data)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv.Shutdown)
	nc, err := nats.Connect(srv.URL(), nats.InProcessServer(srv))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	js, _ := jetstream.New(nc)
	return js
}

// finalState reads the flow's one file and delivery from a runner's data
// directory once the runner has exited.
func finalState(t *testing.T, data, flow string) (bus.Manifest, bus.Delivery) {
	t.Helper()
	js := openData(t, data)
	m, d, ok := delivery(context.Background(), js, flow)
	if !ok {
		t.Fatal("no delivery record after the second run")
	}
	return m, d
}

// TestSIGKILLMidTransferResumes kills the runner (and its embedded NATS
// server) in the middle of a 256 MiB local → local transfer, starts it again
// on the same data directory, and checks that the file arrives once,
// byte-identical, with no temp file left, and that no part recorded as
// written before the kill was written again.
func TestSIGKILLMidTransferResumes(t *testing.T) {
	if testing.Short() {
		t.Skip("moves 256 MiB; skipped with -short")
	}
	const size, partSize = 256 << 20, 4 << 20
	const parts = size / partSize
	dir := t.TempDir()
	in, out, data := filepath.Join(dir, "in"), filepath.Join(dir, "out"), filepath.Join(dir, "data")
	os.MkdirAll(in, 0o755)
	want := writeRandomFile(t, filepath.Join(in, "big.bin"), size)
	flow := writeFile(t, dir, "crash.yaml", localFlowHead("crash", in)+`  - name: out
    parallelism: 2
    local:
      path: `+out+`
      part_size: 4MiB
      fsync: true
bus:
  compression: none
`)
	args := []string{"run", "--data", data, "--progress", "none", "--log-level", "debug", flow}

	// First run: kill it once some parts are recorded and before the commit.
	doneAtKill, mAtKill := killMidDelivery(t, args, data, "crash")
	if entries, _ := os.ReadDir(out); len(entries) != 1 || !strings.HasPrefix(entries[0].Name(), ".mftflow-") {
		t.Fatalf("after the kill the output holds %v; want only the half-written temp file", entries)
	}

	// Second run on the same data directory finishes the file.
	stdout, stderr, code := runRunner(t, dir, args...)
	if code != 0 {
		t.Fatalf("second run exited %d\nstdout:\n%s\nstderr:\n%s", code, stdout, stderr)
	}
	checkOnlyFile(t, out, "big.bin", want)

	// The state says the file was committed once, and that the second run
	// skipped every part the first had recorded.
	m, d := finalState(t, data, "crash")
	if m.State != bus.FileDone || m.Outcome != "passed" || m.SHA256 != want {
		t.Errorf("manifest: state %s outcome %s sha256 %s; want done, passed, %s", m.State, m.Outcome, m.SHA256, want)
	}
	// What the first run had put on the bus (up to its checkpoint) was not
	// read from the source again: both runs together read the file once.
	if m.SourceRead != size {
		t.Errorf("the source was read for %d bytes over both runs; want exactly %d (the second run resumes at the first one's checkpoint, %d bytes in)", m.SourceRead, int64(size), mAtKill.Checkpoint.Bytes)
	}
	if d.State != bus.DeliveryCommitted || d.Resumed < doneAtKill || d.Writes != parts {
		t.Errorf("delivery: state %s, %d parts resumed, %d part writes; want committed, at least %d resumed (recorded before the kill), exactly %d writes (none written twice)",
			d.State, d.Resumed, d.Writes, doneAtKill, parts)
	}
	t.Logf("killed with %d of %d parts recorded and %d MiB read; second run resumed %d parts, %d writes in all, %d attempts", doneAtKill, parts, mAtKill.Checkpoint.Bytes>>20, d.Resumed, d.Writes, d.Attempts)
}
