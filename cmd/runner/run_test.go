package main

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
)

// These tests run real flows with the embedded server; each takes a second
// or two.

var copyFlow = localFlowHead("copy", "./in") + `  - local:
      path: ./out
`

// watchedCopyFlow is copyFlow with a source that keeps watching ./in.
var watchedCopyFlow = strings.Replace(copyFlow, "watch: false", "watch: true", 1)

func TestRunCopies(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, dir, "flow.yaml", copyFlow)
	content := strings.Repeat("0123456789abcdef", 200_000) // 3.1 MiB: several chunks
	writeFile(t, dir, "in/a/big.bin", content)
	writeFile(t, dir, "in/small.txt", "hello\n")

	stdout, stderr, exit := runRunner(t, dir, "run", "--progress", "none", "flow.yaml")
	if exit != 0 {
		t.Fatalf("exit %d\nstdout:\n%s\nstderr:\n%s", exit, stdout, stderr)
	}
	if !strings.HasPrefix(stdout, "copy: 2 passed, 0 failed, 0 skipped; 3.1 MiB in ") {
		t.Errorf("summary %q", stdout)
	}
	for name, want := range map[string]string{"a/big.bin": content, "small.txt": "hello\n"} {
		got, err := os.ReadFile(filepath.Join(dir, "out", name))
		if err != nil || string(got) != want {
			t.Errorf("out/%s: %d bytes, %v; want %d bytes", name, len(got), err, len(want))
		}
	}
	if _, err := os.Stat(filepath.Join(dir, ".mftflow", urlFileName)); !os.IsNotExist(err) {
		t.Errorf("nats.url left behind: %v", err)
	}

	// status reads the store of a stopped runner.
	stdout, stderr, exit = runRunner(t, dir, "status")
	want := "flow copy: 2 files (2 done)\n" +
		"  SINK   IN FLIGHT  COMMITTED  FAILED  SKIPPED\n" +
		"  local  0          2          0       0\n"
	if exit != 0 || stdout != want {
		t.Errorf("status: exit %d\nstdout:\n%s\nwant:\n%s\nstderr:\n%s", exit, stdout, want, stderr)
	}
}

// A chunk size the embedded server cannot carry is refused when the flow
// file is loaded, at its position, before anything starts (the engine
// would refuse it too, once connected).
func TestRunRefusesAChunkAboveMaxPayload(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, dir, "flow.yaml", copyFlow+"bus:\n  chunk_size: 16MiB\n")
	writeFile(t, dir, "in/small.txt", "hello\n")
	_, stderr, exit := runRunner(t, dir, "run", "--progress", "none", "flow.yaml")
	want := "bus.chunk_size: 16MiB is above the limit of 8191KiB (the embedded NATS server's max_payload of 8MiB, less 1KiB for headers); lower it, or run against a NATS server with a larger max_payload (--nats-url)\n" +
		"runner: 1 flow file is invalid; nothing was started\n"
	if exit == 0 || !strings.HasSuffix(stderr, want) {
		t.Errorf("exit %d, stderr:\n%s\nwant it to contain %q", exit, stderr, want)
	}
	if _, err := os.Stat(filepath.Join(dir, "out", "small.txt")); !os.IsNotExist(err) {
		t.Errorf("out/small.txt: %v; want nothing delivered", err)
	}
}

func TestRunFailedDeliveries(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, dir, "flow.yaml", localFlowHead("strict", "./in")+`  - local:
      path: ./out
      overwrite: fail
    retry:
      attempts: 1
`)
	writeFile(t, dir, "in/taken.txt", "new\n")
	writeFile(t, dir, "in/free.txt", "new\n")
	writeFile(t, dir, "out/taken.txt", "old\n")

	stdout, stderr, exit := runRunner(t, dir, "run", "--progress", "none", "--log-level", "error", "flow.yaml")
	if exit != 3 {
		t.Fatalf("exit %d, want 3\nstdout:\n%s\nstderr:\n%s", exit, stdout, stderr)
	}
	if !strings.HasPrefix(stdout, "strict: 1 passed, 1 failed, 0 skipped; ") {
		t.Errorf("summary %q", stdout)
	}
	if !strings.HasSuffix(stderr, "runner: 1 file failed or partly failed; see \"runner status --failed\"\n") {
		t.Errorf("stderr does not end with the failure line:\n%s", stderr)
	}

	stdout, _, exit = runRunner(t, dir, "status", "--failed")
	if exit != 0 || !hasRow(stdout, "taken.txt", "local", "1") || strings.Contains(stdout, "free.txt") {
		t.Errorf("status --failed: exit %d\n%s", exit, stdout)
	}
}

func TestRunStopsOnSignal(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, dir, "flow.yaml", watchedCopyFlow)
	writeFile(t, dir, "in/one.txt", "one\n")

	cmd := exec.Command(runnerBin, "run", "--progress", "plain", "--stats", "50ms", "flow.yaml")
	cmd.Dir = dir
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Process.Kill()
	waitFor(t, func() bool {
		_, err := os.Stat(filepath.Join(dir, "out", "one.txt"))
		return err == nil
	})

	// While it runs, status reaches it through nats.url, and a second
	// runner is refused the data directory.
	out, _, exit := runRunner(t, dir, "status")
	if exit != 0 || !strings.HasPrefix(out, "flow copy: ") {
		t.Errorf("status while running: exit %d\n%s", exit, out)
	}
	_, errOut, exit := runRunner(t, dir, "run", "flow.yaml")
	want := "runner: data directory ./.mftflow is in use by another runner (pid " + strconv.Itoa(cmd.Process.Pid) + "); stop it or use --data\n"
	if exit != 1 || errOut != want {
		t.Errorf("second runner: exit %d, stderr %q, want %q", exit, errOut, want)
	}

	cmd.Process.Signal(syscall.SIGTERM)
	err := cmd.Wait()
	if err != nil {
		t.Errorf("runner after SIGTERM: %v\nstderr:\n%s", err, stderr.String())
	}
	if !strings.Contains(stderr.String(), "stopping: finishing in-flight parts (press Ctrl-C again to force)") {
		t.Errorf("no stopping message in:\n%s", stderr.String())
	}
	if !strings.Contains(stdout.String(), "copy: 1 passed, 0 failed, 0 skipped; ") {
		t.Errorf("no summary in:\n%s", stdout.String())
	}
	if _, err := os.Stat(filepath.Join(dir, ".mftflow", urlFileName)); !os.IsNotExist(err) {
		t.Errorf("nats.url left behind: %v", err)
	}
}
