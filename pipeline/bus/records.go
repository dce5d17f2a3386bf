package bus

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/cenkalti/backoff/v5"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// Manifest states.
const (
	FileIngesting = "ingesting" // chunks are being published
	FileReady     = "ready"     // every chunk is on the bus; Size, Chunks and SHA256 are final
	FileDone      = "done"      // every sink is final and the source was acked
	FileSkipped   = "skipped"   // a stage dropped the file
	FileFailed    = "failed"    // the file could not be read (Error says why)
)

// Manifest is a file's record in KV, under ManifestKey(id).
type Manifest struct {
	ID     string `json:"id"`
	Key    string `json:"key"`
	Name   string `json:"name"`
	Size   int64  `json:"size"` // final once ready; before, the size the source gave when no stage changed it, or -1
	SHA256 string `json:"sha256,omitempty"`
	// Digests are the hex digests beyond sha256 that the sinks' checksum
	// files need (sha512, md5), by name.
	Digests   map[string]string `json:"digests,omitempty"`
	ModTime   time.Time         `json:"mod_time"`
	Attrs     map[string]string `json:"attrs,omitempty"`
	ChunkSize int64             `json:"chunk_size"`
	Chunks    int               `json:"chunks"` // final count once ready
	// SourceRead counts bytes read from the source (after stages) over every
	// attempt, as of the last checkpoint: a resumed read adds only what it
	// had to read again.
	SourceRead int64    `json:"source_read"`
	Sinks      []string `json:"sinks"`
	State      string   `json:"state"`
	// TasksPublished is set once a delivery task was queued for every sink.
	TasksPublished bool `json:"tasks_published,omitempty"`
	// Epoch counts fresh reads of the file after a failed one; it is part of
	// message ids so that JetStream's duplicate window does not drop the
	// chunks and tasks of the new read.
	Epoch int `json:"epoch,omitempty"`
	// Purged is set once the file's chunks are gone from the bus (it is set
	// just before they are removed, so that a replay never counts on them).
	Purged bool `json:"purged,omitempty"`
	// Replaying is set on a finished file while a replayed delivery of it is
	// under way: when every delivery is final again, the outcome is
	// recomputed and the flag cleared. The source is not acked again.
	Replaying bool `json:"replaying,omitempty"`
	// Redeliver names sinks to send the file to by reading it again from
	// its source, the next time a run of the flow is offered it: set by a
	// replay when the bus no longer holds the file's chunks, or for a sink
	// the file was never queued to. Reading it again clears it.
	Redeliver []string `json:"redeliver,omitempty"`
	// SourceRemoves is set when the source removes the file once it is
	// delivered (pipeline.AckRemover): a delivery then makes its sink's
	// copy durable (pipeline.Flusher) before it records the commit, so that
	// a commit on record is never one a power cut can take back.
	SourceRemoves bool `json:"source_removes,omitempty"`
	// Inline is set on a small file whose bytes travel in Content, in this
	// record, instead of as a chunk on the chunk stream. Content is cleared
	// where a file's chunks would be purged (with Purged): once every sink
	// committed the file; it stays while a delivery of it failed, for a
	// replay.
	Inline  bool   `json:"inline,omitempty"`
	Content []byte `json:"content,omitempty"`
	// Payload is "reference" when the file's chunks carry where its bytes
	// are in the source file instead of the bytes (bus.payload); "" when
	// they carry the bytes.
	Payload string `json:"payload,omitempty"`
	// Changed is set by a delivery that found the file changed at its
	// source since it was read (read by reference): what differed.
	Changed string `json:"changed,omitempty"`
	// Group names the group that carries the file (see Group): its bytes,
	// its deliveries and so its outcome are in the group's records, not
	// in this one, which stays ready. Replay and a rerun that sends it
	// again make it a file of its own first (clearing Group).
	Group string `json:"group,omitempty"`
	// Checkpoint is the last point up to which every chunk is known to be on
	// the bus; an interrupted read resumes there.
	Checkpoint *Checkpoint `json:"checkpoint,omitempty"`
	Outcome    string      `json:"outcome,omitempty"` // pipeline.Status name, once done
	Error      string      `json:"error,omitempty"`
	// ReadError is set when the file could not be read from the source; the
	// next time the source offers it, it is read afresh.
	ReadError string    `json:"read_error,omitempty"`
	Created   time.Time `json:"created"`
	Updated   time.Time `json:"updated"`
	Finished  time.Time `json:"finished,omitzero"`
}

