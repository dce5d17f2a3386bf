package audit

import (
	"cmp"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/mftflow/mftflow/pipeline"
	"github.com/mftflow/mftflow/pipeline/bus"
)

// Record is one message of a flow's audit stream.
type Record struct {
	// Index is 1 for the flow's first record and one more for each next.
	Index uint64 `json:"i"`
	// Prev is the hex sha256 of the record before, as stored; "" for the
	// first.
	Prev   string           `json:"prev"`
	Runner string           `json:"runner"`
	Events []pipeline.Event `json:"events"`
}

// UnmarshalJSON reads a record with its events' names whole (see
// pipeline.Event.ForJSON).
func (r *Record) UnmarshalJSON(b []byte) error {
	type plain Record
	if err := json.Unmarshal(b, (*plain)(r)); err != nil {
		return err
	}
	for i, ev := range r.Events {
		r.Events[i] = ev.FromJSON()
	}
	return nil
}

// encode writes r with evs, the events as JSON, as Record's JSON, from
// the events' own encodings: the emitting goroutines made them, not the
// one that appends.
func (r Record) encode(evs []json.RawMessage) []byte {
	runner, _ := json.Marshal(r.Runner)
	b := make([]byte, 0, 128+len(evs)*256)
	b = fmt.Appendf(b, `{"i":%d,"prev":%q,"runner":%s,"events":[`, r.Index, r.Prev, runner)
	for i, ev := range evs {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, ev...)
	}
	return append(b, "]}"...)
}

// Options configure a Trail.
type Options struct {
	// Runner names this runner in its records.
	Runner string
	// Replicas of the audit stream; 0 keeps the stream's count, or 1 for
	// a new stream.
	Replicas int
	// MaxAge and MaxBytes bound the trail (0: no bound); the oldest
	// records go first.
	MaxAge   time.Duration
	MaxBytes int64
	// Recall is how far back the trail's records are read when it opens,
	// for the identities of the events they hold (default 15m): a runner
	// killed and started again within it stores nothing twice.
	Recall time.Duration
	// Wait bounds how long Emit waits for its event to be stored; default
	// 10s. The event stays queued after it.
	Wait   time.Duration
	Logger *slog.Logger
}

// maxRecord bounds a record's size, well below JetStream's 1 MB payload.
const maxRecord = 256 << 10

// Trail appends a flow's events to its audit stream. It implements
// pipeline.EventSink and is safe for concurrent use.
type Trail struct {
	js     jetstream.JetStream
	stream jetstream.Stream
	names  bus.Names
	o      Options
	log    *slog.Logger

	mu    sync.Mutex
	queue []pending
	wake  chan struct{}
	// seen and last belong to the goroutine that appends.
	seen    recent // identities of stored events
	last    tip
	stop    context.CancelFunc
	done    chan struct{}
	failing error // the last append error, until an append succeeds
}

type pending struct {
	ev     pipeline.Event
	id     string          // Identity(ev)
	raw    json.RawMessage // ev as JSON
	stored chan struct{}   // closed once the event is stored (or dropped as stored before)
}

// tip is the end of the chain as this trail knows it.
type tip struct {
	seq   uint64 // stream sequence of the last record
	index uint64
	hash  string
}

// Open creates (or updates) flow's audit stream and returns a Trail
// appending to it. Close it to store what is queued.
func Open(ctx context.Context, js jetstream.JetStream, flow string, o Options) (*Trail, error) {
	st, err := ensureStream(ctx, js, bus.Names{Flow: flow}, o)
	if err != nil {
		return nil, err
	}
	return start(ctx, js, st, flow, o)
}

// ErrNoTrail is returned by Bind for a flow without an audit trail.
var ErrNoTrail = errors.New("the flow has no audit trail")

// Bind returns a Trail appending to flow's audit stream as it is (its
// retention unchanged), or ErrNoTrail: for programs other than the flow's
// runners, such as runner replay, that add their steps to it.
func Bind(ctx context.Context, js jetstream.JetStream, flow string, o Options) (*Trail, error) {
	st, err := js.Stream(ctx, bus.Names{Flow: flow}.AuditStream())
	if errors.Is(err, jetstream.ErrStreamNotFound) {
		return nil, ErrNoTrail
	} else if err != nil {
		return nil, err
	}
	return start(ctx, js, st, flow, o)
}

