package engine_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/mftflow/mftflow/pipeline"
	"github.com/mftflow/mftflow/pipeline/bus"
	"github.com/mftflow/mftflow/pipeline/engine"
	"github.com/mftflow/mftflow/testkit"
)

// env is one embedded NATS server and a connection to it.
type env struct {
	nc *nats.Conn
	js jetstream.JetStream
}

func newEnv(t *testing.T) env {
	t.Helper()
	nc := testkit.ConnectNATS(t, testkit.StartNATS(t))
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	return env{nc: nc, js: js}
}

func (e env) engine(t *testing.T, o engine.Options) *engine.Engine {
	t.Helper()
	if o.AckWait == 0 {
		o.AckWait = 5 * time.Second
	}
	eng, err := engine.New(e.nc, o)
	if err != nil {
		t.Fatal(err)
	}
	return eng
}

// runToEnd starts f and waits for it to end by itself.
func runToEnd(t *testing.T, eng *engine.Engine, f pipeline.Flow) *engine.Run {
	t.Helper()
	run, err := eng.Start(context.Background(), f)
	if err != nil {
		t.Fatal(err)
	}
	waitRun(t, run, time.Minute)
	return run
}

func waitRun(t *testing.T, run *engine.Run, d time.Duration) {
	t.Helper()
	done := make(chan error, 1)
	go func() { done <- run.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("run: %v", err)
		}
	case <-time.After(d):
		run.Stop(context.Background())
		t.Fatalf("run did not finish within %v: %+v", d, run.Stats())
	}
}

func fastRetry(s pipeline.SinkSpec, attempts int) pipeline.SinkSpec {
	s.Retry = pipeline.Retry{Attempts: attempts, Initial: 20 * time.Millisecond, Max: 100 * time.Millisecond}
	return s
}

// sizes exercise the chunk edges for 64 KiB chunks: empty, one byte, exact
// multiples, one over, and several parts.
func sampleFiles() map[string][]byte {
	files := map[string][]byte{}
	for i, n := range []int{0, 1, 64 << 10, 64<<10 + 1, 3 << 20, 5<<20 + 17} {
		files[fmt.Sprintf("dir/f%d.bin", i)] = testkit.RandomContent(int64(i), n)
	}
	files["text.csv"] = []byte(strings.Repeat("order,customer,amount\n", 50000))
	return files
}

func checkDelivered(t *testing.T, want map[string][]byte, got map[string][]byte) {
	t.Helper()
	if len(got) != len(want) {
		t.Errorf("sink holds %d files, want %d", len(got), len(want))
	}
	for name, data := range want {
		if g, ok := got[name]; !ok {
			t.Errorf("%s: not delivered", name)
		} else if testkit.SHA256Hex(g) != testkit.SHA256Hex(data) {
			t.Errorf("%s: sha256 %s, want %s (%d bytes, want %d)", name, testkit.SHA256Hex(g), testkit.SHA256Hex(data), len(g), len(data))
		}
	}
}

func TestDeliversEveryFileByteIdentical(t *testing.T) {
	e := newEnv(t)
	for _, comp := range []string{"none", "s2", "zstd"} {
		t.Run(comp, func(t *testing.T) {
			files := sampleFiles()
			src := testkit.NewMemorySource(files, true)
			a, b := testkit.NewMemorySink(), testkit.NewMemorySink()
			b.SetPlan(pipeline.PartPlan{PartSize: 1 << 20, Concurrency: 3})
			run := runToEnd(t, e.engine(t, engine.Options{}), pipeline.Flow{
				Name:   "every-" + comp,
				Source: pipeline.SourceOf(src),
				Sinks:  []pipeline.SinkSpec{pipeline.SinkOf("a", a), pipeline.SinkOf("b", b)},
				Bus:    pipeline.BusSpec{ChunkSize: 64 << 10, Compression: comp},
			})
			checkDelivered(t, files, a.Files())
			checkDelivered(t, files, b.Files())
			if a.Commits() != len(files) || b.Commits() != len(files) {
				t.Errorf("commits a=%d b=%d, want %d each", a.Commits(), b.Commits(), len(files))
			}
			for name, o := range src.Acked() {
				if o.Status != pipeline.Passed {
					t.Errorf("%s acked %v (%s), want passed", name, o.Status, o.Message)
				}
			}
			if s := run.Stats(); s.FilesPassed != int64(len(files)) || s.FilesInFlight != 0 {
				t.Errorf("stats: %+v", s)
			}
		})
	}
}

