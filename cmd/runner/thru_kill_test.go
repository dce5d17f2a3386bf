package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/mftflow/mftflow/connectors/thru"
	"github.com/mftflow/mftflow/pipeline/bus"
	"github.com/mftflow/mftflow/pipeline/engine"
	"github.com/mftflow/mftflow/testkit/thrusim"
)

// The simulated site of the Thru crash tests.
const (
	simAPIKey   = "kill-api-key"
	simEndpoint = "flow:TRN1/endpoint:END1/flowendpoint:1"
	simConfig   = `site_access_key: kill-access
aes_key: 000102030405060708090a0b0c0d0e0f
timestamp_window: 5m
pickup_delay: 0s
flows:
  - code: TRN1
    secret_key: kill-secret
    endpoints:
      - {code: END1, id: "1"}
api_keys: [` + simAPIKey + `]
`
)

var (
	thrusimOnce sync.Once
	thrusimBin  string
	thrusimErr  error
)

// buildThrusim builds the standalone simulator once per test binary, next to
// the runner binary (TestMain removes both).
func buildThrusim(t *testing.T) string {
	t.Helper()
	thrusimOnce.Do(func() {
		bin := filepath.Join(filepath.Dir(runnerBin), "thrusim")
		out, err := exec.Command("go", "build", "-o", bin, "github.com/mftflow/mftflow/testkit/cmd/thrusim").CombinedOutput()
		if err != nil {
			thrusimErr = fmt.Errorf("building thrusim: %v\n%s", err, out)
			return
		}
		thrusimBin = bin
	})
	if thrusimErr != nil {
		t.Fatal(thrusimErr)
	}
	return thrusimBin
}

// simSite is a thrusim process serving on 127.0.0.1 on a free port.
type simSite struct {
	url string
}

// startThrusim starts the simulator with simConfig until the test ends.
func startThrusim(t *testing.T, dir string) *simSite {
	t.Helper()
	bin := buildThrusim(t)
	cfg := writeFile(t, dir, "thrusim.yaml", simConfig)
	errLog, err := os.Create(filepath.Join(dir, "thrusim.log"))
	if err != nil {
		t.Fatal(err)
	}
	// The simulator is killed at the end: its spool goes with the test's
	// directory.
	cmd := exec.Command(bin, "--listen", "127.0.0.1:0", "--config", cfg, "--spool-dir", filepath.Join(dir, "thrusim-spool"))
	cmd.Stderr = errLog
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
		errLog.Close()
	})
	line, err := bufio.NewReader(stdout).ReadString('\n')
	if err != nil {
		b, _ := os.ReadFile(errLog.Name())
		t.Fatalf("thrusim did not print its URL: %v\n%s", err, b)
	}
	return &simSite{url: strings.TrimSpace(line)}
}

func (s *simSite) do(t *testing.T, method, path string, header http.Header, body, into any) {
	t.Helper()
	var rd *bytes.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	} else {
		rd = bytes.NewReader(nil)
	}
	req, err := http.NewRequest(method, s.url+path, rd)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range header {
		req.Header[k] = v
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		var b bytes.Buffer
		b.ReadFrom(resp.Body)
		t.Fatalf("%s %s: %s: %s", method, path, resp.Status, b.String())
	}
	if into != nil {
		if err := json.NewDecoder(resp.Body).Decode(into); err != nil {
			t.Fatalf("%s %s: %v", method, path, err)
		}
	}
}

func (s *simSite) calls(t *testing.T) []thrusim.Call {
	var cs []thrusim.Call
	s.do(t, http.MethodGet, "/_admin/calls", nil, nil, &cs)
	return cs
}

func (s *simSite) deliveries(t *testing.T) []thrusim.Delivery {
	var ds []thrusim.Delivery
	s.do(t, http.MethodGet, "/_admin/deliveries", nil, nil, &ds)
	return ds
}

func (s *simSite) setFaults(t *testing.T, f thrusim.Faults) {
	s.do(t, http.MethodPut, "/_admin/faults", nil, f, nil)
}

// session asks the site for an upload session's state, as a client resuming
// it would.
func (s *simSite) session(t *testing.T, id string) thru.SessionStatus {
	var st thru.SessionStatus
	s.do(t, http.MethodGet, thru.PathUploadSessions+"/"+id, http.Header{thru.APIKeyHeader: {simAPIKey}}, nil, &st)
	return st
}

