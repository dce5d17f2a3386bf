package main

import (
	"strings"
	"testing"
)

// Every flag can come from the environment (MFTFLOW_ and its name); the
// command line wins; a bad value names the variable and the flag.
func TestFlagsFromEnvironment(t *testing.T) {
	dir := t.TempDir()
	t.Setenv("MFTFLOW_LOG_LEVEL", "nonsense")
	_, stderr, exit := runRunner(t, dir, "connectors")
	if want := `runner: MFTFLOW_LOG_LEVEL="nonsense": want debug, info, warn or error (it sets --log-level)`; exit != 1 || !strings.Contains(stderr, want) {
		t.Fatalf("exit %d, stderr:\n%s\nwant %s", exit, stderr, want)
	}
	if _, stderr, exit := runRunner(t, dir, "--log-level", "warn", "connectors"); exit != 0 {
		t.Fatalf("the flag did not win over the environment: exit %d\n%s", exit, stderr)
	}
	t.Setenv("MFTFLOW_LOG_LEVEL", "")
	t.Setenv("NATS_URL", "nats://127.0.0.1:1")
	_, stderr, exit = runRunner(t, dir, "status")
	if exit != 1 || !strings.Contains(stderr, "127.0.0.1:1") {
		t.Fatalf("NATS_URL not used by status: exit %d\n%s", exit, stderr)
	}
}

// runner completion prints a shell completion script.
func TestCompletion(t *testing.T) {
	stdout, stderr, exit := runRunner(t, t.TempDir(), "completion", "bash")
	if exit != 0 || !strings.Contains(stdout, "__start_runner") {
		t.Fatalf("exit %d\n%s\n%s", exit, stdout[:min(len(stdout), 300)], stderr)
	}
}
