package engine

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/mftflow/mftflow/pipeline/bus"
)

// Part writes are retried this often within one delivery attempt before the
// attempt fails (and the delivery's own retry budget takes over).
const partAttempts = 3

// deliveryWorker takes the sink's delivery tasks one at a time.
func (r *Run) deliveryWorker(s *sinkRun) {
	defer r.workers.Done()
	for r.idle.Err() == nil {
		ctx, cancel := context.WithTimeout(r.idle, 5*time.Second)
		batch, err := s.consumer.Fetch(1, jetstream.FetchContext(ctx))
		if err != nil {
			cancel()
			if r.idle.Err() == nil {
				r.log.Warn("fetching delivery tasks", "sink", s.spec.Name, "err", err)
				sleep(r.idle, time.Second)
			}
			continue
		}
		for msg := range batch.Messages() {
			r.handleTask(s, msg)
		}
		cancel()
	}
}

func sleep(ctx context.Context, d time.Duration) {
	select {
	case <-time.After(d):
	case <-ctx.Done():
	}
}

// errSuperseded ends an attempt whose task was redelivered to another owner
// (its in-progress acks did not arrive in time); the new owner carries on.
var errSuperseded = errors.New("delivery taken over by another owner")

// errDuplicateTask ends the handling of a task message for a delivery that
// another, still pending, task message carries.
var errDuplicateTask = errors.New("duplicate delivery task")

// taskPending reports whether the task message at stream sequence seq is
// still on the work queue (not yet acked).
func (r *Run) taskPending(ctx context.Context, seq uint64) (bool, error) {
	_, err := r.fb.Tasks.GetMsg(ctx, seq)
	switch {
	case err == nil:
		return true, nil
	case errors.Is(err, jetstream.ErrMsgNotFound):
		return false, nil
	}
	return false, fmt.Errorf("looking up delivery task %d: %w", seq, err)
}

// duplicateTask returns errDuplicateTask when the task message at stream
// sequence task is not the one a delivery's record names (recorded), and
// that one is still pending: another task message carries the delivery,
// unless it is gone (acked when the delivery failed, before a replay).
func (r *Run) duplicateTask(ctx context.Context, recorded, task uint64) error {
	if recorded == 0 || recorded == task {
		return nil
	}
	pending, err := r.taskPending(ctx, recorded)
	if err != nil {
		return err
	}
	if pending {
		return errDuplicateTask
	}
	return nil
}

// retryLater asks for the task to be redelivered after a delay. waiting
// says the attempt ended for want of a reader of the file, not by a
// failure of the sink's.
type retryLater struct {
	err     error
	after   time.Duration
	waiting bool
	files   int // deliveries tried again: those of a group's files that failed; 0 means 1
}

func (e *retryLater) Error() string { return e.err.Error() }
func (e *retryLater) Unwrap() error { return e.err }

func (r *Run) handleTask(s *sinkRun, msg jetstream.Msg) {
	id := string(msg.Data())
	log := r.log.With("sink", s.spec.Name, "id", id)
	s.stats.active.Add(1)
	defer s.stats.active.Add(-1)
	s.metrics.inFlight.Inc()
	defer s.metrics.inFlight.Dec()

	stopAlive := r.keepTask(msg, log)
	var task uint64
	if meta, err := msg.Metadata(); err == nil {
		task = meta.Sequence.Stream
	}
	var err error
	if gid, ok := strings.CutPrefix(id, "g:"); ok {
		err = r.deliverGroup(r.hard, s, gid, task, log)
	} else {
		err = r.deliver(r.hard, s, id, task, log)
	}
	stopAlive()
	r.answerTask(s, msg, task, err, log)
}

// keepTask keeps the task message while its delivery works on it, however
// long that takes, until stop is called.
func (r *Run) keepTask(msg jetstream.Msg, log *slog.Logger) (stop func()) {
	alive, stopAlive := context.WithCancel(context.Background())
	go func() {
		t := time.NewTicker(r.e.opts.AckWait / 3)
		defer t.Stop()
		for {
			select {
			case <-t.C:
				if err := msg.InProgress(); err != nil {
					// The next tick tries again; past the ack wait the bus
					// hands the task out again, and the delivery's owner
					// check stops the second holder.
					log.Debug("keeping the delivery task", "err", err)
				}
			case <-alive.Done():
				return
			}
		}
	}()
	return stopAlive
}

// answerTask answers the bus for task message msg (at stream sequence
// task) by how its delivery ended (err).
func (r *Run) answerTask(s *sinkRun, msg jetstream.Msg, task uint64, err error, log *slog.Logger) {
	// A lost answer leaves the task with the bus, which hands it out again
	// after its ack wait: a final delivery takes it as done, others go on.
	answered := func(answer string, err error) {
		if err != nil {
			log.Warn("answering the delivery task failed; the bus hands it out again after its ack wait", "answer", answer, "err", err)
		}
	}
	var later *retryLater
	switch {
	case err == nil:
		answered("ack", msg.Ack())
	case errors.Is(err, errDuplicateTask):
		// Published twice (a restart after the dedupe window); the first
		// task carries the delivery.
		log.Info("dropping a duplicate delivery task", "task", task)
		answered("ack", msg.Ack())
	case errors.Is(err, errSuperseded):
		// The task was redelivered to another owner, who now holds it.
		log.Warn("delivery taken over by another owner; leaving it to them")
	case errors.Is(err, errStopped) || r.stopping.Err() != nil:
		answered("nak", msg.Nak()) // the next run takes it at once
	case errors.As(err, &later) && later.waiting && errors.Is(err, bus.ErrStoreFull):
		log.Warn("delivery waits for room in the bus store", "in", later.after, "reason", later.err)
		answered("nak", msg.NakWithDelay(later.after))
	case errors.As(err, &later) && later.waiting:
		log.Info("delivery waits for the file to be read from its source again", "in", later.after, "reason", later.err)
		answered("nak", msg.NakWithDelay(later.after))
	case errors.As(err, &later):
		s.stats.retries.Add(int64(max(1, later.files)))
		s.metrics.retries.Add(float64(max(1, later.files)))
		log.Warn("delivery attempt failed; retrying", "in", later.after, "err", later.err)
		answered("nak", msg.NakWithDelay(later.after))
	case errors.Is(err, bus.ErrStoreFull):
		// Its record could not be written: no failure of the sink's.
		log.Warn("delivery waits for room in the bus store", "in", r.e.opts.AckWait, "reason", err)
		answered("nak", msg.NakWithDelay(r.e.opts.AckWait))
	default:
		log.Error("delivery task failed", "err", err)
		answered("nak", msg.NakWithDelay(r.e.opts.AckWait))
	}
}
