package engine

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strings"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"golang.org/x/sync/errgroup"

	"github.com/mftflow/mftflow/pipeline"
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

// deliver makes one attempt at delivering file id to sink s. It returns nil
// once the delivery is final (committed, skipped or failed for good),
// errStopped when the run stops, and *retryLater for a failed attempt
// with budget left.
func (r *Run) deliver(ctx context.Context, s *sinkRun, id string, task uint64, log logger) error {
	d := &delivery{r: r, s: s, id: id, key: bus.DeliveryKey(id, s.spec.Name), log: log}
	rev, err := r.fb.Store.Get(ctx, bus.ManifestKey(id), &d.m)
	if err != nil {
		return err
	}
	if rev == 0 {
		log.Warn("delivery task for an unknown file; dropping it")
		return nil
	}
	ctx = withFile(ctx, id, d.m.Name)
	if d.m.Replaying {
		defer r.settleReplay(id) // the file's outcome may change once this ends
	}
	if err := d.begin(ctx, task); err != nil || bus.Final(d.rec.State) {
		return err
	}
	s.emitFor(ctx, pipeline.Event{Kind: pipeline.EventAttempt, Attempt: d.rec.Attempts})

	// Watch the manifest of a file still being read: a read that fails for
	// good ends the delivery.
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	if d.m.State == bus.FileIngesting {
		if err := d.watch(ctx, cancel); err != nil {
			return r.stopped(err)
		}
		defer d.mw.stop()
	}
	// Waits for the manifest end when the run stops.
	awaitCtx, cancelAwait := context.WithCancel(ctx)
	defer cancelAwait()
	defer context.AfterFunc(r.stopping, cancelAwait)()
	return d.run(ctx, awaitCtx)
}

// delivery is one attempt at delivering a file to a sink. Its steps, in
// order: begin (record the attempt), waitForFile, open, write, await,
// claim and commit; fail records an attempt that ends early.
type delivery struct {
	r   *Run
	s   *sinkRun
	id  string
	key string // of the delivery's record
	log logger

	m     bus.Manifest
	recv  bus.Versioned[bus.Delivery] // the record as last written
	rec   bus.Delivery                // the record as this attempt began
	owner string
	mw    *manifestWatch // while the file is being read

	up pipeline.Upload
	// unrecorded is set while the upload's resume state is in no record (a
	// one-chunk file records it only with the commit claim): an attempt
	// that fails before then records it with the failure, so the next
	// attempt resumes the upload (a Thru session keeps the chunks it got).
	unrecorded bool
	partSize   int64
	conc       int
	size       int64               // bytes written
	written    func(*bus.Delivery) // what the claim records of the parts, if anything
}

// run takes the attempt from its record to its end.
func (d *delivery) run(ctx, awaitCtx context.Context) error {
	if err := d.waitForFile(ctx, awaitCtx); err != nil {
		return d.fail(ctx, err)
	}
	if err := d.open(ctx); errors.Is(err, pipeline.ErrSkip) {
		return d.skip(ctx, "sink skipped the file", err)
	} else if err != nil {
		return d.fail(ctx, err)
	}
	if err := d.write(ctx); err != nil {
		return d.fail(ctx, err)
	}
	if err := d.await(awaitCtx); err != nil {
		return d.fail(ctx, err)
	}
	if err := d.claim(ctx); err != nil {
		return d.fail(ctx, err)
	}
	return d.commit(ctx)
}

// begin records the attempt, as owned by this run, unless the delivery is
// final already (d.rec then says so) or another task message carries it.
func (d *delivery) begin(ctx context.Context, task uint64) error {
	r := d.r
	// Usually the first attempt: expect no record, saving a read.
	recv, err := bus.UpdateFrom(ctx, r.fb.Store, d.key, bus.Versioned[bus.Delivery]{}, func(dl *bus.Delivery, exists bool) error {
		if exists && bus.Final(dl.State) {
			return bus.ErrUnchanged
		}
		if exists {
			if err := r.duplicateTask(ctx, dl.Task, task); err != nil {
				return err
			}
		}
		dl.File, dl.Sink, dl.Name, dl.Task = d.id, d.s.spec.Name, d.m.Name, task
		dl.Attempts++
		dl.State, dl.Owner, dl.Updated = bus.DeliveryActive, ownerID(r.e.opts.RunID, dl), time.Now().UTC()
		if dl.Attempts == 1 || dl.Started.IsZero() {
			dl.Started = dl.Updated
		}
		return nil
	})
	if err != nil {
		return r.stopped(err)
	}
	d.recv, d.rec, d.owner = recv, recv.V, recv.V.Owner
	return nil
}

