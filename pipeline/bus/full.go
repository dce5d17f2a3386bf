package bus

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cenkalti/backoff/v5"
	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/mftflow/mftflow/pipeline"
)

// A bus store that has no room left refuses writes: chunk and task
// publishes and record writes alike. JetStream says so with one of a few
// API errors (see nats-server's errors.json):
//
//	10023 insufficient resources                   the server's JetStream storage is used up
//	                                               (max_file_store; by default 75% of the disk
//	                                               space free when the server started)
//	10047 insufficient storage resources available the same, found when a stream reserves room
//	10002 resource limits exceeded for account     the account's JetStream storage limit
//	10077 maximum bytes exceeded                   a stream's own max_bytes (discard new)
//
// The server refuses every write while its store is over its limit, small
// record writes too, until something is removed. A disk that fills below
// the server's limit is no refusal: the server cannot write and does not
// answer, and the client times out (Transient).

// ErrStoreFull matches every *StoreFullError with errors.Is.
var ErrStoreFull = errors.New("the bus store is full")

// StoreLimit is what refused a write for want of room.
type StoreLimit int

const (
	// ServerLimit is the server's JetStream storage (10023, 10047).
	ServerLimit StoreLimit = iota + 1
	// AccountLimit is the NATS account's JetStream storage limit (10002).
	AccountLimit
	// StreamLimit is a stream's own max_bytes (10077, maximum bytes exceeded).
	StreamLimit
)

// JetStream API error codes of a store without room.
const (
	jsInsufficientResources     = 10023
	jsStorageResourcesExceeded  = 10047
	jsAccountResourcesExceeded  = 10002
	jsStreamStoreFailed         = 10077 // also other store failures: see limitOf
	jsStreamStoreFailedMaxBytes = "maximum bytes exceeded"
)

// StoreHint names a bus store and says what to do when it is full, for
// messages. The engine does not know where the server keeps its store: the
// runner, or a program that embeds the engine, says (engine.Options).
type StoreHint struct {
	// Where names the store, such as "the embedded server's store in
	// .mftflow/jetstream".
	Where string
	// Fix says what to do, such as "free space on that file system".
	Fix string
}

// ServerStore is the hint for a NATS server the program does not run.
var ServerStore = StoreHint{
	Where: "the NATS server's JetStream storage",
	Fix:   "free space on the server's disk or raise its JetStream max_file_store, or lower bus.window or bus.retention",
}

// EmbeddedStoreHint is the hint for the embedded server with its data
// directory dir (as the user gave it), a directory option named flag (such
// as "--data"; empty: "the data directory").
func EmbeddedStoreHint(dir, flag string) StoreHint {
	move := "move the data directory"
	if flag != "" {
		move = "move " + flag
	}
	return StoreHint{
		Where: "the embedded server's store in " + embeddedStoreDir(dir),
		// The server sizes its store when it starts: room freed on the
		// disk during a run helps the next one.
		Fix: "free space on that file system and run again (the embedded server takes up to 75% of the space free when it starts), " +
			move + " to a larger file system, or lower bus.window or bus.retention",
	}
}

// embeddedStoreDir is where StartEmbedded(dir) keeps its store, as a path
// the user recognises (dir as given, not made absolute).
func embeddedStoreDir(dir string) string {
	return filepath.Join(dir, "jetstream")
}

// StoreFullError is a write the bus refused for want of room.
type StoreFullError struct {
	Limit StoreLimit
	// Store names the store and what to do (ServerLimit; the other limits
	// name themselves).
	Store StoreHint
	// Size is the refused write's size in bytes; 0 if not known.
	Size int64
	// Remaining is how much of the file being read was still to go onto
	// the bus; 0 if not known or not a file's read.
	Remaining int64
	// Waited is how long the store had been refusing writes when this one
	// gave up; 0 if it did not wait.
	Waited time.Duration
	// Err is the server's answer.
	Err error
}

func (e *StoreFullError) Error() string {
	var b strings.Builder
	b.WriteString("the bus store is full: ")
	where, fix := e.Place()
	b.WriteString(where)
	b.WriteString(" refused ")
	if e.Size > 0 {
		fmt.Fprintf(&b, "a write of %s", pipeline.FormatSize(e.Size))
	} else {
		b.WriteString("a write")
	}
	if e.Remaining > 0 {
		fmt.Fprintf(&b, " with %s of the file still to go", pipeline.FormatSize(e.Remaining))
	}
	if e.Waited > 0 {
		fmt.Fprintf(&b, ", and no room came for %s", e.Waited.Round(time.Second))
	}
	fmt.Fprintf(&b, ": %s (%s)", fix, serverAnswer(e.Err))
	return b.String()
}