func TestStagesTransformRenameAndSkip(t *testing.T) {
	e := newEnv(t)
	files := map[string][]byte{"keep.txt": []byte("hello\n"), "drop.log": []byte("noise\n")}
	src := testkit.NewMemorySource(files, true)
	sink := testkit.NewMemorySink()
	upper := pipeline.StageFunc(func(ctx context.Context, f pipeline.File, r io.Reader) (pipeline.File, io.Reader, error) {
		if strings.HasSuffix(f.Name, ".log") {
			return f, nil, fmt.Errorf("logs stay home: %w", pipeline.ErrSkip)
		}
		b, err := io.ReadAll(r)
		f.Name = "upper/" + f.Name
		f.Size = -1
		return f, strings.NewReader(strings.ToUpper(string(b))), err
	})
	run := runToEnd(t, e.engine(t, engine.Options{}), pipeline.Flow{
		Name:   "stages",
		Source: pipeline.SourceOf(src),
		Stages: []pipeline.Component{pipeline.StageOf(upper)},
		Sinks:  []pipeline.SinkSpec{pipeline.SinkOf("mem", sink)},
	})
	if diff := cmp.Diff(map[string][]byte{"upper/keep.txt": []byte("HELLO\n")}, sink.Files()); diff != "" {
		t.Errorf("sink files (-want +got):\n%s", diff)
	}
	acked := src.Acked()
	if acked["drop.log"].Status != pipeline.Skipped || acked["drop.log"].Message != "logs stay home: file skipped" {
		t.Errorf("drop.log acked %+v, want skipped with the stage's reason", acked["drop.log"])
	}
	if acked["keep.txt"].Status != pipeline.Passed {
		t.Errorf("keep.txt acked %+v", acked["keep.txt"])
	}
	if s := run.Stats(); s.FilesSkipped != 1 || s.FilesPassed != 1 {
		t.Errorf("stats %+v", s)
	}
}

func TestOneSinkFailingNeverBlocksTheOther(t *testing.T) {
	e := newEnv(t)
	files := sampleFiles()
	src := testkit.NewMemorySource(files, true)
	good := testkit.NewMemorySink()
	bad := testkit.FailAlways(testkit.NewMemorySink(), pipeline.Permanent(errors.New("disk on fire")))
	flaky := testkit.FailEveryNth(testkit.NewMemorySink(), 1, nil) // retryable, every part
	eng := e.engine(t, engine.Options{})
	run := runToEnd(t, eng, pipeline.Flow{
		Name:   "fanout",
		Source: pipeline.SourceOf(src),
		Sinks: []pipeline.SinkSpec{
			pipeline.SinkOf("good", good),
			fastRetry(pipeline.SinkOf("bad", bad), 5),
			fastRetry(pipeline.SinkOf("flaky", flaky), 2),
		},
		Bus: pipeline.BusSpec{ChunkSize: 64 << 10},
	})
	checkDelivered(t, files, good.Files())
	for name, o := range src.Acked() {
		if o.Status != pipeline.Mixed || o.Sinks["good"].Committed != true || o.Sinks["bad"].Committed {
			t.Errorf("%s acked %+v, want mixed with good committed", name, o)
		}
	}
	st, err := engine.ReadStatus(context.Background(), e.js, "fanout")
	if err != nil {
		t.Fatal(err)
	}
	wantCounts := []engine.SinkCounts{
		{Sink: "bad", Failed: len(files)},
		{Sink: "flaky", Failed: len(files)},
		{Sink: "good", Committed: len(files)},
	}
	if diff := cmp.Diff(wantCounts, st[0].Sinks); diff != "" {
		t.Errorf("status counts (-want +got):\n%s", diff)
	}
	for _, f := range st[0].Files {
		for _, d := range f.Deliveries {
			switch d.Sink {
			case "bad":
				want := fmt.Sprintf("opening %s on sink bad: opening %q: disk on fire", f.Manifest.Name, f.Manifest.Name)
				if d.Error != want || d.Attempts != 1 {
					t.Errorf("bad delivery of %s: attempts %d error %q, want 1 attempt (permanent) and %q", f.Manifest.Name, d.Attempts, d.Error, want)
				}
			case "flaky":
				if d.Attempts != 2 || !strings.Contains(d.Error, "injected") {
					t.Errorf("flaky delivery of %s: attempts %d error %q, want 2 attempts, injected error", f.Manifest.Name, d.Attempts, d.Error)
				}
			}
		}
	}
	if s := run.Stats(); s.FilesMixed != int64(len(files)) {
		t.Errorf("stats %+v", s)
	}
}

