package engine

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/mftflow/mftflow/pipeline"
	"github.com/mftflow/mftflow/pipeline/bus"
)

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
	if final && errors.Is(err, pipeline.ErrUploadLost) {
		r.lost.Store(d.id, true) // read again from the source (finishOrReread)
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
