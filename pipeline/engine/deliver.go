package engine

import (
	"context"
	"errors"
	"fmt"
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

	// Keep the task while working on it, however long that takes.
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
// errStopped when the run is stopping, and *retryLater for a failed attempt
// with budget left.
func (r *Run) deliver(ctx context.Context, s *sinkRun, id string, task uint64, log interface {
	Info(string, ...any)
	Warn(string, ...any)
	Error(string, ...any)
}) error {
	key := bus.DeliveryKey(id, s.spec.Name)
	var m bus.Manifest
	rev, err := r.fb.Store.Get(ctx, bus.ManifestKey(id), &m)
	if err != nil {
		return err
	}
	if rev == 0 {
		log.Warn("delivery task for an unknown file; dropping it")
		return nil
	}
	ctx = withFile(ctx, id, m.Name)
	if m.Replaying {
		defer r.settleReplay(id) // the file's outcome may change once this ends
	}
	// Usually the first attempt: expect no record, saving a read.
	recv, err := bus.UpdateFrom(ctx, r.fb.Store, key, bus.Versioned[bus.Delivery]{}, func(d *bus.Delivery, exists bool) error {
		if exists && bus.Final(d.State) {
			return bus.ErrUnchanged
		}
		if exists {
			if err := r.duplicateTask(ctx, d.Task, task); err != nil {
				return err
			}
		}
		d.File, d.Sink, d.Name, d.Task = id, s.spec.Name, m.Name, task
		d.Attempts++
		d.State, d.Owner, d.Updated = bus.DeliveryActive, ownerID(r.e.opts.RunID, d), time.Now().UTC()
		if d.Attempts == 1 || d.Started.IsZero() {
			d.Started = d.Updated
		}
		return nil
	})
	if err != nil {
		return r.stopped(err)
	}
	rec := recv.V
	if bus.Final(rec.State) {
		return nil
	}
	owner := rec.Owner
	s.emitFor(ctx, pipeline.Event{Kind: pipeline.EventAttempt, Attempt: rec.Attempts})

	// Watch the manifest of a file still being read: a read that fails for
	// good ends the delivery.
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	var mw *manifestWatch
	if m.State == bus.FileIngesting {
		mw, err = newManifestWatch(ctx, r.fb.Store, id, func(m bus.Manifest) {
			if m.State == bus.FileFailed || m.State == bus.FileSkipped {
				cancel(pipeline.Permanent(fmt.Errorf("%s did not reach the bus: %s", m.Name, m.Error)))
			}
		})
		if err != nil {
			return r.stopped(err)
		}
		defer mw.stop()
	}

	var up pipeline.Upload
	// unrecorded is set while the upload's resume state is in no record (a
	// one-chunk file records it only with the commit claim): an attempt
	// that fails before then records it with the failure, so the next
	// attempt resumes the upload (a Thru session keeps the chunks it got).
	unrecorded := false
	fail := func(err error) error {
		if errors.Is(err, errSuperseded) {
			return err
		}
		if cause := context.Cause(ctx); cause != nil && ctx.Err() != nil && r.hard.Err() == nil {
			err = cause
		}
		if errors.Is(err, pipeline.ErrChanged) {
			// Read again, it would be the same change: this version is
			// over at this sink, and the file's runner decides what next
			// (bus.on_change).
			r.noteChanged(id, err)
			err = pipeline.Permanent(err)
		}
		if r.stopping.Err() != nil && !pipeline.IsPermanent(err) {
			return errStopped
		}
		// Waiting for a reader, or for room on the bus to record the
		// delivery's progress, is no failure of the sink's.
		waiting := errors.Is(err, errNoReader) || errors.Is(err, bus.ErrStoreFull)
		var resume []byte
		if unrecorded && up != nil {
			resume = up.State()
		}
		final := false
		failures := 0
		_, uerr := bus.Update(withFile(r.hard, id, m.Name), r.fb.Store, key, func(d *bus.Delivery, exists bool) error {
			if d.Owner != owner {
				return errSuperseded
			}
			if !waiting {
				d.Failures++
			}
			failures = d.Failures
			final = pipeline.IsPermanent(err) || d.Failures >= s.spec.Retry.Attempts
			d.Error, d.Updated = pipeline.RedactURLs(err.Error()), time.Now().UTC()
			d.State = bus.DeliveryPending // not holding reads back while it waits
			if resume != nil {
				d.Resume = resume
			}
			if final {
				// Nothing of the upload is kept, so a replay needs every
				// chunk: without a prefix none is purged.
				d.State, d.Resume, d.Done, d.Prefix = bus.DeliveryFailed, nil, nil, nil
			}
			return nil
		})
		if uerr != nil {
			return r.stopped(uerr)
		}
		if !waiting {
			s.emitFor(ctx, pipeline.Event{Kind: pipeline.EventAttemptFailed, Attempt: rec.Attempts, Error: pipeline.RedactURLs(err.Error()), Permanent: final})
		}
		if final && up != nil {
			// Only the owner that recorded the failure aborts the upload.
			if aerr := up.Abort(r.hard, err); aerr != nil {
				log.Warn("aborting upload", "err", aerr)
			}
		}
		if final {
			s.stats.failed.Add(1)
			s.metrics.failures.Inc()
			log.Error("delivery failed", "attempts", rec.Attempts, "failures", failures, "err", err)
			r.finisher.poke(id)
			return nil
		}
		if waiting {
			return &retryLater{err: err, after: r.e.opts.AckWait, waiting: true}
		}
		return &retryLater{err: err, after: retryDelay(s.spec.Retry, failures)}
	}

	// Waits for the manifest end when the run stops.
	awaitCtx, cancelAwait := context.WithCancel(ctx)
	defer cancelAwait()
	defer context.AfterFunc(r.stopping, cancelAwait)()
	if m.State == bus.FileIngesting && s.waitsForFile(fileOf(m)) {
		// Say so first: a waiting delivery must not hold reading back.
		if _, err := bus.Update(ctx, r.fb.Store, key, func(d *bus.Delivery, exists bool) error {
			if d.Owner != owner {
				return errSuperseded
			}
			d.State = bus.DeliveryWaiting
			return nil
		}); err != nil {
			return fail(err)
		}
		if m, err = mw.await(awaitCtx, func(m bus.Manifest) bool { return m.State != bus.FileIngesting }); err != nil {
			return fail(err)
		}
		if _, err := bus.Update(ctx, r.fb.Store, key, func(d *bus.Delivery, exists bool) error {
			if d.Owner != owner {
				return errSuperseded
			}
			d.State = bus.DeliveryActive
			return nil
		}); err != nil {
			return fail(err)
		}
	}
	if m.State == bus.FileFailed || m.State == bus.FileSkipped {
		return fail(pipeline.Permanent(fmt.Errorf("%s did not reach the bus: %s", m.Name, m.Error)))
	}
	file := fileOf(m)
	if rec.Resume == nil && rec.Attempts > 1 {
		r.reclaim(ctx, s, file, rec.Started, log)
	}
	up, err = s.sink.Open(ctx, file, rec.Resume)
	if errors.Is(err, pipeline.ErrSkip) {
		log.Info("sink skipped the file", "reason", err)
		// What it holds may be an earlier attempt's commit, not yet durable.
		if err := flushCommitted(ctx, s, m); err != nil {
			return fail(err)
		}
		s.stats.skipped.Add(1)
		return r.finish(key, id, bus.DeliverySkipped, 0, &recv)
	}
	if err != nil {
		return fail(fmt.Errorf("opening %s on sink %s: %w", m.Name, s.spec.Name, err))
	}
	plan := up.Plan()
	chunk := m.ChunkSize
	partSize := max(chunk, (plan.PartSize+chunk-1)/chunk*chunk)
	if rec.PartSize != 0 && rec.PartSize != partSize {
		log.Warn("sink part size changed; writing every part again", "was", rec.PartSize, "now", partSize)
		rec.Done, rec.Prefix = nil, nil
	}
	conc := plan.Concurrency
	if conc <= 0 {
		conc = s.spec.Parallelism
	}
	if plan.InOrder {
		conc = 1
		rec.Done = rec.Done.Prefix() // a part after a gap is written again
	}
	var (
		size    int64
		written func(*bus.Delivery)
	)
	if m.State != bus.FileIngesting && m.Chunks == 1 {
		unrecorded = true
		size, written, err = r.writeWhole(ctx, s, up, m, rec, partSize)
	} else {
		size, err = r.writeParts(ctx, s, up, &m, rec, partSize, conc)
	}
	if err != nil {
		return fail(err)
	}
	if m.State == bus.FileIngesting {
		if m, err = mw.await(awaitCtx, func(m bus.Manifest) bool { return m.State != bus.FileIngesting }); err != nil {
			return fail(err)
		}
	}
	if m.Size != size {
		return fail(pipeline.Permanent(fmt.Errorf("%s: the bus holds %d bytes, the manifest says %d", m.Name, size, m.Size)))
	}
	// Claim the commit: only the latest owner of the delivery may commit, so
	// a task redelivered after a stall is never committed twice.
	recv, err = bus.UpdateFrom(ctx, r.fb.Store, key, recv, func(d *bus.Delivery, exists bool) error {
		if d.Owner != owner {
			return errSuperseded
		}
		if written != nil {
			written(d)
		}
		d.State, d.Updated = bus.DeliveryCommitting, time.Now().UTC()
		return nil
	})
	if err != nil {
		return fail(err)
	}
	unrecorded = false
	if err := up.Commit(ctx, fileOf(m)); errors.Is(err, pipeline.ErrSkip) {
		log.Info("sink skipped the file at commit", "reason", err)
		if err := flushCommitted(ctx, s, m); err != nil {
			return fail(err)
		}
		s.stats.skipped.Add(1)
		return r.finish(key, id, bus.DeliverySkipped, 0, &recv)
	} else if err != nil {
		return fail(fmt.Errorf("committing %s on sink %s: %w", m.Name, s.spec.Name, err))
	}
	if err := r.writeChecksum(ctx, s, fileOf(m), m.Digests); err != nil {
		return fail(fmt.Errorf("writing the checksum file of %s on sink %s: %w", m.Name, s.spec.Name, err))
	}
	if err := flushCommitted(ctx, s, m); err != nil {
		return fail(err)
	}
	s.stats.committed.Add(1)
	s.emitFor(ctx, pipeline.Event{Kind: pipeline.EventCommitted, Attempt: rec.Attempts, Location: locationOf(up)})
	log.Info("delivered", "file", m.Name, "bytes", m.Size)
	if err := r.finish(key, id, bus.DeliveryCommitted, m.Size, &recv); err != nil {
		return err
	}
	// Counted once the commit is recorded: a commit whose record failed is
	// done again by the next attempt, and counted then.
	s.metrics.files.Inc()
	return nil
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
	// Resume at the prefix of written parts when there is one: the chunks
	// before it may already be gone from the bus.
	var (
		partNo, expect int
		size           int64
	)
	// The consumer is deleted when the reading ends; InactiveThreshold only
	// clears up after a crash.
	cfg := jetstream.OrderedConsumerConfig{FilterSubjects: []string{r.fb.ChunkSubject(m.ID)}, DeliverPolicy: jetstream.DeliverAllPolicy, InactiveThreshold: time.Minute}
	if p := rec.Prefix; p != nil && rec.PartSize == partSize && p.Seq > 0 {
		partNo, expect, size = p.Parts, p.Chunks, p.Bytes
		cfg.DeliverPolicy, cfg.OptStartSeq = jetstream.DeliverByStartSequencePolicy, p.Seq
	}
	cons, err := r.fb.Chunks.OrderedConsumer(ctx, cfg)
	if err != nil {
		return 0, fmt.Errorf("reading chunks of %s: %w", m.Name, err)
	}
	defer r.deleteConsumer(cons)
	msgs, err := cons.Messages(jetstream.PullMaxMessagesWithBytesLimit(32, int(min(2*partSize, 16<<20))))
	if err != nil {
		return 0, fmt.Errorf("reading chunks of %s: %w", m.Name, err)
	}
	defer msgs.Stop()

	rec.PartSize = partSize
	recorder := newPartRecorder(r, s, up, bus.DeliveryKey(m.ID, s.spec.Name), rec, fileSinks(*m, r))
	recorder.resumed(partNo) // every part before the prefix was written by an earlier attempt
	// A part that fails stops the reading and the dispatch of new parts, but
	// the parts already being written finish and are recorded: a part the
	// sink has accepted is not sent again by the next attempt.
	var g errgroup.Group
	readCtx, stopReading := context.WithCancel(ctx)
	defer stopReading()
	var writeFailed atomic.Bool
	g.SetLimit(conc)
	perPart := int(partSize / m.ChunkSize)
	var (
		part     []bus.Chunk
		partLen  int64
		readErr  error
		finished bool
	)
	sr := &sourceReads{r: r, m: m} // reads the bytes of references
	// Chunks that arrived ahead of their turn: a publish that failed is
	// sent again after the ones behind it have landed (a cluster leader
	// change), so the stream may hold a few chunks out of order.
	ahead := map[int]storedChunk{}
	for !finished {
		if r.stopping.Err() != nil {
			readErr = errStopped
			break
		}
		if writeFailed.Load() {
			break // a writer failed; g.Wait reports it
		}
		c, ok := ahead[expect]
		if ok {
			delete(ahead, expect)
		} else {
			msg, err := r.nextChunk(readCtx, msgs, m, expect, len(ahead) > 0)
			if err != nil {
				if !writeFailed.Load() { // else the read was stopped for it
					readErr = err
				}
				break
			}
			if c.Chunk, err = r.codec.Decode(msg.Headers(), msg.Data()); err != nil {
				readErr = pipeline.Permanent(fmt.Errorf("%s: %w", m.Name, err))
				break
			}
			if meta, err := msg.Metadata(); err == nil {
				c.seq = meta.Sequence.Stream
			}
			if c.Index < expect {
				continue // published again after a crash; already seen
			}
			if c.Index > expect {
				if len(ahead) >= maxAhead {
					readErr = pipeline.Permanent(fmt.Errorf("%s: chunk %d is missing from the bus (%d later ones are there); were the chunks purged?", m.Name, expect, len(ahead)))
					break
				}
				ahead[c.Index] = c
				continue
			}
		}
		ch := c.Chunk
		if len(part) == 0 && c.seq > 0 {
			// A part starts here: a possible resume point, from the
			// lowest stream position still needed.
			seq := c.seq
			for _, a := range ahead {
				seq = min(seq, a.seq)
			}
			recorder.boundary(bus.Prefix{Parts: partNo, Chunks: ch.Index, Bytes: size, Seq: seq})
		}
		expect++
		n := int64(len(ch.Data))
		if ch.Ref {
			n = int64(ch.Len)
		}
		size += n
		part = append(part, ch)
		partLen += n
		if len(part) < perPart && !ch.Last {
			continue
		}
		finished = ch.Last
		p := pipeline.Part{Number: partNo, Offset: int64(partNo) * partSize, Size: partLen, Last: ch.Last}
		data := part
		part, partLen = nil, 0
		partNo++
		if rec.Done.Has(p.Number) {
			recorder.resumed(1)
			continue
		}
		g.Go(func() error {
			fail := func(err error) error {
				writeFailed.Store(true)
				stopReading()
				return err
			}
			body, written, err := sr.partData(ctx, data)
			if err != nil {
				return fail(err)
			}
			err = writePart(ctx, up, p, body, s)
			written()
			if err != nil {
				return fail(fmt.Errorf("writing part %d of %s to sink %s: %w", p.Number, m.Name, s.spec.Name, err))
			}
			s.stats.bytes.Add(p.Size)
			s.metrics.bytes.Add(float64(p.Size))
			recorder.done(p.Number)
			return nil
		})
	}
	werr := g.Wait()
	rerr := recorder.close(r.hard)
	if err := errors.Join(werr, readErr, rerr); err != nil {
		if werr == nil && errors.Is(readErr, errStopped) {
			return 0, errStopped
		}
		return 0, err
	}
	return size, nil
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
		sleep(ctx, b.next())
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
