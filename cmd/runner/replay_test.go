package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/mftflow/mftflow/pipeline/engine"
	"github.com/mftflow/mftflow/testkit"
)

// TestReplayDeliversWithoutTheSource: the partner sink refuses a file (its
// target exists and overwrite is "fail"), so the run exits 3. The file is
// then removed from the source directory and the target cleared; "runner
// replay" queues the delivery and the next run delivers it from the bus,
// byte for byte.
func TestReplayDeliversWithoutTheSource(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, dir, "flow.yaml", localFlowHead("replayed", "./in")+`  - name: partner
    local:
      path: ./out
      overwrite: fail
    retry:
      attempts: 2
      initial: 10ms
bus:
  chunk_size: 64KiB
  retention: 1h
`)
	content := testkit.RandomContent(42, 3<<20+5)
	writeFile(t, dir, "in/big.bin", string(content))
	writeFile(t, dir, "in/small.txt", "hello\n")
	writeFile(t, dir, "out/big.bin", "already here\n")

	stdout, stderr, exit := runRunner(t, dir, "run", "--progress", "none", "--log-level", "error", "flow.yaml")
	if exit != 3 {
		t.Fatalf("run: exit %d, want 3\nstdout:\n%s\nstderr:\n%s", exit, stdout, stderr)
	}

	// Fix the destination; the source no longer has the files, so only the
	// bus can supply them.
	for _, p := range []string{"in/big.bin", "in/small.txt", "out/big.bin"} {
		if err := os.Remove(filepath.Join(dir, p)); err != nil {
			t.Fatal(err)
		}
	}

	_, stderr, exit = runRunner(t, dir, "replay", "--flow", "replayed")
	if want := "runner: say which deliveries to replay: --all-failed, or --file ID (repeat it for several files)\n"; exit != 1 || stderr != want {
		t.Errorf("replay without a selection: exit %d, stderr %q; want 1 and %q", exit, stderr, want)
	}
	stdout, stderr, exit = runRunner(t, dir, "replay", "--flow", "replayed", "--file", "small.txt", "--file", "nope.bin")
	if exit != 3 || !strings.Contains(stdout, "small.txt  partner  not failed: the delivery is committed") ||
		!strings.Contains(stdout, "nope.bin   -        no file with this id or name in flow replayed") ||
		stderr != "runner: 2 deliveries not replayed; see above\n" {
		t.Errorf("replay of a delivered file: exit %d\nstdout:\n%s\nstderr:\n%s", exit, stdout, stderr)
	}

	stdout, stderr, exit = runRunner(t, dir, "replay", "--flow", "replayed", "--all-failed")
	if exit != 0 || !strings.Contains(stdout, "flow replayed: 1 delivery queued again") || !strings.Contains(stdout, "big.bin  partner") {
		t.Fatalf("replay: exit %d\nstdout:\n%s\nstderr:\n%s", exit, stdout, stderr)
	}

	stdout, stderr, exit = runRunner(t, dir, "run", "--progress", "none", "--log-level", "error", "flow.yaml")
	if exit != 0 {
		t.Fatalf("run after the replay: exit %d, want 0\nstdout:\n%s\nstderr:\n%s", exit, stdout, stderr)
	}
	if !strings.HasPrefix(stdout, "replayed: 1 passed, 0 failed, 0 skipped; ") {
		t.Errorf("run after the replay printed %q; want the replayed file passed", stdout)
	}
	got, err := os.ReadFile(filepath.Join(dir, "out", "big.bin"))
	if err != nil || testkit.SHA256Hex(got) != testkit.SHA256Hex(content) {
		t.Fatalf("out/big.bin: %d bytes, err %v; want the %d source bytes (sha256 %s)", len(got), err, len(content), testkit.SHA256Hex(content))
	}

	stdout, stderr, exit = runRunner(t, dir, "status", "--json", "--flow", "replayed")
	if exit != 0 {
		t.Fatalf("status: exit %d: %s", exit, stderr)
	}
	var st []engine.FlowStatus
	if err := json.Unmarshal([]byte(stdout), &st); err != nil {
		t.Fatalf("status --json: %v\n%s", err, stdout)
	}
	for _, f := range st[0].Files {
		if f.Manifest.Outcome != "passed" || f.Manifest.Replaying {
			t.Errorf("%s: outcome %q (replaying %v), want passed", f.Manifest.Name, f.Manifest.Outcome, f.Manifest.Replaying)
		}
	}

	// Nothing is left to replay.
	stdout, stderr, exit = runRunner(t, dir, "replay", "--flow", "replayed", "--all-failed")
	if exit != 0 || stdout != "flow replayed: no failed deliveries to replay\n" {
		t.Errorf("second replay: exit %d\nstdout:\n%s\nstderr:\n%s", exit, stdout, stderr)
	}
}