// confirmed returns the chunk numbers of the calls of kind answered 200,
// among calls (all of them when since is zero, else those received since).
func confirmed(calls []thrusim.Call, kind string, since time.Time) map[int]int {
	m := map[int]int{}
	for _, c := range calls {
		if c.Kind == kind && c.Status == http.StatusOK && !c.Time.Before(since) {
			m[c.Chunk]++
		}
	}
	return m
}

func countKind(calls []thrusim.Call, kind string) int {
	n := 0
	for _, c := range calls {
		if c.Kind == kind {
			n++
		}
	}
	return n
}

func sortedChunks(m map[int]int) []int {
	var s []int
	for k := range m {
		s = append(s, k)
	}
	slices.Sort(s)
	return s
}

// thruKillSetup writes a 128 MiB random file and a local → thru flow whose
// sink is given, and returns the runner's arguments and the file's sha256.
func thruKillSetup(t *testing.T, dir, flowName, sink string) (args []string, want string) {
	t.Helper()
	in, data := filepath.Join(dir, "in"), filepath.Join(dir, "data")
	os.MkdirAll(in, 0o755)
	want = writeRandomFile(t, filepath.Join(in, "big.bin"), thruKillSize)
	flow := writeFile(t, dir, flowName+".yaml", localFlowHead(flowName, in)+`  - name: thru
    parallelism: 2
    retry: {attempts: 5, initial: 200ms, max: 2s}
    thru:
`+sink+`
bus:
  compression: none
`)
	return []string{"run", "--data", data, "--progress", "none", "--log-level", "debug", flow}, want
}

const (
	thruKillSize  = 128 << 20
	thruKillChunk = 4 << 20
	thruKillN     = thruKillSize / thruKillChunk
)

// startRunner starts the runner with args, its output in dir/name.
func startRunner(t *testing.T, dir, name string, args ...string) (*exec.Cmd, func() string) {
	t.Helper()
	logPath := filepath.Join(dir, name)
	f, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(runnerBin, args...)
	cmd.Stdout, cmd.Stderr = f, f
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
		f.Close()
	})
	return cmd, func() string { b, _ := os.ReadFile(logPath); return string(b) }
}

// checkDelivered checks that the site holds the file exactly once, whole.
func checkDelivered(t *testing.T, site *simSite, via, want string) {
	t.Helper()
	ds := site.deliveries(t)
	if len(ds) != 1 {
		t.Fatalf("the site has %d deliveries, want exactly 1: %+v", len(ds), ds)
	}
	if d := ds[0]; d.Via != via || d.Name != "big.bin" || d.Size != thruKillSize || d.SHA256 != want {
		t.Fatalf("delivery %s %q, %d bytes, sha256 %s; want %s big.bin, %d bytes, sha256 %s", d.Via, d.Name, d.Size, d.SHA256, via, int64(thruKillSize), want)
	}
}

