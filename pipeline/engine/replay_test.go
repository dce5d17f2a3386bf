package engine_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"sort"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/mftflow/mftflow/pipeline"
	"github.com/mftflow/mftflow/pipeline/bus"
	"github.com/mftflow/mftflow/pipeline/engine"
	"github.com/mftflow/mftflow/testkit"
)

// countingSource counts the opens of its items' content.
type countingSource struct {
	pipeline.Source
	opens *atomic.Int64
}

func (s countingSource) Next(ctx context.Context) (pipeline.Item, error) {
	it, err := s.Source.Next(ctx)
	if err != nil {
		return it, err
	}
	return countingItem{Item: it, ro: it.(pipeline.RangeOpener), opens: s.opens}, nil
}

type countingItem struct {
	pipeline.Item
	ro    pipeline.RangeOpener
	opens *atomic.Int64
}

func (i countingItem) Open(ctx context.Context) (io.ReadCloser, error) {
	i.opens.Add(1)
	return i.Item.Open(ctx)
}

func (i countingItem) OpenRange(ctx context.Context, off, n int64) (io.ReadCloser, error) {
	i.opens.Add(1)
	return i.ro.OpenRange(ctx, off, n)
}

// switchSink is a memory sink that refuses every Open, permanently, while
// broken is set: a destination that is down until someone fixes it.
type switchSink struct {
	*testkit.MemorySink
	broken atomic.Bool
}

func (s *switchSink) Open(ctx context.Context, f pipeline.File, resume []byte) (pipeline.Upload, error) {
	if s.broken.Load() {
		return nil, pipeline.Permanent(fmt.Errorf("opening %s: destination is down", f.Name))
	}
	return s.MemorySink.Open(ctx, f, resume)
}

func replaySorted(items []engine.ReplayItem) []engine.ReplayItem {
	sort.Slice(items, func(i, j int) bool {
		if items[i].Name != items[j].Name {
			return items[i].Name < items[j].Name
		}
		return items[i].Sink < items[j].Sink
	})
	return items
}

// manifests returns the flow's manifests by file name.
func manifests(t *testing.T, js jetstream.JetStream, flow string) map[string]engine.FileStatus {
	t.Helper()
	st, err := engine.ReadStatus(context.Background(), js, flow)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]engine.FileStatus{}
	for _, f := range st[0].Files {
		out[f.Manifest.Name] = f
	}
	return out
}

// chunksOnBus counts the messages of file id on the flow's chunk stream.
func chunksOnBus(t *testing.T, js jetstream.JetStream, flow, id string) uint64 {
	t.Helper()
	n := bus.Names{Flow: flow}
	s, err := js.Stream(context.Background(), n.ChunkStream())
	if err != nil {
		t.Fatal(err)
	}
	info, err := s.Info(context.Background(), jetstream.WithSubjectFilter(n.ChunkSubject(id)))
	if err != nil {
		t.Fatal(err)
	}
	return info.State.Subjects[n.ChunkSubject(id)]
}