// Place names what refused the write and says what to do about it.
func (e *StoreFullError) Place() (where, fix string) {
	switch e.Limit {
	case AccountLimit:
		return "the NATS account's JetStream storage limit",
			"raise the account's JetStream file storage limit, or lower bus.window or bus.retention"
	case StreamLimit:
		return "a stream of the flow with max_bytes set",
			"raise or remove max_bytes on the flow's streams, or lower bus.window or bus.retention"
	}
	h := e.Store
	if h.Where == "" {
		h.Where = ServerStore.Where
	}
	if h.Fix == "" {
		h.Fix = ServerStore.Fix
	}
	return h.Where, h.Fix
}

// serverAnswer is the server's error, shortly: "JetStream: insufficient
// resources, error 10023".
func serverAnswer(err error) string {
	var apiErr *jetstream.APIError
	if errors.As(err, &apiErr) {
		return fmt.Sprintf("JetStream: %s, error %d", apiErr.Description, apiErr.ErrorCode)
	}
	if err == nil {
		return "JetStream"
	}
	return err.Error()
}

func (e *StoreFullError) Unwrap() []error { return []error{ErrStoreFull, e.Err} }

// limitOf says which limit refused err, or 0 when err is no refusal for
// want of room.
func limitOf(err error) StoreLimit {
	var apiErr *jetstream.APIError
	if !errors.As(err, &apiErr) {
		return 0
	}
	switch apiErr.ErrorCode {
	case jsInsufficientResources, jsStorageResourcesExceeded:
		return ServerLimit
	case jsAccountResourcesExceeded:
		return AccountLimit
	case jsStreamStoreFailed:
		// The code of any failure to store; the server's own error (a
		// sentinel it has, with no code of its own) tells a full stream.
		if apiErr.Description == server.ErrMaxBytes.Error() {
			return StreamLimit
		}
	}
	return 0
}

// AsStoreFull returns err as a *StoreFullError when it is JetStream
// refusing a write for want of room (see the table above), with hint naming
// the store and size the write's size (0 if not known); else nil. An err
// that holds a *StoreFullError already returns that one.
func AsStoreFull(err error, hint StoreHint, size int64) *StoreFullError {
	var full *StoreFullError
	if errors.As(err, &full) {
		return full
	}
	l := limitOf(err)
	if l == 0 {
		return nil
	}
	return &StoreFullError{Limit: l, Store: hint, Size: size, Err: err}
}

// IsStoreFull reports whether err is, or holds, a write refused for want of
// room.
func IsStoreFull(err error) bool {
	return errors.Is(err, ErrStoreFull) || limitOf(err) != 0
}

// SpaceWait makes writes the bus refuses for want of room wait for it,
// trying again with backoff for a bounded time. The bound is on the spell
// of refusals rather than on each write: once no write has gone through for
// Max since the first refusal, a refused write gives up at once, so a
// store that stays full ends the waits of every file in one bound instead
// of one bound each. Each write also gives up after waiting Max itself.
//
// A nil *SpaceWait does not wait: a refusal is returned at once as
// *StoreFullError naming ServerStore. A SpaceWait is safe for concurrent
// use; its fields must not change once it is in use.
type SpaceWait struct {
	// Max bounds the wait; 0 does not wait.
	Max time.Duration
	// Hint names the store in errors; zero: ServerStore.
	Hint StoreHint
	// Watch, if set, hears of refusals and of their end.
	Watch SpaceWatcher

	full  atomic.Bool // a spell of refusals is on
	mu    sync.Mutex
	since time.Time           // first refusal of the spell
	last  *StoreFullError     // the spell's latest refusal
	wake  chan struct{}       // closed when the spell ends
	now   func() time.Time    // for tests; nil: time.Now
	sleep func(time.Duration) // for tests; nil: a timer
}

// SpaceWatcher hears how writes wait for room. Its methods are called from
// the writing goroutines and must not block.
type SpaceWatcher interface {
	// Refused is told of each refusal; first is set on a write's first,
	// and err.Waited when the write gives up (Ended follows).
	Refused(ctx context.Context, err *StoreFullError, first bool)
	// Ended is told when a write that was refused stops waiting: err is
	// nil when it went through, else why it gave up.
	Ended(ctx context.Context, err error)
}

func (w *SpaceWait) clock() time.Time {
	if w != nil && w.now != nil {
		return w.now()
	}
	return time.Now()
}

