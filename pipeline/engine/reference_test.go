package engine_test

import (
	"context"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/mftflow/mftflow/connectors/local"
	"github.com/mftflow/mftflow/pipeline"
	"github.com/mftflow/mftflow/pipeline/bus"
	"github.com/mftflow/mftflow/pipeline/engine"
	"github.com/mftflow/mftflow/testkit"
)

// localSource is a local source over dir that lists once and takes files at
// once.
func localSource(t *testing.T, dir string) pipeline.Source {
	t.Helper()
	c := local.DefaultSourceConfig(dir)
	c.Watch, c.StableFor = false, 0
	src, err := local.NewSource(context.Background(), c)
	if err != nil {
		t.Fatal(err)
	}
	return src
}

// waitManifest polls the flow's manifest of name until ok says so.
func waitManifest(t *testing.T, e env, flow, name string, ok func(bus.Manifest) bool) bus.Manifest {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		st, err := engine.ReadStatus(context.Background(), e.js, flow)
		if err == nil && len(st) == 1 {
			for _, f := range st[0].Files {
				if f.Manifest.Name == name && ok(f.Manifest) {
					return f.Manifest
				}
			}
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatalf("flow %s: %s did not reach the state waited for within 30s", flow, name)
	return bus.Manifest{}
}

func TestFilesTravelByReference(t *testing.T) {
	e := newEnv(t)
	dir := t.TempDir()
	files := sampleFiles()
	for name, data := range files {
		os.MkdirAll(filepath.Dir(filepath.Join(dir, name)), 0o755)
		if err := os.WriteFile(filepath.Join(dir, name), data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	a := testkit.NewMemorySink()
	a.SetPlan(pipeline.PartPlan{PartSize: 1 << 20, Concurrency: 3})
	reg := prometheus.NewRegistry()
	runToEnd(t, e.engine(t, engine.Options{SoleRunner: true, Metrics: reg}), pipeline.Flow{
		Name:   "by-reference",
		Source: pipeline.SourceOf(localSource(t, dir)),
		Sinks:  []pipeline.SinkSpec{pipeline.SinkOf("a", a)},
		Bus:    pipeline.BusSpec{ChunkSize: 64 << 10, Payload: pipeline.PayloadReference},
	})
	checkDelivered(t, files, a.Files())
	st, err := engine.ReadStatus(context.Background(), e.js, "by-reference")
	if err != nil {
		t.Fatal(err)
	}
	byRef := 0
	for _, f := range st[0].Files {
		// Files of 32 KiB or less travel inside their manifest, the rest by
		// reference.
		want := pipeline.PayloadReference
		if f.Manifest.Size <= 32<<10 {
			want = ""
		} else {
			byRef++
		}
		if f.Manifest.Payload != want {
			t.Errorf("%s (%d bytes) travelled by %q, want %q", f.Manifest.Name, f.Manifest.Size, f.Manifest.Payload, want)
		}
	}
	wantSeries(t, reg, float64(len(files)), "mftflow_read_files_total", "flow", "by-reference")
	wantSeries(t, reg, float64(byRef), "mftflow_read_reference_files_total", "flow", "by-reference")
}

// TestChangedSourceIsNeverDeliveredMixed rewrites a file read by reference
// before its delivery starts, keeping its size (and in one case its time, so
// that only the chunks' CRC-32C can tell), and checks both bus.on_change
// settings: fail commits nothing and says why; reread delivers the new
// bytes, never a mix.
func TestChangedSourceIsNeverDeliveredMixed(t *testing.T) {
	e := newEnv(t)
	for _, tc := range []struct {
		name, onChange string
		keepTime       bool
	}{
		{"fail, time changed", pipeline.ChangeFail, false},
		{"fail, same size and time", pipeline.ChangeFail, true},
		{"reread, time changed", pipeline.ChangeReread, false},
		{"reread, same size and time", pipeline.ChangeReread, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			path := filepath.Join(dir, "data.bin")
			before, after := testkit.RandomContent(1, 3<<20), testkit.RandomContent(2, 3<<20)
			if err := os.WriteFile(path, before, 0o644); err != nil {
				t.Fatal(err)
			}
			flow := "changed-" + strings.NewReplacer(" ", "-", ",", "").Replace(tc.name)
			sink := gatedSink{MemorySink: testkit.NewMemorySink(), gate: make(chan struct{})}
			reg := prometheus.NewRegistry()
			run, err := e.engine(t, engine.Options{SoleRunner: true, Logger: testLogger(t), Metrics: reg}).Start(context.Background(), pipeline.Flow{
				Name:   flow,
				Source: pipeline.SourceOf(localSource(t, dir)),
				Sinks:  []pipeline.SinkSpec{fastRetry(pipeline.SinkOf("out", sink), 3)},
				Bus:    pipeline.BusSpec{ChunkSize: 64 << 10, Payload: pipeline.PayloadReference, OnChange: tc.onChange},
			})
			if err != nil {
				t.Fatal(err)
			}
			waitManifest(t, e, flow, "data.bin", func(m bus.Manifest) bool { return m.State == bus.FileReady })
			info, _ := os.Stat(path)
			if err := os.WriteFile(path, after, 0o644); err != nil {
				t.Fatal(err)
			}
			if tc.keepTime {
				os.Chtimes(path, info.ModTime(), info.ModTime())
			}
			close(sink.gate)
			waitRun(t, run, time.Minute)

			got, ok := sink.Files()["data.bin"]
			switch {
			case tc.onChange == pipeline.ChangeFail && ok:
				t.Fatalf("on_change fail committed %d bytes (sha256 %s); want nothing", len(got), testkit.SHA256Hex(got))
			case tc.onChange == pipeline.ChangeReread && !ok:
				t.Fatal("on_change reread delivered nothing")
			case tc.onChange == pipeline.ChangeReread && testkit.SHA256Hex(got) != testkit.SHA256Hex(after):
				t.Fatalf("on_change reread delivered sha256 %s; want the new bytes, %s (old: %s)", testkit.SHA256Hex(got), testkit.SHA256Hex(after), testkit.SHA256Hex(before))
			}
			wantSeries(t, reg, 1, "mftflow_source_changed_total", "flow", flow)
			s := run.Stats()
			if tc.onChange == pipeline.ChangeFail {
				if s.FilesFailed != 1 || s.FilesPassed != 0 {
					t.Errorf("stats %+v; want one file failed", s)
				}
				m := waitManifest(t, e, flow, "data.bin", func(m bus.Manifest) bool { return m.State == bus.FileDone })
				if !strings.Contains(m.Error, "changed") || !strings.Contains(m.Changed, "changed") {
					t.Errorf("outcome error %q, changed %q; want both to say the file changed", m.Error, m.Changed)
				}
				return
			}
			if s.FilesPassed != 1 || s.FilesFailed != 0 {
				t.Errorf("stats %+v; want the new version passed", s)
			}
			if sink.Commits() != 1 {
				t.Errorf("%d commits; want 1", sink.Commits())
			}
		})
	}
}

// TestReferenceRefusedWhereItCannotWork checks bus.payload against what the
// source and stages can do: reference is refused with the reason, auto
// falls back to bytes.
func TestReferenceRefusedWhereItCannotWork(t *testing.T) {
	e := newEnv(t)
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "a.bin"), testkit.RandomContent(3, 1<<20), 0o644)
	upper := pipeline.StageOf(pipeline.StageFunc(func(ctx context.Context, f pipeline.File, r io.Reader) (pipeline.File, io.Reader, error) {
		return f, r, nil
	}))
	for _, tc := range []struct {
		name    string
		src     func() pipeline.Source
		stages  []pipeline.Component
		sole    bool
		payload string
		want    string // error, or the payload a file went by
	}{
		{"source that cannot read again", func() pipeline.Source { return testkit.NewMemorySource(map[string][]byte{"a.bin": []byte("x")}, true) }, nil, true, pipeline.PayloadReference,
			`bus.payload reference: source "*testkit.MemorySource" cannot read a file again by its key (it hands files out once, or has no range reads); use bus.payload bytes, or auto to read by reference only where it can`},
		{"stage of unknown effect", func() pipeline.Source { return localSource(t, dir) }, []pipeline.Component{upper}, true, pipeline.PayloadReference,
			`bus.payload reference: stage 1 (pipeline.StageFunc) changes or reads the content, so the bytes a sink needs exist only after it: remove the stage; use bus.payload bytes, or auto to read by reference only where it can`},
		{"local path with other runners", func() pipeline.Source { return localSource(t, dir) }, nil, false, pipeline.PayloadReference,
			`bus.payload reference: the source reads files again only on this host, and runners on other hosts may deliver them (the bus is an external NATS server): set shared: true on the source if every runner sees the same files at the same path; use bus.payload bytes, or auto to read by reference only where it can`},
		{"auto with a stage", func() pipeline.Source { return localSource(t, dir) }, []pipeline.Component{upper}, true, pipeline.PayloadAuto, ""},
		{"auto", func() pipeline.Source { return localSource(t, dir) }, nil, true, pipeline.PayloadAuto, pipeline.PayloadReference},
	} {
		t.Run(tc.name, func(t *testing.T) {
			flow := "refusal-" + strings.ReplaceAll(tc.name, " ", "-")
			f := pipeline.Flow{Name: flow, Source: pipeline.SourceOf(tc.src()), Stages: tc.stages,
				Sinks: []pipeline.SinkSpec{pipeline.SinkOf("out", testkit.NewMemorySink())}, Bus: pipeline.BusSpec{Payload: tc.payload}}
			run, err := e.engine(t, engine.Options{SoleRunner: tc.sole}).Start(context.Background(), f)
			if strings.HasPrefix(tc.want, "bus.payload") {
				if err == nil {
					run.Stop(context.Background())
					t.Fatalf("started; want %q", tc.want)
				}
				if want := "flow " + flow + ": " + tc.want; err.Error() != want {
					t.Fatalf("error\n%s\nwant\n%s", err, want)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			waitRun(t, run, time.Minute)
			m := waitManifest(t, e, flow, "a.bin", func(m bus.Manifest) bool { return m.State == bus.FileDone })
			if m.Payload != tc.want {
				t.Errorf("a.bin travelled by %q, want %q", m.Payload, tc.want)
			}
		})
	}
}

// TestReadResumedUnderAnotherPayload stops a run while a file is half read
// with its bytes on the bus, and resumes it with bus.payload reference:
// chunks of both kinds meet in the same parts, and the file arrives whole.
func TestReadResumedUnderAnotherPayload(t *testing.T) {
	e := newEnv(t)
	dir := t.TempDir()
	content := testkit.RandomContent(21, 12<<20)
	if err := os.WriteFile(filepath.Join(dir, "half.bin"), content, 0o644); err != nil {
		t.Fatal(err)
	}
	// Parts of six chunks at one sink and five at the other: reading
	// waits two parts ahead of the slower one, so a stop leaves it off
	// some part boundary, and the part where references begin holds
	// chunks of both kinds.
	six, five := testkit.NewMemorySink(), testkit.NewMemorySink()
	six.SetPlan(pipeline.PartPlan{PartSize: 6 * 192 << 10, Concurrency: 2})
	five.SetPlan(pipeline.PartPlan{PartSize: 5 * 192 << 10, Concurrency: 2})
	flow := func(payload string, a, b pipeline.Sink) pipeline.Flow {
		return pipeline.Flow{Name: "half", Source: pipeline.SourceOf(localSource(t, dir)),
			Sinks: []pipeline.SinkSpec{pipeline.SinkOf("six", a), pipeline.SinkOf("five", b)},
			Bus:   pipeline.BusSpec{ChunkSize: 192 << 10, Window: 1 << 20, Payload: payload}}
	}
	run, err := e.engine(t, engine.Options{SoleRunner: true}).Start(context.Background(),
		flow(pipeline.PayloadBytes, testkit.Stall(six, 20*time.Millisecond), testkit.Stall(five, 150*time.Millisecond)))
	if err != nil {
		t.Fatal(err)
	}
	m := waitManifest(t, e, "half", "half.bin", func(m bus.Manifest) bool { return m.Checkpoint != nil })
	if err := run.Stop(context.Background()); err != nil {
		t.Fatal(err)
	}
	m = waitManifest(t, e, "half", "half.bin", func(bus.Manifest) bool { return true })
	if m.State != bus.FileIngesting || m.Checkpoint == nil || m.Checkpoint.Bytes >= int64(len(content)) {
		t.Fatalf("after the stop the file is %s with checkpoint %+v; want it half read", m.State, m.Checkpoint)
	}
	runToEnd(t, e.engine(t, engine.Options{SoleRunner: true}), flow(pipeline.PayloadReference, six, five))
	checkDelivered(t, map[string][]byte{"half.bin": content}, six.Files())
	checkDelivered(t, map[string][]byte{"half.bin": content}, five.Files())
}
