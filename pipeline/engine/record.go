package engine

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/mftflow/mftflow/pipeline"
	"github.com/mftflow/mftflow/pipeline/bus"
)

// partRecorder writes finished parts into the delivery record, batching the
// parts that finish while a write is under way.
type partRecorder struct {
	r    *Run
	up   pipeline.Upload
	key  string
	base bus.Delivery
	// sinks are the file's sinks, which progressive purging waits for.
	sinks []string

	mu      sync.Mutex
	pending []int
	skipped int
	bounds  map[int]bus.Prefix // part starts seen by the reader, by part number
	wake    chan struct{}
	stop    chan struct{}
	ended   chan struct{}
	err     error
}

func newPartRecorder(r *Run, s *sinkRun, up pipeline.Upload, key string, base bus.Delivery, sinks []string) *partRecorder {
	pr := &partRecorder{r: r, up: up, key: key, base: base, sinks: sinks, bounds: map[int]bus.Prefix{},
		wake: make(chan struct{}, 1), stop: make(chan struct{}), ended: make(chan struct{})}
	go pr.loop()
	// Record the part size at once so a resumed attempt can trust Done.
	pr.kick()
	return pr
}

func (pr *partRecorder) kick() {
	select {
	case pr.wake <- struct{}{}:
	default:
	}
}

// done notes that part n is written.
func (pr *partRecorder) done(n int) {
	pr.mu.Lock()
	pr.pending = append(pr.pending, n)
	pr.mu.Unlock()
	pr.kick()
}

// boundary notes where part b.Parts starts, so the prefix can move there
// once every part before it is written.
func (pr *partRecorder) boundary(b bus.Prefix) {
	pr.mu.Lock()
	pr.bounds[b.Parts] = b
	pr.mu.Unlock()
	pr.kick()
}

// prefixAt returns the furthest part start at or before part n that lies
// beyond from, if the reader has seen one.
func (pr *partRecorder) prefixAt(n, from int) (bus.Prefix, bool) {
	pr.mu.Lock()
	defer pr.mu.Unlock()
	var best bus.Prefix
	found := false
	for k, b := range pr.bounds {
		if k <= n && k > from && (!found || k > best.Parts) {
			best, found = b, true
		}
	}
	for k := range pr.bounds {
		if found && k < best.Parts {
			delete(pr.bounds, k)
		}
	}
	return best, found
}

// resumed notes parts not written because an earlier attempt had.
func (pr *partRecorder) resumed(n int) {
	pr.mu.Lock()
	pr.skipped += n
	pr.mu.Unlock()
	pr.kick() // the prefix may move past parts written before
}

func (pr *partRecorder) loop() {
	defer close(pr.ended)
	ctx := withFile(pr.r.hard, pr.base.File, pr.base.Name)
	for {
		select {
		case <-pr.wake:
			pr.flush(ctx)
		case <-pr.stop:
			pr.flush(ctx)
			return
		}
	}
}

func (pr *partRecorder) flush(ctx context.Context) {
	pr.mu.Lock()
	parts, skipped := pr.pending, pr.skipped
	pr.pending, pr.skipped = nil, 0
	pr.mu.Unlock()
	state := pr.up.State()
	advanced := false
	d, err := bus.Update(ctx, pr.r.fb.Store, pr.key, func(d *bus.Delivery, exists bool) error {
		if bus.Final(d.State) {
			return bus.ErrUnchanged
		}
		if d.Owner != pr.base.Owner {
			return errSuperseded
		}
		if d.PartSize != pr.base.PartSize {
			// Parts of another size are meaningless now.
			d.PartSize, d.Done, d.Prefix = pr.base.PartSize, nil, nil
		}
		for _, n := range parts {
			d.Done = d.Done.Set(n)
		}
		d.Writes += len(parts)
		d.Resumed += skipped
		d.Resume = state
		d.Updated = time.Now().UTC()
		from := -1
		if d.Prefix != nil {
			from = d.Prefix.Parts
		}
		b, ok := pr.prefixAt(d.Done.Contiguous(), from)
		if ok {
			d.Prefix = &b
		}
		advanced = ok
		return nil
	})
	if err == nil && advanced {
		pr.r.purgeDelivered(ctx, d.File, pr.sinks)
	}
	if errors.Is(err, errSuperseded) {
		pr.mu.Lock()
		pr.pending, pr.err = nil, err
		pr.mu.Unlock()
		return
	}
	if err != nil {
		pr.mu.Lock()
		// Keep the parts for the next flush; an unrecorded part is only
		// written again, never lost.
		pr.pending = append(pr.pending, parts...)
		pr.skipped += skipped
		if pr.err == nil {
			pr.err = err
		}
		pr.mu.Unlock()
	}
}

// close records what is left and returns the first recording error.
func (pr *partRecorder) close(ctx context.Context) error {
	close(pr.stop)
	<-pr.ended
	pr.mu.Lock()
	defer pr.mu.Unlock()
	if len(pr.pending) == 0 && !errors.Is(pr.err, errSuperseded) {
		return nil // a later flush succeeded
	}
	return pr.err
}

// purgeDelivered removes from the bus the chunks of file id that no sink
// needs any more: those below every unfinished delivery's prefix. Emptied
// store blocks are dropped at once, which keeps the server's memory and
// disk bounded by the read window rather than the file size. Nothing is
// purged while a delivery has no prefix (not started, or failed and kept for
// replay), or when the flow retains chunks (bus.retention or
// bus.retention_size): a replay needs all of them.
func (r *Run) purgeDelivered(ctx context.Context, id string, sinks []string) {
	if r.flow.Bus.Retains() {
		return
	}
	var below uint64
	for _, s := range sinks {
		var d bus.Delivery
		if _, err := r.fb.Store.Get(ctx, bus.DeliveryKey(id, s), &d); err != nil {
			return
		}
		switch {
		case d.State == bus.DeliveryCommitted || d.State == bus.DeliverySkipped:
			continue // needs nothing more
		case d.Prefix == nil:
			return
		case below == 0 || d.Prefix.Seq < below:
			below = d.Prefix.Seq
		}
	}
	if below == 0 {
		return
	}
	if err := r.fb.Chunks.Purge(ctx, jetstream.WithPurgeSubject(r.fb.ChunkSubject(id)), jetstream.WithPurgeSequence(below)); err != nil {
		r.log.Warn("removing delivered chunks", "id", id, "err", err)
	}
}