func TestRetriesRecoverFromTransientFailures(t *testing.T) {
	e := newEnv(t)
	files := sampleFiles()
	src := testkit.NewMemorySource(files, true)
	mem := testkit.NewMemorySink()
	mem.SetPlan(pipeline.PartPlan{PartSize: 128 << 10})
	sink := testkit.FailEveryNth(mem, 3, nil)
	runToEnd(t, e.engine(t, engine.Options{}), pipeline.Flow{
		Name:   "retry",
		Source: pipeline.SourceOf(src),
		Sinks:  []pipeline.SinkSpec{fastRetry(pipeline.SinkOf("mem", sink), 5)},
		Bus:    pipeline.BusSpec{ChunkSize: 64 << 10},
	})
	checkDelivered(t, files, mem.Files())
	if mem.Commits() != len(files) {
		t.Errorf("commits %d, want %d", mem.Commits(), len(files))
	}
}

func TestHostileNamesAreRejected(t *testing.T) {
	e := newEnv(t)
	files := map[string][]byte{"../escape.txt": []byte("x"), "ok.txt": []byte("fine"), "a/../../b": []byte("y")}
	src := testkit.NewMemorySource(files, true)
	sink := testkit.NewMemorySink()
	runToEnd(t, e.engine(t, engine.Options{}), pipeline.Flow{
		Name: "hostile", Source: pipeline.SourceOf(src), Sinks: []pipeline.SinkSpec{pipeline.SinkOf("mem", sink)},
	})
	if diff := cmp.Diff(map[string][]byte{"ok.txt": []byte("fine")}, sink.Files()); diff != "" {
		t.Errorf("sink files (-want +got):\n%s", diff)
	}
	got := map[string]string{}
	for name, o := range src.Acked() {
		got[name] = o.Status.String() + ": " + o.Message
	}
	want := map[string]string{
		"../escape.txt": `failed: file name "../escape.txt": contains ".." and would escape the target directory: unsafe file name`,
		"a/../../b":     `failed: file name "a/../../b": contains ".." and would escape the target directory: unsafe file name`,
		"ok.txt":        "passed: ",
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("outcomes (-want +got):\n%s", diff)
	}
}

func TestRestartDoesNotDeliverAgain(t *testing.T) {
	e := newEnv(t)
	files := sampleFiles()
	src := testkit.NewMemorySource(files, true)
	sink := testkit.NewMemorySink()
	flow := func(s pipeline.Source) pipeline.Flow {
		return pipeline.Flow{Name: "again", Source: pipeline.SourceOf(s), Sinks: []pipeline.SinkSpec{pipeline.SinkOf("mem", sink)}, Bus: pipeline.BusSpec{ChunkSize: 64 << 10}}
	}
	runToEnd(t, e.engine(t, engine.Options{}), flow(src))
	writes := sink.PartWrites()
	run := runToEnd(t, e.engine(t, engine.Options{}), flow(src.Reopen()))
	if sink.Commits() != len(files) || sink.PartWrites() != writes {
		t.Errorf("after a second run: %d commits, %d part writes; want %d and %d (nothing sent again)", sink.Commits(), sink.PartWrites(), len(files), writes)
	}
	if s := run.Stats(); s.FilesEarlier != int64(len(files)) || s.FilesPassed != 0 || s.BytesRead != 0 {
		t.Errorf("second run stats %+v: want every file finished earlier, none passed by this run, nothing read", s)
	}
}

