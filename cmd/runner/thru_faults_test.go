package main

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/mftflow/mftflow/connectors/thru"
	"github.com/mftflow/mftflow/testkit/thrusim"
)

// The fault scenario of TestThruFaultsDeliverEveryFile.
const (
	faultPart      = 4 << 20 // part_size: one drop-off or session chunk
	faultFailRate  = 0.2     // chunk calls answered 500 or 503
	faultResetRate = 0.05    // of the others, connections cut half-way through the body
	faultBigSize   = 512 << 20
	// faultParallelism is the sink's parallelism: parts of one file written
	// at once. When a part fails for good the engine ends the delivery
	// attempt but lets the other parts in flight finish and records them, so
	// none the site accepted is sent again by the next attempt.
	faultParallelism = 4
)

// faultFile is one file of the source, with what the site must end up with.
type faultFile struct {
	name   string
	size   int64
	sha256 string
}

func (f faultFile) chunks() int { return int((f.size + faultPart - 1) / faultPart) }

// writeFaultFiles writes 49 files whose sizes spread from 0 bytes to 64 MiB
// (roughly doubling every two files, most of them not a multiple of the
// chunk size), plus one 512 MiB file unless big is false, each with its own
// pseudo-random content, and returns them with their sha256.
func writeFaultFiles(t *testing.T, dir string, big bool) []faultFile {
	t.Helper()
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	sizes := []int64{0}
	for i := 1; i <= 48; i++ {
		s := int64(math.Round(math.Pow(2, 26*float64(i)/48)))
		if i < 48 {
			s += int64(13 * i)
		}
		sizes = append(sizes, s) // the last is 64 MiB exactly
	}
	if big {
		sizes = append(sizes, faultBigSize)
	}
	buf := make([]byte, 1<<20)
	files := make([]faultFile, 0, len(sizes))
	for i, size := range sizes {
		name := fmt.Sprintf("f%02d-%d.bin", i, size)
		out, err := os.Create(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		h := sha256.New()
		rng := rand.NewChaCha8([32]byte{7, byte(i)})
		if _, err := io.CopyBuffer(io.MultiWriter(out, h), io.LimitReader(rng, size), buf); err != nil {
			t.Fatal(err)
		}
		if err := out.Close(); err != nil {
			t.Fatal(err)
		}
		files = append(files, faultFile{name: name, size: size, sha256: hex.EncodeToString(h.Sum(nil))})
	}
	return files
}

// putFaults sets the site's faults through its admin API; it may run
// outside the test's goroutine.
func putFaults(url string, f thrusim.Faults) error {
	b, _ := json.Marshal(f)
	req, err := http.NewRequest(http.MethodPut, url+"/_admin/faults", bytes.NewReader(b))
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("PUT /_admin/faults: %s", resp.Status)
	}
	return nil
}

func ok2xx(status int) bool { return status >= 200 && status < 300 }

// TestThruFaultsDeliverEveryFile runs the runner binary on a local source of
// 50 files (0 bytes to 64 MiB, and one of 512 MiB) to the standalone Thru
// simulator, once in drop-off mode and once through Content API upload
// sessions, while the site fails a fifth of the chunk calls with 500 or 503
// (the status alternates during the run) and cuts the connection half-way
// through the body of about one in twenty of the others. The runner must
// exit 0, the site must hold every file exactly once, byte-identical, and
// its call log must show that only failed chunks were sent again: every
// chunk of every file was accepted exactly once, and no failure happened
// that the site did not inject. The sink writes one part of a file at a
// time and four files at once (see faultParallelism). With -short the
// 512 MiB file is left out.
func TestThruFaultsDeliverEveryFile(t *testing.T) {
	dir := t.TempDir()
	in := filepath.Join(dir, "in")
	start := time.Now()
	files := writeFaultFiles(t, in, !testing.Short())
	t.Logf("wrote %d files, %d MiB, in %s", len(files), sumSizes(files)>>20, time.Since(start).Round(time.Millisecond))

	t.Run("dropoff", func(t *testing.T) {
		runFaultFlow(t, dir, in, files, thrusim.KindChunk, func(url string) string {
			return `      mode: dropoff
      base_url: ` + url + `
      flow_code: TRN1
      site_access_key: kill-access
      flow_secret_key: kill-secret
      aes_key: 000102030405060708090a0b0c0d0e0f`
		}, checkDropOffCalls)
	})
	t.Run("content", func(t *testing.T) {
		runFaultFlow(t, dir, in, files, thrusim.KindSessionPut, func(url string) string {
			return `      mode: content
      base_url: ` + url + `
      endpoint_path: "` + simEndpoint + `"
      api_key: ` + simAPIKey + `
      simple_threshold: 0`
		}, checkSessionCalls)
	})
}

