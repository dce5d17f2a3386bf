package audit_test

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/mftflow/mftflow/pipeline"
	"github.com/mftflow/mftflow/pipeline/audit"
	"github.com/mftflow/mftflow/testkit"
)

func connect(t *testing.T) jetstream.JetStream {
	t.Helper()
	nc, err := nats.Connect(testkit.StartNATS(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	return js
}

func open(t *testing.T, js jetstream.JetStream, runner string) *audit.Trail {
	t.Helper()
	tr, err := audit.Open(context.Background(), js, "orders", audit.Options{Runner: runner})
	if err != nil {
		t.Fatal(err)
	}
	return tr
}

func closeTrail(t *testing.T, tr *audit.Trail) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := tr.Close(ctx); err != nil {
		t.Fatal(err)
	}
}

// fileEvents are the steps of one file.
func fileEvents(id string) []pipeline.Event {
	return []pipeline.Event{
		{Kind: pipeline.EventDiscovered, FileID: id, Name: id + ".csv", Size: 10},
		{Kind: pipeline.EventRead, FileID: id, Name: id + ".csv", Size: 10, SHA256: strings.Repeat("a", 64)},
		{Kind: pipeline.EventAttempt, FileID: id, Sink: "out", Attempt: 1},
		{Kind: pipeline.EventCommitted, FileID: id, Sink: "out", Attempt: 1, Location: "/out/" + id + ".csv"},
		{Kind: pipeline.EventAcked, FileID: id, Outcome: "passed"},
	}
}

// trailOf reads the events of every record, in order.
func trailOf(t *testing.T, js jetstream.JetStream) []pipeline.Event {
	t.Helper()
	var out []pipeline.Event
	err := audit.Walk(context.Background(), js, "orders", time.Time{}, func(s audit.Stored) bool {
		out = append(out, s.Events...)
		return true
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func mustVerify(t *testing.T, js jetstream.JetStream) audit.Report {
	t.Helper()
	rep, err := audit.Verify(context.Background(), js, "orders")
	if err != nil || rep.Broken != "" {
		t.Fatalf("verify: %+v, %v", rep, err)
	}
	return rep
}

func TestTrailKeepsEachFilesStepsInOrderOnce(t *testing.T) {
	js := connect(t)
	tr := open(t, js, "run-1")
	var wg sync.WaitGroup
	for i := range 50 {
		wg.Go(func() {
			for _, ev := range fileEvents(fmt.Sprintf("f%02d", i)) {
				tr.Emit(ev) // returns once stored
			}
		})
	}
	wg.Wait()
	closeTrail(t, tr)
	rep := mustVerify(t, js)
	if rep.First != 1 || rep.Head < 2 || rep.Head > 250 {
		t.Errorf("report %+v: want records 1 to at most 250 (events are batched)", rep)
	}

	// A restarted runner emits the steps it did again (a crash before it
	// recorded them): none is stored twice; its new steps are.
	tr = open(t, js, "run-2")
	tr.EmitAll(fileEvents("f07"))
	tr.Emit(pipeline.Event{Kind: pipeline.EventAcked, FileID: "f07", Outcome: "failed"})
	closeTrail(t, tr)
	got := trailOf(t, js)
	if len(got) != 50*5+1 {
		t.Fatalf("%d events stored, want %d", len(got), 50*5+1)
	}
	perFile := map[string][]pipeline.EventKind{}
	for _, ev := range got {
		perFile[ev.FileID] = append(perFile[ev.FileID], ev.Kind)
	}
	want := "[discovered read attempt committed acked]"
	for id, kinds := range perFile {
		if id == "f07" {
			want = "[discovered read attempt committed acked acked]"
		}
		if fmt.Sprint(kinds) != want {
			t.Errorf("%s: %v, want %s", id, kinds, want)
		}
		want = "[discovered read attempt committed acked]"
	}
	if rep2 := mustVerify(t, js); rep2.Head != rep.Head+1 {
		t.Errorf("head %d after one more record, was %d", rep2.Head, rep.Head)
	}
}

func TestTwoRunnersShareOneChain(t *testing.T) {
	js := connect(t)
	a, b := open(t, js, "run-a"), open(t, js, "run-b")
	var wg sync.WaitGroup
	for i := range 40 {
		tr := a
		if i%2 == 1 {
			tr = b
		}
		wg.Go(func() { tr.EmitAll(fileEvents(fmt.Sprintf("g%02d", i))) })
	}
	wg.Wait()
	closeTrail(t, a)
	closeTrail(t, b)
	mustVerify(t, js)
	if got := len(trailOf(t, js)); got != 40*5 {
		t.Errorf("%d events, want %d", got, 40*5)
	}
	runners := map[string]bool{}
	audit.Walk(context.Background(), js, "orders", time.Time{}, func(s audit.Stored) bool {
		runners[s.Runner] = true
		return true
	})
	if !runners["run-a"] || !runners["run-b"] {
		t.Errorf("records of %v, want both runners'", runners)
	}
}

func TestVerifyNamesTheBrokenLink(t *testing.T) {
	ctx := context.Background()
	setup := func(t *testing.T) (jetstream.JetStream, jetstream.Stream) {
		js := connect(t)
		tr := open(t, js, "run-1")
		for i := range 5 { // one record each: Emit waits for its record
			tr.Emit(pipeline.Event{Kind: pipeline.EventRead, FileID: fmt.Sprintf("h%d", i)})
		}
		closeTrail(t, tr)
		st, err := js.Stream(ctx, "MFT_orders_AUDIT")
		if err != nil {
			t.Fatal(err)
		}
		return js, st
	}
	check := func(t *testing.T, js jetstream.JetStream, want string) {
		t.Helper()
		rep, err := audit.Verify(ctx, js, "orders")
		if err != nil || rep.Broken != want {
			t.Errorf("verify: %q, %v\nwant %q", rep.Broken, err, want)
		}
	}
	t.Run("removed", func(t *testing.T) {
		js, st := setup(t)
		if err := st.DeleteMsg(ctx, 3); err != nil {
			t.Fatal(err)
		}
		check(t, js, "record 4 at stream sequence 4 follows record 2 (at stream sequence 2): records 3 to 3 are missing")
	})
	t.Run("changed", func(t *testing.T) {
		// A stored message cannot be edited in place: the nearest thing
		// is removing it and writing the changed copy again.
		js, st := setup(t)
		msg, _ := st.GetMsg(ctx, 2)
		var r audit.Record
		json.Unmarshal(msg.Data, &r)
		r.Events[0].Name = "forged.csv"
		data, _ := json.Marshal(r)
		st.DeleteMsg(ctx, 2)
		if _, err := js.Publish(ctx, "mft.orders.audit", data); err != nil {
			t.Fatal(err)
		}
		check(t, js, "record 3 at stream sequence 3 follows record 1 (at stream sequence 1): records 2 to 2 are missing")
	})
	t.Run("changed at the end", func(t *testing.T) {
		js, st := setup(t)
		msg, _ := st.GetMsg(ctx, 5)
		var r audit.Record
		json.Unmarshal(msg.Data, &r)
		r.Events[0].Outcome = "passed"
		data, _ := json.Marshal(r)
		st.DeleteMsg(ctx, 5)
		js.Publish(ctx, "mft.orders.audit", data)
		check(t, js, "")
		// The chain itself holds (the hash names the record before), but
		// the head differs from the one recorded before the change.
	})
	t.Run("appended by hand", func(t *testing.T) {
		js, _ := setup(t)
		js.Publish(ctx, "mft.orders.audit", []byte(`{"i":6,"prev":"00","runner":"x","events":[]}`))
		check(t, js, "record 6 at stream sequence 6 does not hold the hash of record 5 before it: record 5 (stream sequence 5) was changed, or record 6 replaced")
	})
	t.Run("not a record", func(t *testing.T) {
		js, _ := setup(t)
		js.Publish(ctx, "mft.orders.audit", []byte("hello"))
		check(t, js, "stream sequence 6: not an audit record: invalid character 'h' looking for beginning of value (a message written by something else than a runner)")
	})
}

// TestTrailKeepsNamesThatAreNotUTF8 stores files whose names hold bytes
// that are not UTF-8, which JSON alone would turn into U+FFFD (so that two
// names became one): the trail gives back each name, and the name at the
// source and the sink's path, as they were; a runner restarted on the trail
// recognises the steps it emits again; the export form keeps them.
func TestTrailKeepsNamesThatAreNotUTF8(t *testing.T) {
	js := connect(t)
	tr := open(t, js, "run-1")
	events := func() []pipeline.Event {
		var evs []pipeline.Event
		for i, name := range []string{"\xff.csv", "\xfe.csv", "\uFFFD.csv", "d\xe9j\xe0/vu.csv"} {
			id := fmt.Sprintf("f%d", i)
			evs = append(evs,
				pipeline.Event{Kind: pipeline.EventDiscovered, FileID: id, Name: "in-" + name, Runner: "r"},
				pipeline.Event{Kind: pipeline.EventRenamed, FileID: id, Name: name, Detail: "in-" + name},
				pipeline.Event{Kind: pipeline.EventCommitted, FileID: id, Sink: "out", Attempt: 1, Name: name, Location: "/out/" + name})
		}
		return evs
	}
	tr.EmitAll(events())
	closeTrail(t, tr)
	tr = open(t, js, "run-2")
	tr.EmitAll(events()) // all known: nothing new is stored
	closeTrail(t, tr)

	got := trailOf(t, js)
	if diff := cmp.Diff(events(), got, cmpopts.IgnoreFields(pipeline.Event{}, "Time")); diff != "" {
		t.Errorf("trail (-emitted +stored):\n%s", diff)
	}
	mustVerify(t, js)

	// What runner audit export writes: plain names carry U+FFFD, and
	// "exact" the bytes.
	line, err := json.Marshal(got[0].ForJSON())
	if err != nil {
		t.Fatal(err)
	}
	if want := `"name":"in-\ufffd.csv"`; !strings.Contains(string(line), want) {
		t.Errorf("export %s: want %s", line, want)
	}
	if want := `"exact":{"name":"aW4t/y5jc3Y="}`; !strings.Contains(string(line), want) {
		t.Errorf("export %s: want %s", line, want)
	}
	var back pipeline.Event
	if err := json.Unmarshal(line, &back); err != nil || back.FromJSON().Name != "in-\xff.csv" {
		t.Errorf("export read back: %q, %v", back.FromJSON().Name, err)
	}
}