// watch follows the manifest of a file still being read; a read that fails
// for good cancels ctx with the reason.
func (d *delivery) watch(ctx context.Context, cancel context.CancelCauseFunc) error {
	mw, err := newManifestWatch(ctx, d.r.fb.Store, d.id, func(m bus.Manifest) {
		if m.State == bus.FileFailed || m.State == bus.FileSkipped {
			cancel(pipeline.Permanent(fmt.Errorf("%s did not reach the bus: %s", m.Name, m.Error)))
		}
	})
	d.mw = mw
	return err
}

// update changes the delivery's record while this attempt owns it.
func (d *delivery) update(ctx context.Context, change func(*bus.Delivery)) error {
	_, err := bus.Update(ctx, d.r.fb.Store, d.key, func(dl *bus.Delivery, exists bool) error {
		if dl.Owner != d.owner {
			return errSuperseded
		}
		change(dl)
		return nil
	})
	return err
}

// waitForFile waits for the end of the file's read when the sink takes only
// whole files, and fails the attempt for a file that did not reach the bus.
func (d *delivery) waitForFile(ctx, awaitCtx context.Context) error {
	if d.m.State == bus.FileIngesting && d.s.waitsForFile(fileOf(d.m)) {
		// Say so first: a waiting delivery must not hold reading back.
		if err := d.update(ctx, func(dl *bus.Delivery) { dl.State = bus.DeliveryWaiting }); err != nil {
			return err
		}
		var err error
		if d.m, err = d.mw.await(awaitCtx, readEnded); err != nil {
			return err
		}
		if err := d.update(ctx, func(dl *bus.Delivery) { dl.State = bus.DeliveryActive }); err != nil {
			return err
		}
	}
	if d.m.State == bus.FileFailed || d.m.State == bus.FileSkipped {
		return pipeline.Permanent(fmt.Errorf("%s did not reach the bus: %s", d.m.Name, d.m.Error))
	}
	return nil
}

// readEnded says whether the file's read from its source has ended.
func readEnded(m bus.Manifest) bool { return m.State != bus.FileIngesting }

// open opens the upload at the sink, resuming the recorded one, and works
// out its part size and concurrency. It returns the sink's pipeline.ErrSkip
// as it is.
func (d *delivery) open(ctx context.Context) error {
	s, m, rec := d.s, d.m, &d.rec
	file := fileOf(m)
	if rec.Resume == nil && rec.Attempts > 1 {
		d.r.reclaim(ctx, s, file, rec.Started, d.log)
	}
	var err error
	d.up, err = s.sink.Open(ctx, file, rec.Resume)
	if errors.Is(err, pipeline.ErrSkip) {
		return err
	}
	if err != nil {
		return fmt.Errorf("opening %s on sink %s: %w", m.Name, s.spec.Name, err)
	}
	plan := d.up.Plan()
	chunk := m.ChunkSize
	d.partSize = max(chunk, (plan.PartSize+chunk-1)/chunk*chunk)
	if rec.PartSize != 0 && rec.PartSize != d.partSize {
		d.log.Warn("sink part size changed; writing every part again", "was", rec.PartSize, "now", d.partSize)
		rec.Done, rec.Prefix = nil, nil
	}
	d.conc = plan.Concurrency
	if d.conc <= 0 {
		d.conc = s.spec.Parallelism
	}
	if plan.InOrder {
		d.conc = 1
		rec.Done = rec.Done.Prefix() // a part after a gap is written again
	}
	return nil
}

// write writes the parts the record does not hold as done.
func (d *delivery) write(ctx context.Context) error {
	var err error
	if d.m.State != bus.FileIngesting && d.m.Chunks == 1 {
		d.unrecorded = true
		d.size, d.written, err = d.r.writeWhole(ctx, d.s, d.up, d.m, d.rec, d.partSize)
	} else {
		d.size, err = d.r.writeParts(ctx, d.s, d.up, &d.m, d.rec, d.partSize, d.conc)
	}
	return err
}

