package console

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/mftflow/mftflow/pipeline/bus"
	"github.com/mftflow/mftflow/pipeline/engine"
)

// state keeps every flow's status in memory, from watches of their KV
// buckets: pages render from it without reading the bucket, and a change
// to any record wakes the event streams. New flows are found by listing
// the buckets every rescan.
type state struct {
	js     jetstream.JetStream
	log    *slog.Logger
	now    func() time.Time
	rescan time.Duration

	ctx context.Context // ends the watches
	wg  sync.WaitGroup  // the watches

	mu     sync.Mutex
	closed bool
	flows  map[string]*flowState
	wake   chan struct{} // closed and replaced on every change
}

// flowState is one flow's records as its bucket holds them.
type flowState struct {
	name string

	mu      sync.Mutex
	recs    *engine.FlowRecords
	ready   bool // every record present when the watch began is in
	version uint64
	snap    *snapshot
	lease   engine.Lease
	samples map[string][2]sample // by delivery key: the last two progress readings
}

// sample is a delivery's bytes written at a time.
type sample struct {
	at    time.Time
	bytes int64
}

// snapshot is a flow's status at one version of its records.
type snapshot struct {
	version uint64
	status  engine.FlowStatus
	lease   engine.Lease
	rates   map[string]float64 // bytes per second by delivery key, of deliveries under way
	at      time.Time
}

// newState returns a state that watches the flows on js until ctx ends,
// those there now already found.
func newState(ctx context.Context, js jetstream.JetStream, log *slog.Logger, now func() time.Time) *state {
	s := &state{ctx: ctx, js: js, log: log, now: now, rescan: 5 * time.Second, flows: map[string]*flowState{}, wake: make(chan struct{})}
	s.discover()
	return s
}

// run watches the flows found, and looks for new ones every rescan,
// until ctx ends.
func (s *state) run(ctx context.Context) {
	t := time.NewTicker(s.rescan)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			s.mu.Lock()
			s.closed = true // no watch starts after this
			s.mu.Unlock()
			s.wg.Wait()
			return
		case <-t.C:
			s.discover()
		}
	}
}

// discover lists the flows' buckets and starts watching those not watched
// yet. It returns once the listing is done.
func (s *state) discover() {
	ctx := s.ctx
	if ctx.Err() != nil {
		return
	}
	lctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	names := s.js.KeyValueStoreNames(lctx)
	var found []string
	for n := range names.Name() {
		if f := bus.FlowOfBucket(n); f != "" {
			found = append(found, f)
		}
	}
	if err := names.Error(); err != nil && ctx.Err() == nil {
		s.log.Warn("console: listing flows", "err", err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return
	}
	fresh := false
	for _, name := range found {
		if s.flows[name] == nil {
			f := &flowState{name: name, recs: engine.NewFlowRecords(name), samples: map[string][2]sample{}}
			s.flows[name] = f
			s.wg.Go(func() { s.watch(ctx, f) })
			fresh = true
		}
	}
	if fresh {
		s.changedLocked()
	}
}

// watch follows a flow's bucket until ctx ends or the bucket goes away.
func (s *state) watch(ctx context.Context, f *flowState) {
	err := s.follow(ctx, f)
	if ctx.Err() != nil {
		return
	}
	s.log.Warn("console: stopped following a flow's state; it is followed again at the next rescan", "flow", f.name, "err", err)
	s.mu.Lock()
	delete(s.flows, f.name)
	s.changedLocked()
	s.mu.Unlock()
}

func (s *state) follow(ctx context.Context, f *flowState) error {
	kv, err := s.js.KeyValue(ctx, bus.Names{Flow: f.name}.Bucket())
	if err != nil {
		return err
	}
	w, err := kv.WatchAll(ctx)
	if err != nil {
		return err
	}
	defer func() { _ = w.Stop() }() // only read
	for {
		select {
		case <-ctx.Done():
			return nil
		case e, ok := <-w.Updates():
			if !ok {
				return errors.New("the watch of its KV bucket ended")
			}
			s.apply(f, e)
			s.changed()
		}
	}
}

// apply takes one change of a flow's bucket (nil: the initial values are in).
func (s *state) apply(f *flowState, e jetstream.KeyValueEntry) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.version++
	if e == nil {
		f.ready = true
		return
	}
	key := e.Key()
	if e.Operation() != jetstream.KeyValuePut {
		f.recs.Delete(key)
		delete(f.samples, key)
		return
	}
	if key == engine.LeaseKey {
		if err := json.Unmarshal(e.Value(), &f.lease); err != nil {
			s.log.Warn("console: the flow's lease record cannot be read", "flow", f.name, "err", err)
		}
		return
	}
	if err := f.recs.Put(key, e.Value()); err != nil {
		s.log.Warn("console: a record of the flow's state cannot be read", "flow", f.name, "key", key, "err", err)
		return
	}
	if strings.HasPrefix(key, "dlv.") {
		var d bus.Delivery
		if json.Unmarshal(e.Value(), &d) == nil {
			f.note(key, d, e.Created())
		}
	}
}

// note keeps a reading of a delivery's progress for its rate.
func (f *flowState) note(key string, d bus.Delivery, at time.Time) {
	if bus.Final(d.State) {
		delete(f.samples, key)
		return
	}
	prev := f.samples[key]
	f.samples[key] = [2]sample{prev[1], {at: at, bytes: int64(d.Done.Count()) * d.PartSize}}
}

// changed wakes whoever waits for a change.
func (s *state) changed() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.changedLocked()
}

func (s *state) changedLocked() {
	close(s.wake)
	s.wake = make(chan struct{})
}

// wait returns a channel closed at the next change.
func (s *state) wait() <-chan struct{} {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.wake
}

// names returns the flows known, sorted.
func (s *state) names() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]string, 0, len(s.flows))
	for n := range s.flows {
		out = append(out, n)
	}
	sort.Strings(out)
	return out
}

// flow returns a flow's latest snapshot; ok is false for an unknown flow.
// The snapshot is made again only when the records changed since. A flow
// not known yet is looked for at once, in case it was made since the last
// rescan.
func (s *state) flow(name string) (snap *snapshot, ready, ok bool) {
	f := s.lookup(name)
	if f == nil {
		s.discover()
		if f = s.lookup(name); f == nil {
			return nil, false, false
		}
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.snap == nil || f.snap.version != f.version {
		f.snap = &snapshot{version: f.version, status: f.recs.Status(), lease: f.lease, rates: f.rates(s.now()), at: s.now()}
	}
	return f.snap, f.ready, true
}

func (s *state) lookup(name string) *flowState {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.flows[name]
}

// rates returns the bytes per second of deliveries under way, from their
// last two readings; a delivery not heard of for 10s has none.
func (f *flowState) rates(now time.Time) map[string]float64 {
	out := map[string]float64{}
	for key, s := range f.samples {
		a, b := s[0], s[1]
		if a.at.IsZero() || now.Sub(b.at) > 10*time.Second {
			continue
		}
		if d := b.at.Sub(a.at).Seconds(); d > 0 && b.bytes >= a.bytes {
			out[key] = float64(b.bytes-a.bytes) / d
		}
	}
	return out
}
