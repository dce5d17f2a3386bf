package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
)

// runnerBin is the runner binary built once by TestMain, for tests that run
// it as a subprocess.
var runnerBin string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "runner-test-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	runnerBin = filepath.Join(dir, "runner")
	build := exec.Command("go", "build", "-o", runnerBin, ".")
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "building the runner:", err)
		os.RemoveAll(dir)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// runRunner runs the runner binary in dir with args and returns what it
// printed and its exit code.
func runRunner(t *testing.T, dir string, args ...string) (stdout, stderr string, exit int) {
	t.Helper()
	return runRunnerContext(context.Background(), t, dir, args...)
}

// runRunnerContext is runRunner, killing the runner when ctx ends.
func runRunnerContext(ctx context.Context, t *testing.T, dir string, args ...string) (stdout, stderr string, exit int) {
	t.Helper()
	cmd := exec.CommandContext(ctx, runnerBin, args...)
	cmd.Dir = dir
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	var ee *exec.ExitError
	switch {
	case err == nil:
	case errors.As(err, &ee):
		exit = ee.ExitCode()
	default:
		t.Fatalf("running runner %q: %v", args, err)
	}
	return out.String(), errb.String(), exit
}

// startIn starts the runner binary in dir with args and returns it with
// its stdout and stderr as they grow. The runner is killed when the test
// ends, if it has not ended before.
func startIn(t *testing.T, dir string, args ...string) (cmd *exec.Cmd, stdout, stderr *opsLog) {
	t.Helper()
	cmd = exec.Command(runnerBin, args...)
	cmd.Dir = dir
	stdout, stderr = &opsLog{}, &opsLog{}
	cmd.Stdout, cmd.Stderr = stdout, stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill() })
	return cmd, stdout, stderr
}

// opsLog is a buffer a running runner writes to while the test reads it.
type opsLog struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (l *opsLog) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.Write(p)
}

func (l *opsLog) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.String()
}

// runInProcess runs the command line in this process, for commands without
// side effects.
func runInProcess(args ...string) (stdout, stderr string, exit int) {
	var out, errb bytes.Buffer
	exit = execute(args, &out, &errb)
	return out.String(), errb.String(), exit
}

// writeFile writes content to dir/name, creating directories.
func writeFile(t *testing.T, dir, name, content string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// localFlowHead returns the start of a flow file, up to "sinks:", for a flow
// called name whose local source reads the directory in once, taking each
// file as it is. source adds settings to the source, one "key: value" each.
func localFlowHead(name, in string, source ...string) string {
	head := "name: " + name + "\nsource:\n  local:\n    path: " + in + "\n    watch: false\n    stable_for: 0s\n"
	for _, s := range source {
		head += "    " + s + "\n"
	}
	return head + "sinks:\n"
}