// await waits for the end of the file's read, if it was still being read,
// and checks that every byte of it was written.
func (d *delivery) await(awaitCtx context.Context) error {
	if d.m.State == bus.FileIngesting {
		var err error
		if d.m, err = d.mw.await(awaitCtx, readEnded); err != nil {
			return err
		}
	}
	if d.m.Size != d.size {
		return pipeline.Permanent(fmt.Errorf("%s: the bus holds %d bytes, the manifest says %d", d.m.Name, d.size, d.m.Size))
	}
	return nil
}

// claim claims the commit: only the latest owner of the delivery may
// commit, so a task redelivered after a stall is never committed twice.
func (d *delivery) claim(ctx context.Context) error {
	var err error
	d.recv, err = bus.UpdateFrom(ctx, d.r.fb.Store, d.key, d.recv, func(dl *bus.Delivery, exists bool) error {
		if dl.Owner != d.owner {
			return errSuperseded
		}
		if d.written != nil {
			d.written(dl)
		}
		dl.State, dl.Updated = bus.DeliveryCommitting, time.Now().UTC()
		return nil
	})
	if err != nil {
		return err
	}
	d.unrecorded = false
	return nil
}

// commit commits the upload, writes the file's checksum file, and records
// the delivery as committed.
func (d *delivery) commit(ctx context.Context) error {
	r, s, m := d.r, d.s, d.m
	if err := d.up.Commit(ctx, fileOf(m)); errors.Is(err, pipeline.ErrSkip) {
		return d.skip(ctx, "sink skipped the file at commit", err)
	} else if err != nil {
		return d.fail(ctx, fmt.Errorf("committing %s on sink %s: %w", m.Name, s.spec.Name, err))
	}
	if err := r.writeChecksum(ctx, s, fileOf(m), m.Digests); err != nil {
		return d.fail(ctx, fmt.Errorf("writing the checksum file of %s on sink %s: %w", m.Name, s.spec.Name, err))
	}
	if err := flushCommitted(ctx, s, m); err != nil {
		return d.fail(ctx, err)
	}
	s.stats.committed.Add(1)
	s.emitFor(ctx, pipeline.Event{Kind: pipeline.EventCommitted, Attempt: d.rec.Attempts, Location: locationOf(d.up)})
	d.log.Info("delivered", "file", m.Name, "bytes", m.Size)
	if err := r.finish(d.key, d.id, bus.DeliveryCommitted, m.Size, &d.recv); err != nil {
		return err
	}
	// Counted once the commit is recorded: a commit whose record failed is
	// done again by the next attempt, and counted then.
	s.metrics.files.Inc()
	return nil
}

// skip ends a delivery the sink skipped (reason says why).
func (d *delivery) skip(ctx context.Context, msg string, reason error) error {
	d.log.Info(msg, "reason", reason)
	// What it holds may be an earlier attempt's commit, not yet durable.
	if err := flushCommitted(ctx, d.s, d.m); err != nil {
		return d.fail(ctx, err)
	}
	d.s.stats.skipped.Add(1)
	return d.r.finish(d.key, d.id, bus.DeliverySkipped, 0, &d.recv)
}

