package bench_test

import (
	"bytes"
	"context"
	"encoding/json"
	"encoding/xml"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/nats-io/nats.go/jetstream"
	"go.yaml.in/yaml/v3"

	"github.com/mftflow/mftflow/bench"
	"github.com/mftflow/mftflow/connectors/local"
	"github.com/mftflow/mftflow/pipeline"
	"github.com/mftflow/mftflow/pipeline/flowfile"
	"github.com/mftflow/mftflow/testkit"
)

func TestParseLists(t *testing.T) {
	for _, tc := range []struct {
		flag, in string
		want     any
		err      string
	}{
		{"--chunk-size", "256KiB,1MiB,4MiB", []int64{256 << 10, 1 << 20, 4 << 20}, ""},
		{"--chunk-size", " 1MiB , 1MiB", []int64{1 << 20}, ""},
		{"--chunk-size", "3XB", nil, `--chunk-size: "3XB" is not a size (examples: 256KiB, 1MiB)`},
		{"--chunk-size", "1MiB,,4MiB", nil, `--chunk-size: empty value in "1MiB,,4MiB": separate values with single commas`},
		{"--chunk-size", "1KiB", nil, `--chunk-size: "1KiB" is below the minimum of 4KiB`},
		{"--chunk-size", " ", nil, `--chunk-size: empty list: give one or more values separated by commas`},
		{"--parallelism", "1,4,8", []int{1, 4, 8}, ""},
		{"--parallelism", "0", nil, `--parallelism: "0" is not a whole number above 0 (examples: 1,4,8)`},
		{"--parallelism", "2.5", nil, `--parallelism: "2.5" is not a whole number above 0 (examples: 1,4,8)`},
		{"--compression", "none,s2,zstd", []string{"none", "s2", "zstd"}, ""},
		{"--compression", "s2,lz4", nil, `--compression: "lz4" is not a compression (want none, s2 or zstd)`},
	} {
		var got any
		var err error
		switch tc.flag {
		case "--chunk-size":
			got, err = bench.ParseSizes(tc.flag, tc.in, 4096, "256KiB, 1MiB")
		case "--parallelism":
			got, err = bench.ParseCounts(tc.flag, tc.in)
		case "--compression":
			got, err = bench.ParseCompressions(tc.flag, tc.in)
		}
		if tc.err != "" {
			if err == nil || err.Error() != tc.err {
				t.Errorf("%s %q: error %v, want %q", tc.flag, tc.in, err, tc.err)
			}
			continue
		}
		if err != nil {
			t.Errorf("%s %q: %v", tc.flag, tc.in, err)
			continue
		}
		if d := cmp.Diff(tc.want, got); d != "" {
			t.Errorf("%s %q (-want +got):\n%s", tc.flag, tc.in, d)
		}
	}
}

func TestPoints(t *testing.T) {
	s := bench.Sweep{ChunkSizes: []int64{1 << 20, 4 << 20}, Parallelisms: []int{1, 8}}
	got := s.Points(bench.Point{ChunkSize: 1 << 20, Parallelism: 4, Compression: "s2"})
	want := []bench.Point{
		{ChunkSize: 1 << 20, Parallelism: 1, Compression: "s2"},
		{ChunkSize: 1 << 20, Parallelism: 8, Compression: "s2"},
		{ChunkSize: 4 << 20, Parallelism: 1, Compression: "s2"},
		{ChunkSize: 4 << 20, Parallelism: 8, Compression: "s2"},
	}
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("points (-want +got):\n%s", d)
	}
}

func TestGenerateIsDeterministic(t *testing.T) {
	dir := t.TempDir()
	for _, data := range []string{bench.DataRandom, bench.DataText} {
		w := bench.Workload{Files: 2, Size: 100_000, Data: data}
		a, b := filepath.Join(dir, data, "a"), filepath.Join(dir, data, "b")
		if err := w.Generate(a); err != nil {
			t.Fatal(err)
		}
		if err := w.Generate(b); err != nil {
			t.Fatal(err)
		}
		x, _ := os.ReadFile(filepath.Join(a, "file-00001.bin"))
		y, _ := os.ReadFile(filepath.Join(b, "file-00001.bin"))
		z, _ := os.ReadFile(filepath.Join(a, "file-00000.bin"))
		if len(x) != 100_000 || !bytes.Equal(x, y) || bytes.Equal(x, z) {
			t.Errorf("%s: %d bytes; same index equal: %v; different index differs: %v", data, len(x), bytes.Equal(x, y), !bytes.Equal(x, z))
		}
	}
	if err := (bench.Workload{Files: 0, Size: 1, Data: "binary"}).Check(); err == nil ||
		err.Error() != "--files 0: must be at least 1\n--content: \"binary\" is not random or text" {
		t.Errorf("check: %v", err)
	}
}

