package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

const goodFlow = `name: quickstart
source:
  local:
    path: ./in
    watch: false
sinks:
  - local:
      path: ./out
`

// badFlow has three problems, reported in file order.
const badFlow = `name: quickstart
source:
  nosuch:
    path: ./in
sinks:
  - local:
      path: ./out
colour: blue
`

func TestValidate(t *testing.T) {
	dir := t.TempDir()
	if err := os.Mkdir(filepath.Join(dir, "in"), 0o755); err != nil {
		t.Fatal(err)
	}
	writeFile(t, dir, "good.yaml", goodFlow)
	writeFile(t, dir, "bad.yaml", badFlow)
	writeFile(t, dir, "again.yaml", strings.Replace(goodFlow, "./out", "./elsewhere", 1))

	t.Run("good", func(t *testing.T) {
		stdout, stderr, exit := runRunner(t, dir, "validate", "good.yaml")
		if exit != 0 || stdout != "good.yaml: ok\n" || stderr != "" {
			t.Errorf("exit %d, stdout %q, stderr %q; want 0, \"good.yaml: ok\\n\", nothing", exit, stdout, stderr)
		}
	})
	t.Run("bad", func(t *testing.T) {
		stdout, stderr, exit := runRunner(t, dir, "validate", "good.yaml", "bad.yaml", "missing.yaml")
		if exit != 1 {
			t.Errorf("exit %d, want 1", exit)
		}
		if stdout != "good.yaml: ok\n" {
			t.Errorf("stdout %q, want only the good file", stdout)
		}
		want := []string{
			`bad.yaml:3:3: unknown source connector "nosuch" (known: local, s3, thru)`,
			`bad.yaml:8:1: unknown key "colour" (known: name, source, stages, sinks, bus, schedule, rate, audit, expect, notify)`,
			`reading flow file: open missing.yaml: no such file or directory`,
		}
		if got := strings.Split(strings.TrimSuffix(stderr, "\n"), "\n"); !equalLines(got, want) {
			t.Errorf("stderr:\n%s\nwant:\n%s", stderr, strings.Join(want, "\n"))
		}
	})
	t.Run("same flow name twice", func(t *testing.T) {
		stdout, stderr, exit := runRunner(t, dir, "validate", "good.yaml", "again.yaml")
		if exit != 1 || stdout != "good.yaml: ok\n" {
			t.Errorf("exit %d, stdout %q; want 1 and good.yaml: ok", exit, stdout)
		}
		want := `again.yaml:1:1: flow name "quickstart" is also used by good.yaml: give each flow its own name` + "\n"
		if stderr != want {
			t.Errorf("stderr %q, want %q", stderr, want)
		}
	})
	t.Run("run refuses and starts nothing", func(t *testing.T) {
		stdout, stderr, exit := runRunner(t, dir, "run", "good.yaml", "bad.yaml")
		if exit != 1 || stdout != "" {
			t.Errorf("exit %d, stdout %q; want 1, nothing", exit, stdout)
		}
		want := `bad.yaml:3:3: unknown source connector "nosuch" (known: local, s3, thru)` + "\n" +
			`bad.yaml:8:1: unknown key "colour" (known: name, source, stages, sinks, bus, schedule, rate, audit, expect, notify)` + "\n" +
			"runner: 1 flow file is invalid; nothing was started\n"
		if stderr != want {
			t.Errorf("stderr:\n%s\nwant:\n%s", stderr, want)
		}
		if _, err := os.Stat(filepath.Join(dir, ".mftflow")); !os.IsNotExist(err) {
			t.Errorf("the data directory was created: %v", err)
		}
	})
}

func equalLines(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}