// fail records an attempt that failed with err, and returns what handleTask
// makes of it: nil when the delivery failed for good, *retryLater while
// budget is left, errStopped when the run stops, errSuperseded when the
// delivery is another owner's now.
func (d *delivery) fail(ctx context.Context, err error) error {
	if errors.Is(err, errSuperseded) {
		return err
	}
	r, s := d.r, d.s
	if cause := context.Cause(ctx); cause != nil && ctx.Err() != nil && r.hard.Err() == nil {
		err = cause
	}
	if errors.Is(err, pipeline.ErrChanged) {
		// Read again, it would be the same change: this version is
		// over at this sink, and the file's runner decides what next
		// (bus.on_change).
		r.noteChanged(d.id, err)
		err = pipeline.Permanent(err)
	}
	if r.stopping.Err() != nil && !pipeline.IsPermanent(err) {
		return errStopped
	}
	// Waiting for a reader, or for room on the bus to record the
	// delivery's progress, is no failure of the sink's.
	waiting := errors.Is(err, errNoReader) || errors.Is(err, bus.ErrStoreFull)
	final, failures, uerr := d.recordFailure(err, waiting)
	if uerr != nil {
		return r.stopped(uerr)
	}
	if !waiting {
		s.emitFor(ctx, pipeline.Event{Kind: pipeline.EventAttemptFailed, Attempt: d.rec.Attempts, Error: pipeline.RedactURLs(err.Error()), Permanent: final})
	}
	if final && d.up != nil {
		// Only the owner that recorded the failure aborts the upload.
		if aerr := d.up.Abort(r.hard, err); aerr != nil {
			d.log.Warn("aborting upload", "err", aerr)
		}
	}
	if final {
		s.stats.failed.Add(1)
		s.metrics.failures.Inc()
		d.log.Error("delivery failed", "attempts", d.rec.Attempts, "failures", failures, "err", err)
		r.finisher.poke(d.id)
		return nil
	}
	if waiting {
		return &retryLater{err: err, after: r.e.opts.AckWait, waiting: true}
	}
	return &retryLater{err: err, after: retryDelay(s.spec.Retry, failures)}
}

// recordFailure records the failed attempt in the delivery's record: as
// final when err is permanent or the retry budget is spent. A waiting
// attempt spends none of the budget.
func (d *delivery) recordFailure(err error, waiting bool) (final bool, failures int, uerr error) {
	var resume []byte
	if d.unrecorded && d.up != nil {
		resume = d.up.State()
	}
	_, uerr = bus.Update(withFile(d.r.hard, d.id, d.m.Name), d.r.fb.Store, d.key, func(dl *bus.Delivery, exists bool) error {
		if dl.Owner != d.owner {
			return errSuperseded
		}
		if !waiting {
			dl.Failures++
		}
		failures = dl.Failures
		final = pipeline.IsPermanent(err) || dl.Failures >= d.s.spec.Retry.Attempts
		dl.Error, dl.Updated = pipeline.RedactURLs(err.Error()), time.Now().UTC()
		dl.State = bus.DeliveryPending // not holding reads back while it waits
		if resume != nil {
			dl.Resume = resume
		}
		if final {
			// Nothing of the upload is kept, so a replay needs every
			// chunk: without a prefix none is purged.
			dl.State, dl.Resume, dl.Done, dl.Prefix = bus.DeliveryFailed, nil, nil, nil
		}
		return nil
	})
	return final, failures, uerr
}

// reclaim has the sink remove what an earlier attempt of this delivery may
// have begun without recording it (it died between the sink's Open and the
// record of its resume state), before this attempt begins anew.
func (r *Run) reclaim(ctx context.Context, s *sinkRun, f pipeline.File, since time.Time, log interface{ Warn(string, ...any) }) {
	rc, ok := s.sink.(pipeline.Reclaimer)
	if !ok || since.IsZero() {
		return
	}
	if err := rc.Reclaim(ctx, f, since); err != nil {
		log.Warn("removing what an earlier attempt left at the sink", "err", err)
	}
}

// finish records a delivery's final state, starting from the record as last
// written, and tells the file's finisher.
func (r *Run) finish(key, id, state string, size int64, from *bus.Versioned[bus.Delivery]) error {
	d, err := bus.UpdateFrom(r.hard, r.fb.Store, key, *from, func(d *bus.Delivery, exists bool) error {
		d.State, d.Bytes, d.Error, d.Resume, d.Updated = state, size, "", nil, time.Now().UTC()
		return nil
	})
	if err == nil {
		r.finisher.settled(id, d.V)
	} else {
		r.finisher.poke(id)
	}
	return err
}

func fileOf(m bus.Manifest) pipeline.File {
	return pipeline.File{ID: m.ID, Key: m.Key, Name: m.Name, Size: m.Size, SHA256: m.SHA256, ModTime: m.ModTime, Attrs: m.Attrs}
}

