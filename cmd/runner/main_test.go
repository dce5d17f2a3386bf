package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"sync"
	"testing"
	"time"
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

// writeRandomFile writes size pseudo-random bytes to name and returns their sha256.
func writeRandomFile(t *testing.T, name string, size int64) string {
	t.Helper()
	f, err := os.Create(name)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	h := sha256.New()
	rng := rand.NewChaCha8([32]byte{42})
	if _, err := io.CopyN(io.MultiWriter(f, h), rng, size); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(h.Sum(nil))
}

// fileSHA256 returns the hex sha256 of the file name.
func fileSHA256(t *testing.T, name string) string {
	t.Helper()
	f, err := os.Open(name)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(h.Sum(nil))
}

// waitFor polls cond until it holds, failing t after 30 seconds.
func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("timed out")
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// listFiles returns the regular files under dir, relative, sorted.
func listFiles(t *testing.T, dir string) []string {
	t.Helper()
	var out []string
	err := filepath.Walk(dir, func(p string, info os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		if info.Mode().IsRegular() {
			rel, _ := filepath.Rel(dir, p)
			out = append(out, filepath.ToSlash(rel))
		}
		return nil
	})
	if err != nil && !os.IsNotExist(err) {
		t.Fatal(err)
	}
	sort.Strings(out)
	return out
}

// checkOnlyFile checks that the directory out holds the one file name, whose
// sha256 is want, and no temporary file beside it.
func checkOnlyFile(t *testing.T, out, name, want string) {
	t.Helper()
	entries, err := os.ReadDir(out)
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != 1 || entries[0].Name() != name {
		t.Fatalf("output holds %v; want exactly %s and no temp file", entries, name)
	}
	if got := fileSHA256(t, filepath.Join(out, name)); got != want {
		t.Fatalf("output sha256 %s, want %s", got, want)
	}
}
