package main

import (
	"bytes"
	"encoding/json"
	"encoding/xml"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"

	"github.com/mftflow/mftflow/bench"
	"github.com/mftflow/mftflow/connectors/all"
	"github.com/mftflow/mftflow/pipeline/flowfile"
)

// TestBenchSweep runs a two-point sweep of a small generated workload
// through the binary: every run in a process of its own.
func TestBenchSweep(t *testing.T) {
	dir := t.TempDir()
	stdout, stderr, exit := runRunner(t, dir, "bench", "--files", "3", "--size", "64KiB", "--content", "text",
		"--chunk-size", "64KiB,128KiB", "--runs", "1", "--warmup", "0", "--progress", "plain", "--out", "res")
	if exit != 0 {
		t.Fatalf("exit %d\nstdout:\n%s\nstderr:\n%s", exit, stdout, stderr)
	}
	for _, want := range []string{
		"chunk 64KiB, parallelism 4, s2: run 1/1: ",
		"bus ceiling, chunk 128KiB: run 1/1: ",
		"3 × 64KiB text (192.0 KiB); 1 counted run after 0 warm-ups; NATS: embedded, a fresh server for every run; peak RSS: ru_maxrss of each run's own process\n",
		"CHUNK   PART    PAR  COMP  PAYLOAD  MB/s",
		"best: chunk ",
		"wrote " + filepath.Join("res", "results.json") + " and " + filepath.Join("res", "chart.svg") + "\n",
	} {
		if !strings.Contains(stdout, want) {
			t.Errorf("stdout lacks %q:\n%s", want, stdout)
		}
	}
	if strings.Count(stdout, "\n*  ") != 1 {
		t.Errorf("want one row marked best:\n%s", stdout)
	}

	b, err := os.ReadFile(filepath.Join(dir, "res", "results.json"))
	if err != nil {
		t.Fatal(err)
	}
	rep := checkReport(t, b, []int64{64 << 10, 128 << 10})
	if rep.RSSMethod != bench.RSSRusage || len(rep.Ceilings) != 2 {
		t.Errorf("rss method %q, %d ceilings", rep.RSSMethod, len(rep.Ceilings))
	}
	// The snippet in the table is the report's, indented.
	var indented strings.Builder
	for _, line := range strings.Split(strings.TrimRight(rep.Snippet, "\n"), "\n") {
		indented.WriteString("  " + line + "\n")
	}
	if !strings.Contains(stdout, indented.String()) {
		t.Errorf("stdout lacks the snippet:\n%s\nstdout:\n%s", indented.String(), stdout)
	}

	svg, err := os.ReadFile(filepath.Join(dir, "res", "chart.svg"))
	if err != nil {
		t.Fatal(err)
	}
	d := xml.NewDecoder(bytes.NewReader(svg))
	root := ""
	for {
		tok, err := d.Token()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatalf("chart.svg is not well-formed XML: %v", err)
		}
		if se, ok := tok.(xml.StartElement); ok && root == "" {
			root = se.Name.Local
		}
	}
	if root != "svg" {
		t.Errorf("chart.svg root %q", root)
	}
	// Nothing of the runs is left in the working directory.
	entries, _ := os.ReadDir(dir)
	if len(entries) != 1 || entries[0].Name() != "res" {
		t.Errorf("working directory holds %v", entries)
	}
}

// checkReport parses a JSON report and checks its points: the chunk sizes
// given, each with positive throughput, and a best point whose snippet
// selects it when added to a flow file.
// TestBenchSweepsPayload measures the same workload with its bytes on the
// bus and read by reference.
func TestBenchSweepsPayload(t *testing.T) {
	dir := t.TempDir()
	stdout, stderr, exit := runRunner(t, dir, "bench", "--files", "2", "--size", "256KiB", "--payload", "bytes,reference",
		"--runs", "1", "--warmup", "0", "--no-ceiling", "--progress", "none", "--json")
	if exit != 0 {
		t.Fatalf("exit %d\nstdout:\n%s\nstderr:\n%s", exit, stdout, stderr)
	}
	var rep bench.Report
	if err := json.Unmarshal([]byte(stdout), &rep); err != nil {
		t.Fatalf("not JSON: %v\n%s", err, stdout)
	}
	var got []string
	for _, p := range rep.Points {
		if len(p.Runs) != 1 || p.Runs[0].Files != 2 {
			t.Errorf("point %s: %+v", p.Point, p.Runs)
		}
		got = append(got, p.Payload)
	}
	if strings.Join(got, ",") != "bytes,reference" {
		t.Errorf("points by payload %q; want bytes,reference", got)
	}
	const refusal = `runner: --payload: "refs" is not a payload (want bytes or reference)`
	if _, stderr, exit := runRunner(t, dir, "bench", "--payload", "bytes,refs"); exit == 0 || !strings.Contains(stderr, refusal) {
		t.Errorf("--payload bytes,refs exited %d with\n%s\nwant the refusal %q", exit, stderr, refusal)
	}
}