// writeParts reads the file's chunks from the bus in order, verifies them
// (each chunk's CRC-32C, and that no chunk is missing), groups them into
// parts and writes the parts not yet done, conc at a time. It returns the
// size of the file. The whole file's sha256 was computed while reading the
// source; sinks get it at Commit.
func (r *Run) writeParts(ctx context.Context, s *sinkRun, up pipeline.Upload, m *bus.Manifest, rec bus.Delivery, partSize int64, conc int) (int64, error) {
	w := &partWriter{r: r, s: s, up: up, m: m, rec: rec, partSize: partSize, ahead: map[int]storedChunk{}}
	// The consumer is deleted when the reading ends; InactiveThreshold only
	// clears up after a crash.
	cfg := jetstream.OrderedConsumerConfig{FilterSubjects: []string{r.fb.ChunkSubject(m.ID)}, DeliverPolicy: jetstream.DeliverAllPolicy, InactiveThreshold: time.Minute}
	// Resume at the prefix of written parts when there is one: the chunks
	// before it may already be gone from the bus.
	if p := rec.Prefix; p != nil && rec.PartSize == partSize && p.Seq > 0 {
		w.partNo, w.expect, w.size = p.Parts, p.Chunks, p.Bytes
		cfg.DeliverPolicy, cfg.OptStartSeq = jetstream.DeliverByStartSequencePolicy, p.Seq
	}
	cons, err := r.fb.Chunks.OrderedConsumer(ctx, cfg)
	if err != nil {
		return 0, fmt.Errorf("reading chunks of %s: %w", m.Name, err)
	}
	defer r.deleteConsumer(cons)
	w.msgs, err = cons.Messages(jetstream.PullMaxMessagesWithBytesLimit(32, int(min(2*partSize, 16<<20))))
	if err != nil {
		return 0, fmt.Errorf("reading chunks of %s: %w", m.Name, err)
	}
	defer w.msgs.Stop()

	w.rec.PartSize = partSize
	w.recorder = newPartRecorder(r, s, up, bus.DeliveryKey(m.ID, s.spec.Name), w.rec, fileSinks(*m, r))
	w.recorder.resumed(w.partNo)    // every part before the prefix was written by an earlier attempt
	w.sr = &sourceReads{r: r, m: m} // reads the bytes of references
	w.g.SetLimit(conc)
	return w.run(ctx)
}

// partWriter reads the chunks of one delivery attempt from the bus and
// writes them to the sink as parts.
type partWriter struct {
	r        *Run
	s        *sinkRun
	up       pipeline.Upload
	m        *bus.Manifest
	rec      bus.Delivery
	partSize int64
	msgs     jetstream.MessagesContext
	recorder *partRecorder
	sr       *sourceReads

	// A part that fails stops the reading and the dispatch of new parts, but
	// the parts already being written finish and are recorded: a part the
	// sink has accepted is not sent again by the next attempt.
	g           errgroup.Group
	writeFailed atomic.Bool
	stopReading context.CancelFunc

	partNo, expect int   // the next part's number, the next chunk's index
	size           int64 // of the chunks read so far
	part           []bus.Chunk
	partLen        int64
	// Chunks that arrived ahead of their turn: a publish that failed is
	// sent again after the ones behind it have landed (a cluster leader
	// change), so the stream may hold a few chunks out of order.
	ahead map[int]storedChunk
}

// run reads the chunks, dispatches each part as it fills, and waits for the
// writers. It returns the size of the file.
func (w *partWriter) run(ctx context.Context) (int64, error) {
	readCtx, stopReading := context.WithCancel(ctx)
	defer stopReading()
	w.stopReading = stopReading
	var readErr error
	for {
		c, ok, err := w.next(readCtx)
		if !ok {
			readErr = err
			break
		}
		p, data, full := w.add(c)
		if !full {
			continue
		}
		if w.rec.Done.Has(p.Number) {
			w.recorder.resumed(1)
		} else {
			w.g.Go(func() error { return w.writePart(ctx, p, data) })
		}
		if p.Last {
			break
		}
	}
	werr := w.g.Wait()
	rerr := w.recorder.close(w.r.hard)
	if err := errors.Join(werr, readErr, rerr); err != nil {
		if werr == nil && errors.Is(readErr, errStopped) {
			return 0, errStopped
		}
		return 0, err
	}
	return w.size, nil
}

