package sla

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/bmatcuk/doublestar/v4"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/mftflow/mftflow/pipeline"
)

// Options configure a Watcher; every field may be left zero.
type Options struct {
	// Clock is the watcher's time; nil is SystemClock. Tests give a fake.
	Clock Clock
	// Events receives sla_warning, sla_missed and sla_met; nil drops
	// them (status and metrics still follow). Emit is called from the
	// watcher's Run goroutine, one event at a time.
	Events pipeline.EventSink
	// Store keeps the expectations' state; nil is a NewMemoryStore, which
	// a restart forgets. Runners sharing a flow share its KV bucket
	// (NewKVStore) and so raise each event once between them.
	Store Store
	// Metrics, when set, registers the sla metrics (see the package doc).
	// Watchers given the same Registerer share one set of collectors.
	Metrics prometheus.Registerer
	// Logger receives store errors, which the watcher retries; nil is
	// slog.Default().
	Logger *slog.Logger
	// Runner is set as the Runner of the events raised.
	Runner string
}

// Tuning of the watcher's loop.
const (
	// maxSleep bounds the wait between two looks at the clock, so that a
	// wall clock that jumps (NTP, a suspended VM) is followed within it.
	maxSleep = time.Minute
	// retryAfter is the wait before trying a failed store call again.
	retryAfter = 5 * time.Second
	// maxConflicts bounds the compare-and-swap tries of one update.
	maxConflicts = 100
	// maxPending bounds the arrivals of one expectation queued while the
	// store cannot be written; beyond it arrivals are dropped and logged.
	maxPending = 10_000
	// finishTimeout bounds the last round that Close or a cancelled Run
	// gives the queued arrivals.
	finishTimeout = 5 * time.Second
)

// ErrClosed is returned by Flush once the watcher is closed.
var ErrClosed = errors.New("sla: the watcher is closed")

// Watcher watches a flow's expectations: it counts the files the flow's
// discovered events name and raises sla_warning, sla_missed and sla_met as
// deadlines come and files arrive. It is a pipeline.EventSink: give it the
// flow's events. Emit, Flush, Status and Close are safe for concurrent use.
type Watcher struct {
	flow    string
	exps    []*watched
	clock   Clock
	events  pipeline.EventSink
	store   Store
	log     *slog.Logger
	runner  string
	metrics *metrics

	wakeUp    chan struct{} // capacity 1: a round is wanted
	closing   chan struct{} // closed by Close
	done      chan struct{} // closed when Run returns
	started   atomic.Bool
	closeOnce sync.Once

	mu      sync.Mutex
	flushes []chan error // answered at the end of the next round
	closed  bool         // no more arrivals or flushes
}

// watched is one expectation in a Watcher.
type watched struct {
	*expectation
	// Guarded by Watcher.mu.
	pending []arrival
	dropped int
	// Used by the Run goroutine only: the record as last read or written.
	rec    Record
	rev    uint64
	loaded bool
}

// New returns a watcher of flow's expectations. Give it the flow's
// expectations after pipeline.Flow.WithDefaults (which sets the schedule's
// zone on those that name none; New takes UTC). It refuses expectations
// that Expectation.Check refuses, and two with one name.
func New(flow string, exps []pipeline.Expectation, o Options) (*Watcher, error) {
	w := &Watcher{
		flow: flow, clock: o.Clock, events: o.Events, store: o.Store, log: o.Logger, runner: o.Runner,
		wakeUp: make(chan struct{}, 1), closing: make(chan struct{}), done: make(chan struct{}),
	}
	if w.clock == nil {
		w.clock = SystemClock{}
	}
	if w.events == nil {
		w.events = pipeline.EventFunc(func(pipeline.Event) {})
	}
	if w.store == nil {
		w.store = NewMemoryStore()
	}
	if w.log == nil {
		w.log = slog.Default()
	}
	compiled, err := compileAll(flow, exps)
	if err != nil {
		return nil, fmt.Errorf("flow %s: %w", flow, err)
	}
	for _, x := range compiled {
		w.exps = append(w.exps, &watched{expectation: x})
	}
	if w.metrics, err = newMetrics(o.Metrics); err != nil {
		return nil, err
	}
	return w, nil
}

