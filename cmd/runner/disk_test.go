package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// mountTmpfs mounts a tmpfs of size on dir until the test ends, or skips
// the test when it cannot (not root, or no mount).
func mountTmpfs(t *testing.T, dir, size string) {
	t.Helper()
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size="+size, "tmpfs", dir).CombinedOutput(); err != nil {
		t.Skipf("needs a small file system: mount -t tmpfs failed (run as root): %v: %s", err, out)
	}
	t.Cleanup(func() { exec.Command("umount", "-l", dir).Run() })
}

// A sink whose disk fills up fails the big file with the system's words;
// once space is freed, a rerun reads it again from the source (which kept
// it) and delivers it, without bus retention.
func TestFullSinkDiskThenRerunDelivers(t *testing.T) {
	if testing.Short() {
		t.Skip("moves 200 MiB; skipped with -short")
	}
	dir := t.TempDir()
	out := filepath.Join(dir, "out")
	mountTmpfs(t, out, "64m")
	in := filepath.Join(dir, "in")
	os.MkdirAll(in, 0o755)
	want := writeRandomFile(t, filepath.Join(in, "big.bin"), 200<<20)
	writeFile(t, in, "small.txt", "small\n")
	flow := writeFile(t, dir, "full.yaml", localFlowHead("full", in, "after: delete")+`  - name: disk
    local:
      path: `+out+`
    retry: {attempts: 2, initial: 100ms, max: 200ms}
`)
	stdout, stderr, exit := runRunner(t, dir, "run", "--progress", "none", flow)
	if exit != 3 || !strings.HasPrefix(stdout, "full: 1 passed, 1 failed, 0 skipped; ") || !strings.Contains(stderr, "no space left on device") {
		t.Fatalf("first run: exit %d\nstdout:\n%s\nstderr:\n%s", exit, stdout, stderr)
	}
	if left := listFiles(t, in); !slices.Equal(left, []string{"big.bin"}) {
		t.Fatalf("the source holds %q after the failure; want big.bin kept", left)
	}
	failed, _, _ := runRunner(t, dir, "status", "--failed")
	if !strings.Contains(failed, "big.bin") || !strings.Contains(failed, "no space left on device") {
		t.Errorf("status --failed does not name big.bin and the full disk:\n%s", failed)
	}

	if b, err := exec.Command("mount", "-o", "remount,size=512m", out).CombinedOutput(); err != nil {
		t.Fatalf("freeing space: %v: %s", err, b)
	}
	stdout, stderr, exit = runRunner(t, dir, "run", "--progress", "none", flow)
	if exit != 0 || !strings.HasPrefix(stdout, "full: 1 passed, 0 failed, 0 skipped; ") {
		t.Fatalf("rerun after freeing space: exit %d\nstdout:\n%s\nstderr:\n%s", exit, stdout, stderr)
	}
	if got := listFiles(t, out); !slices.Equal(got, []string{"big.bin", "small.txt"}) {
		t.Errorf("the sink holds %q; want big.bin and small.txt, nothing else", got)
	}
	if sum := fileSHA256(t, filepath.Join(out, "big.bin")); sum != want {
		t.Errorf("big.bin: sha256 %s, want %s", sum, want)
	}
	if left := listFiles(t, in); len(left) != 0 {
		t.Errorf("the source holds %q; want big.bin delivered and deleted", left)
	}
}
