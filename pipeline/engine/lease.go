package engine

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/mftflow/mftflow/pipeline/bus"
)

// LeaseKey is the key of the source lease in a flow's KV bucket.
const LeaseKey = "lease.source"

// DefaultLeaseTTL is how long a source lease lasts without renewal unless
// Options.LeaseTTL says otherwise.
const DefaultLeaseTTL = 10 * time.Second

// Lease is the record under LeaseKey: which run polls the flow's source.
type Lease struct {
	Holder  string        `json:"holder"`  // run id
	TTL     time.Duration `json:"ttl"`     // the holder's TTL, in nanoseconds
	Renewed time.Time     `json:"renewed"` // holder's clock; informative only
	// Alive is the NATS subject on which the holder's run answers while
	// its process is connected; empty if it does not (see sourceLease).
	Alive string `json:"alive,omitempty"`
	// Server is the id of the NATS server the holder was connected to.
	Server string `json:"server,omitempty"`
}

// sourceLease makes sure only one run of a flow, among every runner sharing
// it, polls the flow's source: a Thru pickup or a local directory must not
// be read twice. Deliveries are not affected; every run takes delivery tasks.
//
// The lease is a record in the flow's KV bucket, renewed by its holder with a
// compare-and-swap update every third of the TTL. Another run takes it over
// when the record has not changed for a whole TTL as measured by that run's
// own clock since it first saw that revision, so no two machines' clocks are
// ever compared. The holder, for its part, counts itself the holder only
// until a TTL after it last sent a renewal that succeeded (less a margin),
// so it has stopped polling before anyone can take over. A record naming
// this run's own id (a runner restarted with a fixed Options.RunID) is taken
// at once: run ids must differ between runners.
//
// Waiting a TTL is needed only when the holder may still be alive:
//
//   - A runner on its own embedded server, whose data directory it has
//     locked (Options.SoleRunner), takes any other run's record at once:
//     that run is dead.
//   - Each run answers requests on a subject of its own (Lease.Alive) for
//     as long as its NATS connection lasts, subscribing before it ever
//     takes the lease, and records the id of its server (Lease.Server). A
//     run that finds another's record asks that subject; NATS answers "no
//     responders" when nobody subscribes to it. Asked on the holder's own
//     server, that is certain: the holder's connection is gone (its process
//     died and the kernel closed the socket), and the lease is taken at
//     once. Asked through another server, it may only mean the route
//     between the two is down while the holder still renews through a
//     third, so it counts only once the record has also missed a renewal
//     (a third of the TTL, and a tenth for margin).
//
// Runners that restart faster than the TTL thus still read on. A holder
// whose own connection drops stops polling at once, and so does one that
// sees another runner's record in its watch of the key. A record without
// Alive (a run without permission to subscribe: it checks that it hears
// itself before it sets Alive) is taken over after the TTL, as is a holder
// cut off from NATS without its server noticing.
//
// A per-key TTL on the KV bucket (JetStream 2.11 and later) was not chosen:
// nats.go's KeyValue.Update clears a key's TTL, so renewals would need raw
// publishes on the bucket's internal subjects; every flow bucket would need
// its configuration changed (per-message TTLs cannot be turned off again);
// and servers before 2.11 could not be used at all. The cost of the chosen
// way is that a new run waits one TTL after its first look before taking
// over a record left behind by a run that died.
type sourceLease struct {
	kv     jetstream.KeyValue
	nc     *nats.Conn
	holder string
	alive  string // subject this run answers on; "" until it hears itself there
	ttl    time.Duration
	log    *slog.Logger
	sole   bool // no other runner can share the bus (Options.SoleRunner)

	other string // holder last logged

	space      *bus.SpaceWait // told when a lease write goes through
	fullLogged bool           // a refusal for want of room was logged since the last write

	mu      sync.Mutex
	held    context.Context // ends when the lease is lost; nil while not held
	changed chan struct{}   // closed and replaced when held changes

	cancel context.CancelFunc
	done   chan struct{}
}