// next returns the file's next chunk in index order. ok is false when the
// reading ends: err then says why, or is nil when a writer failed (the
// writers' wait reports it).
func (w *partWriter) next(ctx context.Context) (c storedChunk, ok bool, err error) {
	r, m := w.r, w.m
	for {
		if r.stopping.Err() != nil {
			return c, false, errStopped
		}
		if w.writeFailed.Load() {
			return c, false, nil // a writer failed; g.Wait reports it
		}
		if c, ok := w.ahead[w.expect]; ok {
			delete(w.ahead, w.expect)
			return c, true, nil
		}
		msg, err := r.nextChunk(ctx, w.msgs, m, w.expect, len(w.ahead) > 0)
		if err != nil {
			if w.writeFailed.Load() {
				err = nil // the read was stopped for it
			}
			return c, false, err
		}
		if c.Chunk, err = r.codec.Decode(msg.Headers(), msg.Data()); err != nil {
			return c, false, pipeline.Permanent(fmt.Errorf("%s: %w", m.Name, err))
		}
		if meta, err := msg.Metadata(); err == nil {
			c.seq = meta.Sequence.Stream
		}
		if c.Index < w.expect {
			continue // published again after a crash; already seen
		}
		if c.Index > w.expect {
			if len(w.ahead) >= maxAhead {
				return c, false, pipeline.Permanent(fmt.Errorf("%s: chunk %d is missing from the bus (%d later ones are there); were the chunks purged?", m.Name, w.expect, len(w.ahead)))
			}
			w.ahead[c.Index] = c
			c = storedChunk{}
			continue
		}
		return c, true, nil
	}
}

// add puts chunk c, the next in order, into the part being gathered. When
// that part is full, or c is the file's last chunk, it returns the part and
// its chunks.
func (w *partWriter) add(c storedChunk) (pipeline.Part, []bus.Chunk, bool) {
	ch := c.Chunk
	if len(w.part) == 0 && c.seq > 0 {
		// A part starts here: a possible resume point, from the
		// lowest stream position still needed.
		seq := c.seq
		for _, a := range w.ahead {
			seq = min(seq, a.seq)
		}
		w.recorder.boundary(bus.Prefix{Parts: w.partNo, Chunks: ch.Index, Bytes: w.size, Seq: seq})
	}
	w.expect++
	n := int64(len(ch.Data))
	if ch.Ref {
		n = int64(ch.Len)
	}
	w.size += n
	w.part = append(w.part, ch)
	w.partLen += n
	if len(w.part) < int(w.partSize/w.m.ChunkSize) && !ch.Last {
		return pipeline.Part{}, nil, false
	}
	p := pipeline.Part{Number: w.partNo, Offset: int64(w.partNo) * w.partSize, Size: w.partLen, Last: ch.Last}
	data := w.part
	w.part, w.partLen = nil, 0
	w.partNo++
	return p, data, true
}

// writePart writes part p, made of the chunks data, and records it as done.
// A failure stops the reading.
func (w *partWriter) writePart(ctx context.Context, p pipeline.Part, data []bus.Chunk) error {
	fail := func(err error) error {
		w.writeFailed.Store(true)
		w.stopReading()
		return err
	}
	body, written, err := w.sr.partData(ctx, data)
	if err != nil {
		return fail(err)
	}
	err = writePart(ctx, w.up, p, body, w.s)
	written()
	if err != nil {
		return fail(fmt.Errorf("writing part %d of %s to sink %s: %w", p.Number, w.m.Name, w.s.spec.Name, err))
	}
	w.s.stats.bytes.Add(p.Size)
	w.s.metrics.bytes.Add(float64(p.Size))
	w.recorder.done(p.Number)
	return nil
}