// compileAll compiles exps and refuses a name used twice.
func compileAll(flow string, exps []pipeline.Expectation) ([]*expectation, error) {
	var out []*expectation
	seen := map[string]bool{}
	for _, e := range exps {
		x, err := compile(flow, e)
		if err != nil {
			return nil, err
		}
		if seen[x.Name] {
			return nil, fmt.Errorf("expectation name %q is used twice: give each expectation its own name", x.Name)
		}
		seen[x.Name] = true
		out = append(out, x)
	}
	return out, nil
}

// Emit takes the flow's events: a discovered file whose name matches an
// expectation's glob counts for it. Other events, and events of other
// flows, are ignored. Emit does not block: the file is counted, and the
// count written to the store, by Run.
func (w *Watcher) Emit(e pipeline.Event) {
	if e.Kind != pipeline.EventDiscovered || e.Name == "" || e.Flow != "" && e.Flow != w.flow {
		return
	}
	a := arrival{id: e.FileID, name: e.Name, at: e.Time}
	if a.id == "" {
		a.id = e.Name
	}
	if a.at.IsZero() {
		a.at = w.clock.Now()
	}
	matched := false
	w.mu.Lock()
	for _, x := range w.exps {
		if w.closed || !doublestar.MatchUnvalidated(x.Files, e.Name) {
			continue
		}
		matched = true
		if len(x.pending) < maxPending {
			x.pending = append(x.pending, a)
		} else {
			x.dropped++
		}
	}
	w.mu.Unlock()
	if matched {
		w.wake()
	}
}

// wake asks Run for a round.
func (w *Watcher) wake() {
	select {
	case w.wakeUp <- struct{}{}:
	default:
	}
}

// Run counts arrivals and raises events as deadlines pass, until ctx is
// done or Close is called; it then saves the arrivals still queued (for up
// to 5s) and returns nil. Store errors are logged and retried. Calling Run
// a second time is an error.
func (w *Watcher) Run(ctx context.Context) error {
	if !w.started.CompareAndSwap(false, true) {
		return errors.New("sla: Watcher.Run called twice")
	}
	defer close(w.done)
	defer w.metrics.forget(w.flow, w.exps)
	for {
		timer := w.clock.AfterFunc(w.round(ctx), w.wake)
		select {
		case <-ctx.Done():
		case <-w.closing:
		case <-w.wakeUp:
		}
		timer.Stop()
		if ctx.Err() != nil || w.isClosing() {
			w.finish(ctx)
			return nil
		}
	}
}

func (w *Watcher) isClosing() bool {
	select {
	case <-w.closing:
		return true
	default:
		return false
	}
}

// finish gives the queued arrivals a last round and then refuses more.
func (w *Watcher) finish(ctx context.Context) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), finishTimeout)
	defer cancel()
	w.round(ctx)
	w.mu.Lock()
	w.closed = true
	flushes := w.flushes
	w.flushes = nil
	w.mu.Unlock()
	for _, f := range flushes {
		f <- ErrClosed
	}
}

// Close stops Run, after its last round, and waits for it to return. It
// always returns nil.
func (w *Watcher) Close() error {
	w.closeOnce.Do(func() { close(w.closing) })
	if w.started.Load() {
		<-w.done
	}
	w.mu.Lock()
	w.closed = true
	w.mu.Unlock()
	w.metrics.forget(w.flow, w.exps)
	return nil
}

