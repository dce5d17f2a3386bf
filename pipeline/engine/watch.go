package engine

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/mftflow/mftflow/pipeline"
	"github.com/mftflow/mftflow/pipeline/bus"
)

// manifestWatch follows one file's manifest.
type manifestWatch struct {
	w      jetstream.KeyWatcher
	mu     sync.Mutex
	latest bus.Manifest
	change chan struct{}
}

func newManifestWatch(ctx context.Context, st bus.Store, id string, onChange func(bus.Manifest)) (*manifestWatch, error) {
	w, err := st.KV.Watch(ctx, bus.ManifestKey(id))
	if err != nil {
		return nil, fmt.Errorf("watching manifest: %w", err)
	}
	mw := &manifestWatch{w: w, change: make(chan struct{})}
	go func() {
		for e := range w.Updates() {
			if e == nil || e.Operation() != jetstream.KeyValuePut {
				continue
			}
			var m bus.Manifest
			if json.Unmarshal(e.Value(), &m) != nil {
				continue
			}
			mw.mu.Lock()
			mw.latest = m
			close(mw.change)
			mw.change = make(chan struct{})
			mw.mu.Unlock()
			onChange(m)
		}
	}()
	return mw, nil
}

// await blocks until the manifest satisfies ok.
func (mw *manifestWatch) await(ctx context.Context, ok func(bus.Manifest) bool) (bus.Manifest, error) {
	for {
		mw.mu.Lock()
		m, ch := mw.latest, mw.change
		mw.mu.Unlock()
		if m.ID != "" && ok(m) {
			return m, nil
		}
		select {
		case <-ch:
		case <-ctx.Done():
			if cause := context.Cause(ctx); cause != nil {
				return m, cause
			}
			return m, ctx.Err()
		}
	}
}

func (mw *manifestWatch) stop() { _ = mw.w.Stop() }

// finisher tells a file's ingesting goroutine when every delivery is final.
// One watch on the flow's delivery records serves every waiting file.
type finisher struct {
	r       *Run
	w       jetstream.KeyWatcher
	mu      sync.Mutex
	waiting map[string]*waiter
	groups  map[string][]*groupWaiter // by group id
	// moves has, by file id, a channel closed at the next change of one of
	// the file's delivery records: a read held back by its window waits on it.
	moves map[string]chan struct{}
}

// waiter is a file waiting for its deliveries, with the final records seen
// meanwhile (by sink), which spare reading them again.
type waiter struct {
	wake  chan struct{}
	final map[string]bus.Delivery
}

func newFinisher(r *Run) (*finisher, error) {
	w, err := r.fb.Store.KV.WatchFiltered(r.hard, []string{"dlv.>", "gdlv.>"}, jetstream.UpdatesOnly())
	if err != nil {
		return nil, err
	}
	f := &finisher{r: r, w: w, waiting: map[string]*waiter{}, groups: map[string][]*groupWaiter{}, moves: map[string]chan struct{}{}}
	go func() {
		for e := range w.Updates() {
			if e == nil {
				continue
			}
			k, ok := bus.ParseKey(e.Key())
			if !ok || k.Kind != bus.KeyDelivery && k.Kind != bus.KeyGroupDelivery {
				continue
			}
			id, sink := k.ID, k.Sink
			if k.Kind == bus.KeyGroupDelivery {
				f.groupRecord(id, sink, e)
				continue
			}
			f.moved(id)
			if f.isWaiting(id) {
				// Keep a final record, forget one that is final no more (a
				// replay reset it, a new read deleted it).
				var d bus.Delivery
				if e.Operation() != jetstream.KeyValuePut || json.Unmarshal(e.Value(), &d) != nil {
					d = bus.Delivery{}
				}
				d.Sink = sink
				f.settled(id, d)
				continue
			}
			f.poke(id)
		}
	}()
	return f, nil
}

// nextMove returns a channel closed at the next change of one of file id's
// delivery records.
func (f *finisher) nextMove(id string) <-chan struct{} {
	f.mu.Lock()
	defer f.mu.Unlock()
	ch := f.moves[id]
	if ch == nil {
		ch = make(chan struct{})
		f.moves[id] = ch
	}
	return ch
}