// start starts contending for the lease, answering on alive while it
// runs; l has its settings (kv, nc, holder, ttl, log, space, sole) set.
// Call release to stop.
func (l *sourceLease) start(alive string) *sourceLease {
	ctx, cancel := context.WithCancel(context.Background())
	l.changed, l.cancel, l.done = make(chan struct{}), cancel, make(chan struct{})
	go l.run(ctx, alive)
	return l
}

// answer subscribes to subject, answering every request while this run's
// connection lasts, and checks that it hears itself there before it names
// the subject in its lease records. It returns the unsubscribe function.
func (l *sourceLease) answer(ctx context.Context, subject string) func() {
	sub, err := l.nc.Subscribe(subject, func(m *nats.Msg) {
		_ = m.Respond([]byte(l.holder)) // a lost answer is a request that times out
	})
	if err != nil {
		l.log.Debug("answering liveness requests; a lease left by this run is taken over after its TTL", "err", err)
		return func() {}
	}
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if _, err := l.nc.RequestWithContext(ctx, subject, nil); err != nil {
		l.log.Debug("this run does not hear itself on its liveness subject; a lease left by it is taken over after its TTL", "subject", subject, "err", err)
	} else {
		l.alive = subject
	}
	return func() { _ = sub.Unsubscribe() }
}

// gone reports whether the run that wrote lease record cur has no NATS
// connection any more: nobody subscribes to the subject it answers on.
func (l *sourceLease) gone(ctx context.Context, cur Lease) bool {
	if cur.Alive == "" {
		return false
	}
	ctx, cancel := context.WithTimeout(ctx, min(2*time.Second, l.ttl/4))
	defer cancel()
	_, err := l.nc.RequestWithContext(ctx, cur.Alive, nil)
	return errors.Is(err, nats.ErrNoResponders)
}

// wait blocks until this run holds the lease or stop ends. It returns a
// context that ends when the lease is lost or stop ends, and its cancel
// function, which the caller must call.
func (l *sourceLease) wait(stop context.Context) (context.Context, context.CancelFunc) {
	for {
		l.mu.Lock()
		held, changed := l.held, l.changed
		l.mu.Unlock()
		if held != nil && held.Err() == nil {
			ctx, cancel := context.WithCancel(stop)
			unhook := context.AfterFunc(held, cancel)
			return ctx, func() { unhook(); cancel() }
		}
		select {
		case <-changed:
		case <-stop.Done():
			return stop, func() {}
		}
	}
}

// release gives the lease up, deleting the record if this run holds it, so
// another runner takes over at once. It returns when that is done.
func (l *sourceLease) release() {
	l.cancel()
	<-l.done
}

func (l *sourceLease) setHeld(ctx context.Context) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.held = ctx
	l.notify()
}

// clearHeld says the lease is no longer held.
func (l *sourceLease) clearHeld() {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.held = nil
	l.notify()
}

// notify wakes the waiters of the lease's state; l.mu is held.
func (l *sourceLease) notify() {
	close(l.changed)
	l.changed = make(chan struct{})
}

func (l *sourceLease) record() []byte {
	b, _ := json.Marshal(Lease{Holder: l.holder, TTL: l.ttl, Renewed: time.Now().UTC(), Alive: l.alive, Server: l.nc.ConnectedServerId()})
	return b
}