func TestReplayDeliversFromTheBusWithoutTheSource(t *testing.T) {
	e := newEnv(t)
	files := map[string][]byte{
		"big.bin":   testkit.RandomContent(11, 3<<20+17),
		"empty.txt": {},
		"small.csv": []byte("id,amount\n1,2\n"),
	}
	src := testkit.NewMemorySource(files, true)
	var opens atomic.Int64
	good := testkit.NewMemorySink()
	down := &switchSink{MemorySink: testkit.NewMemorySink()}
	down.broken.Store(true)
	flow := pipeline.Flow{
		Name:   "replay",
		Source: pipeline.SourceOf(countingSource{src, &opens}),
		Sinks:  []pipeline.SinkSpec{pipeline.SinkOf("good", good), fastRetry(pipeline.SinkOf("down", down), 2)},
		Bus:    pipeline.BusSpec{ChunkSize: 64 << 10, Retention: time.Hour},
	}
	runToEnd(t, e.engine(t, engine.Options{}), flow)
	for name, o := range src.Acked() {
		if o.Status != pipeline.Mixed {
			t.Fatalf("%s acked %v, want mixed", name, o.Status)
		}
	}
	if len(down.Files()) != 0 {
		t.Fatalf("the broken sink holds %d files", len(down.Files()))
	}
	readOpens := opens.Load()
	if readOpens == 0 {
		t.Fatal("the source was never opened")
	}

	// A committed delivery named explicitly is not replayed.
	rep, err := engine.Replay(context.Background(), e.js, "replay", engine.Selector{Files: []string{"small.csv", "nope.txt"}, Sinks: []string{"good"}})
	if err != nil {
		t.Fatal(err)
	}
	m := manifests(t, e.js, "replay")
	wantRefused := []engine.ReplayItem{
		{File: "nope.txt", Reason: "no file with this id or name in flow replay"},
		{File: m["small.csv"].Manifest.ID, Name: "small.csv", Sink: "good", Reason: "not failed: the delivery is committed"},
	}
	if diff := cmp.Diff(wantRefused, replaySorted(rep.Refused)); diff != "" || len(rep.Requeued) != 0 {
		t.Errorf("replay of a committed delivery: requeued %v; refused (-want +got):\n%s", rep.Requeued, diff)
	}

	// A sink name the flow does not know is named as such.
	rep, err = engine.Replay(context.Background(), e.js, "replay", engine.Selector{Sinks: []string{"dwn"}})
	if err != nil {
		t.Fatal(err)
	}
	wantRefused = []engine.ReplayItem{{Sink: "dwn", Reason: "flow replay has no deliveries to this sink (it has: down, good)"}}
	if diff := cmp.Diff(wantRefused, rep.Refused); diff != "" || len(rep.Requeued) != 0 {
		t.Errorf("replay to an unknown sink: requeued %v; refused (-want +got):\n%s", rep.Requeued, diff)
	}

	down.broken.Store(false)
	rep, err = engine.Replay(context.Background(), e.js, "replay", engine.Selector{})
	if err != nil {
		t.Fatal(err)
	}
	var want []engine.ReplayItem
	for _, name := range []string{"big.bin", "empty.txt", "small.csv"} {
		want = append(want, engine.ReplayItem{File: m[name].Manifest.ID, Name: name, Sink: "down"})
	}
	if diff := cmp.Diff(want, replaySorted(rep.Requeued)); diff != "" || len(rep.Refused) != 0 {
		t.Fatalf("replay: refused %v; requeued (-want +got):\n%s", rep.Refused, diff)
	}
	// Asked again before any runner took them: nothing is queued twice.
	rep, err = engine.Replay(context.Background(), e.js, "replay", engine.Selector{Sinks: []string{"down"}})
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Requeued) != 0 || len(rep.Refused) != 3 || rep.Refused[0].Reason != "already queued by an earlier replay; waiting for a runner of the flow" {
		t.Errorf("second replay: requeued %v, refused %v; want the 3 deliveries refused as already queued", rep.Requeued, rep.Refused)
	}

	// No runner ran meanwhile: the next run of the flow delivers them, from
	// the bus, with a source that has nothing to offer (the files are gone
	// from it).
	flow.Source = pipeline.SourceOf(countingSource{testkit.NewMemorySource(nil, true), &opens})
	run := runToEnd(t, e.engine(t, engine.Options{}), flow)
	checkDelivered(t, files, down.Files())
	if n := opens.Load(); n != readOpens {
		t.Errorf("the source was opened %d more times by the replay", n-readOpens)
	}
	for name, o := range src.Acked() {
		if o.Status != pipeline.Mixed {
			t.Errorf("%s acked %v after the replay; the source must not be told again", name, o.Status)
		}
	}
	if s := run.Stats(); s.FilesPassed != 3 || s.BytesRead != 0 {
		t.Errorf("replay run stats %+v: want 3 files passed, nothing read", s)
	}
	for name, f := range manifests(t, e.js, "replay") {
		if f.Manifest.Outcome != "passed" || f.Manifest.Replaying || f.Manifest.Error != "" {
			t.Errorf("%s: outcome %q replaying %v error %q; want passed", name, f.Manifest.Outcome, f.Manifest.Replaying, f.Manifest.Error)
		}
		for _, d := range f.Deliveries {
			if d.State != bus.DeliveryCommitted {
				t.Errorf("%s to %s: %s", name, d.Sink, d.State)
			}
			if d.Sink == "down" && (d.Replays != 1 || d.Attempts != 1) {
				t.Errorf("%s to down: %d replays, %d attempts; want 1 and 1", name, d.Replays, d.Attempts)
			}
		}
		if n := chunksOnBus(t, e.js, "replay", f.Manifest.ID); n < uint64(f.Manifest.Chunks) {
			t.Errorf("%s: %d chunks left on the bus, want %d (retention 1h)", name, n, f.Manifest.Chunks)
		}
	}
	kv, err := e.js.KeyValue(context.Background(), bus.Names{Flow: "replay"}.Bucket())
	if err != nil {
		t.Fatal(err)
	}
	keys, err := kv.ListKeysFiltered(context.Background(), "replay.*")
	if err != nil && !errors.Is(err, jetstream.ErrNoKeysFound) {
		t.Fatal(err)
	}
	if err == nil {
		var left []string
		for k := range keys.Keys() {
			left = append(left, k)
		}
		if len(left) > 0 {
			t.Errorf("replay markers left: %v", left)
		}
	}
}

