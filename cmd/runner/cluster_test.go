package main

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math/rand/v2"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/mftflow/mftflow/pipeline"
	"github.com/mftflow/mftflow/pipeline/bus"
	"github.com/mftflow/mftflow/pipeline/engine"
	"github.com/mftflow/mftflow/testkit/natscluster"
)

// The cluster tests run two runner processes on one flow against a
// three-node NATS cluster: 200 files of mixed sizes from one input directory
// into one shared output directory.
const (
	clusterFlowName = "shared"
	clusterFiles    = 200
	clusterPartSize = 4 << 20
	// clusterDeadline bounds each wait of these tests, so a stuck flow fails
	// with the runners' logs rather than at the go test timeout.
	clusterDeadline = 3 * time.Minute
	// clusterLogsEnv names a directory that receives each runner's whole log
	// (and, from a runner that did not end, its goroutines); a failing test
	// shows only the end of each log.
	clusterLogsEnv = "MFTFLOW_TEST_LOGS"
)

// clusterInput is one input file: its size and sha256.
type clusterInput struct {
	size int64
	sha  string
}

// writeClusterInput writes 200 files into in: big.bin of big bytes first
// (so it is the oldest and read first), then one file per mids size, then
// small files (0 bytes, chunk boundaries, up to 256 KiB), some in
// subdirectories. Each file has its own pseudo-random content, so files of
// equal size differ. It returns the files by slash-separated name, and the
// file id big.bin gets on the bus (from its key, which the local source
// makes of name, size and modification time).
func writeClusterInput(t *testing.T, in string, big int64, mids ...int64) (map[string]clusterInput, string) {
	t.Helper()
	sizes := []int64{big}
	sizes = append(sizes, mids...)
	sizes = append(sizes, 0, 1, 1<<20-1, 1<<20, 1<<20+1)
	rng := rand.New(rand.NewPCG(7, 11))
	for len(sizes) < clusterFiles {
		sizes = append(sizes, rng.Int64N(256<<10)+1)
	}
	files := make(map[string]clusterInput, len(sizes))
	// Modification times one second apart, in order: the local source
	// offers the oldest first.
	start := time.Now().Add(-time.Duration(len(sizes)) * time.Second).Truncate(time.Second)
	for i, size := range sizes {
		name := fmt.Sprintf("f%03d.bin", i)
		switch {
		case i == 0:
			name = "big.bin"
		case i%5 == 0:
			name = fmt.Sprintf("d%d/f%03d.bin", i%3, i)
		}
		p := filepath.Join(in, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		files[name] = clusterInput{size: size, sha: writeSeededFile(t, p, size, uint64(i))}
		mt := start.Add(time.Duration(i) * time.Second)
		if err := os.Chtimes(p, mt, mt); err != nil {
			t.Fatal(err)
		}
	}
	bigID := bus.FileID(clusterFlowName, fmt.Sprintf("big.bin|%d|%d", big, start.UnixNano()))
	return files, bigID
}

// writeSeededFile writes size pseudo-random bytes from seed to name and
// returns their sha256.
func writeSeededFile(t *testing.T, name string, size int64, seed uint64) string {
	t.Helper()
	f, err := os.Create(name)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var key [32]byte
	for i := range 8 {
		key[i] = byte(seed >> (8 * i))
	}
	h := sha256.New()
	if _, err := io.CopyN(io.MultiWriter(f, h), rand.NewChaCha8(key), size); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(h.Sum(nil))
}

// writeClusterFlow writes the flow file both runners run: a finite local
// source (it ends once the files present at the start are delivered) into
// one local sink. With fsync every part is flushed to disk, which slows the
// sink down enough for a fault to land while the big file is written.
// clusterFlow says how writeClusterFlow writes the flow: with a sink that
// syncs each file, and with files read by reference from the source
// directory, which the test declares shared by the runners.
type clusterFlow struct{ fsync, reference bool }

func writeClusterFlow(t *testing.T, dir, in, out string, o clusterFlow) string {
	t.Helper()
	fsync, payload := o.fsync, "bytes"
	// The tests act while a runner is at work (start the second, kill the
	// one writing big.bin); a runner that owns the machine's two cores
	// can finish before the test, starved of them, looks: a limit keeps
	// the work going for seconds and leaves the test some CPU. By
	// reference no byte crosses the cluster, but the limit still paces
	// what the sink writes.
	rate := "rate: 48M"
	if o.reference {
		payload, rate = "reference", "rate: 96M"
	}
	return writeFile(t, dir, "shared.yaml", `name: `+clusterFlowName+`
`+rate+`
source:
  local:
    path: `+in+`
    watch: false
    stable_for: 0s
    shared: `+strconv.FormatBool(o.reference)+`
sinks:
  - name: out
    parallelism: 4
    retry:
      initial: 200ms
    local:
      path: `+out+`
      part_size: 4MiB
      fsync: `+strconv.FormatBool(fsync)+`
bus:
  compression: none
  payload: `+payload+`
`)
}

// clusterRunner is a runner process of a cluster test.
type clusterRunner struct {
	name           string
	cmd            *exec.Cmd
	stdout, stderr opsLog
	exited         chan struct{} // closed once the process has ended
	waitErr        error         // set before exited is closed
}

// startClusterRunner starts "runner run" on flow in dir with --nats-url
// urls and the extra flags.
func startClusterRunner(t *testing.T, name, dir, urls, flow string, flags ...string) *clusterRunner {
	t.Helper()
	args := append([]string{"run", "--nats-url", urls, "--progress", "none", "--log-level", "info"}, flags...)
	r := &clusterRunner{name: name, cmd: exec.Command(runnerBin, append(args, flow)...), exited: make(chan struct{})}
	r.cmd.Dir = dir
	r.cmd.Stdout, r.cmd.Stderr = &r.stdout, &r.stderr
	if err := r.cmd.Start(); err != nil {
		t.Fatalf("starting runner %s: %v", name, err)
	}
	go func() {
		r.waitErr = r.cmd.Wait()
		close(r.exited)
	}()
	t.Cleanup(func() {
		r.cmd.Process.Kill()
		<-r.exited
		if d := os.Getenv(clusterLogsEnv); d != "" {
			os.WriteFile(filepath.Join(d, t.Name()+"-"+name+".log"), []byte(r.stderr.String()), 0o644)
		}
		if t.Failed() {
			t.Logf("runner %s stdout:\n%s\nrunner %s stderr (last 80 lines):\n%s", name, r.stdout.String(), name, tail(r.stderr.String(), 80))
		}
	})
	return r
}

// wait waits for the runner to end by itself and returns its exit code.
func (r *clusterRunner) wait(t *testing.T, js jetstream.JetStream) int {
	t.Helper()
	select {
	case <-r.exited:
	case <-time.After(clusterDeadline):
		state := unfinished(js)
		if os.Getenv(clusterLogsEnv) != "" {
			// Its goroutines, on its stderr, show where it waits.
			r.cmd.Process.Signal(syscall.SIGQUIT)
			select {
			case <-r.exited:
			case <-time.After(10 * time.Second):
			}
		}
		t.Fatalf("runner %s did not end within %v; %s", r.name, clusterDeadline, state)
	}
	var ee *exec.ExitError
	switch {
	case r.waitErr == nil:
		return 0
	case errors.As(r.waitErr, &ee):
		return ee.ExitCode()
	}
	t.Fatalf("runner %s: %v", r.name, r.waitErr)
	return -1
}

// connectCluster connects the test to the cluster's JetStream.
func connectCluster(t *testing.T, c *natscluster.Cluster) jetstream.JetStream {
	t.Helper()
	nc, err := nats.Connect(c.URLs(), nats.MaxReconnects(-1))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	return js
}

// waitLeaseHolder waits until a run holds the flow's source lease and
// returns its run id.
func waitLeaseHolder(t *testing.T, js jetstream.JetStream, runners ...*clusterRunner) string {
	t.Helper()
	deadline := time.Now().Add(clusterDeadline)
	for time.Now().Before(deadline) {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		var holder string
		if kv, err := js.KeyValue(ctx, bus.Names{Flow: clusterFlowName}.Bucket()); err == nil {
			if e, err := kv.Get(ctx, engine.LeaseKey); err == nil {
				var l engine.Lease
				if json.Unmarshal(e.Value(), &l) == nil {
					holder = l.Holder
				}
			}
		}
		cancel()
		if holder != "" {
			return holder
		}
		for _, r := range runners {
			select {
			case <-r.exited:
				t.Fatalf("runner %s ended before any run held the source lease: %v", r.name, r.waitErr)
			default:
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("no run took the source lease within %v", clusterDeadline)
	return ""
}

// clusterStatus reads the flow's state from the cluster; ok is false when
// it cannot be read right now (a node may be down).
func clusterStatus(js jetstream.JetStream) (engine.FlowStatus, bool) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	st, err := engine.ReadStatus(ctx, js, clusterFlowName)
	if err != nil || len(st) != 1 {
		return engine.FlowStatus{}, false
	}
	return st[0], true
}

// unfinished describes the files of the flow that are not done, for
// failure messages.
func unfinished(js jetstream.JetStream) string {
	st, ok := clusterStatus(js)
	if !ok {
		return "the flow's state cannot be read"
	}
	var b strings.Builder
	n := 0
	for _, f := range st.Files {
		if f.Manifest.State == bus.FileDone {
			continue
		}
		n++
		fmt.Fprintf(&b, "\n  %s (id %s): %s", f.Manifest.Name, f.Manifest.ID, f.Manifest.State)
		for _, d := range f.Deliveries {
			fmt.Fprintf(&b, "; delivery %s, %d parts done, %d attempts, owner %s, error %q", d.State, d.Done.Count(), d.Attempts, d.Owner, d.Error)
		}
		if len(f.Deliveries) == 0 {
			b.WriteString("; no delivery record")
		}
	}
	return fmt.Sprintf("%d of %d files in the state, %d not done:%s", len(st.Files), clusterFiles, n, b.String())
}

// logged reports whether a line of log contains every one of parts.
func logged(log string, parts ...string) bool {
	for _, line := range strings.Split(log, "\n") {
		found := true
		for _, p := range parts {
			found = found && strings.Contains(line, p)
		}
		if found {
			return true
		}
	}
	return false
}

// runOf is the run id part of a delivery's Owner ("<run id>/<attempt>").
func runOf(owner string) string {
	run, _, _ := strings.Cut(owner, "/")
	return run
}

// partsOf is how many sink parts a file of size bytes has: an empty file
// has one, empty.
func partsOf(size int64) int {
	return max(1, int((size+clusterPartSize-1)/clusterPartSize))
}

// checkClusterOutput checks that out holds exactly the input files, each
// byte-identical, and nothing else (no temporary file, no second copy).
func checkClusterOutput(t *testing.T, out string, want map[string]clusterInput) {
	t.Helper()
	got := map[string]clusterInput{}
	err := filepath.WalkDir(out, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		rel, _ := filepath.Rel(out, p)
		fi, err := d.Info()
		if err != nil {
			return err
		}
		got[filepath.ToSlash(rel)] = clusterInput{size: fi.Size(), sha: fileSHA256(t, p)}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(want, got, cmp.AllowUnexported(clusterInput{})); diff != "" {
		t.Errorf("output directory differs from the input (-want +got):\n%s", diff)
	}
}

// checkClusterState checks the flow's recorded state: every file done and
// passed with its sha256, and its one delivery committed with its size. It
// returns the deliveries by file name.
func checkClusterState(t *testing.T, st engine.FlowStatus, want map[string]clusterInput) map[string]bus.Delivery {
	t.Helper()
	if len(st.Files) != len(want) {
		t.Errorf("the flow's state holds %d files, want %d", len(st.Files), len(want))
	}
	deliveries := map[string]bus.Delivery{}
	for _, f := range st.Files {
		m := f.Manifest
		in, ok := want[m.Name]
		if !ok {
			t.Errorf("the state holds a file %q that is not an input", m.Name)
			continue
		}
		if m.State != bus.FileDone || m.Outcome != "passed" || m.SHA256 != in.sha || m.Size != in.size {
			t.Errorf("%s: state %s, outcome %s, sha256 %s, size %d; want done, passed, %s, %d", m.Name, m.State, m.Outcome, m.SHA256, m.Size, in.sha, in.size)
		}
		if len(f.Deliveries) != 1 {
			t.Errorf("%s: %d delivery records, want 1", m.Name, len(f.Deliveries))
			continue
		}
		d := f.Deliveries[0]
		if d.State != bus.DeliveryCommitted || d.Bytes != in.size {
			t.Errorf("%s: delivery %s with %d bytes (%s); want committed with %d", m.Name, d.State, d.Bytes, d.Error, in.size)
		}
		deliveries[m.Name] = d
	}
	return deliveries
}

// checkStreamReplicas checks that the flow's streams have want replicas.
func checkStreamReplicas(t *testing.T, js jetstream.JetStream, want int) {
	t.Helper()
	n := bus.Names{Flow: clusterFlowName}
	for _, name := range []string{n.ChunkStream(), n.TaskStream(), n.KVStream()} {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		s, err := js.Stream(ctx, name)
		cancel()
		if err != nil {
			t.Errorf("stream %s: %v", name, err)
			continue
		}
		if r := s.CachedInfo().Config.Replicas; r != want {
			t.Errorf("stream %s: %d replicas, want %d", name, r, want)
		}
	}
}

// clusterPair is two runners of one flow on a three-node cluster, runner a
// holding the source lease.
type clusterPair struct {
	c      *natscluster.Cluster
	js     jetstream.JetStream
	out    string
	want   map[string]clusterInput
	bigID  string
	a, b   *clusterRunner
	holder string // runner a's run id
}

// startClusterPair writes the input (big.bin of big bytes, then mids) and
// the flow, and starts runner a, then, once a holds the source lease (so
// which process reads the source is known), runner b; flags go to both.
func startClusterPair(t *testing.T, o clusterFlow, flags []string, big int64, mids ...int64) *clusterPair {
	t.Helper()
	return startClusterPairWith(t, o, flags, func(in string) (map[string]clusterInput, string) {
		return writeClusterInput(t, in, big, mids...)
	})
}

// startClusterPairWith is startClusterPair with the input written by
// input, which returns the files and big.bin's id, if any.
func startClusterPairWith(t *testing.T, o clusterFlow, flags []string, input func(in string) (map[string]clusterInput, string)) *clusterPair {
	t.Helper()
	p := &clusterPair{c: natscluster.Start(t, 3)}
	p.js = connectCluster(t, p.c)
	dir := t.TempDir()
	in := filepath.Join(dir, "in")
	p.out = filepath.Join(dir, "out")
	p.want, p.bigID = input(in)
	flow := writeClusterFlow(t, dir, in, p.out, o)
	p.a = startClusterRunner(t, "a", dir, p.c.URLs(), flow, flags...)
	p.holder = waitLeaseHolder(t, p.js, p.a)
	p.b = startClusterRunner(t, "b", dir, p.c.URLs(), flow, flags...)
	return p
}

// checkFinished checks that every file arrived once and byte-identical and
// that the flow's state says so, and returns the deliveries by file name.
func (p *clusterPair) checkFinished(t *testing.T) map[string]bus.Delivery {
	t.Helper()
	checkClusterOutput(t, p.out, p.want)
	st, ok := clusterStatus(p.js)
	if !ok {
		t.Fatal("cannot read the flow's state")
	}
	return checkClusterState(t, st, p.want)
}

// checkSummary checks that runner r reports every file passed.
// checkSummary checks that runner r counts every file: passed by it, or
// found already done (by the other runner) when it polled the source.
func checkSummary(t *testing.T, r *clusterRunner, files int) {
	t.Helper()
	m := summaryRE.FindStringSubmatch(r.stdout.String())
	if m == nil {
		t.Errorf("runner %s summary %q; want %q", r.name, r.stdout.String(), summaryRE)
		return
	}
	passed, _ := strconv.Atoi(m[1])
	done, _ := strconv.Atoi(m[3])
	if passed+done != files {
		t.Errorf("runner %s summary %q: %d passed and %d already done; want %d in all", r.name, r.stdout.String(), passed, done, files)
	}
}

var summaryRE = regexp.MustCompile(`^` + clusterFlowName + `: (\d+) passed, 0 failed, 0 skipped(, (\d+) already done \(not sent again\))?;`)

// checkWritesOnce checks that every part of every delivery was written once.
func checkWritesOnce(t *testing.T, deliveries map[string]bus.Delivery, want map[string]clusterInput) {
	t.Helper()
	for name, d := range deliveries {
		if p := partsOf(want[name].size); d.Writes != p {
			t.Errorf("%s: %d part writes, want %d (each part once)", name, d.Writes, p)
		}
	}
}

// TestClusterTwoRunnersShareTheWork runs two runners on the same flow on a
// three-node cluster. One holds the source lease and reads the files; both
// take delivery tasks. The flow is finite: the holder ends once every file
// is final and releases the lease; the other then takes it, finds every
// file of the source done, and ends too.
func TestClusterTwoRunnersShareTheWork(t *testing.T) {
	if testing.Short() {
		t.Skip("moves 370 MiB through a three-node cluster; skipped with -short")
	}
	p := startClusterPair(t, clusterFlow{}, nil, 256<<20, 16<<20, 20<<20, 24<<20, 32<<20)
	a, b, holder := p.a, p.b, p.holder

	if code := a.wait(t, p.js); code != 0 {
		t.Fatalf("runner a (the lease holder) exited %d", code)
	}
	if code := b.wait(t, p.js); code != 0 {
		t.Fatalf("runner b exited %d", code)
	}
	checkSummary(t, a, clusterFiles)
	checkSummary(t, b, clusterFiles)
	if !logged(b.stderr.String(), `msg="another runner polls the source; this one delivers and takes over if that one stops renewing its lease"`, "holder="+holder+" ") {
		t.Errorf("runner b did not report that runner a (%s) polls the source", holder)
	}

	deliveries := p.checkFinished(t)
	checkStreamReplicas(t, p.js, 3)

	// Each delivery was committed by one of the two runs, each of its parts
	// written once; both runs committed some.
	checkWritesOnce(t, deliveries, p.want)
	byRun := map[string]int{}
	for _, d := range deliveries {
		byRun[runOf(d.Owner)]++
	}
	if len(byRun) != 2 || byRun[holder] == 0 || byRun[holder] == len(deliveries) {
		t.Errorf("deliveries committed by run: %v; want both runs (runner a is %s) to have committed some", byRun, holder)
	}
	t.Logf("deliveries committed by run (runner a, the lease holder, is %s): %v", holder, byRun)
}

// waitMidTransfer waits until the delivery of big.bin (file id) has at
// least parts parts written and is not final, and returns it. It polls that
// one record: reading the whole flow's state takes too long on a busy
// machine to catch the delivery under way.
func waitMidTransfer(t *testing.T, js jetstream.JetStream, id string, parts int, runners ...*clusterRunner) bus.Delivery {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), clusterDeadline)
	defer cancel()
	kv, err := js.KeyValue(ctx, bus.Names{Flow: clusterFlowName}.Bucket())
	if err != nil {
		t.Fatal(err)
	}
	for ctx.Err() == nil {
		for _, r := range runners {
			select {
			case <-r.exited:
				t.Fatalf("runner %s ended before big.bin's delivery was under way: %v", r.name, r.waitErr)
			default:
			}
		}
		var d bus.Delivery
		if e, err := kv.Get(ctx, bus.DeliveryKey(id, "out")); err == nil && json.Unmarshal(e.Value(), &d) == nil {
			if bus.Final(d.State) {
				// Timing, not a defect: the fault has to land while the big
				// file is written, and a fast or busy machine can let the
				// delivery end between two looks. Nothing was checked.
				t.Skipf("big.bin's delivery was %s before the fault could be injected: the scenario did not happen on this run", d.State)
			}
			if d.State == bus.DeliveryActive && d.Done.Count() >= parts {
				return d
			}
		}
		time.Sleep(2 * time.Millisecond)
	}
	t.Fatalf("big.bin's delivery (file id %s) did not get %d parts written within %v; %s", id, parts, clusterDeadline, unfinished(js))
	return bus.Delivery{}
}

// TestClusterRunnerKilledMidTransfer SIGKILLs the runner writing big.bin,
// half-way through, while two runners share a flow on a three-node cluster.
// The other runner finishes every file (taking the source lease over when
// the killed one held it): each file arrives once, byte-identical, and the
// killed delivery is resumed from the parts it had recorded. It does so
// with the bytes on the bus, and with files read by reference from a
// directory both runners see.
func TestClusterRunnerKilledMidTransfer(t *testing.T) {
	if testing.Short() {
		t.Skip("moves 320 MiB through a three-node cluster; skipped with -short")
	}
	for _, reference := range []bool{false, true} {
		t.Run(map[bool]string{false: "bytes", true: "reference"}[reference], func(t *testing.T) {
			killMidTransferInCluster(t, clusterFlow{fsync: true, reference: reference})
		})
	}
}

func killMidTransferInCluster(t *testing.T, o clusterFlow) {
	// The kill must land mid-transfer, so the first runner must not be done
	// before the test sees it hold the source lease: with the bytes on the
	// bus a runner moves 128 MiB in under 3 s on a fast machine; by
	// reference no byte crosses the cluster at all.
	bigSize := int64(256 << 20)
	if o.reference {
		bigSize = 512 << 20
	}
	p := startClusterPair(t, o, nil, bigSize, 16<<20, 24<<20)
	js, a, b, holder := p.js, p.a, p.b, p.holder

	// Kill whichever runner is writing big.bin. That is usually runner a,
	// the lease holder: it starts first and big.bin is the first file read,
	// so the other runner then has to take the source over as well.
	atKill := waitMidTransfer(t, js, p.bigID, 3, a, b)
	victimRun := runOf(atKill.Owner)
	victim, survivor := b, a
	if victimRun == holder {
		victim, survivor = a, b
	}
	if err := victim.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	<-victim.exited
	t.Logf("killed runner %s (run %s, lease holder: %v) with big.bin at %d of %d parts", victim.name, victimRun, victim == a, atKill.Done.Count(), partsOf(bigSize))

	if code := survivor.wait(t, js); code != 0 {
		t.Fatalf("runner %s exited %d", survivor.name, code)
	}
	checkSummary(t, survivor, clusterFiles)
	deliveries := p.checkFinished(t)
	checkStreamReplicas(t, js, 3)

	// No part of any file was written twice: a part the killed runner wrote
	// without recording it counts once, when the survivor writes it again.
	checkWritesOnce(t, deliveries, p.want)
	// big.bin was finished by the survivor, which skipped every part the
	// killed runner had recorded.
	d := deliveries["big.bin"]
	if runOf(d.Owner) == victimRun || d.Attempts < 2 || d.Resumed < atKill.Done.Count() {
		t.Errorf("big.bin: owner %s, %d attempts, %d parts resumed; want another run than the killed %s, at least 2 attempts, at least %d resumed (recorded before the kill)",
			d.Owner, d.Attempts, d.Resumed, victimRun, atKill.Done.Count())
	}
	if st, ok := clusterStatus(js); ok && o.reference {
		for _, f := range st.Files {
			// Small files carry their bytes, in groups or in their manifest.
			if f.Manifest.Size > 32<<10 && f.Manifest.Payload != pipeline.PayloadReference {
				t.Errorf("%s travelled by %q; want reference", f.Manifest.Name, f.Manifest.Payload)
			}
		}
	}
	t.Logf("big.bin: %d attempts, %d parts resumed, %d writes", d.Attempts, d.Resumed, d.Writes)
}

// metaLeader is the server name of the cluster's JetStream meta leader, as
// node i's monitoring endpoint reports it.
// TestClusterRunnerKilledWhileGroupsAreDelivered kills the runner that
// reads the source while 6,000 small files travel in groups between two
// runners: the other takes the source over and every file arrives once.
// With fewer files the first runner may be done before the test sees it
// hold the lease.
func TestClusterRunnerKilledWhileGroupsAreDelivered(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a three-node cluster; skipped with -short")
	}
	const n = 6000
	// With fsync the sink is slow enough for the kill to land mid-run.
	p := startClusterPairWith(t, clusterFlow{fsync: true}, nil, func(in string) (map[string]clusterInput, string) {
		files := map[string]clusterInput{}
		for i := range n {
			name := fmt.Sprintf("g%d/edi-%04d.txt", i%5, i)
			path := filepath.Join(in, filepath.FromSlash(name))
			if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
				t.Fatal(err)
			}
			size := int64(i*7919%(8<<10)) + int64(i%2)
			files[name] = clusterInput{size: size, sha: writeSeededFile(t, path, size, uint64(i))}
		}
		return files, ""
	})
	a, b := p.a, p.b
	// Kill the lease holder once some of the files, not all, arrived
	// (counted in one of the five folders: listing all takes long).
	for deadline := time.Now().Add(clusterDeadline); ; {
		if got := len(listFiles(t, filepath.Join(p.out, "g0"))); got >= n/50 {
			t.Logf("killing runner a (the lease holder) with %d of g0's %d files delivered", got, n/5)
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no files delivered in %s", clusterDeadline)
		}
		time.Sleep(10 * time.Millisecond)
	}
	if err := a.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	<-a.exited
	if got := len(listFiles(t, p.out)); got == n {
		t.Fatalf("every file was delivered before the kill landed")
	}
	if code := b.wait(t, p.js); code != 0 {
		t.Fatalf("runner b exited %d", code)
	}
	checkSummary(t, b, n)
	deliveries := p.checkFinished(t)
	checkWritesOnce(t, deliveries, p.want)
}