// Append adds evs to flow's audit trail, if the flow has one, as runner
// (Record.Runner) and returns once they are stored, or ctx ends. A flow
// without a trail is no error: nothing is stored. It is for programs that
// act on a flow beside its runners, such as runner replay and the console.
func Append(ctx context.Context, js jetstream.JetStream, flow, runner string, evs []pipeline.Event) error {
	if len(evs) == 0 {
		return nil
	}
	tr, err := Bind(ctx, js, flow, Options{Runner: runner})
	if errors.Is(err, ErrNoTrail) {
		return nil
	} else if err != nil {
		return fmt.Errorf("recording in the audit trail of flow %s: %w", flow, err)
	}
	tr.EmitAll(evs)
	if err := tr.Close(ctx); err != nil {
		return fmt.Errorf("recording in the audit trail of flow %s: %w", flow, err)
	}
	return nil
}

func start(ctx context.Context, js jetstream.JetStream, st jetstream.Stream, flow string, o Options) (*Trail, error) {
	if o.Recall == 0 {
		o.Recall = 15 * time.Minute
	}
	if o.Wait == 0 {
		o.Wait = 10 * time.Second
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	n := bus.Names{Flow: flow}
	t := &Trail{js: js, stream: st, names: n, o: o, log: o.Logger.With("flow", flow, "audit", n.AuditStream()),
		wake: make(chan struct{}, 1), done: make(chan struct{})}
	if err := t.recall(ctx); err != nil {
		return nil, err
	}
	runCtx, stop := context.WithCancel(context.WithoutCancel(ctx))
	t.stop = stop
	go t.run(runCtx)
	return t, nil
}

func ensureStream(ctx context.Context, js jetstream.JetStream, n bus.Names, o Options) (jetstream.Stream, error) {
	cfg := jetstream.StreamConfig{
		Name:        n.AuditStream(),
		Description: "mftflow audit trail of flow " + n.Flow,
		Subjects:    []string{n.AuditSubject()},
		Retention:   jetstream.LimitsPolicy,
		Storage:     jetstream.FileStorage,
		Replicas:    o.Replicas,
		MaxAge:      o.MaxAge,
		MaxBytes:    cmp.Or(o.MaxBytes, -1),
		Discard:     jetstream.DiscardOld,
		Duplicates:  2 * time.Minute,
	}
	if cur, err := js.Stream(ctx, cfg.Name); err == nil && o.Replicas == 0 {
		cfg.Replicas = cur.CachedInfo().Config.Replicas
	}
	cfg.Replicas = max(cfg.Replicas, 1)
	st, err := js.CreateOrUpdateStream(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("creating the audit stream %s: %w", cfg.Name, err)
	}
	return st, nil
}

// recall reads the end of the chain and the identities of the events in
// the records of the last Options.Recall.
func (t *Trail) recall(ctx context.Context) error {
	last, err := t.stream.GetLastMsgForSubject(ctx, t.names.AuditSubject())
	if errors.Is(err, jetstream.ErrMsgNotFound) {
		return nil // a new trail
	} else if err != nil {
		return fmt.Errorf("reading the end of the audit stream %s: %w", t.names.AuditStream(), err)
	}
	if err := t.learn(last.Sequence, last.Data); err != nil {
		return err
	}
	since := time.Now().Add(-t.o.Recall)
	return Walk(ctx, t.js, t.names.Flow, since, func(s Stored) bool {
		if s.Err == nil {
			for _, ev := range s.Events {
				t.seen.note(ev, Identity(ev))
			}
		}
		return s.Seq < last.Sequence
	})
}

// learn takes a stored record as the end of the chain and remembers its
// events' identities.
func (t *Trail) learn(seq uint64, data []byte) error {
	var r Record
	if err := json.Unmarshal(data, &r); err != nil {
		return fmt.Errorf("audit record at stream sequence %d is not a record (%v): run runner audit verify", seq, err)
	}
	for _, ev := range r.Events {
		t.seen.note(ev, Identity(ev))
	}
	t.last = tip{seq: seq, index: r.Index, hash: hashOf(data)}
	return nil
}

func hashOf(data []byte) string {
	s := sha256.Sum256(data)
	return hex.EncodeToString(s[:])
}

// Identity names what an event says happened, so that the same step
// emitted again after a restart is recognised. Steps a restart never
// repeats (replays, SLA events, failures) are told apart by their time.
func Identity(ev pipeline.Event) string {
	attempt := ev.Attempt
	if ev.Kind == pipeline.EventCommitted {
		attempt = 0 // a commit done again by the next attempt is the same commit
	}
	// A name is stored as JSON, which holds only UTF-8: the identity of
	// an event read back must be the one it was stored with.
	name := strings.ToValidUTF8(ev.Name, "\uFFFD")
	parts := []string{string(ev.Kind), ev.FileID, ev.Sink, strconv.Itoa(attempt), strconv.Itoa(ev.Part), ev.Outcome, name, ev.SHA256}
	switch ev.Kind {
	case pipeline.EventDiscovered:
		// Each runner that is offered the file says so: a restarted
		// runner is offered again what the killed one had not finished.
		parts = append(parts, ev.Runner)
	case pipeline.EventReplay, pipeline.EventReadFailed, pipeline.EventAttemptFailed, pipeline.EventPartRetry,
		pipeline.EventSLAWarning, pipeline.EventSLAMissed, pipeline.EventSLAMet:
		parts = append(parts, ev.Time.UTC().Format(time.RFC3339Nano), ev.Detail)
	}
	h := sha256.New()
	for _, p := range parts {
		h.Write([]byte(strconv.Itoa(len(p))))
		h.Write([]byte{':'})
		h.Write([]byte(p))
	}
	return hex.EncodeToString(h.Sum(nil)[:16])
}

// Emit queues ev and waits until it is stored, at most Options.Wait.
func (t *Trail) Emit(ev pipeline.Event) { t.EmitAll([]pipeline.Event{ev}) }

// EmitAll is Emit for several events, stored in their order. It does not
// wait for discoveries alone: a source offers a file whose discovery was
// lost in a crash again, and it is discovered again.
func (t *Trail) EmitAll(evs []pipeline.Event) {
	if len(evs) == 0 {
		return
	}
	ps := make([]pending, len(evs))
	wait := false
	for i, ev := range evs {
		raw, _ := json.Marshal(ev.ForJSON()) // an Event always marshals
		ps[i] = pending{ev: ev, id: Identity(ev), raw: raw}
		wait = wait || ev.Kind != pipeline.EventDiscovered
	}
	stored := make(chan struct{})
	ps[len(ps)-1].stored = stored
	t.mu.Lock()
	t.queue = append(t.queue, ps...)
	t.mu.Unlock()
	select {
	case t.wake <- struct{}{}:
	default:
	}
	if !wait {
		return
	}
	timer := time.NewTimer(t.o.Wait)
	defer timer.Stop()
	select {
	case <-stored:
	case <-timer.C:
		t.log.Warn("the audit trail is slow to store events; they stay queued", "err", t.Err())
	case <-t.done:
	}
}

// Err returns the last error appending a record, or nil once an append
// succeeded after it.
func (t *Trail) Err() error {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.failing
}

// Close stores what is queued (waiting at most ctx) and stops the trail.
func (t *Trail) Close(ctx context.Context) error {
	for {
		t.mu.Lock()
		n := len(t.queue)
		t.mu.Unlock()
		if n == 0 || ctx.Err() != nil {
			break
		}
		select {
		case t.wake <- struct{}{}:
		default:
		}
		time.Sleep(5 * time.Millisecond)
	}
	t.stop()
	<-t.done
	if n := t.queued(); n > 0 {
		return fmt.Errorf("audit trail of flow %s: %d events not stored: %w", t.names.Flow, n, cmp.Or(ctx.Err(), t.Err()))
	}
	return nil
}

func (t *Trail) queued() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return len(t.queue)
}

