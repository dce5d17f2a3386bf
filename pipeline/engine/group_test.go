package engine_test

import (
	"context"
	"fmt"
	"sync"
	"testing"

	"github.com/mftflow/mftflow/pipeline"
	"github.com/mftflow/mftflow/pipeline/bus"
	"github.com/mftflow/mftflow/pipeline/engine"
	"github.com/mftflow/mftflow/testkit"
)

// pickySink refuses one file name for good while refuse is set, and
// counts the opens of each name.
type pickySink struct {
	*testkit.MemorySink
	mu     sync.Mutex
	refuse string
	opens  map[string]int
}

func (s *pickySink) Open(ctx context.Context, f pipeline.File, resume []byte) (pipeline.Upload, error) {
	s.mu.Lock()
	s.opens[f.Name]++
	refused := f.Name == s.refuse
	s.mu.Unlock()
	if refused {
		return nil, pipeline.Permanent(fmt.Errorf("opening %s: refused", f.Name))
	}
	return s.MemorySink.Open(ctx, f, resume)
}

// One file of a group failing for good at one sink fails alone: the other
// files of its group are delivered everywhere, status says which failed
// where, and a replay of that file delivers it without sending any other
// file again.
func TestGroupMemberFailsAlone(t *testing.T) {
	e := newEnv(t)
	files := map[string][]byte{}
	for i := range 40 {
		files[fmt.Sprintf("edi-%02d.txt", i)] = testkit.RandomContent(int64(i), 100+i*37)
	}
	const bad = "edi-17.txt"
	good := testkit.NewMemorySink()
	picky := &pickySink{MemorySink: testkit.NewMemorySink(), refuse: bad, opens: map[string]int{}}
	src := testkit.NewMemorySource(files, true)
	flow := pipeline.Flow{
		Name:   "grouped",
		Source: pipeline.SourceOf(src),
		Sinks:  []pipeline.SinkSpec{pipeline.SinkOf("good", good), fastRetry(pipeline.SinkOf("picky", picky), 3)},
	}
	run := runToEnd(t, e.engine(t, engine.Options{}), flow)
	checkDelivered(t, files, good.Files())
	if s := run.Stats(); s.FilesPassed != 39 || s.FilesMixed != 1 || s.FilesFailed != 0 {
		t.Errorf("stats %+v: want 39 passed and %s mixed", s, bad)
	}
	if g := groups(t, e, "grouped"); g == 0 {
		t.Fatal("no group on the bus: the files did not travel in groups")
	}
	got := picky.Files()
	if _, ok := got[bad]; ok || len(got) != 39 {
		t.Errorf("picky holds %d files (%s among them: %v); want the 39 others", len(got), bad, ok)
	}
	if o := src.Acked()[bad]; o.Status != pipeline.Mixed {
		t.Errorf("%s acked %v, want mixed", bad, o.Status)
	}
	st := manifests(t, e.js, "grouped")
	for name := range files {
		f := st[name]
		if f.Manifest.Group == "" || f.Manifest.State != bus.FileDone || len(f.Deliveries) != 2 {
			t.Errorf("%s: status %+v; want a done file of a group with two deliveries", name, f.Manifest)
			continue
		}
		for _, d := range f.Deliveries {
			want := bus.DeliveryCommitted
			if name == bad && d.Sink == "picky" {
				want = bus.DeliveryFailed
			}
			if d.State != want {
				t.Errorf("%s at %s: %s (%s), want %s", name, d.Sink, d.State, d.Error, want)
			}
		}
	}
	if p := picky.opens[bad]; p != 1 {
		t.Errorf("%s opened %d times at picky; a permanent error is not retried", bad, p)
	}

	picky.mu.Lock()
	picky.refuse = ""
	before := map[string]int{}
	for k, v := range picky.opens {
		before[k] = v
	}
	picky.mu.Unlock()
	rep, err := engine.Replay(context.Background(), e.js, "grouped", engine.Selector{Files: []string{st[bad].Manifest.ID}})
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Requeued) != 1 || rep.Requeued[0].Sink != "picky" || len(rep.Reread) != 0 ||
		len(rep.Refused) != 1 || rep.Refused[0].Reason != "not failed: the delivery is committed" {
		t.Fatalf("replay: %+v; want %s requeued for picky, and good's delivery refused as committed", rep, bad)
	}
	flow.Source = pipeline.SourceOf(testkit.NewMemorySource(nil, true))
	runToEnd(t, e.engine(t, engine.Options{}), flow)
	checkDelivered(t, files, picky.Files())
	for name, n := range picky.opens {
		if want := before[name] + map[bool]int{true: 1}[name == bad]; n != want {
			t.Errorf("%s opened %d times at picky after the replay, want %d", name, n, want)
		}
	}
	if f := manifests(t, e.js, "grouped")[bad]; f.Manifest.Outcome != pipeline.Passed.String() || f.Manifest.Group != "" {
		t.Errorf("%s after the replay: outcome %q, group %q; want passed, a file of its own", bad, f.Manifest.Outcome, f.Manifest.Group)
	}
}