// A runner that stops after putting a one-chunk file on the bus and marking
// it ready, but before queueing its deliveries, leaves a ready file no sink
// heard of: the next run queues them and delivers the file from the bus,
// without reading it again.
func TestReadyFileWithoutTasksIsDeliveredAfterRestart(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	data := testkit.RandomContent(3, 40<<10)
	files := map[string][]byte{"ready.bin": data}
	src := testkit.NewMemorySource(files, true)
	sink := testkit.NewMemorySink()

	// The bus as that runner left it.
	fb, err := bus.Ensure(ctx, e.js, bus.Setup{Flow: "ready", Sinks: []string{"mem"}, Replicas: 1, AckWait: 5 * time.Second, MaxAckPending: 1024})
	if err != nil {
		t.Fatal(err)
	}
	key := "ready.bin|" + testkit.SHA256Hex(data)[:16]
	id := bus.FileID("ready", key)
	codec, err := bus.NewCodec("s2")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.js.PublishMsg(ctx, codec.Encode(fb.ChunkSubject(id), bus.Chunk{Index: 0, Data: data, Last: true})); err != nil {
		t.Fatal(err)
	}
	if _, err := bus.Update(ctx, fb.Store, bus.ManifestKey(id), func(m *bus.Manifest, exists bool) error {
		*m = bus.Manifest{ID: id, Key: key, Name: "ready.bin", Size: int64(len(data)), SHA256: testkit.SHA256Hex(data),
			ChunkSize: 64 << 10, Chunks: 1, Sinks: []string{"mem"}, State: bus.FileReady, TasksPublished: true}
		return nil
	}); err != nil {
		t.Fatal(err)
	}

	run := runToEnd(t, e.engine(t, engine.Options{}), pipeline.Flow{Name: "ready", Source: pipeline.SourceOf(src),
		Sinks: []pipeline.SinkSpec{pipeline.SinkOf("mem", sink)}, Bus: pipeline.BusSpec{ChunkSize: 64 << 10}})
	checkDelivered(t, files, sink.Files())
	if o := src.Acked()["ready.bin"]; o.Status != pipeline.Passed || sink.Commits() != 1 {
		t.Errorf("outcome %v (%s), %d commits; want passed, one commit", o.Status, o.Message, sink.Commits())
	}
	if s := run.Stats(); s.BytesRead != 0 {
		t.Errorf("the run read %d bytes from the source; want none, the file was on the bus", s.BytesRead)
	}
}