// run appends the queue in records until ctx ends.
func (t *Trail) run(ctx context.Context) {
	defer close(t.done)
	wait := time.Duration(0)
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.wake:
		case <-time.After(max(wait, time.Second)):
		}
		for t.queued() > 0 && ctx.Err() == nil {
			if err := t.appendNext(ctx); err != nil {
				t.mu.Lock()
				t.failing = err
				t.mu.Unlock()
				t.log.Error("appending to the audit trail; trying again", "err", err)
				wait = min(2*wait+100*time.Millisecond, 5*time.Second)
				break
			}
			wait = 0
		}
	}
}

// appendNext appends the events at the head of the queue as one record.
func (t *Trail) appendNext(ctx context.Context) error {
	t.mu.Lock()
	var evs []json.RawMessage
	var take int
	size := 0
	for _, p := range t.queue {
		if take > 0 && size+len(p.raw) > maxRecord {
			break
		}
		take++
		size += len(p.raw) + 1
		if !t.seen.has(p.ev.FileID, p.id) {
			evs = append(evs, p.raw)
		}
	}
	batch := t.queue[:take]
	t.mu.Unlock()
	if len(evs) > 0 {
		if err := t.publish(ctx, evs); err != nil {
			return err
		}
	}
	t.mu.Lock()
	for _, p := range batch {
		t.seen.note(p.ev, p.id)
		if p.stored != nil {
			close(p.stored)
		}
	}
	t.queue = t.queue[take:]
	t.failing = nil
	t.mu.Unlock()
	return nil
}