// Full reports whether writes are being refused for want of room: since
// when, and the latest refusal.
func (w *SpaceWait) Full() (since time.Time, last *StoreFullError, full bool) {
	if w == nil || !w.full.Load() {
		return time.Time{}, nil, false
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.since, w.last, !w.since.IsZero()
}

// Room tells w that a write went through, ending a spell of refusals; call
// it for writes w did not see (an acknowledged asynchronous publish). It is
// cheap when no spell is on.
func (w *SpaceWait) Room() {
	if w == nil || !w.full.Load() {
		return
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.since.IsZero() {
		return
	}
	w.since, w.last = time.Time{}, nil
	w.full.Store(false)
	if w.wake != nil {
		close(w.wake)
		w.wake = nil
	}
}

// Refusal notes err, when it is a refusal for want of room, as one of a
// write that w does not run (a write retried on its own schedule), so that
// Full tells of it; it returns the refusal, or nil for other errors.
func (w *SpaceWait) Refusal(err error) *StoreFullError {
	var hint StoreHint
	if w != nil {
		hint = w.Hint
	}
	full := AsStoreFull(err, hint, 0)
	if full != nil {
		w.refused(full)
	}
	return full
}

// refused records a refusal and returns how long the spell has lasted and
// a channel closed when it ends.
func (w *SpaceWait) refused(full *StoreFullError) (time.Duration, <-chan struct{}) {
	if w == nil {
		return 0, nil
	}
	now := w.clock()
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.since.IsZero() {
		w.since = now
		w.full.Store(true)
	}
	w.last = full
	if w.wake == nil {
		w.wake = make(chan struct{})
	}
	return now.Sub(w.since), w.wake
}

// waiter is one write's wait for room.
type waiter struct {
	w     *SpaceWait
	ctx   context.Context
	size  int64
	start time.Time // first refusal; zero until then
	pace  backoff.ExponentialBackOff
}

// newWaiter returns the wait for room of a write of size bytes (0 if not
// known). It waits 100 ms, doubling up to 2 s, without jitter.
func newWaiter(ctx context.Context, w *SpaceWait, size int64) *waiter {
	return &waiter{w: w, ctx: ctx, size: size,
		pace: backoff.ExponentialBackOff{InitialInterval: 100 * time.Millisecond, Multiplier: 2, MaxInterval: 2 * time.Second}}
}

// retry handles a failed write: a refusal for want of room within the
// bound waits and returns true (try again); otherwise it returns false and
// the error to return (the refusal as *StoreFullError, with Waited set when
// it waited).
func (wt *waiter) retry(err error) (bool, error) {
	w := wt.w
	var hint StoreHint
	if w != nil {
		hint = w.Hint
	}
	full := AsStoreFull(err, hint, wt.size)
	if full == nil {
		wt.end(err)
		return false, err
	}
	first := wt.start.IsZero()
	now := w.clock()
	if first {
		wt.start = now
	}
	spell, wake := w.refused(full)
	var limit time.Duration
	if w != nil {
		limit = w.Max
	}
	giveUp := now.Sub(wt.start) >= limit || spell >= limit || wt.ctx.Err() != nil
	if waited := max(spell, now.Sub(wt.start)); giveUp && waited > 0 {
		c := *full
		c.Waited = waited
		full = &c
	}
	if w != nil && w.Watch != nil {
		w.Watch.Refused(wt.ctx, full, first)
	}
	if giveUp {
		wt.end(full)
		return false, full
	}
	d := min(wt.pace.NextBackOff(), limit-spell)
	if w.sleep != nil {
		w.sleep(d)
		return true, nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-wt.ctx.Done():
	case <-t.C:
	case <-wake: // another write went through: try again at once
	}
	return true, nil
}

// ok handles a write that went through.
func (wt *waiter) ok() {
	wt.w.Room()
	wt.end(nil)
}

// end tells the watcher that a refused write stopped waiting.
func (wt *waiter) end(err error) {
	if !wt.start.IsZero() && wt.w != nil && wt.w.Watch != nil {
		wt.w.Watch.Ended(wt.ctx, err)
	}
	wt.start = time.Time{}
}

// Do runs op, a write of size bytes (0 if not known), until it goes
// through or fails otherwise than transiently (for up to TransientBudget)
// or for want of room (within w's bound). A refusal that outlasts the
// bound, or ctx, is returned as *StoreFullError.
func (w *SpaceWait) Do(ctx context.Context, size int64, op func() error) error {
	wt := newWaiter(ctx, w, size)
	transient := &transientRetry{ctx: ctx, start: time.Now(), pace: transientPace()}
	for {
		err := op()
		if err == nil {
			wt.ok()
			return nil
		}
		if transient.again(err) {
			continue
		}
		again, err := wt.retry(err)
		if !again {
			return err
		}
	}
}

// WithMaxStore caps the embedded server's JetStream storage at n bytes,
// instead of 75% of the disk space free when it starts.
func WithMaxStore(n int64) EmbeddedOption {
	return func(o *server.Options) { o.JetStreamMaxStore = n }
}