// partFailSink writes parts below from and fails from there on, for good.
type partFailSink struct {
	*testkit.MemorySink
	from int
}

func (s *partFailSink) Open(ctx context.Context, f pipeline.File, resume []byte) (pipeline.Upload, error) {
	u, err := s.MemorySink.Open(ctx, f, resume)
	if err != nil {
		return nil, err
	}
	return partFailUpload{u, s.from}, nil
}

type partFailUpload struct {
	pipeline.Upload
	from int
}

func (u partFailUpload) WritePart(ctx context.Context, p pipeline.Part, r io.Reader) error {
	if p.Number >= u.from {
		return pipeline.Permanent(errors.New("quota exceeded"))
	}
	return u.Upload.WritePart(ctx, p, r)
}

// A replay of a delivery whose chunks are gone marks the file to be read
// again, and the next run whose source offers it delivers it.
func TestReplayOnceChunksArePurgedReadsTheFileAgain(t *testing.T) {
	e := newEnv(t)
	files := map[string][]byte{"f.bin": testkit.RandomContent(3, 10<<16)}
	src := testkit.NewMemorySource(files, true)
	mem := testkit.NewMemorySink()
	mem.SetPlan(pipeline.PartPlan{PartSize: 64 << 10, Concurrency: 1})
	// Without retention, the chunks of the parts written are removed as
	// they are written; the delivery then fails at part 2.
	flow := func(src pipeline.Source, s pipeline.Sink) pipeline.Flow {
		return pipeline.Flow{Name: "purged", Source: pipeline.SourceOf(src),
			Sinks: []pipeline.SinkSpec{fastRetry(pipeline.SinkOf("s", s), 1)}, Bus: pipeline.BusSpec{ChunkSize: 64 << 10}}
	}
	runToEnd(t, e.engine(t, engine.Options{}), flow(src, &partFailSink{mem, 2}))
	if o := src.Acked()["f.bin"]; o.Status != pipeline.Failed {
		t.Fatalf("acked %+v, want failed", o)
	}
	m := manifests(t, e.js, "purged")["f.bin"].Manifest
	if n := chunksOnBus(t, e.js, "purged", m.ID); n != 8 {
		t.Fatalf("%d chunks on the bus, want 8 of 10 (2 written and removed)", n)
	}
	rep, err := engine.Replay(context.Background(), e.js, "purged", engine.Selector{Files: []string{m.ID}})
	if err != nil {
		t.Fatal(err)
	}
	want := []engine.ReplayItem{{File: m.ID, Name: "f.bin", Sink: "s", Reason: engine.ReasonPurged}}
	if diff := cmp.Diff(want, rep.Reread); diff != "" || len(rep.Requeued)+len(rep.Refused) != 0 {
		t.Errorf("requeued %v, refused %v; reread (-want +got):\n%s", rep.Requeued, rep.Refused, diff)
	}
	f := manifests(t, e.js, "purged")["f.bin"]
	if f.Manifest.Replaying || !slices.Equal(f.Manifest.Redeliver, []string{"s"}) || f.Deliveries[0].State != bus.DeliveryFailed {
		t.Errorf("records after the replay: %+v; want the file marked to be delivered again to s", f)
	}

	runToEnd(t, e.engine(t, engine.Options{}), flow(src.Reopen(), mem))
	checkDelivered(t, files, mem.Files())
	if o := src.Acked()["f.bin"]; o.Status != pipeline.Passed {
		t.Errorf("acked %+v after the run that read it again, want passed", o)
	}
	if f := manifests(t, e.js, "purged")["f.bin"]; len(f.Manifest.Redeliver) != 0 || f.Manifest.Outcome != "passed" {
		t.Errorf("manifest after delivery: %+v", f.Manifest)
	}

	if _, err := engine.Replay(context.Background(), e.js, "nosuchflow", engine.Selector{}); err == nil || err.Error() != `flow "nosuchflow" has no state on this server` {
		t.Errorf("replay of an unknown flow: %v", err)
	}
}