// TestSIGKILLMidThruDropOffResumes kills the runner in the middle of a
// 128 MiB local → Thru drop-off to the standalone simulator, restarts it on
// the same data directory, and checks that the site assembles the file once,
// byte-identical, and that no chunk the site had confirmed before the kill
// was sent again.
//
// Drop-off has no call to ask the site which chunks it holds: the runner
// knows a chunk is there once its answer arrived and the part was recorded.
// A chunk the site confirmed in the instant before the kill, whose answer
// the runner never saw, is rightly sent again. So that the check is exact,
// new chunk calls are held back by the site (a latency fault) once some
// chunks are confirmed, and the kill comes when every confirmed chunk is
// recorded in the runner's state, with chunk calls still outstanding.
func TestSIGKILLMidThruDropOffResumes(t *testing.T) {
	if testing.Short() {
		t.Skip("moves 128 MiB; skipped with -short")
	}
	dir := t.TempDir()
	site := startThrusim(t, dir)
	args, want := thruKillSetup(t, dir, "thrukill", `      mode: dropoff
      base_url: `+site.url+`
      flow_code: TRN1
      site_access_key: kill-access
      flow_secret_key: kill-secret
      aes_key: 000102030405060708090a0b0c0d0e0f
      part_size: 4MiB`)
	first, log1 := startRunner(t, dir, "run1.log", args...)

	deadline := time.Now().Add(60 * time.Second)
	for len(confirmed(site.calls(t), thrusim.KindChunk, time.Time{})) < 3 {
		if time.Now().After(deadline) {
			t.Fatalf("fewer than 3 chunks confirmed within 60s\n%s", log1())
		}
		time.Sleep(10 * time.Millisecond)
	}
	site.setFaults(t, thrusim.Faults{Latency: thrusim.Duration(10 * time.Minute), Kinds: []string{thrusim.KindChunk}})

	// Wait until the confirmed chunks stop changing and the runner has
	// recorded each of them (chunk n is part n-1).
	urlBytes, err := os.ReadFile(filepath.Join(dir, "data", "nats.url"))
	if err != nil {
		t.Fatal(err)
	}
	nc, err := nats.Connect(strings.TrimSpace(string(urlBytes)))
	if err != nil {
		t.Fatalf("connecting to the runner's server: %v\n%s", err, log1())
	}
	defer nc.Close()
	js, _ := jetstream.New(nc)
	ctx := context.Background()
	var before map[int]int
	for stable := 0; stable < 3; {
		if time.Now().After(deadline) {
			t.Fatalf("the runner did not record the confirmed chunks %v within 60s\n%s", sortedChunks(before), log1())
		}
		time.Sleep(100 * time.Millisecond)
		now := confirmed(site.calls(t), thrusim.KindChunk, time.Time{})
		st, err := engine.ReadStatus(ctx, js, "thrukill")
		if err != nil || len(st) == 0 || len(st[0].Files) == 0 || len(st[0].Files[0].Deliveries) == 0 {
			stable = 0
			continue
		}
		d := st[0].Files[0].Deliveries[0]
		if bus.Final(d.State) {
			t.Fatalf("the delivery is %s before the kill: the scenario did not happen", d.State)
		}
		recorded := true
		for c := range now {
			recorded = recorded && d.Done.Has(c-1)
		}
		if recorded && len(now) == len(before) {
			stable++
		} else {
			stable = 0
		}
		before = now
	}
	if err := first.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	first.Wait()
	nc.Close()
	atKill := site.calls(t)
	if n := countKind(atKill, thrusim.KindEOF); n != 0 {
		t.Fatalf("EOF was sent %d times before the kill: the scenario did not happen", n)
	}
	for c, n := range before {
		if n != 1 {
			t.Errorf("before the kill chunk %d was confirmed %d times", c, n)
		}
	}
	if len(before) >= thruKillN {
		t.Fatalf("all %d chunks were confirmed before the kill: the scenario did not happen", thruKillN)
	}
	site.setFaults(t, thrusim.Faults{})

	// Second run on the same data directory.
	restart := time.Now()
	stdout, stderr, code := runRunner(t, dir, args...)
	if code != 0 {
		t.Fatalf("second run exited %d\nstdout:\n%s\nstderr:\n%s", code, stdout, stderr)
	}
	checkDelivered(t, site, "dropoff", want)
	calls := site.calls(t)
	for _, c := range calls {
		if c.Kind == thrusim.KindChunk && !c.Time.Before(restart) && before[c.Chunk] > 0 {
			t.Errorf("chunk %d, confirmed before the kill, was sent again (call %d, status %d)", c.Chunk, c.Seq, c.Status)
		}
	}
	after, all := confirmed(calls, thrusim.KindChunk, restart), confirmed(calls, thrusim.KindChunk, time.Time{})
	for n := 1; n <= thruKillN; n++ {
		if all[n] != 1 {
			t.Errorf("chunk %d was confirmed %d times over both runs (%d before the kill); want once", n, all[n], before[n])
		}
	}
	t.Logf("killed with %d of %d chunks confirmed %v; the second run sent %d chunks, chunk zero %d times in all, EOF %d times",
		len(before), thruKillN, sortedChunks(before), len(after), countKind(calls, thrusim.KindChunkZero), countKind(calls, thrusim.KindEOF))
}