// TestReplayUnknownFlow: a flow with no state on the server is an error.
func TestReplayUnknownFlow(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, dir, "flow.yaml", `name: known
source:
  local:
    path: ./in
    watch: false
sinks:
  - local:
      path: ./out
`)
	writeFile(t, dir, "in/a.txt", "a\n")
	if _, stderr, exit := runRunner(t, dir, "run", "--progress", "none", "--log-level", "error", "flow.yaml"); exit != 0 {
		t.Fatalf("run: exit %d: %s", exit, stderr)
	}
	_, stderr, exit := runRunner(t, dir, "replay", "--flow", "unknown", "--all-failed")
	if want := "runner: replaying on the store in ./.mftflow: flow \"unknown\" has no state on this server\n"; exit != 1 || stderr != want {
		t.Errorf("exit %d, stderr %q; want 1 and %q", exit, stderr, want)
	}
}

// TestReplayWhileTheRunnerRuns: replay reaches the runner using the data
// directory, and that runner delivers the file from the bus at once.
func TestReplayWhileTheRunnerRuns(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, dir, "flow.yaml", `name: live
source:
  local:
    path: ./in
    watch: true
    stable_for: 0s
sinks:
  - name: partner
    local:
      path: ./out
      overwrite: fail
    retry:
      attempts: 1
bus:
  retention_size: 1GiB
`)
	content := testkit.RandomContent(7, 2<<20+1)
	writeFile(t, dir, "in/f.bin", string(content))
	writeFile(t, dir, "out/f.bin", "already here\n")

	cmd, stdout, stderr := startIn(t, dir, "run", "--progress", "none", "--log-level", "error", "flow.yaml")

	outcome := func() string {
		out, _, exit := runRunner(t, dir, "status", "--json", "--flow", "live")
		var st []engine.FlowStatus
		if exit != 0 || json.Unmarshal([]byte(out), &st) != nil || len(st) != 1 || len(st[0].Files) != 1 {
			return ""
		}
		return st[0].Files[0].Manifest.Outcome
	}
	waitFor(t, func() bool { return outcome() == "failed" })
	for _, p := range []string{"in/f.bin", "out/f.bin"} {
		if err := os.Remove(filepath.Join(dir, p)); err != nil {
			t.Fatal(err)
		}
	}
	out, errOut, exit := runRunner(t, dir, "replay", "--flow", "live", "--all-failed")
	if exit != 0 || !strings.Contains(out, "f.bin  partner") {
		t.Fatalf("replay: exit %d\nstdout:\n%s\nstderr:\n%s", exit, out, errOut)
	}
	waitFor(t, func() bool { return outcome() == "passed" })
	got, err := os.ReadFile(filepath.Join(dir, "out", "f.bin"))
	if err != nil || testkit.SHA256Hex(got) != testkit.SHA256Hex(content) {
		t.Errorf("out/f.bin: %d bytes, err %v; want the %d source bytes", len(got), err, len(content))
	}

	cmd.Process.Signal(syscall.SIGTERM)
	err = cmd.Wait()
	// The run's summary says what status says: the replay turned the
	// failure into a pass, so the run succeeded.
	if err != nil || !strings.HasPrefix(stdout.String(), "live: 1 passed, 0 failed, ") {
		t.Errorf("runner after SIGTERM: %v\nstdout:\n%s\nstderr:\n%s", err, stdout.String(), stderr.String())
	}
}