// runFaultFlow starts a site, runs the runner on in with the sink given by
// sink(site URL) under faults on calls of kind, and checks the deliveries;
// check then inspects the call log.
func runFaultFlow(t *testing.T, parent, in string, files []faultFile, kind string, sink func(url string) string,
	check func(t *testing.T, site *simSite, files []faultFile, calls []thrusim.Call)) {
	dir := filepath.Join(parent, kind)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	site := startThrusim(t, dir)
	flowName := "faults-" + kind
	flow := writeFile(t, dir, flowName+".yaml", localFlowHead(flowName, in, "after: leave")+`  - name: thru
    parallelism: `+fmt.Sprint(faultParallelism)+`
    files: 4
    retry: {attempts: 10, initial: 100ms, max: 2s}
    thru:
`+sink(site.url)+`
      part_size: 4MiB
bus:
  compression: none
`)
	faults := func(status int) thrusim.Faults {
		return thrusim.Faults{FailRate: faultFailRate, FailStatus: status, ResetRate: faultResetRate, Kinds: []string{kind}}
	}
	site.setFaults(t, faults(http.StatusServiceUnavailable))
	// Alternate the injected status between 503 and 500 while the runner runs.
	stop, toggled := make(chan struct{}), make(chan error, 1)
	go func() {
		var err error
		for i := 1; ; i++ {
			select {
			case <-stop:
				toggled <- err
				return
			case <-time.After(250 * time.Millisecond):
			}
			if e := putFaults(site.url, faults([]int{http.StatusServiceUnavailable, http.StatusInternalServerError}[i%2])); e != nil && err == nil {
				err = e
			}
		}
	}()

	began := time.Now()
	cmd, runLog := startRunner(t, dir, "run.log", "run", "--data", filepath.Join(dir, "data"), "--progress", "none", flow)
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	limit := 150 * time.Second
	var err error
	select {
	case err = <-done:
	case <-time.After(limit):
		cmd.Process.Kill()
		<-done
		close(stop)
		<-toggled
		t.Fatalf("the runner did not finish within %s\n%s", limit, tail(runLog(), 40))
	}
	elapsed := time.Since(began)
	close(stop)
	if e := <-toggled; e != nil {
		t.Errorf("alternating the injected status: %v", e)
	}
	site.setFaults(t, thrusim.Faults{})
	var ee *exec.ExitError
	switch {
	case err == nil:
	case errors.As(err, &ee):
		t.Fatalf("the runner exited %d after %s\n%s", ee.ExitCode(), elapsed.Round(time.Millisecond), tail(runLog(), 60))
	default:
		t.Fatalf("running the runner: %v", err)
	}

	via := "dropoff"
	if kind == thrusim.KindSessionPut {
		via = "content"
	}
	want := map[string]faultFile{}
	for _, f := range files {
		want[f.name] = f
	}
	got := map[string]int{}
	ds := site.deliveries(t)
	for _, d := range ds {
		got[d.Name]++
		f, ok := want[d.Name]
		switch {
		case !ok:
			t.Errorf("the site got a file the source does not have: %q", d.Name)
		case d.Via != via || d.Size != f.size || d.SHA256 != f.sha256:
			t.Errorf("delivery of %s: via %s, %d bytes, sha256 %s; want via %s, %d bytes, sha256 %s", d.Name, d.Via, d.Size, d.SHA256, via, f.size, f.sha256)
		}
	}
	for _, f := range files {
		if got[f.name] != 1 {
			t.Errorf("%s was delivered %d times; want once", f.name, got[f.name])
		}
	}

	calls := site.calls(t)
	faulted := map[string]int{}
	sent, accepted := 0, 0
	for _, c := range calls {
		if c.Kind != kind {
			continue
		}
		sent++
		switch {
		case ok2xx(c.Status):
			accepted++
		case c.Fault == "reset":
			faulted["reset"]++
		case c.Fault == "status":
			faulted[fmt.Sprint(c.Status)]++
		default:
			// Only injected faults may fail a chunk: anything else means
			// the runner sent something the site refused, such as a chunk
			// again after the file was complete.
			t.Errorf("%s call %d (chunk %d) failed without an injected fault: status %d: %s", kind, c.Seq, c.Chunk, c.Status, c.Error)
		}
	}
	for _, k := range []string{"500", "503", "reset"} {
		if faulted[k] == 0 {
			t.Errorf("no %s call drew a %s fault: the scenario did not happen (faults: %v)", kind, k, faulted)
		}
	}
	check(t, site, files, calls)
	if t.Failed() {
		t.Logf("the runner's warnings and errors:\n%s", tail(notInfo(runLog()), 60))
	}
	t.Logf("%d files, %d MiB in %s: %d %s calls, %d accepted, %d failed by injection %v, so %d chunks sent again",
		len(files), sumSizes(files)>>20, elapsed.Round(time.Millisecond), sent, kind, accepted, sent-accepted, faulted, sent-accepted)
}