func TestStopThenResume(t *testing.T) {
	e := newEnv(t)
	files := map[string][]byte{"big.bin": testkit.RandomContent(7, 24<<20)}
	src := testkit.NewMemorySource(files, true)
	mem := testkit.NewMemorySink()
	mem.SetPlan(pipeline.PartPlan{PartSize: 1 << 20, Concurrency: 2})
	flow := func(s pipeline.Source, k pipeline.Sink) pipeline.Flow {
		return pipeline.Flow{Name: "resume", Source: pipeline.SourceOf(s), Sinks: []pipeline.SinkSpec{pipeline.SinkOf("mem", k)}, Bus: pipeline.BusSpec{ChunkSize: 256 << 10}}
	}
	// A slow sink: stop after a few parts are written.
	run, err := e.engine(t, engine.Options{}).Start(context.Background(), flow(src, testkit.Stall(mem, 50*time.Millisecond)))
	if err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(30 * time.Second)
	for mem.PartWrites() < 4 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if err := run.Stop(context.Background()); err != nil {
		t.Fatal(err)
	}
	if mem.Commits() != 0 || len(src.Acked()) != 0 {
		t.Fatalf("stopped run committed %d files and acked %v; want nothing final yet", mem.Commits(), src.Acked())
	}
	st, err := engine.ReadStatus(context.Background(), e.js, "resume")
	if err != nil {
		t.Fatal(err)
	}
	doneBefore := st[0].Files[0].Deliveries[0].Done.Count()
	if doneBefore == 0 {
		t.Fatal("no part recorded as done after a graceful stop")
	}

	runToEnd(t, e.engine(t, engine.Options{}), flow(src.Reopen(), mem))
	checkDelivered(t, files, mem.Files())
	st, err = engine.ReadStatus(context.Background(), e.js, "resume")
	if err != nil {
		t.Fatal(err)
	}
	d := st[0].Files[0].Deliveries[0]
	if d.State != bus.DeliveryCommitted || d.Resumed < doneBefore || d.Writes != 24 || mem.Commits() != 1 {
		t.Errorf("delivery %+v, commits %d: want committed, ≥%d parts resumed, 24 part writes in all, one commit", d, mem.Commits(), doneBefore)
	}
}

func TestChunkSizeAboveMaxPayloadIsRefused(t *testing.T) {
	e := newEnv(t)
	_, err := e.engine(t, engine.Options{}).Start(context.Background(), pipeline.Flow{
		Name:   "huge",
		Source: pipeline.SourceOf(testkit.NewMemorySource(nil, true)),
		Sinks:  []pipeline.SinkSpec{pipeline.SinkOf("mem", testkit.NewMemorySink())},
		Bus:    pipeline.BusSpec{ChunkSize: 16 << 20},
	})
	want := "flow huge: bus chunk_size 16.0 MiB (16777216 bytes) plus 1024 bytes of headers exceeds the NATS server's max_payload of 8388608 bytes: lower bus.chunk_size or raise max_payload on the server"
	if err == nil || err.Error() != want {
		t.Errorf("got error %v\nwant %s", err, want)
	}
}

func TestUnknownConnectorNamesTheKnownOnes(t *testing.T) {
	e := newEnv(t)
	reg := pipeline.NewRegistry()
	if err := testkit.Register(reg); err != nil {
		t.Fatal(err)
	}
	_, err := e.engine(t, engine.Options{Registry: reg}).Start(context.Background(), pipeline.Flow{
		Name:   "unknown",
		Source: pipeline.Use("memory", nil),
		Sinks:  []pipeline.SinkSpec{{Component: pipeline.Use("ftp", nil)}},
	})
	want := `flow unknown: sink "ftp": unknown sink connector "ftp" (known: memory)`
	if err == nil || err.Error() != want {
		t.Errorf("got error %v\nwant %s", err, want)
	}
}