// Checkpoint records how much of a file is safely on the bus.
type Checkpoint struct {
	Chunks int    `json:"chunks"`
	Bytes  int64  `json:"bytes"`
	Hash   []byte `json:"hash"` // marshalled sha256 state after Bytes bytes
	// Digests are the marshalled states of the other digests the sinks'
	// checksum files need (sha512, md5), by name.
	Digests map[string][]byte `json:"digests,omitempty"`
}

// Delivery states.
const (
	DeliveryPending    = "pending"
	DeliveryActive     = "active"
	DeliveryWaiting    = "waiting"    // for the whole file to be on the bus (pipeline.ManifestFirst)
	DeliveryCommitting = "committing" // the owner is committing; a new owner commits again
	DeliveryCommitted  = "committed"
	DeliverySkipped    = "skipped" // the sink declined the file (overwrite: skip)
	DeliveryFailed     = "failed"
)

// Final reports whether a delivery state is final.
func Final(state string) bool {
	return state == DeliveryCommitted || state == DeliverySkipped || state == DeliveryFailed
}

// Delivery is one (file, sink) delivery's record in KV, under DeliveryKey.
type Delivery struct {
	File     string `json:"file"`
	Sink     string `json:"sink"`
	Name     string `json:"name"`
	State    string `json:"state"`
	PartSize int64  `json:"part_size,omitempty"`
	// Done has bit n set when part n is written.
	Done   Bitmap `json:"done,omitempty"`
	Resume []byte `json:"resume,omitempty"` // the sink's Upload.State
	// Prefix is where a new attempt starts: every part before it is written.
	Prefix *Prefix `json:"prefix,omitempty"`
	// Writes counts successful WritePart calls over all attempts; Resumed
	// counts parts an attempt did not write because an earlier one had.
	Writes   int `json:"writes"`
	Resumed  int `json:"resumed"`
	Attempts int `json:"attempts"` // attempts started
	// Failures counts the attempts that failed at the sink: they spend the
	// sink's retry budget. An attempt that ends because its runner stopped
	// or died, or because nobody was reading the file from its source any
	// more, is no failure of the sink's and spends none of it.
	Failures int `json:"failures,omitempty"`
	// Replays counts the times the delivery was replayed after failing;
	// each replay starts Attempts again from 0.
	Replays int    `json:"replays,omitempty"`
	Bytes   int64  `json:"bytes"` // bytes committed
	Error   string `json:"error,omitempty"`
	Owner   string `json:"owner,omitempty"` // run id of the last runner to work on it
	// Task is the stream sequence of the task message the delivery is
	// worked under; another task message for it is a duplicate.
	Task uint64 `json:"task,omitempty"`
	// Started is when the first attempt began (of the last replay): what a
	// sink holds for this delivery began after it (see pipeline.Reclaimer).
	Started time.Time `json:"started,omitzero"`
	Updated time.Time `json:"updated"`
}

// Prefix marks the start of a part after which nothing is known to be
// written: Parts parts, Chunks chunks and Bytes bytes lie before it, and the
// part's first chunk has stream sequence Seq. Chunks below Seq are no longer
// needed by the sink.
type Prefix struct {
	Parts  int    `json:"parts"`
	Chunks int    `json:"chunks"`
	Bytes  int64  `json:"bytes"`
	Seq    uint64 `json:"seq"`
}

// Contiguous returns how many parts from part 0 on are set.
func (b Bitmap) Contiguous() int {
	n := 0
	for b.Has(n) {
		n++
	}
	return n
}

// Bitmap is a set of part numbers.
type Bitmap []byte