// checkDropOffCalls checks the drop-off chunk calls. The call log names the
// chunk number of each call but not its file (the File Code is only in the
// part's name), so the check counts per chunk number: chunk n must be
// accepted exactly as many times as there are files with at least n chunks.
// As every file was assembled, which needs each of its chunks, each chunk of
// each file was accepted exactly once. A chunk sent again after it was
// accepted would be accepted a second time, or fail and then be sent until
// accepted: only failed chunks were sent again. EOF must have come once per
// file, after which no chunk call failed (checked by the caller: every failure
// is an injected one).
func checkDropOffCalls(t *testing.T, _ *simSite, files []faultFile, calls []thrusim.Call) {
	want := map[int]int{}
	for _, f := range files {
		for n := 1; n <= f.chunks(); n++ {
			want[n]++
		}
	}
	acc, failed := map[int]int{}, map[int]int{}
	eofs := 0
	for _, c := range calls {
		switch {
		case c.Kind == thrusim.KindChunk && ok2xx(c.Status):
			acc[c.Chunk]++
		case c.Kind == thrusim.KindChunk:
			failed[c.Chunk]++
		case c.Kind == thrusim.KindEOF:
			if !ok2xx(c.Status) {
				t.Errorf("EOF call %d failed: %d %s", c.Seq, c.Status, c.Error)
			}
			eofs++
		case c.Kind == thrusim.KindDropOff:
			t.Errorf("drop-off call %d was unreadable: %d %s", c.Seq, c.Status, c.Error)
		}
	}
	for _, n := range sortedChunks(mergeKeys(want, acc, failed)) {
		if acc[n] != want[n] {
			var seen []string
			for _, c := range calls {
				if c.Kind == thrusim.KindChunk && c.Chunk == n {
					seen = append(seen, fmt.Sprintf("call %d at %s: %d %s", c.Seq, c.Time.Format("15:04:05.000"), c.Status, c.Fault))
				}
			}
			t.Errorf("chunk number %d was accepted %d times; want %d (once per file with %d chunks or more): %s", n, acc[n], want[n], n, strings.Join(seen, "; "))
		}
	}
	if eofs != len(files) {
		t.Errorf("EOF was sent %d times; want once per file, %d", eofs, len(files))
	}
}