// While a slow sink writes a large file, the bus holds about a window of it,
// not the whole file: reading waits for the sink, and chunks every sink has
// written are removed as delivery goes on.
func TestBusHoldsAWindowNotTheFile(t *testing.T) {
	e := newEnv(t)
	const chunk, size = 64 << 10, 16 << 20
	files := map[string][]byte{"big.bin": testkit.RandomContent(3, size)}
	src := testkit.NewMemorySource(files, true)
	mem := testkit.NewMemorySink()
	mem.SetPlan(pipeline.PartPlan{PartSize: 256 << 10, Concurrency: 2})
	run, err := e.engine(t, engine.Options{}).Start(context.Background(), pipeline.Flow{
		Name:   "window",
		Source: pipeline.SourceOf(src),
		Sinks:  []pipeline.SinkSpec{pipeline.SinkOf("mem", testkit.Stall(mem, 10*time.Millisecond))},
		Bus:    pipeline.BusSpec{ChunkSize: chunk, Compression: "none", Window: 1 << 20},
	})
	if err != nil {
		t.Fatal(err)
	}
	stream, err := e.js.Stream(context.Background(), "MFT_window_CHUNKS")
	if err != nil {
		t.Fatal(err)
	}
	key := "big.bin|" + testkit.SHA256Hex(files["big.bin"])[:16] // the memory source's key
	subject := "mft.window.chunk." + bus.FileID("window", key)
	peak := uint64(0)
	done := make(chan error, 1)
	go func() { done <- run.Wait() }()
	for waiting := true; waiting; {
		select {
		case err := <-done:
			if err != nil {
				t.Fatal(err)
			}
			waiting = false
		case <-time.After(20 * time.Millisecond):
			info, err := stream.Info(context.Background(), jetstream.WithSubjectFilter(subject))
			if err == nil {
				peak = max(peak, info.State.Subjects[subject])
			}
		}
	}
	checkDelivered(t, files, mem.Files())
	// 1 MiB window + parts in flight + publishes awaiting acks, with slack
	// for purges trailing the prefix: far below the 256 chunks of the file.
	if peak == 0 || peak > 64 {
		t.Errorf("the bus held up to %d chunks of the file at once; want between 1 and 64 of its %d", peak, size/chunk)
	}
	t.Logf("peak %d chunks on the bus (file: %d chunks)", peak, size/chunk)
}

// flakySource offers a MemorySource's files through items whose Open is
// replaced (and which have no range reads, so Open is what the engine uses).
type flakySource struct {
	*testkit.MemorySource
	open func(it pipeline.Item, ctx context.Context) (io.ReadCloser, error)
}

type flakyItem struct {
	it   pipeline.Item
	open func(it pipeline.Item, ctx context.Context) (io.ReadCloser, error)
}

func (s flakySource) Next(ctx context.Context) (pipeline.Item, error) {
	it, err := s.MemorySource.Next(ctx)
	if err != nil {
		return nil, err
	}
	return flakyItem{it, s.open}, nil
}

func (i flakyItem) File() pipeline.File                               { return i.it.File() }
func (i flakyItem) Open(ctx context.Context) (io.ReadCloser, error)   { return i.open(i.it, ctx) }
func (i flakyItem) Ack(ctx context.Context, o pipeline.Outcome) error { return i.it.Ack(ctx, o) }

// A file that cannot be opened fails at once: no sink heard of it, so the
// run must not wait for deliveries, and the source learns why.
func TestUnreadableFileFailsAndIsAcked(t *testing.T) {
	e := newEnv(t)
	mem := testkit.NewMemorySource(map[string][]byte{"locked.csv": []byte("x")}, true)
	src := flakySource{mem, func(pipeline.Item, context.Context) (io.ReadCloser, error) {
		return nil, pipeline.Permanent(errors.New("permission denied"))
	}}
	sink := testkit.NewMemorySink()
	run := runToEnd(t, e.engine(t, engine.Options{}), pipeline.Flow{
		Name: "unreadable", Source: pipeline.SourceOf(src), Sinks: []pipeline.SinkSpec{pipeline.SinkOf("mem", sink)},
	})
	o := mem.Acked()["locked.csv"]
	if o.Status != pipeline.Failed || o.Message != "opening locked.csv: permission denied" {
		t.Errorf("acked %v %q; want failed with the reason", o.Status, o.Message)
	}
	if s := run.Stats(); s.FilesFailed != 1 || len(sink.Files()) != 0 {
		t.Errorf("stats %+v, sink %v", s, sink.Files())
	}
}