func (b Bitmap) Has(n int) bool { return n/8 < len(b) && b[n/8]&(1<<(n%8)) != 0 }

// Prefix returns the bits of b up to its first clear bit: parts 0..n-1 when
// part n is the first not written.
func (b Bitmap) Prefix() Bitmap {
	n := 0
	for b.Has(n) {
		n++
	}
	if n == 0 {
		return nil
	}
	p := make(Bitmap, (n+7)/8)
	for i := range n {
		p[i/8] |= 1 << (i % 8)
	}
	return p
}

// Set returns b with n added.
func (b Bitmap) Set(n int) Bitmap {
	for len(b) <= n/8 {
		b = append(b, 0)
	}
	b[n/8] |= 1 << (n % 8)
	return b
}

// Count returns how many parts are set.
func (b Bitmap) Count() int {
	c := 0
	for _, x := range b {
		for ; x != 0; x &= x - 1 {
			c++
		}
	}
	return c
}

// Store reads and writes a flow's records with compare-and-swap.
type Store struct {
	KV jetstream.KeyValue
	// Space makes writes refused for want of room wait for it; nil: they
	// fail at once, as *StoreFullError.
	Space *SpaceWait
}

// Get reads the record under key into v and returns its revision; a missing
// key returns revision 0 and no error.
// Transient JetStream errors (see Transient) are retried for up to
// TransientBudget.
func (s Store) Get(ctx context.Context, key string, v any) (uint64, error) {
	var e jetstream.KeyValueEntry
	err := RetryTransient(ctx, func() (err error) {
		e, err = s.KV.Get(ctx, key)
		return err
	})
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("reading %s: %w", key, err)
	}
	if err := json.Unmarshal(e.Value(), v); err != nil {
		return 0, fmt.Errorf("decoding %s: %w", key, err)
	}
	return e.Revision(), nil
}

// ErrUnchanged may be returned by an Update function to skip the write.
var ErrUnchanged = errors.New("record unchanged")

// Update applies fn to the record under key (the zero value if missing) and
// writes it back with compare-and-swap, retrying on conflicts, for up to
// TransientBudget on transient JetStream errors and, as s.Space allows, on
// refusals for want of room (returned as *StoreFullError when it does not).
// It returns the record as written. fn may run more than once.
func Update[T any](ctx context.Context, s Store, key string, fn func(v *T, exists bool) error) (T, error) {
	v, err := update(ctx, s, key, nil, fn)
	return v.V, err
}

// Versioned is a record with the revision it was read or written at; 0
// means the record did not exist.
type Versioned[T any] struct {
	V   T
	Rev uint64
}

// UpdateFrom is Update starting from cur, the record as last read or
// written, instead of reading it first: one round trip instead of two when
// nobody changed the record since (a revision of 0 expects it missing).
// When somebody did, the compare-and-swap fails and it goes on as Update
// does; so does an error or ErrUnchanged from fn on cur, which may be stale.
// fn gets a copy of cur.V, but one that shares its maps and slices.
// It returns the record as written, with its new revision.
func UpdateFrom[T any](ctx context.Context, s Store, key string, cur Versioned[T], fn func(v *T, exists bool) error) (Versioned[T], error) {
	return update(ctx, s, key, &cur, fn)
}