// checkSessionCalls checks the upload session chunk calls file by file: the
// call's path names the session, and the site's session state names the
// file. Every chunk of every file must be accepted exactly once in one
// committed session, and every attempt of a chunk before its accepted one
// must have failed, none come after it. A call failed by an injected status
// is answered before the site reads the chunk metadata, so it carries no
// chunk number; a chunk sent again after being accepted would still be
// accepted a second time, or fail and be sent until accepted.
func checkSessionCalls(t *testing.T, site *simSite, files []faultFile, calls []thrusim.Call) {
	bySession := map[string][]thrusim.Call{}
	for _, c := range calls {
		if c.Kind == thrusim.KindSessionPut {
			id := strings.TrimPrefix(c.Path, thru.PathUploadSessions+"/")
			bySession[id] = append(bySession[id], c)
		}
	}
	sessionsOf := map[string][]string{}
	for id, cs := range bySession {
		st := site.session(t, id)
		name := ""
		if st.Metadata != nil {
			name = st.Metadata.Attributes.FileName
		}
		if st.State != thru.SessionCommitted {
			t.Errorf("session %s of %q is %s; want committed", id, name, st.State)
		}
		sessionsOf[name] = append(sessionsOf[name], id)
		slices.SortFunc(cs, func(a, b thrusim.Call) int { return a.Seq - b.Seq })
		bySession[id] = cs
	}
	for _, f := range files {
		ids := sessionsOf[f.name]
		if f.chunks() == 0 {
			if len(ids) != 0 {
				t.Errorf("%s is empty but %d sessions got chunks for it", f.name, len(ids))
			}
			continue
		}
		if len(ids) != 1 {
			t.Errorf("%s: chunks went to %d sessions %v; want 1", f.name, len(ids), ids)
			continue
		}
		acceptedAt := map[int]int{} // chunk → Seq of its accepted call
		for _, c := range bySession[ids[0]] {
			if c.Chunk == 0 {
				if ok2xx(c.Status) || c.Fault != "status" {
					t.Errorf("%s: session call %d has no chunk number (status %d, fault %q)", f.name, c.Seq, c.Status, c.Fault)
				}
				continue
			}
			if seq, ok := acceptedAt[c.Chunk]; ok {
				t.Errorf("%s: chunk %d was sent again (call %d, status %d) after call %d had been accepted", f.name, c.Chunk, c.Seq, c.Status, seq)
				continue
			}
			if ok2xx(c.Status) {
				acceptedAt[c.Chunk] = c.Seq
			}
		}
		for n := 1; n <= f.chunks(); n++ {
			if _, ok := acceptedAt[n]; !ok {
				t.Errorf("%s: chunk %d of %d was never accepted", f.name, n, f.chunks())
			}
			delete(acceptedAt, n)
		}
		for n := range acceptedAt {
			t.Errorf("%s: chunk %d was accepted but the file has %d chunks", f.name, n, f.chunks())
		}
	}
	for name, ids := range sessionsOf {
		if !slices.ContainsFunc(files, func(f faultFile) bool { return f.name == name }) {
			t.Errorf("sessions %v got chunks for %q, which is not a source file", ids, name)
		}
	}
	if n := countKind(calls, thrusim.KindSessionCommit); n != len(files) {
		t.Errorf("%d session commits; want one per file, %d", n, len(files))
	}
}

func mergeKeys(ms ...map[int]int) map[int]int {
	out := map[int]int{}
	for _, m := range ms {
		for k := range m {
			out[k] = 1
		}
	}
	return out
}

func sumSizes(files []faultFile) (n int64) {
	for _, f := range files {
		n += f.size
	}
	return n
}

// tail returns the last n lines of s.
func tail(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// notInfo drops the INFO lines of a runner log.
func notInfo(log string) string {
	var b strings.Builder
	for _, l := range strings.Split(log, "\n") {
		if !strings.Contains(l, "level=INFO") {
			b.WriteString(l + "\n")
		}
	}
	return b.String()
}