// publish appends evs as the record after the end of the chain, reading
// the end again when another runner appended meanwhile.
func (t *Trail) publish(ctx context.Context, evs []json.RawMessage) error {
	for conflicts := 0; ; conflicts++ {
		r := Record{Index: t.last.index + 1, Prev: t.last.hash, Runner: t.o.Runner}
		data := r.encode(evs)
		pctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		ack, err := t.js.Publish(pctx, t.names.AuditSubject(), data,
			jetstream.WithExpectLastSequence(t.last.seq), jetstream.WithMsgID(t.o.Runner+"/"+hashOf(data)))
		cancel()
		if err == nil {
			t.last = tip{seq: ack.Sequence, index: r.Index, hash: hashOf(data)}
			return nil
		}
		var apiErr *jetstream.APIError
		if !errors.As(err, &apiErr) || apiErr.ErrorCode != jetstream.JSErrCodeStreamWrongLastSequence || conflicts == 100 {
			return err
		}
		if err := t.catchUp(ctx); err != nil {
			return err
		}
	}
}

// catchUp learns the records other runners appended after the last one
// this trail knows.
func (t *Trail) catchUp(ctx context.Context) error {
	last, err := t.stream.GetLastMsgForSubject(ctx, t.names.AuditSubject())
	if err != nil {
		return fmt.Errorf("reading the end of the audit trail: %w", err)
	}
	for seq := t.last.seq + 1; seq < last.Sequence; seq++ {
		msg, err := t.stream.GetMsg(ctx, seq)
		if errors.Is(err, jetstream.ErrMsgNotFound) {
			continue
		} else if err != nil {
			return fmt.Errorf("reading audit record %d: %w", seq, err)
		}
		if err := t.learn(msg.Sequence, msg.Data); err != nil {
			return err
		}
	}
	return t.learn(last.Sequence, last.Data)
}

// recent holds the identities of the events stored lately, by file: two
// generations of at most recentMax files each, so a long run does not hold
// every identity it met. A replay of a file forgets its identities, since
// the replayed delivery does its steps again.
type recent struct{ cur, old map[string]map[string]bool }

const recentMax = 1 << 15

// note remembers ev, whose identity is id, as stored.
func (r *recent) note(ev pipeline.Event, id string) {
	if ev.Kind == pipeline.EventReplay {
		delete(r.cur, ev.FileID)
		delete(r.old, ev.FileID)
	}
	if r.cur == nil || len(r.cur) >= recentMax {
		r.old, r.cur = r.cur, make(map[string]map[string]bool)
	}
	ids := r.cur[ev.FileID]
	if ids == nil {
		ids = r.old[ev.FileID]
		if ids == nil {
			ids = map[string]bool{}
		}
		r.cur[ev.FileID] = ids
	}
	ids[id] = true
}

// has reports whether an event of file with identity id was stored.
func (r *recent) has(file, id string) bool {
	return r.cur[file][id] || r.old[file][id]
}