// writeWhole writes a file that is one chunk on the bus, or inline in its
// manifest (see wholeChunk), without a consumer. It returns the file's size and what to
// record of the part: that goes into the commit's record write, which comes
// next, instead of one of its own (a crash in between writes the part again).
func (r *Run) writeWhole(ctx context.Context, s *sinkRun, up pipeline.Upload, m bus.Manifest, rec bus.Delivery, partSize int64) (int64, func(*bus.Delivery), error) {
	data, err := r.wholeChunk(ctx, m)
	if err != nil {
		return 0, nil, err
	}
	size := int64(len(data))
	if rec.PartSize == partSize && rec.Done.Has(0) {
		return size, func(d *bus.Delivery) { d.Resumed++ }, nil
	}
	p := pipeline.Part{Number: 0, Size: size, Last: true}
	if err := writePart(ctx, up, p, net.Buffers{data}, s); err != nil {
		return 0, nil, fmt.Errorf("writing part 0 of %s to sink %s: %w", m.Name, s.spec.Name, err)
	}
	s.stats.bytes.Add(size)
	s.metrics.bytes.Add(float64(size))
	state := up.State()
	return size, func(d *bus.Delivery) {
		d.PartSize, d.Done = partSize, bus.Bitmap(nil).Set(0)
		d.Writes++
		d.Resume = state
	}, nil
}

// wholeChunk returns the content of a one-chunk file: from its manifest
// when it travels inline, else its chunk, read in one request (the
// subject's last message).
func (r *Run) wholeChunk(ctx context.Context, m bus.Manifest) ([]byte, error) {
	if m.Inline {
		if int64(len(m.Content)) != m.Size {
			return nil, pipeline.Permanent(fmt.Errorf("%s: the manifest holds %d bytes of the file's %d; were they purged?", m.Name, len(m.Content), m.Size))
		}
		return m.Content, nil
	}
	c, err := onlyChunk(ctx, r.fb.Chunks, r.codec, r.fb.ChunkSubject(m.ID), m.Name)
	if err != nil || !c.Ref {
		return c.Data, err
	}
	return (&sourceReads{r: r, m: &m}).read(ctx, []bus.Chunk{c})
}

// onlyChunk reads the one chunk on subject (the last message) in one
// request; name names its file in errors.
func onlyChunk(ctx context.Context, chunks jetstream.Stream, codec *bus.Codec, subject, name string) (bus.Chunk, error) {
	var raw *jetstream.RawStreamMsg
	err := bus.RetryTransient(ctx, func() (err error) {
		raw, err = chunks.GetLastMsgForSubject(ctx, subject)
		return err
	})
	if errors.Is(err, jetstream.ErrMsgNotFound) {
		return bus.Chunk{}, pipeline.Permanent(fmt.Errorf("%s: chunk 0 is missing from the bus; were the chunks purged?", name))
	}
	if err != nil {
		return bus.Chunk{}, fmt.Errorf("reading the chunk of %s: %w", name, err)
	}
	c, err := codec.Decode(raw.Header, raw.Data)
	if err != nil {
		return bus.Chunk{}, pipeline.Permanent(fmt.Errorf("%s: %w", name, err))
	}
	if c.Index != 0 || !c.Last {
		return bus.Chunk{}, pipeline.Permanent(fmt.Errorf("%s: the bus holds chunk %d as the file's last, the manifest says it is one chunk", name, c.Index))
	}
	return c, nil
}

// writePart writes one part to sink s, retrying a few times before giving
// up. The part's bytes are paced by the sink's and the flow's rates as the
// sink reads them; a retry counts them again, since they are sent again.
func writePart(ctx context.Context, up pipeline.Upload, p pipeline.Part, data net.Buffers, s *sinkRun) error {
	sm := &s.metrics
	b := newBackoff(200*time.Millisecond, 2*time.Second)
	var err error
	for attempt := 1; attempt <= partAttempts; attempt++ {
		body := append(net.Buffers(nil), data...) // Read consumes the slice
		start := time.Now()
		err = up.WritePart(ctx, p, s.paced(ctx, &body))
		if err == nil {
			sm.partWrite.Observe(time.Since(start).Seconds())
			break
		}
		if pipeline.IsPermanent(err) || ctx.Err() != nil || attempt == partAttempts {
			break
		}
		sm.partRetries.Inc()
		s.emitFor(ctx, pipeline.Event{Kind: pipeline.EventPartRetry, Part: p.Number, Attempt: attempt, Error: pipeline.RedactURLs(err.Error())})
		sleep(ctx, b.NextBackOff())
	}
	return err
}