// TestSIGKILLMidThruUploadSessionResumes kills the runner in the middle of a
// 128 MiB local → Thru Content API upload session, restarts it on the same
// data directory, and checks that the site assembles the file once,
// byte-identical, through the same session, and that no chunk the session
// held at the kill (GET of the session) was sent again. Here the site is
// asked, so no chunk is held back: the kill lands wherever the upload is.
func TestSIGKILLMidThruUploadSessionResumes(t *testing.T) {
	if testing.Short() {
		t.Skip("moves 128 MiB; skipped with -short")
	}
	dir := t.TempDir()
	site := startThrusim(t, dir)
	args, want := thruKillSetup(t, dir, "thrukillcontent", `      mode: content
      base_url: `+site.url+`
      endpoint_path: "`+simEndpoint+`"
      api_key: `+simAPIKey+`
      simple_threshold: 0
      part_size: 4MiB`)
	first, log1 := startRunner(t, dir, "run1.log", args...)

	deadline := time.Now().Add(60 * time.Second)
	var session string
	for {
		calls := site.calls(t)
		if len(confirmed(calls, thrusim.KindSessionPut, time.Time{})) >= 3 {
			for _, c := range calls {
				if c.Kind == thrusim.KindSessionPut {
					session = strings.TrimPrefix(c.Path, thru.PathUploadSessions+"/")
				}
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("fewer than 3 session chunks confirmed within 60s\n%s", log1())
		}
		time.Sleep(10 * time.Millisecond)
	}
	if err := first.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	first.Wait()
	time.Sleep(200 * time.Millisecond) // let the site finish chunks that were in flight
	atKill := site.calls(t)
	if n := countKind(atKill, thrusim.KindSessionCommit); n != 0 {
		t.Fatalf("the session was committed %d times before the kill: the scenario did not happen", n)
	}
	if n := countKind(atKill, thrusim.KindSessionCreate); n != 1 {
		t.Fatalf("%d sessions created before the kill, want 1", n)
	}
	held := map[int]bool{}
	st := site.session(t, session)
	for _, c := range st.Chunks {
		held[c.SequenceNumber] = true
	}
	if st.State != thru.SessionOpen || len(held) >= thruKillN {
		t.Fatalf("at the kill the session is %s with %d of %d chunks: the scenario did not happen", st.State, len(held), thruKillN)
	}
	for c := range confirmed(atKill, thrusim.KindSessionPut, time.Time{}) {
		if !held[c] {
			t.Errorf("chunk %d was confirmed but the session does not hold it", c)
		}
	}

	restart := time.Now()
	stdout, stderr, code := runRunner(t, dir, args...)
	if code != 0 {
		t.Fatalf("second run exited %d\nstdout:\n%s\nstderr:\n%s", code, stdout, stderr)
	}
	checkDelivered(t, site, "content", want)
	calls := site.calls(t)
	if n := countKind(calls, thrusim.KindSessionCreate); n != 1 {
		t.Errorf("%d sessions created in all; want 1 (the second run resumes the first one's)", n)
	}
	sent := 0
	for _, c := range calls {
		if c.Kind != thrusim.KindSessionPut || c.Time.Before(restart) {
			continue
		}
		sent++
		if held[c.Chunk] {
			t.Errorf("chunk %d, held by the session at the kill, was sent again (call %d, status %d)", c.Chunk, c.Seq, c.Status)
		}
		if p := thru.PathUploadSessions + "/" + session; c.Path != p {
			t.Errorf("the second run sent chunk %d to %s, not to the first run's session %s", c.Chunk, c.Path, p)
		}
	}
	// A chunk the site took in after the kill (its request had arrived in
	// full) is in the session when the second run asks, so every chunk is
	// accepted exactly once over both runs.
	all := confirmed(calls, thrusim.KindSessionPut, time.Time{})
	for n := 1; n <= thruKillN; n++ {
		if all[n] != 1 {
			t.Errorf("chunk %d was confirmed %d times over both runs; want once", n, all[n])
		}
	}
	if st := site.session(t, session); st.State != thru.SessionCommitted {
		t.Errorf("after the second run the session is %s; want committed", st.State)
	}
	t.Logf("killed with %d of %d chunks held by the session; the second run sent %d chunks", len(held), thruKillN, sent)
}