// A file whose read failed half-way is read afresh when offered again, even
// within JetStream's two-minute duplicate window: its new chunks and tasks
// must not be taken for duplicates of the first read's.
func TestFailedReadIsReadAfreshNextTime(t *testing.T) {
	e := newEnv(t)
	data := testkit.RandomContent(9, 1<<20)
	mem := testkit.NewMemorySource(map[string][]byte{"f.bin": data}, true)
	sink := testkit.NewMemorySink()
	flow := func(src pipeline.Source) pipeline.Flow {
		return pipeline.Flow{Name: "afresh", Source: pipeline.SourceOf(src),
			Sinks: []pipeline.SinkSpec{pipeline.SinkOf("mem", sink)}, Bus: pipeline.BusSpec{ChunkSize: 64 << 10}}
	}
	broken := flakySource{mem, func(it pipeline.Item, ctx context.Context) (io.ReadCloser, error) {
		return io.NopCloser(testkit.FailingReader(data, 300<<10, pipeline.Permanent(errors.New("disk read error")))), nil
	}}
	runToEnd(t, e.engine(t, engine.Options{}), flow(broken))
	if o := mem.Acked()["f.bin"]; o.Status != pipeline.Failed || !strings.Contains(o.Message, "disk read error") {
		t.Fatalf("first run acked %v %q; want failed with the read error", o.Status, o.Message)
	}
	runToEnd(t, e.engine(t, engine.Options{}), flow(mem.Reopen()))
	checkDelivered(t, map[string][]byte{"f.bin": data}, sink.Files())
	if o := mem.Acked()["f.bin"]; o.Status != pipeline.Passed {
		t.Errorf("second run acked %v %q; want passed", o.Status, o.Message)
	}
}

// errSource never yields a file: every Next fails with a retryable error.
type errSource struct{}

func (errSource) Next(ctx context.Context) (pipeline.Item, error) {
	return nil, errors.New("listing the inbox: connection reset")
}
func (errSource) Close() error { return nil }

// Stop ends a run whose source keeps failing (it is backing off).
func TestStopWhileSourceBacksOff(t *testing.T) {
	e := newEnv(t)
	run, err := e.engine(t, engine.Options{}).Start(context.Background(), pipeline.Flow{
		Name: "backoff", Source: pipeline.SourceOf(errSource{}), Sinks: []pipeline.SinkSpec{pipeline.SinkOf("mem", testkit.NewMemorySink())},
	})
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(100 * time.Millisecond)
	stopped := make(chan error, 1)
	go func() { stopped <- run.Stop(context.Background()) }()
	select {
	case err := <-stopped:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Stop did not return within 10s while the source was backing off")
	}
}

// sizeFirstSink needs the size before the first byte (like a drop-off that
// announces it): it waits for the whole file only when the size is unknown.
type sizeFirstSink struct {
	*testkit.MemorySink
	mu     sync.Mutex
	opened []pipeline.File
}

func (s *sizeFirstSink) ManifestFirst(f pipeline.File) bool { return f.Size < 0 }

func (s *sizeFirstSink) Open(ctx context.Context, f pipeline.File, resume []byte) (pipeline.Upload, error) {
	s.mu.Lock()
	s.opened = append(s.opened, f)
	s.mu.Unlock()
	return s.MemorySink.Open(ctx, f, resume)
}

func TestManifestFirstPerFile(t *testing.T) {
	e := newEnv(t)
	big := testkit.RandomContent(5, 4<<20)
	for _, tc := range []struct {
		name    string
		stages  []pipeline.Component
		waits   bool
		wantOut []byte
	}{
		{"size known", nil, false, big},
		{"size hidden by a stage", []pipeline.Component{pipeline.StageOf(pipeline.StageFunc(func(ctx context.Context, f pipeline.File, r io.Reader) (pipeline.File, io.Reader, error) {
			f.Size = -1
			return f, r, nil
		}))}, true, big},
	} {
		t.Run(tc.name, func(t *testing.T) {
			src := testkit.NewMemorySource(map[string][]byte{"big.bin": big}, true)
			first := &sizeFirstSink{MemorySink: testkit.NewMemorySink()}
			other := testkit.NewMemorySink()
			runToEnd(t, e.engine(t, engine.Options{Logger: testLogger(t)}), pipeline.Flow{
				Name:   "mf-" + strings.ReplaceAll(tc.name, " ", "-"),
				Source: pipeline.SourceOf(src),
				Stages: tc.stages,
				Sinks:  []pipeline.SinkSpec{pipeline.SinkOf("first", first), pipeline.SinkOf("other", other)},
				// A window far smaller than the file: the waiting sink must not
				// hold reading back, or nothing would finish.
				Bus: pipeline.BusSpec{ChunkSize: 64 << 10, Window: 1 << 20},
			})
			checkDelivered(t, map[string][]byte{"big.bin": tc.wantOut}, first.Files())
			checkDelivered(t, map[string][]byte{"big.bin": tc.wantOut}, other.Files())
			if len(first.opened) != 1 {
				t.Fatalf("opened %d times, want 1", len(first.opened))
			}
			got := first.opened[0]
			if got.Size != int64(len(big)) {
				t.Errorf("Open got size %d, want %d", got.Size, len(big))
			}
			if waited := got.SHA256 != ""; waited != tc.waits {
				t.Errorf("Open got sha256 %q: waited for the whole file = %v, want %v", got.SHA256, waited, tc.waits)
			}
		})
	}
}