// deleteConsumer removes a delivery's chunk consumer from the server at
// once: left to expire, the consumers of many small files would reach the
// stream's consumer limit (1000 by default).
func (r *Run) deleteConsumer(c jetstream.Consumer) {
	info := c.CachedInfo()
	if info == nil {
		return
	}
	ctx, cancel := context.WithTimeout(r.hard, 10*time.Second)
	defer cancel()
	if err := r.fb.Chunks.DeleteConsumer(ctx, info.Name); err != nil && !errors.Is(err, jetstream.ErrConsumerNotFound) {
		r.log.Debug("removing a chunk consumer", "consumer", info.Name, "err", err)
	}
}

// storedChunk is a chunk read from the bus with its stream sequence.
type storedChunk struct {
	bus.Chunk
	seq uint64
}

// maxAhead bounds the chunks kept while waiting for one that is late: twice
// the publishes a reader has in flight, so a reordering by a republish always
// fits and a chunk that is really missing is found out.
const maxAhead = 2 * publishWindow

// A read may go staleRead AckWaits without a sign of life (the reader's
// heartbeat comes every AckWait) before a delivery waiting for it ends its
// attempt (errNoReader, which spends none of the retry budget: a runner
// that restarts, or another that takes the source over, reads on); they
// check every AckWait. After abandonedRead AckWaits without one, the file
// is taken as abandoned (it changed or went at the source before any
// runner was offered it again) and the delivery fails.
const (
	staleRead     = 3
	abandonedRead = 50
)

// errNoReader ends a delivery attempt that waits for chunks nobody reads.
var errNoReader = errors.New("nobody has been reading it from the source")

// nextChunk waits for the file's next chunk. It returns errStopped when the
// run stops, and a retryable error when no runner has been reading the file
// for a while (it stopped, or the file changed at the source before it was
// read again), so the delivery does not hold a worker forever. gap says
// chunk index is late (later ones arrived): once the file is wholly on the
// bus and nothing comes, it is missing.
func (r *Run) nextChunk(ctx context.Context, msgs jetstream.MessagesContext, m *bus.Manifest, index int, gap bool) (jetstream.Msg, error) {
	onBus := false // the whole file was on the bus at the last timeout
	for {
		wait, cancel := context.WithTimeout(ctx, r.e.opts.AckWait)
		stopWait := context.AfterFunc(r.stopping, cancel)
		msg, err := msgs.Next(jetstream.NextContext(wait))
		stopWait()
		cancel()
		switch {
		case err == nil:
			return msg, nil
		case r.stopping.Err() != nil:
			return nil, errStopped
		case ctx.Err() == nil && errors.Is(err, context.DeadlineExceeded):
			var cur bus.Manifest
			if _, gerr := r.fb.Store.Get(ctx, bus.ManifestKey(m.ID), &cur); gerr != nil {
				return nil, gerr
			}
			if gap && cur.State != bus.FileIngesting {
				return nil, pipeline.Permanent(fmt.Errorf("%s: chunk %d is missing from the bus; were the chunks purged?", m.Name, index))
			}
			if onBus {
				// A whole wait (after the one that found the file on
				// the bus) with none coming: the consumer stalled (a pull lost in a
				// leadership change); a new attempt reads with a new one.
				return nil, fmt.Errorf("waiting for chunk %d of %s: nothing came from the bus for %s though the whole file should be there (were the chunks purged?)",
					index, m.Name, 2*r.e.opts.AckWait)
			}
			onBus = cur.State != bus.FileIngesting
			idle := time.Since(cur.Updated)
			switch {
			case cur.State != bus.FileIngesting:
			case idle > abandonedRead*r.e.opts.AckWait:
				return nil, pipeline.Permanent(fmt.Errorf("waiting for chunk %d of %s: nobody has read it from the source for %s: the runner reading it stopped and no runner was offered the file since (did it change or go at the source?); a later run whose source offers it again reads it again",
					index, m.Name, idle.Round(time.Second)))
			case idle > staleRead*r.e.opts.AckWait:
				return nil, fmt.Errorf("waiting for chunk %d of %s: %w for %s (a runner stopped; the one that polls the source next reads on)",
					index, m.Name, errNoReader, idle.Round(time.Second))
			}
			continue
		}
		return nil, fmt.Errorf("reading chunk %d of %s: %w", index, m.Name, err)
	}
}