// moved closes the channel nextMove gave for file id.
func (f *finisher) moved(id string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if ch := f.moves[id]; ch != nil {
		close(ch)
		delete(f.moves, id)
	}
}

// isWaiting reports whether a goroutine waits for file id.
func (f *finisher) isWaiting(id string) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.waiting[id] != nil
}

// settled notes delivery record d of file id, as written or watched: a
// final one is kept, any other makes the sink's record be read again. It
// wakes the file's goroutine.
func (f *finisher) settled(id string, d bus.Delivery) {
	f.mu.Lock()
	if w := f.waiting[id]; w != nil && d.Sink != "" {
		if bus.Final(d.State) {
			w.final[d.Sink] = d
		} else {
			delete(w.final, d.Sink)
		}
	}
	f.mu.Unlock()
	f.poke(id)
}

// poke wakes the goroutine waiting for file id, if any.
func (f *finisher) poke(id string) {
	f.mu.Lock()
	w := f.waiting[id]
	f.mu.Unlock()
	if w != nil {
		select {
		case w.wake <- struct{}{}:
		default:
		}
	}
}

// wait blocks until every sink's delivery of file id is final and returns
// the outcome.
func (f *finisher) wait(ctx context.Context, id string, sinks []string) (pipeline.Outcome, error) {
	w := &waiter{wake: make(chan struct{}, 1), final: map[string]bus.Delivery{}}
	f.mu.Lock()
	f.waiting[id] = w
	f.mu.Unlock()
	defer func() {
		f.mu.Lock()
		delete(f.waiting, id)
		f.mu.Unlock()
	}()
	for {
		out, final, err := f.gather(ctx, id, sinks, w)
		if err != nil && ctx.Err() != nil {
			return out, ctx.Err()
		}
		if err == nil && final {
			return out, nil
		}
		// The watch wakes this up when a delivery changes; the timer
		// covers a wake-up that came before the change could be read.
		t := time.NewTimer(recheck)
		select {
		case <-w.wake:
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return out, ctx.Err()
		}
		t.Stop()
	}
}

// recheck is how often a file waiting for its deliveries looks at them
// without being woken.
const recheck = 2 * time.Second

func (f *finisher) outcome(ctx context.Context, id string, sinks []string) (pipeline.Outcome, bool, error) {
	return f.gather(ctx, id, sinks, nil)
}

// gather reads the deliveries of file id to sinks (those w holds final
// from w) and returns the file's outcome once every one is final.
func (f *finisher) gather(ctx context.Context, id string, sinks []string, w *waiter) (pipeline.Outcome, bool, error) {
	recs := make([]bus.Delivery, len(sinks))
	for i, s := range sinks {
		ok := false
		if w != nil {
			f.mu.Lock()
			recs[i], ok = w.final[s]
			f.mu.Unlock()
		}
		if !ok {
			if _, err := f.r.fb.Store.Get(ctx, bus.DeliveryKey(id, s), &recs[i]); err != nil {
				return pipeline.Outcome{}, false, err
			}
		}
		recs[i].Sink = s
		if !bus.Final(recs[i].State) {
			return pipeline.Outcome{}, false, nil
		}
	}
	return outcomeOf(recs), true, nil
}

// outcomeOf is the outcome of a file whose deliveries are final.
func outcomeOf(recs []bus.Delivery) pipeline.Outcome {
	out := pipeline.Outcome{Sinks: map[string]pipeline.SinkResult{}}
	var good, bad int
	var msgs []string
	for _, d := range recs {
		ok := d.State != bus.DeliveryFailed
		out.Sinks[d.Sink] = pipeline.SinkResult{Committed: ok, Error: d.Error}
		if ok {
			good++
		} else {
			bad++
			msgs = append(msgs, d.Sink+": "+d.Error)
		}
	}
	switch {
	case bad == 0:
		out.Status = pipeline.Passed
	case good == 0:
		out.Status = pipeline.Failed
	default:
		out.Status = pipeline.Mixed
	}
	out.Message = strings.Join(msgs, "; ")
	return out
}

func (f *finisher) close() {
	if err := f.w.Stop(); err != nil && !errors.Is(err, jetstream.ErrConsumerNotFound) {
		f.r.log.Debug("stopping delivery watch", "err", err)
	}
}