// run contends for the lease and holds it, until ctx ends.
func (l *sourceLease) run(ctx context.Context, alive string) {
	defer close(l.done)
	defer l.answer(ctx, alive)()
	// A watch on the key makes a release seen at once; polling alone would
	// find it within a quarter of the TTL.
	var updates <-chan jetstream.KeyValueEntry
	if w, err := l.kv.Watch(ctx, LeaseKey, jetstream.UpdatesOnly()); err == nil {
		defer func() { _ = w.Stop() }()
		updates = w.Updates()
	} else {
		l.log.Debug("watching the source lease; polling instead", "err", err)
	}
	var seen uint64      // revision of another run's record
	var seenAt time.Time // when this run first saw it
	for ctx.Err() == nil {
		rev, ok := l.take(ctx, &seen, &seenAt)
		if ok {
			l.hold(ctx, rev, updates)
			seen = 0
			continue
		}
		select {
		case <-ctx.Done():
		case _, open := <-updates:
			if !open {
				updates = nil
			}
		case <-time.After(min(l.ttl/4, 2*time.Second)): // a holder that is gone is found out soon
		}
	}
}

// take tries once to take the lease: free, already ours, or left unrenewed
// for a TTL since this run first saw its revision.
func (l *sourceLease) take(ctx context.Context, seen *uint64, seenAt *time.Time) (uint64, bool) {
	ctx, cancel := context.WithTimeout(ctx, l.ttl)
	defer cancel()
	e, err := l.kv.Get(ctx, LeaseKey)
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		// Create also succeeds over a deleted (released) record.
		rev, err := l.kv.Create(ctx, LeaseKey, l.record())
		if err != nil {
			if !errors.Is(err, jetstream.ErrKeyExists) {
				l.warn("taking the source lease", err)
			}
			return 0, false
		}
		l.wrote()
		l.log.Debug("source lease taken: this runner polls the source")
		return rev, true
	}
	if err != nil {
		if ctx.Err() == nil {
			l.log.Warn("reading the source lease", "err", err)
		}
		return 0, false
	}
	var cur Lease
	if err := json.Unmarshal(e.Value(), &cur); err != nil {
		cur = Lease{Holder: "(unreadable record)"}
	}
	ttl := max(cur.TTL, l.ttl)
	if e.Revision() != *seen {
		*seen, *seenAt = e.Revision(), time.Now()
		if cur.Holder != l.other && cur.Holder != l.holder {
			l.other = cur.Holder
			l.log.Info("another runner polls the source; this one delivers and takes over if that one stops renewing its lease", "holder", cur.Holder, "ttl", ttl)
		}
	}
	// quiet is how long the record has not changed, as this run saw it.
	quiet := time.Since(*seenAt)
	switch {
	case cur.Holder == l.holder:
		// Ours, from before a restart with the same run id.
	case l.sole:
		l.log.Info("source lease taken over: no other runner can share this flow's bus", "from", cur.Holder)
	case quiet >= ttl:
		l.log.Info("source lease taken over: its holder stopped renewing it", "from", cur.Holder, "after", ttl)
	case (cur.Server == l.nc.ConnectedServerId() || quiet >= ttl/3+ttl/10) && l.gone(ctx, cur):
		// The holder's server (this run's own) no longer has its
		// connection; or, through another server, it has missed a renewal
		// as well: a live holder renews every third of its TTL.
		l.log.Info("source lease taken over: its holder's connection to NATS is gone", "from", cur.Holder, "after", quiet.Round(time.Millisecond))
	default:
		return 0, false
	}
	rev, err := l.kv.Update(ctx, LeaseKey, l.record(), e.Revision())
	if err != nil {
		if !isConflict(err) {
			l.warn("taking over the source lease", err)
		}
		return 0, false
	}
	l.wrote()
	return rev, true
}

