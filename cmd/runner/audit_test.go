package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/mftflow/mftflow/pipeline"
	"github.com/mftflow/mftflow/pipeline/audit"
)

// TestAuditTrailOfARunWithAFailureAndAReplay: a sink refuses one file for
// good, the file is replayed once the sink is fixed, and the next run
// delivers it. Each file's timeline holds every step once, in order, and
// the chain verifies.
func TestAuditTrailOfARunWithAFailureAndAReplay(t *testing.T) {
	dir := t.TempDir()
	flow := writeFile(t, dir, "flow.yaml", `name: audited
source:
  local: {path: ./in, watch: false, stable_for: 0s}
sinks:
  - name: archive
    local: {path: ./archive, overwrite: fail}
    retry: {attempts: 2, initial: 10ms}
audit: {max_age: 720h}
`)
	writeFile(t, dir, "in/a.csv", "alpha\n")
	writeFile(t, dir, "in/b.csv", "bravo\n")
	writeFile(t, dir, "archive/b.csv", "in the way\n")
	stdout, stderr, exit := runRunner(t, dir, "run", "--progress", "none", flow)
	if exit != 3 {
		t.Fatalf("exit %d\n%s\n%s", exit, stdout, stderr)
	}
	os.Remove(filepath.Join(dir, "archive/b.csv"))
	if stdout, stderr, exit = runRunner(t, dir, "replay", "--flow", "audited", "--all-failed", "--by", "ops@example"); exit != 0 {
		t.Fatalf("replay: exit %d\n%s\n%s", exit, stdout, stderr)
	}
	if stdout, stderr, exit = runRunner(t, dir, "run", "--progress", "none", flow); exit != 0 {
		t.Fatalf("second run: exit %d\n%s\n%s", exit, stdout, stderr)
	}

	stdout, stderr, exit = runRunner(t, dir, "audit", "export", "--flow", "audited")
	if exit != 0 {
		t.Fatalf("export: exit %d\n%s", exit, stderr)
	}
	kinds := map[string][]string{}
	locations := map[string]string{}
	seen := map[string]map[string]bool{} // by file; a replay starts anew
	sc := bufio.NewScanner(strings.NewReader(stdout))
	for sc.Scan() {
		var ev pipeline.Event
		if err := json.Unmarshal(sc.Bytes(), &ev); err != nil {
			t.Fatalf("export line %q: %v", sc.Text(), err)
		}
		if seen[ev.FileID] == nil || ev.Kind == pipeline.EventReplay {
			seen[ev.FileID] = map[string]bool{}
		}
		if id := audit.Identity(ev); seen[ev.FileID][id] {
			t.Errorf("stored twice: %+v", ev)
		}
		seen[ev.FileID][audit.Identity(ev)] = true
		if ev.Kind == pipeline.EventCommitted {
			locations[ev.Name] = ev.Location
		}
		step := string(ev.Kind)
		switch {
		case ev.Kind == pipeline.EventAttemptFailed:
			step += fmt.Sprintf("(permanent=%t)", ev.Permanent)
		case ev.Kind == pipeline.EventAcked:
			step += "(" + ev.Outcome + ")"
		case ev.Kind == pipeline.EventReplay:
			step += "(" + ev.By + ")"
		}
		if ev.Kind == pipeline.EventDiscovered && len(kinds[ev.Name]) > 0 {
			continue
		}
		kinds[ev.Name] = append(kinds[ev.Name], step)
	}
	want := map[string]string{
		"a.csv": "[discovered read attempt committed acked(passed)]",
		// The second run delivers it from the bus (the replay) and acks
		// the source again, which offers it again meanwhile (discovered,
		// left out here: before or after the delivery's steps).
		"b.csv": "[discovered read attempt attempt_failed(permanent=true) acked(failed) replay(ops@example) attempt committed acked(passed)]",
	}
	// The source is acked with the outcome at hand when it offers the file
	// again: passed once the replay is through, failed while it runs (a
	// replay does not tell the source again).
	if got := fmt.Sprint(kinds["b.csv"]); strings.HasSuffix(got, " committed acked(failed)]") {
		kinds["b.csv"][len(kinds["b.csv"])-1] = "acked(passed)"
	}
	for name, w := range want {
		if got := fmt.Sprint(kinds[name]); got != w {
			t.Errorf("%s: %s\nwant %s", name, got, w)
		}
	}

	for _, name := range []string{"a.csv", "b.csv"} {
		if want := filepath.Join(dir, "archive", name); locations[name] != want {
			t.Errorf("%s committed at %q, want %q", name, locations[name], want)
		}
	}

	stdout, _, exit = runRunner(t, dir, "audit", "verify", "--flow", "audited")
	if exit != 0 || !strings.Contains(stdout, "chain intact") || !strings.Contains(stdout, "head: record ") {
		t.Errorf("verify: exit %d\n%s", exit, stdout)
	}
	stdout, _, exit = runRunner(t, dir, "audit", "--flow", "audited", "--name", "b.*")
	if exit != 0 || !strings.HasPrefix(stdout, "b.csv  ") || strings.Contains(stdout, "a.csv") || !strings.Contains(stdout, "asked by ops@example") {
		t.Errorf("timeline: exit %d\n%s", exit, stdout)
	}
	_, stderr, exit = runRunner(t, dir, "audit", "--flow", "nosuch")
	if want := "runner: audit trail of flow nosuch on the store in ./.mftflow: flow nosuch has no audit trail: is the flow's name right, and does it run with its audit on?"; exit != 1 || strings.TrimSpace(stderr) != want {
		t.Errorf("unknown flow: exit %d, %q\nwant %q", exit, stderr, want)
	}
}