// A sink added to a flow does not get the files an earlier run delivered;
// a replay naming the file and the sink sends it there, and only there.
func TestReplayToASinkAddedSince(t *testing.T) {
	e := newEnv(t)
	files := map[string][]byte{"f.bin": testkit.RandomContent(5, 200<<10)}
	src := testkit.NewMemorySource(files, true)
	a, b := testkit.NewMemorySink(), testkit.NewMemorySink()
	flow := func(src pipeline.Source, sinks ...pipeline.SinkSpec) pipeline.Flow {
		return pipeline.Flow{Name: "added", Source: pipeline.SourceOf(src), Sinks: sinks, Bus: pipeline.BusSpec{ChunkSize: 64 << 10}}
	}
	runToEnd(t, e.engine(t, engine.Options{}), flow(src, pipeline.SinkOf("a", a)))
	run := runToEnd(t, e.engine(t, engine.Options{}), flow(src.Reopen(), pipeline.SinkOf("a", a), pipeline.SinkOf("b", b)))
	if s := run.Stats(); s.FilesEarlier != 1 || s.FilesPassed != 0 || len(b.Files()) != 0 {
		t.Fatalf("second run: stats %+v, b holds %d files; want the file finished earlier and not sent to b", s, len(b.Files()))
	}
	m := manifests(t, e.js, "added")["f.bin"].Manifest
	rep, err := engine.Replay(context.Background(), e.js, "added", engine.Selector{Files: []string{m.ID}, Sinks: []string{"b"}})
	if err != nil {
		t.Fatal(err)
	}
	want := []engine.ReplayItem{{File: m.ID, Name: "f.bin", Sink: "b", Reason: engine.ReasonNeverQueued}}
	if diff := cmp.Diff(want, rep.Reread); diff != "" || len(rep.Requeued)+len(rep.Refused) != 0 {
		t.Errorf("requeued %v, refused %v; reread (-want +got):\n%s", rep.Requeued, rep.Refused, diff)
	}
	typo, err := engine.Replay(context.Background(), e.js, "added", engine.Selector{Files: []string{m.ID}, Sinks: []string{"bb"}})
	wantRefused := []engine.ReplayItem{{File: m.ID, Name: "f.bin", Sink: "bb", Reason: "no run of flow added had a sink of this name: run the flow with it first, or correct the name"}}
	if diff := cmp.Diff(wantRefused, typo.Refused); err != nil || diff != "" || len(typo.Reread) != 0 {
		t.Errorf("replay to a sink no run had: %v, reread %v; refused (-want +got):\n%s", err, typo.Reread, diff)
	}
	commits := a.Commits()
	runToEnd(t, e.engine(t, engine.Options{}), flow(src.Reopen(), pipeline.SinkOf("a", a), pipeline.SinkOf("b", b)))
	checkDelivered(t, files, b.Files())
	if a.Commits() != commits {
		t.Errorf("a: %d commits, %d before; want none again", a.Commits(), commits)
	}
}