// testLogger sends the engine's debug log to the test log when MFTFLOW_TEST_LOG is set.
func testLogger(t *testing.T) *slog.Logger {
	if os.Getenv("MFTFLOW_TEST_LOG") == "" {
		return nil
	}
	return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

// stallingReader yields data, then blocks until its context ends.
type stallingReader struct {
	ctx  context.Context
	data []byte
}

func (r *stallingReader) Read(p []byte) (int, error) {
	if len(r.data) > 0 {
		n := copy(p, r.data)
		r.data = r.data[n:]
		return n, nil
	}
	<-r.ctx.Done()
	return 0, r.ctx.Err()
}

// A delivery whose file nobody reads any more (the runner reading it
// stopped, and the source never offers it again) gives up, after waiting 50
// AckWaits for a reader, with a clear reason instead of waiting forever.
func TestDeliveryGivesUpOnAnAbandonedRead(t *testing.T) {
	e := newEnv(t)
	mem := testkit.NewMemorySource(map[string][]byte{"half.bin": testkit.RandomContent(4, 1<<20)}, true)
	stalling := flakySource{mem, func(it pipeline.Item, ctx context.Context) (io.ReadCloser, error) {
		return io.NopCloser(&stallingReader{ctx: ctx, data: testkit.RandomContent(4, 1<<20)[:256<<10]}), nil
	}}
	sink := testkit.NewMemorySink()
	opts := engine.Options{AckWait: 300 * time.Millisecond}
	flow := func(src pipeline.Source) pipeline.Flow {
		return pipeline.Flow{Name: "abandoned", Source: pipeline.SourceOf(src),
			Sinks: []pipeline.SinkSpec{fastRetry(pipeline.SinkOf("mem", sink), 2)}, Bus: pipeline.BusSpec{ChunkSize: 64 << 10}}
	}
	first, err := e.engine(t, opts).Start(context.Background(), flow(stalling))
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(500 * time.Millisecond) // some chunks are on the bus, the read stalls
	first.Stop(context.Background())

	second, err := e.engine(t, opts).Start(context.Background(), flow(testkit.NewMemorySource(nil, false)))
	if err != nil {
		t.Fatal(err)
	}
	defer second.Stop(context.Background())
	deadline := time.Now().Add(30 * time.Second)
	var d bus.Delivery
	for time.Now().Before(deadline) {
		st, err := engine.ReadStatus(context.Background(), e.js, "abandoned")
		if err == nil && len(st[0].Files) == 1 && len(st[0].Files[0].Deliveries) == 1 {
			if d = st[0].Files[0].Deliveries[0]; d.State == bus.DeliveryFailed {
				break
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	if d.State != bus.DeliveryFailed || d.Failures != 1 || !strings.Contains(d.Error, "nobody has read it from the source for 1") {
		t.Errorf("delivery %s after %d attempts, %d failures, error %q; want failed once, saying nobody has read the file for 15s or more", d.State, d.Attempts, d.Failures, d.Error)
	}
}
