package main

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/mftflow/mftflow/pipeline/notify"
)

// TestWebhooksOutliveAKilledRunner: the receiver is down while a runner
// finishes two files (one passes, one fails); the runner is killed with
// both notifications pending, status shows them; the receiver comes up and
// a new runner sends both, signed.
func TestWebhooksOutliveAKilledRunner(t *testing.T) {
	dir := t.TempDir()
	var mu sync.Mutex
	up, unsigned := false, 0
	got := map[string]string{} // file name -> outcome
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		mu.Lock()
		defer mu.Unlock()
		switch {
		case !up:
			w.WriteHeader(http.StatusServiceUnavailable)
		case !notify.VerifySignature("s3cret", body, r.Header.Get(notify.HeaderSignature)):
			unsigned++
			w.WriteHeader(http.StatusUnauthorized)
		default:
			var m notify.Message
			json.Unmarshal(body, &m)
			got[m.Name] = m.Trigger
			w.WriteHeader(http.StatusNoContent)
		}
	}))
	defer srv.Close()
	writeFile(t, dir, "in/a.csv", "alpha\n")
	writeFile(t, dir, "in/b.csv", "bravo\n")
	writeFile(t, dir, "archive/b.csv", "in the way\n")
	flow := writeFile(t, dir, "flow.yaml", `name: told
source:
  local: {path: `+filepath.Join(dir, "in")+`, stable_for: 0s}
sinks:
  - name: archive
    local: {path: `+filepath.Join(dir, "archive")+`, overwrite: fail}
    retry: {attempts: 1}
notify:
  - on: [passed, failed]
    webhook: {url: "`+srv.URL+`/hook", secret: s3cret, timeout: 2s}
`)
	data := filepath.Join(dir, "data")
	args := []string{"run", "--data", data, "--progress", "none", flow}

	first, logs := startRunner(t, dir, "first.log", args...)
	waitLogged(t, 60*time.Second, "two notifications pending and failing in status", logs, func() bool {
		out, _, exit := runRunner(t, dir, "status", "--json", "--data", data)
		var st []flowReport
		if exit != 0 || json.Unmarshal([]byte(out), &st) != nil || len(st) != 1 || len(st[0].Notify) != 1 {
			return false
		}
		n := st[0].Notify[0]
		return n.Pending == 2 && n.Failing && n.Channel == "webhook" && strings.Contains(n.LastError, "503")
	})
	first.Process.Signal(syscall.SIGKILL)
	first.Wait()

	mu.Lock()
	up = true
	mu.Unlock()
	_, logs = startRunner(t, dir, "second.log", args...)
	waitLogged(t, 90*time.Second, "both notifications at the receiver", logs, func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(got) == 2
	})
	mu.Lock()
	defer mu.Unlock()
	if diff := cmp.Diff(map[string]string{"a.csv": "passed", "b.csv": "failed"}, got); diff != "" || unsigned > 0 {
		t.Errorf("received (-want +got):\n%s%d unsigned", diff, unsigned)
	}
}

// waitLogged polls cond until it holds, failing the test with the runner's
// log after limit.
func waitLogged(t *testing.T, limit time.Duration, what string, logs func() string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(limit)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("no %s after %s\n%s", what, limit, logs())
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// TestArrivalSLAInStatus: a flow's expectation counts the file the source
// offered, and status shows it with the period's deadline.
func TestArrivalSLAInStatus(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, dir, "in/orders-1.csv", "one\n")
	writeFile(t, dir, "in/other.txt", "not counted\n")
	flow := writeFile(t, dir, "flow.yaml", `name: expected
source:
  local: {path: ./in, watch: false, stable_for: 0s}
sinks:
  - local: {path: ./out}
expect:
  - name: daily-orders
    files: "orders-*.csv"
    by: "daily 06:00"
    time_zone: Europe/Berlin
    count: 2
`)
	if stdout, stderr, exit := runRunner(t, dir, "run", "--progress", "none", flow); exit != 0 {
		t.Fatalf("exit %d\n%s\n%s", exit, stdout, stderr)
	}
	out, stderr, exit := runRunner(t, dir, "status", "--json")
	var st []flowReport
	if err := json.Unmarshal([]byte(out), &st); exit != 0 || err != nil || len(st) != 1 || len(st[0].SLA) != 1 {
		t.Fatalf("status: exit %d, %v\n%s\n%s", exit, err, out, stderr)
	}
	s := st[0].SLA[0]
	berlin, _ := time.LoadLocation("Europe/Berlin")
	if d := s.Deadline.In(berlin); s.Name != "daily-orders" || s.Arrived != 1 || s.Expected != 2 || d.Hour() != 6 || d.Minute() != 0 || !d.After(time.Now()) {
		t.Errorf("sla status %+v", s)
	}
	out, _, _ = runRunner(t, dir, "status")
	if !strings.Contains(out, "  expect daily-orders (orders-*.csv): ") || !strings.Contains(out, "; 1 of 2 by ") {
		t.Errorf("status text:\n%s", out)
	}
}
