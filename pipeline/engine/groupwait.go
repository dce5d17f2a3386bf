package engine

import (
	"context"
	"encoding/json"
	"slices"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/mftflow/mftflow/pipeline"
	"github.com/mftflow/mftflow/pipeline/bus"
)

// groupWaiter waits for the deliveries of some members of a group to be
// final at every sink. The finisher's watch hands it the group's records
// as they change.
type groupWaiter struct {
	f       *finisher
	gid     string
	sinks   []string
	members []bus.Member
	wake    chan struct{}
	recs    map[string]bus.GroupDelivery // by sink; guarded by f.mu
}

// watchGroup starts watching group gid's deliveries of members to sinks.
// Start it before the group's tasks are queued, so no change is missed.
func (f *finisher) watchGroup(gid string, sinks []string, members []bus.Member) *groupWaiter {
	w := &groupWaiter{f: f, gid: gid, sinks: sinks, members: members, wake: make(chan struct{}, 1), recs: map[string]bus.GroupDelivery{}}
	f.mu.Lock()
	f.groups[gid] = append(f.groups[gid], w)
	f.mu.Unlock()
	return w
}

// stop ends the watch.
func (w *groupWaiter) stop() {
	f := w.f
	f.mu.Lock()
	defer f.mu.Unlock()
	f.groups[w.gid] = slices.DeleteFunc(f.groups[w.gid], func(x *groupWaiter) bool { return x == w })
	if len(f.groups[w.gid]) == 0 {
		delete(f.groups, w.gid)
	}
}

// groupRecord notes a change of group gid's record for sink.
func (f *finisher) groupRecord(gid, sink string, e jetstream.KeyValueEntry) {
	f.mu.Lock()
	ws := slices.Clone(f.groups[gid]) // stop changes the slice in place
	f.mu.Unlock()
	if len(ws) == 0 {
		return
	}
	var d bus.GroupDelivery
	if e.Operation() != jetstream.KeyValuePut || json.Unmarshal(e.Value(), &d) != nil {
		d = bus.GroupDelivery{}
	}
	d.Sink = sink
	f.mu.Lock()
	for _, w := range ws {
		w.recs[sink] = d
	}
	f.mu.Unlock()
	for _, w := range ws {
		select {
		case w.wake <- struct{}{}:
		default:
		}
	}
}

// wait blocks until every member's delivery to every sink is final and
// returns each member's outcome, by file id.
func (w *groupWaiter) wait(ctx context.Context) (map[string]pipeline.Outcome, error) {
	for {
		if outs, ok := w.outcomes(); ok {
			return outs, nil
		}
		t := time.NewTimer(recheck)
		select {
		case <-w.wake:
			t.Stop()
			continue
		case <-ctx.Done():
			t.Stop()
			return nil, ctx.Err()
		case <-t.C:
		}
		// A change that came before the watch could see it: read them.
		recs, err := readGroupRecords(ctx, w.f.r.fb.Store, w.gid, w.sinks)
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		if err != nil {
			continue // read again at the next recheck
		}
		w.f.mu.Lock()
		for _, d := range recs {
			w.recs[d.Sink] = d
		}
		w.f.mu.Unlock()
	}
}

// outcomes returns each member's outcome once every delivery is final.
func (w *groupWaiter) outcomes() (map[string]pipeline.Outcome, bool) {
	w.f.mu.Lock()
	defer w.f.mu.Unlock()
	outs := make(map[string]pipeline.Outcome, len(w.members))
	for _, m := range w.members {
		recs := make([]bus.Delivery, len(w.sinks))
		for i, s := range w.sinks {
			g, ok := w.recs[s]
			if !ok {
				return nil, false
			}
			recs[i] = g.Delivery(m.ID, m.Name)
			if !bus.Final(recs[i].State) {
				return nil, false
			}
		}
		outs[m.ID] = outcomeOf(recs)
	}
	return outs, true
}