// hold renews the lease taken at revision rev until it is lost or ctx ends;
// then it releases it.
func (l *sourceLease) hold(ctx context.Context, rev uint64, updates <-chan jetstream.KeyValueEntry) {
	// The margin covers scheduling delays between noticing the expiry and
	// the source call ending.
	margin := l.ttl / 10
	expires := time.Now().Add(l.ttl - margin) // taken before the write: a safe start
	// One context for the whole holding: polls are not interrupted by renewals.
	held, lost := context.WithCancel(context.Background())
	l.setHeld(held)
	defer func() {
		lost()
		l.clearHeld()
	}()
	expiry := time.NewTimer(time.Until(expires))
	defer expiry.Stop()
	renew := time.NewTimer(l.ttl / 3)
	defer renew.Stop()
	// A run that loses its connection stops polling at once: another may
	// take the lease over as soon as the server drops the connection.
	status := l.nc.StatusChanged(nats.DISCONNECTED, nats.RECONNECTING, nats.CLOSED)
	defer l.nc.RemoveStatusListener(status)
	if !l.nc.IsConnected() {
		return
	}
	for {
		select {
		case <-ctx.Done():
			l.releaseRecord(rev)
			return
		case st := <-status:
			l.log.Warn("source lease given up: the connection to NATS dropped; polling stops", "status", st.String())
			return
		case <-expiry.C:
			l.log.Warn("source lease expired: could not renew it; polling stops", "ttl", l.ttl)
			return
		case e, open := <-updates: // mostly our own renewals; drained so the watch keeps flowing
			if !open {
				updates = nil
				continue
			}
			var cur Lease
			if e.Operation() == jetstream.KeyValuePut && json.Unmarshal(e.Value(), &cur) == nil && cur.Holder != l.holder {
				l.log.Warn("source lease taken over by another runner; polling stops", "by", cur.Holder)
				return
			}
			continue
		case <-renew.C:
		}
		start := time.Now()
		// A renewal still unanswered at expiry is too late.
		rctx, cancel := context.WithDeadline(ctx, expires)
		next, err := l.kv.Update(rctx, LeaseKey, l.record(), rev)
		cancel()
		switch {
		case err == nil:
			l.wrote()
			rev = next
			expires = start.Add(l.ttl - margin)
			expiry.Reset(time.Until(expires))
			renew.Reset(l.ttl / 3)
		case isConflict(err) || errors.Is(err, jetstream.ErrKeyNotFound):
			l.log.Warn("source lease lost to another runner; polling stops")
			return
		default:
			if ctx.Err() == nil && time.Now().Before(expires) {
				l.warn("renewing the source lease; retrying", err)
			}
			renew.Reset(min(time.Second, l.ttl/10))
		}
	}
}

// warn logs a lease write that failed. A refusal for want of room is logged
// once until a lease write goes through (it is retried every second, and
// the engine logs the store's state itself), and noted in the run's wait
// for room: a run that cannot even take its lease is stopped like one
// whose files cannot be recorded (Run.watchSpace).
func (l *sourceLease) warn(msg string, err error) {
	if full := l.space.Refusal(err); full != nil {
		if l.fullLogged {
			return
		}
		l.fullLogged = true
		err = full
	}
	l.log.Warn(msg, "err", err)
}

// wrote notes a lease write that went through: the bus store has room.
func (l *sourceLease) wrote() {
	l.fullLogged = false
	l.space.Room()
}

// releaseRecord deletes the record at revision rev, unless it changed since.
func (l *sourceLease) releaseRecord(rev uint64) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := l.kv.Delete(ctx, LeaseKey, jetstream.LastRevision(rev)); err != nil {
		if !isConflict(err) {
			l.log.Warn("releasing the source lease; another runner takes it over after its TTL", "err", err)
		}
		return
	}
	l.log.Debug("source lease released")
}

// isConflict reports whether err is a failed compare-and-swap.
func isConflict(err error) bool {
	if errors.Is(err, jetstream.ErrKeyExists) || errors.Is(err, jetstream.ErrKeyRevisionMismatch) {
		return true
	}
	var apiErr *jetstream.APIError
	return errors.As(err, &apiErr) && (apiErr.ErrorCode == jetstream.JSErrCodeStreamWrongLastSequence ||
		apiErr.ErrorCode == jetstream.JSErrCodeStreamWrongLastSequenceConstant)
}
