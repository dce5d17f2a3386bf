package main

import (
	"encoding/json"
	"strings"
	"testing"
)

func TestConnectors(t *testing.T) {
	stdout, stderr, exit := runRunner(t, t.TempDir(), "connectors")
	if exit != 0 || stderr != "" {
		t.Fatalf("exit %d, stderr %q", exit, stderr)
	}
	// Each section lists local with its fields: the source's path is
	// required, its after field has enum values, the sink has overwrite.
	source := section(t, stdout, "SOURCES", "STAGES")
	sink := section(t, stdout, "SINKS", "")
	for _, want := range []string{"local: ", "FIELD", "TYPE", "DEFAULT", "REQUIRED", "VALUES", "DOC"} {
		if !strings.Contains(source, want) || !strings.Contains(sink, want) {
			t.Errorf("source or sink section lacks %q:\n%s", want, stdout)
		}
	}
	if !hasRow(source, "path", "string", "-", "yes") {
		t.Errorf("source section has no required path row:\n%s", source)
	}
	if !hasRow(source, "watch", "bool", "true", "no") {
		t.Errorf("source section has no watch row:\n%s", source)
	}
	if !hasRow(sink, "path", "string", "-", "yes") {
		t.Errorf("sink section has no required path row:\n%s", sink)
	}
	if !strings.Contains(sink, "overwrite") {
		t.Errorf("sink section has no overwrite field:\n%s", sink)
	}
	if stages := section(t, stdout, "STAGES", "SINKS"); !strings.Contains(stages, "match: ") {
		t.Errorf("stage section lacks match:\n%s", stages)
	}
}

func TestConnectorsJSON(t *testing.T) {
	stdout, stderr, exit := runInProcess("connectors", "--json")
	if exit != 0 || stderr != "" {
		t.Fatalf("exit %d, stderr %q", exit, stderr)
	}
	var specs []specJSON
	if err := json.Unmarshal([]byte(stdout), &specs); err != nil {
		t.Fatalf("decoding %s: %v", stdout, err)
	}
	found := map[string]specJSON{}
	for _, s := range specs {
		found[s.Kind+"/"+s.Name] = s
	}
	for _, k := range []string{"source/local", "sink/local", "stage/match"} {
		s, ok := found[k]
		if !ok {
			t.Errorf("no %s in %s", k, stdout)
			continue
		}
		if s.Summary == "" || len(s.Fields) == 0 || s.Origin != "built-in" {
			t.Errorf("%s: %+v", k, s)
		}
	}
	var rescan *fieldJSON
	for i, f := range found["source/local"].Fields {
		if f.Name == "rescan" {
			rescan = &found["source/local"].Fields[i]
		}
	}
	if rescan == nil || rescan.Type != "duration" {
		t.Fatalf("source/local has no duration field rescan: %+v", found["source/local"])
	}
	if _, ok := rescan.Default.(string); !ok {
		t.Errorf("a duration default is printed as %T %v, want a string such as \"10s\"", rescan.Default, rescan.Default)
	}
}

// section returns the text from the line heading to the line next (or the end).
func section(t *testing.T, out, heading, next string) string {
	t.Helper()
	i := strings.Index(out, heading+"\n")
	if i < 0 {
		t.Fatalf("no %s heading in:\n%s", heading, out)
	}
	s := out[i:]
	if next != "" {
		if j := strings.Index(s, "\n"+next+"\n"); j >= 0 {
			s = s[:j]
		}
	}
	return s
}

// hasRow reports whether a table line starts with the given cells.
func hasRow(table string, cells ...string) bool {
	for _, line := range strings.Split(table, "\n") {
		f := strings.Fields(line)
		if len(f) >= len(cells) && equalLines(f[:len(cells)], cells) {
			return true
		}
	}
	return false
}
