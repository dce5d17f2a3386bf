package main

import (
	"encoding/json"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/mftflow/mftflow/pipeline/bus"
	"github.com/mftflow/mftflow/pipeline/engine"
)

// httpGet returns the status and body of url, or an error if it cannot be reached.
func httpGet(url string) (int, string, error) {
	resp, err := http.Get(url)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b), err
}

// scrape returns the value of the one series name{flow="copy",sink="local"}
// served at url, or -1 if there is none yet.
func scrape(t *testing.T, url, name string) float64 {
	t.Helper()
	code, body, err := httpGet(url)
	if err != nil || code != http.StatusOK {
		t.Fatalf("GET %s: %d %v\n%s", url, code, err, body)
	}
	parser := expfmt.NewTextParser(model.UTF8Validation)
	families, err := parser.TextToMetricFamilies(strings.NewReader(body))
	if err != nil {
		t.Fatalf("parsing %s: %v", url, err)
	}
	for _, m := range families[name].GetMetric() {
		labels := map[string]string{}
		for _, l := range m.GetLabel() {
			labels[l.GetName()] = l.GetValue()
		}
		if labels["flow"] == "copy" && labels["sink"] == "local" {
			return m.GetCounter().GetValue()
		}
	}
	return -1
}

func TestRunServesOperationsEndpoints(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, dir, "flow.yaml", watchedCopyFlow)
	content := strings.Repeat("0123456789abcdef", 200_000) // 3.1 MiB: several chunks
	writeFile(t, dir, "in/a/big.bin", content)
	writeFile(t, dir, "in/small.txt", "hello\n")
	writeFile(t, dir, "in/empty", "")

	cmd, _, stderr := startIn(t, dir, "run", "--progress", "none", "--http", "127.0.0.1:0", "flow.yaml")

	listening := regexp.MustCompile(`msg="operations endpoints listening" url=(http://127\.0\.0\.1:\d+) `)
	var base string
	waitFor(t, func() bool {
		if m := listening.FindStringSubmatch(stderr.String()); m != nil {
			base = m[1]
		}
		return base != ""
	})
	if code, body, err := httpGet(base + "/healthz"); err != nil || code != http.StatusOK || body != "ok\n" {
		t.Errorf("/healthz: %d %q %v", code, body, err)
	}

	// The counter follows the commits; wait for all three.
	waitFor(t, func() bool { return scrape(t, base+"/metrics", "mftflow_delivered_files_total") == 3 })
	var delivered int64
	for _, name := range []string{"a/big.bin", "small.txt", "empty"} {
		fi, err := os.Stat(filepath.Join(dir, "out", name))
		if err != nil {
			t.Fatalf("out/%s: %v", name, err)
		}
		delivered += fi.Size()
	}
	if got := scrape(t, base+"/metrics", "mftflow_delivered_bytes_total"); got != float64(delivered) || delivered != int64(len(content)+6) {
		t.Errorf("mftflow_delivered_bytes_total = %v; the sink holds %d bytes, the source %d", got, delivered, len(content)+6)
	}
	if code, body, err := httpGet(base + "/readyz"); err != nil || code != http.StatusOK || body != "ok\n" {
		t.Errorf("/readyz: %d %q %v", code, body, err)
	}

	// /status is what "runner status --json" says, once the state settles
	// (each file done and its chunks purged).
	var fromHTTP []engine.FlowStatus
	waitFor(t, func() bool {
		code, body, err := httpGet(base + "/status")
		if err != nil || code != http.StatusOK {
			t.Fatalf("/status: %d %v\n%s", code, err, body)
		}
		fromHTTP = nil
		if err := json.Unmarshal([]byte(body), &fromHTTP); err != nil {
			t.Fatalf("/status: %v\n%s", err, body)
		}
		if len(fromHTTP) != 1 || len(fromHTTP[0].Files) != 3 {
			return false
		}
		for _, f := range fromHTTP[0].Files {
			if f.Manifest.State != bus.FileDone || !f.Manifest.Purged {
				return false
			}
		}
		return true
	})
	out, errOut, exit := runRunner(t, dir, "status", "--json")
	var fromCLI []engine.FlowStatus
	if err := json.Unmarshal([]byte(out), &fromCLI); exit != 0 || err != nil {
		t.Fatalf("status --json: exit %d, %v\n%s%s", exit, err, out, errOut)
	}
	if diff := cmp.Diff(fromCLI, fromHTTP); diff != "" {
		t.Errorf("/status differs from runner status --json (-cli +http):\n%s", diff)
	}

	cmd.Process.Signal(syscall.SIGTERM)
	if err := cmd.Wait(); err != nil {
		t.Errorf("runner after SIGTERM: %v\nstderr:\n%s", err, stderr.String())
	}
	if _, _, err := httpGet(base + "/healthz"); err == nil {
		t.Errorf("%s still answers after the runner ended", base)
	}
}

func TestRunHTTPAddressInUse(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	addr := ln.Addr().String()
	dir := t.TempDir()
	writeFile(t, dir, "flow.yaml", copyFlow)
	writeFile(t, dir, "in/one.txt", "one\n")
	_, stderr, exit := runRunner(t, dir, "run", "--progress", "none", "--http", addr, "flow.yaml")
	want := "runner: --http " + addr + ": operations endpoints: listen tcp " + addr + ": bind: address already in use; choose another address or stop what listens there\n"
	if exit != 1 || !strings.HasSuffix(stderr, want) {
		t.Errorf("exit %d, stderr:\n%s\nwant it to end with:\n%s", exit, stderr, want)
	}
	if _, err := os.Stat(filepath.Join(dir, "out", "one.txt")); !os.IsNotExist(err) {
		t.Errorf("a file was delivered although the runner could not start: %v", err)
	}
}