func checkReport(t *testing.T, b []byte, chunks []int64) bench.Report {
	t.Helper()
	var rep bench.Report
	if err := json.Unmarshal(b, &rep); err != nil {
		t.Fatalf("report is not JSON: %v\n%s", err, b)
	}
	if len(rep.Points) != len(chunks) {
		t.Fatalf("%d points, want %d", len(rep.Points), len(chunks))
	}
	for i, p := range rep.Points {
		if p.ChunkSize != chunks[i] || len(p.Runs) != 1 || p.MBps.Median <= 0 || p.FilesPerSec.Median <= 0 || p.PeakRSS <= 0 || p.Runs[0].Files != 3 {
			t.Errorf("point %d: %+v", i, p)
		}
	}
	if rep.Best < 0 || rep.Best >= len(rep.Points) || !rep.Points[rep.Best].Best {
		t.Fatalf("best %d", rep.Best)
	}
	best := rep.Points[rep.Best]

	var frag map[string]any
	if err := yaml.Unmarshal([]byte(rep.Snippet), &frag); err != nil {
		t.Fatalf("snippet is not YAML: %v\n%s", err, rep.Snippet)
	}
	doc := map[string]any{"name": "tuned", "source": map[string]any{"local": map[string]any{"path": t.TempDir()}}, "bus": frag["bus"]}
	var sinks []any
	for _, s := range frag["sinks"].([]any) {
		m := s.(map[string]any)
		m["local"] = map[string]any{"path": t.TempDir()}
		sinks = append(sinks, m)
	}
	doc["sinks"] = sinks
	text, _ := yaml.Marshal(doc)
	reg, err := all.Registry()
	if err != nil {
		t.Fatal(err)
	}
	f, err := flowfile.Parse("tuned.yaml", text, reg, func(string) (string, bool) { return "", false })
	if err != nil {
		t.Fatalf("snippet does not parse in a flow file: %v\n%s", err, text)
	}
	if f.Bus.ChunkSize != best.ChunkSize || f.Bus.Compression != best.Compression || f.Sinks[0].Parallelism != best.Parallelism {
		t.Errorf("snippet gives %+v, %+v; want %v", f.Bus, f.Sinks[0], best.Point)
	}
	return rep
}

func TestBenchJSON(t *testing.T) {
	dir := t.TempDir()
	stdout, stderr, exit := runRunner(t, dir, "bench", "--json", "--no-ceiling", "--files", "3", "--size", "32KiB",
		"--chunk-size", "16KiB,32KiB", "--runs", "1", "--warmup", "0")
	if exit != 0 {
		t.Fatalf("exit %d\nstdout:\n%s\nstderr:\n%s", exit, stdout, stderr)
	}
	rep := checkReport(t, []byte(stdout), []int64{16 << 10, 32 << 10})
	if len(rep.Ceilings) != 0 {
		t.Errorf("ceilings measured despite --no-ceiling: %+v", rep.Ceilings)
	}
}

func TestBenchBadFlags(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--chunk-size", "3XB"}, `--chunk-size: "3XB" is not a size (examples: 256KiB, 1MiB)`},
		{[]string{"--chunk-size", "1MiB,,4MiB"}, `--chunk-size: empty value in "1MiB,,4MiB": separate values with single commas`},
		{[]string{"--chunk-size", "2KiB"}, `--chunk-size: "2KiB" is below the minimum of 4KiB`},
		{[]string{"--chunk-size", "1MiB,16MiB"}, "--chunk-size: 16MiB (16777216 bytes) plus 1024 bytes of headers exceeds the max_payload of 8388608 bytes of the embedded NATS server: use at most 8191KiB, or raise max_payload on the server"},
		{[]string{"--part-size", "big"}, `--part-size: "big" is not a size (examples: 8MiB, 16MiB)`},
		{[]string{"--parallelism", "1,0"}, `--parallelism: "0" is not a whole number above 0 (examples: 1,4,8)`},
		{[]string{"--compression", "none,lz4"}, `--compression: "lz4" is not a compression (want none, s2 or zstd)`},
		{[]string{"--size", "10XB"}, `--size: "10XB" is not a size (examples: 4KiB, 10MiB)`},
		{[]string{"--files", "0"}, `--files 0: must be at least 1`},
		{[]string{"--content", "binary"}, `invalid argument "binary" for "--content" flag: want random or text`},
		{[]string{"--runs", "0", "--warmup", "-1"}, "--runs 0: must be at least 1\n--warmup -1: must not be negative"},
		{[]string{"a.yaml", "b.yaml"}, "bench takes at most one flow file, got 2: runner bench [FLOW.yaml]"},
	} {
		stdout, stderr, exit := runInProcess(append([]string{"bench"}, tc.args...)...)
		if exit != exitErr || stdout != "" || stderr != "runner: "+tc.want+"\n" {
			t.Errorf("%q: exit %d\nstdout: %q\nstderr: %q\nwant:   %q", tc.args, exit, stdout, stderr, "runner: "+tc.want+"\n")
		}
	}
}

// TestBenchRefusesConsumingSource checks that a flow whose source would
// take its files away is refused before anything runs.
func TestBenchRefusesConsumingSource(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, dir, "in/a.txt", "a\n")
	writeFile(t, dir, "flow.yaml", "name: move\nsource:\n  local:\n    path: ./in\n    after: delete\nsinks:\n  - local:\n      path: ./out\n")
	stdout, stderr, exit := runRunner(t, dir, "bench", "flow.yaml")
	want := "runner: " + filepath.Join(dir, "flow.yaml") + " cannot be benchmarked:\n  source local has \"after: delete\": the first run would take the files away; set \"after: leave\" for the bench\n"
	if exit != exitErr || stdout != "" || stderr != want {
		t.Errorf("exit %d\nstdout: %q\nstderr: %q\nwant:   %q", exit, stdout, stderr, want)
	}
	if _, err := os.Stat(filepath.Join(dir, "in", "a.txt")); err != nil {
		t.Errorf("source file: %v", err)
	}
}