func update[T any](ctx context.Context, s Store, key string, cur *Versioned[T], fn func(v *T, exists bool) error) (_ Versioned[T], err error) {
	transient := &transientRetry{ctx: ctx, pace: transientPace()}
	space := newWaiter(ctx, s.Space, 0)
	// A write refused before and not through since is told it gave up.
	defer func() { space.end(err) }()
	// attempt counts tries for a conflict; those waiting for room are not.
	refusals := 0
	for attempt := 0; ; attempt++ {
		var v T
		var rev uint64
		cached := cur != nil
		if cached {
			v, rev, cur = cur.V, cur.Rev, nil
		} else {
			var err error
			if rev, err = s.Get(ctx, key, &v); err != nil {
				return Versioned[T]{V: v}, err
			}
		}
		if err := fn(&v, rev != 0); err != nil {
			if cached {
				continue // decided on what may be stale: read and decide again
			}
			if errors.Is(err, ErrUnchanged) {
				return Versioned[T]{v, rev}, nil
			}
			return Versioned[T]{V: v}, err
		}
		data, err := json.Marshal(v)
		if err != nil {
			return Versioned[T]{V: v}, err
		}
		var next uint64
		if rev == 0 {
			next, err = s.KV.Create(ctx, key, data)
		} else {
			next, err = s.KV.Update(ctx, key, data, rev)
		}
		if err == nil {
			space.ok()
			return Versioned[T]{v, next}, nil
		}
		if IsStoreFull(err) {
			// Refused, so not written: read again after the wait, as
			// the record may change meanwhile.
			space.size = int64(len(data))
			again, ferr := space.retry(err)
			if again {
				refusals++
				continue
			}
			return Versioned[T]{V: v}, fmt.Errorf("writing %s: %w", key, ferr)
		}
		if transient.again(err) {
			// The write may have landed with its answer lost: read again
			// and let the compare-and-swap tell.
			continue
		}
		if !errors.Is(err, jetstream.ErrKeyExists) && !isWrongSequence(err) || attempt-refusals > 100 {
			return Versioned[T]{V: v}, fmt.Errorf("writing %s: %w", key, err)
		}
	}
}

// TransientBudget is how long record reads and writes retry transient
// JetStream errors: long enough for a cluster to elect a new leader when a
// server stops.
var TransientBudget = 30 * time.Second

// Transient reports whether err is a JetStream hiccup that passes by itself:
// a request that timed out or found no responder (a server stopping, a
// leader being elected), or the cluster saying it is temporarily
// unavailable.
func Transient(err error) bool {
	var apiErr *jetstream.APIError
	return errors.Is(err, nats.ErrTimeout) || errors.Is(err, context.DeadlineExceeded) ||
		errors.Is(err, nats.ErrNoResponders) || errors.Is(err, jetstream.ErrNoStreamResponse) ||
		errors.As(err, &apiErr) && apiErr.ErrorCode == jsClusterNotAvailable
}

// jsClusterNotAvailable is the server's "JetStream system temporarily
// unavailable".
const jsClusterNotAvailable = 10008

// RetryTransient runs op until it succeeds, fails otherwise than
// transiently, ctx ends or TransientBudget has passed. A refusal for want of
// room is returned at once as *StoreFullError (SpaceWait.Do waits for room).
func RetryTransient(ctx context.Context, op func() error) error {
	var nowait *SpaceWait
	return nowait.Do(ctx, 0, op)
}

// transientRetry paces the tries of one read or write through transient
// JetStream errors: with backoff, while ctx lasts and for TransientBudget
// from its start.
type transientRetry struct {
	ctx   context.Context
	start time.Time // zero: the first transient error starts the budget
	pace  backoff.ExponentialBackOff
}

// again reports whether err, the error of a try, is transient and the
// budget not spent, and if so waits before the next try.
func (r *transientRetry) again(err error) bool {
	if !Transient(err) || r.ctx.Err() != nil {
		return false
	}
	if r.start.IsZero() {
		r.start = time.Now()
	}
	if time.Since(r.start) >= TransientBudget {
		return false
	}
	pause(r.ctx, r.pace.NextBackOff())
	return true
}

// transientPace is the wait between tries through transient errors: 50 ms,
// doubling up to a second, without jitter.
func transientPace() backoff.ExponentialBackOff {
	return backoff.ExponentialBackOff{InitialInterval: 50 * time.Millisecond, Multiplier: 2, MaxInterval: time.Second}
}

// pause sleeps d, or until ctx ends.
func pause(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
}

func isWrongSequence(err error) bool {
	var apiErr *jetstream.APIError
	return errors.As(err, &apiErr) && (apiErr.ErrorCode == jetstream.JSErrCodeStreamWrongLastSequence ||
		apiErr.ErrorCode == jetstream.JSErrCodeStreamWrongLastSequenceConstant)
}