func TestRetentionSizeRemovesOldestFinishedFirst(t *testing.T) {
	e := newEnv(t)
	const size = 5 * 64 << 10
	sink := &switchSink{MemorySink: testkit.NewMemorySink()}
	flow := func(name string) pipeline.Flow {
		src := testkit.NewMemorySource(map[string][]byte{name: testkit.RandomContent(int64(len(name)), size)}, true)
		return pipeline.Flow{
			Name:   "bounded",
			Source: pipeline.SourceOf(src),
			Sinks:  []pipeline.SinkSpec{fastRetry(pipeline.SinkOf("s", sink), 1)},
			// Room for two files and a half.
			Bus: pipeline.BusSpec{ChunkSize: 64 << 10, RetentionSize: 5 * size / 2},
		}
	}
	// The oldest file fails; then three pass, one run after another.
	sink.broken.Store(true)
	runToEnd(t, e.engine(t, engine.Options{}), flow("failed.bin"))
	sink.broken.Store(false)
	for _, name := range []string{"a.bin", "bb.bin", "ccc.bin"} {
		runToEnd(t, e.engine(t, engine.Options{}), flow(name))
	}
	got := map[string]string{}
	for name, f := range manifests(t, e.js, "bounded") {
		n := chunksOnBus(t, e.js, "bounded", f.Manifest.ID)
		switch {
		case f.Manifest.Purged && n == 0:
			got[name] = "purged"
		case !f.Manifest.Purged && n == uint64(f.Manifest.Chunks):
			got[name] = "kept"
		default:
			got[name] = fmt.Sprintf("purged=%v with %d of %d chunks", f.Manifest.Purged, n, f.Manifest.Chunks)
		}
	}
	want := map[string]string{"failed.bin": "kept", "a.bin": "purged", "bb.bin": "purged", "ccc.bin": "kept"}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("chunks on the bus (-want +got):\n%s", diff)
	}

	// The failed file kept its chunks: it can be replayed.
	rep, err := engine.Replay(context.Background(), e.js, "bounded", engine.Selector{})
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Requeued) != 1 || rep.Requeued[0].Name != "failed.bin" || len(rep.Refused) != 0 {
		t.Fatalf("replay: requeued %v refused %v", rep.Requeued, rep.Refused)
	}
	run, err := e.engine(t, engine.Options{}).Start(context.Background(), pipeline.Flow{
		Name:   "bounded",
		Source: pipeline.SourceOf(testkit.NewMemorySource(nil, true)),
		Sinks:  []pipeline.SinkSpec{fastRetry(pipeline.SinkOf("s", sink), 1)},
		Bus:    pipeline.BusSpec{ChunkSize: 64 << 10, RetentionSize: 5 * size / 2},
	})
	if err != nil {
		t.Fatal(err)
	}
	waitRun(t, run, time.Minute)
	if got := sink.Files()["failed.bin"]; testkit.SHA256Hex(got) != testkit.SHA256Hex(testkit.RandomContent(int64(len("failed.bin")), size)) {
		t.Errorf("failed.bin after the replay: %d bytes, sha256 differs", len(got))
	}
}

// eventually waits for cond, for at most a minute.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(time.Minute); !cond(); {
		if time.Now().After(deadline) {
			t.Fatalf("gave up waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestReplayWhileTheFlowRuns(t *testing.T) {
	e := newEnv(t)
	src := testkit.NewMemorySource(nil, false) // watching: the run goes on
	var opens atomic.Int64
	down := &switchSink{MemorySink: testkit.NewMemorySink()}
	down.broken.Store(true)
	run, err := e.engine(t, engine.Options{}).Start(context.Background(), pipeline.Flow{
		Name:   "live",
		Source: pipeline.SourceOf(countingSource{src, &opens}),
		Sinks:  []pipeline.SinkSpec{fastRetry(pipeline.SinkOf("down", down), 1)},
		Bus:    pipeline.BusSpec{ChunkSize: 64 << 10, RetentionSize: 1 << 30},
	})
	if err != nil {
		t.Fatal(err)
	}
	defer run.Stop(context.Background())
	data := testkit.RandomContent(5, 1<<20+3)
	src.Add("f.bin", data)
	eventually(t, "f.bin to fail", func() bool { return src.Acked()["f.bin"].Status == pipeline.Failed })
	readOpens := opens.Load()

	down.broken.Store(false)
	rep, err := engine.Replay(context.Background(), e.js, "live", engine.Selector{Sinks: []string{"down"}})
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Requeued) != 1 || len(rep.Refused) != 0 {
		t.Fatalf("replay: requeued %v refused %v", rep.Requeued, rep.Refused)
	}
	eventually(t, "the replayed file's outcome", func() bool {
		return manifests(t, e.js, "live")["f.bin"].Manifest.Outcome == "passed"
	})
	if got := down.Files()["f.bin"]; testkit.SHA256Hex(got) != testkit.SHA256Hex(data) {
		t.Errorf("f.bin: %d bytes delivered, sha256 differs from the %d source bytes", len(got), len(data))
	}
	if n := opens.Load(); n != readOpens {
		t.Errorf("the source was opened %d more times by the replay", n-readOpens)
	}
	if o := src.Acked()["f.bin"]; o.Status != pipeline.Failed {
		t.Errorf("f.bin acked %v after the replay; the source must not be told again", o.Status)
	}
	// The run's counts say what status says: the file passed in the end.
	if s := run.Stats(); s.FilesPassed != 1 || s.FilesFailed != 0 || s.FilesSeen != 1 {
		t.Errorf("stats %+v: want the one file counted once, as passed", s)
	}
}

