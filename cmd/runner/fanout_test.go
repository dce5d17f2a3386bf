package main

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/mftflow/mftflow/pipeline/engine"
)

// TestTwoSinksOneFailsPermanently: the archive sink refuses every file (its
// targets exist and its overwrite policy is "fail"); the outbox sink still
// receives every file, and status shows the failures.
func TestTwoSinksOneFailsPermanently(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, dir, "flow.yaml", localFlowHead("fanout", "./in")+`  - name: outbox
    local:
      path: ./out
  - name: archive
    local:
      path: ./archive
      overwrite: fail
    retry:
      attempts: 3
      initial: 10ms
`)
	names := []string{"a.csv", "b.csv", "sub/c.csv"}
	for i, n := range names {
		writeFile(t, dir, "in/"+n, strings.Repeat(n, 1000*(i+1)))
		writeFile(t, dir, "archive/"+n, "already here\n")
	}
	stdout, stderr, exit := runRunner(t, dir, "run", "--progress", "none", "--log-level", "error", "flow.yaml")
	if exit != 3 {
		t.Fatalf("exit %d, want 3\nstdout:\n%s\nstderr:\n%s", exit, stdout, stderr)
	}
	for _, n := range names {
		want, _ := os.ReadFile(filepath.Join(dir, "in", n))
		got, err := os.ReadFile(filepath.Join(dir, "out", n))
		if err != nil || string(got) != string(want) {
			t.Errorf("outbox %s: %d bytes, %v; want the %d input bytes", n, len(got), err, len(want))
		}
		if old, _ := os.ReadFile(filepath.Join(dir, "archive", n)); string(old) != "already here\n" {
			t.Errorf("archive %s was overwritten", n)
		}
	}

	stdout, stderr, exit = runRunner(t, dir, "status", "--json")
	if exit != 0 {
		t.Fatalf("status exit %d: %s", exit, stderr)
	}
	var st []engine.FlowStatus
	if err := json.Unmarshal([]byte(stdout), &st); err != nil {
		t.Fatalf("status --json: %v\n%s", err, stdout)
	}
	if len(st) != 1 {
		t.Fatalf("status shows %d flows, want 1", len(st))
	}
	want := []engine.SinkCounts{{Sink: "archive", Failed: 3}, {Sink: "outbox", Committed: 3}}
	if diff := cmp.Diff(want, st[0].Sinks); diff != "" {
		t.Errorf("sink counts (-want +got):\n%s", diff)
	}
	for _, f := range st[0].Files {
		if f.Manifest.Outcome != "mixed" {
			t.Errorf("%s: outcome %q, want mixed", f.Manifest.Name, f.Manifest.Outcome)
		}
		for _, d := range f.Deliveries {
			if d.Sink != "archive" {
				continue
			}
			target := filepath.Join(dir, "archive", filepath.FromSlash(f.Manifest.Name))
			want := fmt.Sprintf("opening %s on sink archive: writing %q to %s: target already exists (overwrite: fail)", f.Manifest.Name, f.Manifest.Name, target)
			if d.Attempts != 1 || d.Error != want {
				t.Errorf("%s on archive: %d attempts, error %q; want 1 attempt (permanent) and %q", f.Manifest.Name, d.Attempts, d.Error, want)
			}
		}
	}

	stdout, _, _ = runRunner(t, dir, "status", "--failed")
	for _, n := range names {
		if !strings.Contains(stdout, n) {
			t.Errorf("status --failed does not list %s:\n%s", n, stdout)
		}
	}
	if !strings.Contains(stdout, "target already exists") {
		t.Errorf("status --failed does not show the reason:\n%s", stdout)
	}
}