// Flush waits until Run has counted every file given to Emit before the
// call and raised every event due by the clock's time at the call. It
// returns the store errors of that round (which Run retries), ErrClosed
// once the watcher is closed, or ctx's error.
func (w *Watcher) Flush(ctx context.Context) error {
	done := make(chan error, 1)
	w.mu.Lock()
	if w.closed {
		w.mu.Unlock()
		return ErrClosed
	}
	w.flushes = append(w.flushes, done)
	w.mu.Unlock()
	w.wake()
	select {
	case err := <-done:
		return err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Status returns each expectation's state, read from the store as of the
// clock's time (see ReadStatus).
func (w *Watcher) Status(ctx context.Context) ([]Status, error) {
	exps := make([]*expectation, len(w.exps))
	for i, x := range w.exps {
		exps[i] = x.expectation
	}
	return statusOf(ctx, w.store, exps, w.clock.Now())
}

// round counts the queued arrivals, raises what is due at the clock's
// time, answers the flushes waiting for it and returns how long Run may
// wait before the next round.
func (w *Watcher) round(ctx context.Context) time.Duration {
	w.mu.Lock()
	flushes := w.flushes
	w.flushes = nil
	arrivals := make([][]arrival, len(w.exps))
	for i, x := range w.exps {
		arrivals[i], x.pending = x.pending, nil
		if x.dropped > 0 {
			w.log.Warn("sla: arrivals dropped while the store could not be written", "flow", w.flow, "expectation", x.Name, "dropped", x.dropped)
			x.dropped = 0
		}
	}
	w.mu.Unlock()
	now := w.clock.Now()
	sleep := maxSleep
	var errs []error
	for i, x := range w.exps {
		if err := w.step(ctx, x, arrivals[i], now); err != nil {
			errs = append(errs, err)
			w.requeue(x, arrivals[i])
			sleep = min(sleep, retryAfter)
		} else {
			w.metrics.show(w.flow, x.expectation, &x.rec)
		}
		if at, ok := x.due(&x.rec); ok && x.loaded {
			sleep = min(sleep, max(at.Sub(now), time.Millisecond))
		}
	}
	err := errors.Join(errs...)
	if err != nil {
		w.log.Warn("sla: the expectations' store failed; trying again", "flow", w.flow, "error", err)
	}
	for _, f := range flushes {
		f <- err
	}
	return sleep
}

// requeue puts back arrivals a failed step did not count, before those
// queued since.
func (w *Watcher) requeue(x *watched, arrivals []arrival) {
	w.mu.Lock()
	defer w.mu.Unlock()
	x.pending = append(arrivals, x.pending...)
	if n := len(x.pending) - maxPending; n > 0 {
		x.pending = x.pending[n:]
		x.dropped += n
	}
}

// step brings x's record up to now with its arrivals, if anything is due.
func (w *Watcher) step(ctx context.Context, x *watched, arrivals []arrival, now time.Time) error {
	if at, ok := x.due(&x.rec); x.loaded && len(arrivals) == 0 && ok && now.Before(at) && x.rec.Rule == x.rule {
		return nil
	}
	return w.update(ctx, x, func(r *Record) []pipeline.Event {
		var events []pipeline.Event
		for _, a := range arrivals {
			if a.at.After(now) {
				a.at = now // another clock may run a little ahead of ours
			}
			events = append(events, x.advance(r, a.at)...)
			events = append(events, x.arrive(r, a)...)
		}
		return append(events, x.advance(r, now)...)
	})
}

// update applies change to x's record and writes it with compare-and-swap,
// loading it again and reapplying change when another watcher wrote first.
// Only once a write goes through are its events raised, so that of several
// watchers sharing a store one raises each. A record change leaves unchanged
// is not written.
func (w *Watcher) update(ctx context.Context, x *watched, change func(*Record) []pipeline.Event) error {
	for attempt := 0; ; attempt++ {
		if !x.loaded {
			rec, rev, err := w.store.Load(ctx, x.Name)
			if err != nil {
				return err
			}
			x.rec, x.rev, x.loaded = rec, rev, true
		}
		next := x.rec.clone()
		events := change(&next)
		if sameRecord(next, x.rec) {
			return nil
		}
		rev, err := w.store.Save(ctx, x.Name, next, x.rev)
		if err != nil {
			x.loaded = false
			if errors.Is(err, ErrConflict) && attempt < maxConflicts {
				continue
			}
			return err
		}
		x.rec, x.rev = next, rev
		w.raise(x, events)
		return nil
	}
}

// raise sends events and counts them.
func (w *Watcher) raise(x *watched, events []pipeline.Event) {
	for _, e := range events {
		e.Runner = w.runner
		w.metrics.count(w.flow, x.Name, e.Kind)
		w.events.Emit(e)
	}
}

// sameRecord reports whether a and b would be stored alike.
func sameRecord(a, b Record) bool {
	ja, errA := json.Marshal(a)
	jb, errB := json.Marshal(b)
	return errA == nil && errB == nil && bytes.Equal(ja, jb)
}

var _ pipeline.EventSink = (*Watcher)(nil)