// Small files travel in groups: their bytes are one chunk on the chunk
// stream, their manifests name the group. The chunk stays while a delivery
// of a member failed, so a replay without bus.retention still has them; a
// replay makes each a file of its own with its bytes in its manifest, which
// leave it once every sink committed, and the group's chunk goes once no
// member needs it.
func TestSmallFilesTravelInGroups(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	files := map[string][]byte{
		"empty.txt": {},
		"one.txt":   []byte("1"),
		"c.bin":     testkit.RandomContent(21, 20<<10),
		"d.bin":     testkit.RandomContent(22, 40<<10),  // one chunk, above the inline bound
		"e.bin":     testkit.RandomContent(23, 200<<10), // four chunks
	}
	inline := []string{"empty.txt", "one.txt", "c.bin"}
	src := testkit.NewMemorySource(files, true)
	good := testkit.NewMemorySink()
	down := &switchSink{MemorySink: testkit.NewMemorySink()}
	down.broken.Store(true)
	flow := pipeline.Flow{
		Name:   "inline",
		Source: pipeline.SourceOf(src),
		Sinks:  []pipeline.SinkSpec{pipeline.SinkOf("good", good), fastRetry(pipeline.SinkOf("down", down), 2)},
		Bus:    pipeline.BusSpec{ChunkSize: 64 << 10},
	}
	runToEnd(t, e.engine(t, engine.Options{}), flow)
	checkDelivered(t, files, good.Files())

	names := bus.Names{Flow: "inline"}
	chunks, err := e.js.Stream(ctx, names.ChunkStream())
	if err != nil {
		t.Fatal(err)
	}
	info, err := chunks.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := info.State.LastSeq, uint64(5+groups(t, e, "inline")); got != want {
		t.Errorf("%d chunk messages were published; want %d, those of d.bin and e.bin and the groups'", got, want)
	}
	kv, err := e.js.KeyValue(ctx, names.Bucket())
	if err != nil {
		t.Fatal(err)
	}
	manifest := func(name string) bus.Manifest {
		t.Helper()
		var m bus.Manifest
		key := name + "|" + testkit.SHA256Hex(files[name])[:16]
		if _, err := (bus.Store{KV: kv}).Get(ctx, bus.ManifestKey(bus.FileID("inline", key)), &m); err != nil {
			t.Fatal(err)
		}
		return m
	}
	for _, name := range inline {
		m := manifest(name)
		if m.Group == "" || m.Content != nil {
			t.Errorf("%s: group %q with %d bytes in the manifest; want a group, and no bytes", name, m.Group, len(m.Content))
			continue
		}
		if _, err := chunks.GetLastMsgForSubject(ctx, names.ChunkSubject(m.Group)); err != nil {
			t.Errorf("%s: its group's chunk after a failed delivery: %v; want it kept for a replay", name, err)
		}
	}

	down.broken.Store(false)
	rep, err := engine.Replay(ctx, e.js, "inline", engine.Selector{})
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Requeued) != len(files) || len(rep.Refused) != 0 {
		t.Fatalf("replay: requeued %v, refused %v; want every file requeued", rep.Requeued, rep.Refused)
	}
	flow.Source = pipeline.SourceOf(testkit.NewMemorySource(nil, true))
	runToEnd(t, e.engine(t, engine.Options{}), flow)
	checkDelivered(t, files, down.Files())
	for _, name := range inline {
		if m := manifest(name); m.Group != "" || m.Content != nil || !m.Purged {
			t.Errorf("%s: group %q, %d bytes left in the manifest (purged %v) after every sink committed", name, m.Group, len(m.Content), m.Purged)
		}
	}
	if info, err = chunks.Info(ctx); err != nil || info.State.Msgs != 0 {
		t.Errorf("chunk stream after the replay: %+v, %v; want it empty", info.State, err)
	}
}