func registry(t *testing.T) *pipeline.Registry {
	t.Helper()
	reg := pipeline.NewRegistry()
	if err := local.Register(reg); err != nil {
		t.Fatal(err)
	}
	return reg
}

func env(t *testing.T) (bench.Env, jetstream.JetStream) {
	t.Helper()
	nc := testkit.ConnectNATS(t, testkit.StartNATS(t))
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	return bench.Env{NC: nc, Registry: registry(t)}, js
}

// streamsLeft lists the streams on the server (KV buckets are streams too).
func streamsLeft(t *testing.T, js jetstream.JetStream) []string {
	t.Helper()
	var names []string
	l := js.StreamNames(context.Background())
	for n := range l.Name() {
		names = append(names, n)
	}
	if err := l.Err(); err != nil {
		t.Fatal(err)
	}
	return names
}

// TestSyntheticSweep runs a two-point sweep of a generated workload into a
// temporary local sink, then checks the report, the table, the chart and
// the snippet, and that nothing was left on the bus or on disk.
func TestSyntheticSweep(t *testing.T) {
	e, js := env(t)
	work := t.TempDir()
	cfg := bench.Config{
		Workload: &bench.Workload{Files: 3, Size: 200 << 10, Data: bench.DataText},
		Sweep:    bench.Sweep{ChunkSizes: []int64{64 << 10, 128 << 10}, PartSizes: []int64{256 << 10}},
		Runs:     1,
		WorkDir:  work,
		NATS:     "test",
	}
	var done []bench.Event
	rep, err := bench.Run(context.Background(), cfg, e.Registry, bench.InProcess{Env: e}, func(ev bench.Event) {
		if ev.Done != nil {
			done = append(done, ev)
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Points) != 2 || len(rep.Ceilings) != 2 || len(done) != 4 {
		t.Fatalf("%d points, %d ceilings, %d runs done; want 2, 2, 4", len(rep.Points), len(rep.Ceilings), len(done))
	}
	for i, p := range rep.Points {
		if len(p.Runs) != 1 {
			t.Fatalf("point %d: %d runs", i, len(p.Runs))
		}
		m := p.Runs[0]
		if m.Files != 3 || m.Bytes != 3*200<<10 || p.MBps.Median <= 0 || p.FilesPerSec.Median <= 0 || p.CeilingMBps <= 0 ||
			m.PeakRSS <= 0 || m.RSSMethod != bench.RSSSampled || p.PartSize != 256<<10 || p.Compression != "s2" || p.Parallelism != 4 {
			t.Errorf("point %d: %+v", i, p)
		}
	}
	if rep.Best < 0 || !rep.Points[rep.Best].Best {
		t.Fatalf("best %d not marked", rep.Best)
	}
	if left := streamsLeft(t, js); len(left) != 0 {
		t.Errorf("streams left on the server: %v", left)
	}
	entries, _ := os.ReadDir(work)
	var names []string
	for _, en := range entries {
		names = append(names, en.Name())
	}
	if d := cmp.Diff([]string{"input"}, names); d != "" {
		t.Errorf("work directory after the sweep (-want +got):\n%s", d)
	}

	var table bytes.Buffer
	if err := rep.WriteTable(&table); err != nil {
		t.Fatal(err)
	}
	out := table.String()
	for _, want := range []string{"3 × 200KiB text (600.0 KiB); 1 counted run after 0 warm-ups; NATS: test; peak RSS: VmRSS sampled", "CHUNK", "64KiB", "128KiB", "best: chunk "} {
		if !strings.Contains(out, want) {
			t.Errorf("table lacks %q:\n%s", want, out)
		}
	}
	if strings.Count(out, "\n*") != 1 {
		t.Errorf("table should mark one best row with *:\n%s", out)
	}

	var svg bytes.Buffer
	if err := rep.WriteChart(&svg); err != nil {
		t.Fatal(err)
	}
	checkXML(t, svg.Bytes())
	if n := strings.Count(svg.String(), "<polyline"); n != 2 {
		t.Errorf("chart has %d lines, want one per chunk size (2)", n)
	}

	js2, err := json.Marshal(rep)
	if err != nil {
		t.Fatal(err)
	}
	var back bench.Report
	if err := json.Unmarshal(js2, &back); err != nil || len(back.Points) != 2 || back.Points[rep.Best].MBps.Median <= 0 {
		t.Errorf("JSON round trip: %v, %+v", err, back.Points)
	}

	f := applySnippet(t, rep.Snippet, e.Registry)
	best := rep.Points[rep.Best]
	if f.Bus.ChunkSize != best.ChunkSize || f.Bus.Compression != best.Compression ||
		f.Sinks[0].Parallelism != best.Parallelism || f.Sinks[0].Config["part_size"] != best.PartSize {
		t.Errorf("snippet %q gives bus %+v, sink %+v; want %v", rep.Snippet, f.Bus, f.Sinks[0], best.Point)
	}
}

// applySnippet adds the settings of a snippet to a minimal flow file (a
// source, and a path for each sink) and parses it.
func applySnippet(t *testing.T, snippet string, reg *pipeline.Registry) *pipeline.Flow {
	t.Helper()
	var frag map[string]any
	if err := yaml.Unmarshal([]byte(snippet), &frag); err != nil {
		t.Fatalf("snippet is not YAML: %v\n%s", err, snippet)
	}
	doc := map[string]any{"name": "tuned", "source": map[string]any{"local": map[string]any{"path": t.TempDir()}}}
	for k, v := range frag {
		doc[k] = v
	}
	sinks, _ := frag["sinks"].([]any)
	if len(sinks) == 0 {
		t.Fatalf("snippet has no sinks:\n%s", snippet)
	}
	for _, s := range sinks {
		m := s.(map[string]any)
		cfg, _ := m["local"].(map[string]any)
		if cfg == nil {
			cfg = map[string]any{}
		}
		cfg["path"] = t.TempDir()
		m["local"] = cfg
	}
	text, err := yaml.Marshal(doc)
	if err != nil {
		t.Fatal(err)
	}
	f, err := flowfile.Parse("tuned.yaml", text, reg, func(string) (string, bool) { return "", false })
	if err != nil {
		t.Fatalf("snippet does not parse as part of a flow: %v\n%s", err, text)
	}
	return f
}

func checkXML(t *testing.T, b []byte) {
	t.Helper()
	d := xml.NewDecoder(bytes.NewReader(b))
	root := ""
	for {
		tok, err := d.Token()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatalf("chart is not well-formed XML: %v\n%s", err, b)
		}
		if se, ok := tok.(xml.StartElement); ok && root == "" {
			root = se.Name.Local
		}
	}
	if root != "svg" {
		t.Errorf("chart root element %q, want svg", root)
	}
}

// TestFlowFileSweep runs a flow file's own source and local sink: the
// source's files stay, the sink's directory keeps what it held before and
// nothing of the runs.
func TestFlowFileSweep(t *testing.T) {
	e, _ := env(t)
	dir := t.TempDir()
	in, out := filepath.Join(dir, "in"), filepath.Join(dir, "out")
	if err := (bench.Workload{Files: 2, Size: 50_000, Data: bench.DataRandom}).Generate(in); err != nil {
		t.Fatal(err)
	}
	os.MkdirAll(out, 0o755)
	os.WriteFile(filepath.Join(out, "keep.txt"), []byte("mine\n"), 0o644)
	flow := filepath.Join(dir, "flow.yaml")
	os.WriteFile(flow, []byte("name: nightly\nsource:\n  local:\n    path: "+in+"\nsinks:\n  - name: archive\n    local:\n      path: "+out+"\n    parallelism: 2\n"), 0o644)

	cfg := bench.Config{FlowFile: flow, Sweep: bench.Sweep{Compressions: []string{"none", "zstd"}}, Runs: 1, WorkDir: t.TempDir(), NoCeiling: true}
	rep, err := bench.Run(context.Background(), cfg, e.Registry, bench.InProcess{Env: e}, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range rep.Points {
		if p.Runs[0].Files != 2 || p.Parallelism != 2 || p.ChunkSize != pipeline.DefaultChunkSize {
			t.Errorf("point %+v", p)
		}
	}
	for _, name := range []string{"in/file-00000.bin", "in/file-00001.bin", "out/keep.txt"} {
		if _, err := os.Stat(filepath.Join(dir, name)); err != nil {
			t.Errorf("%s: %v", name, err)
		}
	}
	if entries, _ := os.ReadDir(out); len(entries) != 1 {
		t.Errorf("sink directory holds %d entries, want keep.txt alone", len(entries))
	}
	if !strings.HasPrefix(rep.Snippet, "# in "+flow+" (other settings unchanged)\nbus:\n  chunk_size: 1MiB\n") ||
		!strings.Contains(rep.Snippet, "  - name: archive\n    parallelism: 2\n") {
		t.Errorf("snippet:\n%s", rep.Snippet)
	}
}

func TestRefusesSourcesThatCannotRepeat(t *testing.T) {
	reg := registry(t)
	dir := t.TempDir()
	flow := filepath.Join(dir, "flow.yaml")
	os.Mkdir(filepath.Join(dir, "in"), 0o755)
	os.WriteFile(flow, []byte("name: once\nsource:\n  local:\n    path: "+dir+"/in\n    after: delete\nsinks:\n  - local:\n      path: "+dir+"/out\n"), 0o644)
	_, err := bench.Run(context.Background(), bench.Config{FlowFile: flow, Runs: 1, WorkDir: t.TempDir()}, reg, nil, nil)
	want := flow + " cannot be benchmarked:\n  source local has \"after: delete\": the first run would take the files away; set \"after: leave\" for the bench"
	if err == nil || err.Error() != want {
		t.Errorf("error:\n%v\nwant:\n%s", err, want)
	}
	// A generated workload replaces the source: then it is fine, unless a
	// part size is swept for a sink without one.
	reg.RegisterSink(pipeline.Spec{Name: "plain"}, func(context.Context, pipeline.Config) (pipeline.Sink, error) { return nil, errors.New("unused") })
	os.WriteFile(flow, []byte("name: once\nsource:\n  local:\n    path: "+dir+"\nsinks:\n  - plain: {}\n"), 0o644)
	_, err = bench.Run(context.Background(), bench.Config{FlowFile: flow, Runs: 1, WorkDir: t.TempDir(),
		Workload: &bench.Workload{Files: 1, Size: 1, Data: "text"}, Sweep: bench.Sweep{PartSizes: []int64{1 << 20}}}, reg, nil, nil)
	want = flow + " cannot be benchmarked:\n  --part-size: sink \"plain\" (plain) has no part_size setting; leave --part-size out"
	if err == nil || err.Error() != want {
		t.Errorf("error:\n%v\nwant:\n%s", err, want)
	}
}

func TestCeilingRefusesChunksAboveMaxPayload(t *testing.T) {
	e, _ := env(t)
	_, err := bench.Ceiling(context.Background(), e.NC, "big", 8<<20, 1<<20, nil)
	want := "bus ceiling: chunk size 8MiB is above the server's max_payload of 8388608 bytes"
	if err == nil || err.Error() != want {
		t.Errorf("error %v, want %q", err, want)
	}
}

// With chunks as small as a 4 KiB file, thousands of publishes are in flight
// at once: a server that falls behind for a moment must slow the ceiling
// down, not fail it. Every byte must come back, the last message short.
func TestCeilingSmallChunks(t *testing.T) {
	e, js := env(t)
	const total = 5000*4096 + 100
	m, err := bench.Ceiling(context.Background(), e.NC, "small", 4096, total, nil)
	if err != nil {
		t.Fatal(err)
	}
	if m.Bytes != total || m.Seconds <= 0 {
		t.Errorf("measured %d bytes in %gs, want %d bytes in more than 0s", m.Bytes, m.Seconds, total)
	}
	if left := streamsLeft(t, js); len(left) != 0 {
		t.Errorf("streams left: %v", left)
	}
}
