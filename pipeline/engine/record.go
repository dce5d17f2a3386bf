package engine

import (
	"context"
	"errors"
	"sync"
	"time"

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

	mu      sync.Mutex
	pending []int
	skipped int
	wake    chan struct{}
	stop    chan struct{}
	ended   chan struct{}
	err     error
}

func newPartRecorder(r *Run, s *sinkRun, up pipeline.Upload, key string, base bus.Delivery) *partRecorder {
	pr := &partRecorder{r: r, up: up, key: key, base: base, wake: make(chan struct{}, 1), stop: make(chan struct{}), ended: make(chan struct{})}
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

// resumed notes parts not written because an earlier attempt had.
func (pr *partRecorder) resumed(n int) {
	pr.mu.Lock()
	pr.skipped += n
	pr.mu.Unlock()
}

func (pr *partRecorder) loop() {
	defer close(pr.ended)
	for {
		select {
		case <-pr.wake:
			pr.flush(pr.r.hard)
		case <-pr.stop:
			pr.flush(pr.r.hard)
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
	_, err := bus.Update(ctx, pr.r.fb.Store, pr.key, func(d *bus.Delivery, exists bool) error {
		if bus.Final(d.State) {
			return bus.ErrUnchanged
		}
		if d.Owner != pr.base.Owner {
			return errSuperseded
		}
		if d.PartSize != pr.base.PartSize {
			d.PartSize, d.Done = pr.base.PartSize, nil
		}
		for _, n := range parts {
			d.Done = d.Done.Set(n)
		}
		d.Writes += len(parts)
		d.Resumed += skipped
		d.Resume = state
		d.Updated = time.Now().UTC()
		return nil
	})
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