func metaLeader(t *testing.T, c *natscluster.Cluster, i int) string {
	t.Helper()
	resp, err := http.Get(c.MonitorURL(i) + "/jsz")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var z struct {
		Meta struct {
			Leader string `json:"leader"`
		} `json:"meta_cluster"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&z); err != nil {
		t.Fatalf("/jsz of node %d: %v", i, err)
	}
	return z.Meta.Leader
}

// flowStreams are the names of the flow's streams.
func flowStreams() []string {
	n := bus.Names{Flow: clusterFlowName}
	return []string{n.ChunkStream(), n.TaskStream(), n.KVStream()}
}

// streamCluster returns the cluster info of stream name.
func streamCluster(js jetstream.JetStream, name string) (*jetstream.ClusterInfo, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	s, err := js.Stream(ctx, name)
	if err != nil {
		return nil, err
	}
	info, err := s.Info(ctx)
	if err != nil {
		return nil, err
	}
	if info.Cluster == nil {
		return nil, fmt.Errorf("stream %s has no cluster info", name)
	}
	return info.Cluster, nil
}

// describeCluster describes a stream's cluster info for failure messages.
func describeCluster(ci *jetstream.ClusterInfo, err error) string {
	if err != nil {
		return err.Error()
	}
	s := "leader " + ci.Leader
	for _, p := range ci.Replicas {
		s += fmt.Sprintf(", replica %s (current %v, offline %v, lag %d)", p.Name, p.Current, p.Offline, p.Lag)
	}
	return s
}

// TestClusterNATSNodeStoppedMidTransfer stops one node of a three-node
// cluster (the one leading most of the meta group and the flow's streams)
// while two runners move files with three replicas. The flow continues on
// the two other nodes and completes; the node, started again, rejoins and
// catches up with every stream of the flow.
func TestClusterNATSNodeStoppedMidTransfer(t *testing.T) {
	if testing.Short() {
		t.Skip("moves 190 MiB through a three-node cluster; skipped with -short")
	}
	p := startClusterPair(t, clusterFlow{fsync: true}, []string{"--replicas", "3"}, 128<<20, 16<<20, 24<<20)
	c, js, a, b, holder := p.c, p.js, p.a, p.b, p.holder

	atStop := waitMidTransfer(t, js, p.bigID, 1, a, b)
	// The node leading the most of the meta group and the flow's streams.
	led := map[string][]string{metaLeader(t, c, 0): {"meta"}}
	for _, name := range flowStreams() {
		ci, err := streamCluster(js, name)
		if err != nil {
			t.Fatal(err)
		}
		led[ci.Leader] = append(led[ci.Leader], name)
	}
	stop := 0
	for i := range c.Len() {
		if len(led[c.Name(i)]) > len(led[c.Name(stop)]) {
			stop = i
		}
	}
	name := c.Name(stop)
	c.Stop(stop)
	t.Logf("stopped node %s (leader of %v) with big.bin's delivery at %d of %d parts", name, led[name], atStop.Done.Count(), partsOf(p.want["big.bin"].size))

	// The flow completes on the two other nodes.
	if code := a.wait(t, js); code != 0 {
		t.Fatalf("runner a (lease holder %s) exited %d", holder, code)
	}
	if code := b.wait(t, js); code != 0 {
		t.Fatalf("runner b exited %d", code)
	}
	p.checkFinished(t) // with one node down

	// Started again, the node rejoins: every stream of the flow counts it
	// as a current replica again.
	c.Restart(stop)
	deadline := time.Now().Add(clusterDeadline)
	for _, stream := range flowStreams() {
		for {
			ci, err := streamCluster(js, stream)
			current := false
			if err == nil {
				current = ci.Leader == name
				for _, p := range ci.Replicas {
					if p.Name == name && p.Current && !p.Offline {
						current = true
					}
				}
			}
			if current {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("node %s did not become a current replica of stream %s again within %v: %s", name, stream, clusterDeadline, describeCluster(ci, err))
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
	checkStreamReplicas(t, js, 3)
}
