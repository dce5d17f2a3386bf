package main

import (
	"encoding/json"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/mftflow/mftflow/pipeline/engine"
	"github.com/mftflow/mftflow/testkit"
)

// A file whose path is too long for the system, and a directory too deep to
// list, are counted failed by the run and listed by status --failed with
// the reason, instead of being skipped with a warning.
func TestRunCountsPathsTooLong(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, dir, "flow.yaml", localFlowHead("long", "./in")+`  - local:
      path: ./out
`)
	writeFile(t, dir, "in/ok.txt", "fine")
	_, longFile, longDir := testkit.LongPaths(t, filepath.Join(dir, "in"))
	root := len(filepath.Join(dir, "in")) + 1
	// The engine names the file; the source says why it cannot be read.
	want := map[string]string{
		longFile: "opening " + longFile + ": local source: its path is " + strconv.Itoa(root+len(longFile)) +
			` bytes long, more than this system accepts (file name too long): shorten the directory names above it, or move it nearer the source directory`,
		longDir: "opening " + longDir + ": local source: a directory that cannot be listed: its path is " + strconv.Itoa(root+len(longDir)) +
			` bytes long, more than this system accepts (file name too long); the files in it are not read: shorten the directory names, or move them nearer the source directory`,
	}

	stdout, stderr, exit := runRunner(t, dir, "run", "--progress", "none", "--log-level", "error", "flow.yaml")
	if exit != 3 {
		t.Fatalf("exit %d, want 3\nstdout:\n%s\nstderr:\n%s", exit, stdout, stderr)
	}
	if want := "long: 1 passed, 2 failed, 0 skipped; "; !strings.HasPrefix(stdout, want) {
		t.Errorf("summary %q, want it to start with %q", stdout, want)
	}
	if strings.Contains(stderr, "WARN") {
		t.Errorf("stderr has warnings; want the paths counted instead:\n%s", stderr)
	}

	stdout, stderr, exit = runRunner(t, dir, "status", "--failed", "--json")
	var flows []engine.FlowStatus
	if err := json.Unmarshal([]byte(stdout), &flows); exit != 0 || err != nil || len(flows) != 1 {
		t.Fatalf("status --failed --json: exit %d, %v\n%s\nstderr:\n%s", exit, err, stdout, stderr)
	}
	got := map[string]string{}
	for _, f := range flows[0].Files {
		got[f.Manifest.Name] = f.Error
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("status --failed --json: errors (-want +got):\n%s", diff)
	}
}
