package engine

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/mftflow/mftflow/pipeline"
	"github.com/mftflow/mftflow/pipeline/bus"
)

// ingestWithRetry reads the file onto the bus, retrying read errors, and
// returns its manifest; when it gives up the manifest is marked failed.
// known is the manifest as read before, if at hand.
func (r *Run) ingestWithRetry(item pipeline.Item, f pipeline.File, id string, known *bus.Versioned[bus.Manifest], log interface {
	Warn(string, ...any)
}) (bus.Versioned[bus.Manifest], error) {
	b := newBackoff(time.Second, 30*time.Second)
	var (
		m   bus.Versioned[bus.Manifest]
		err error
	)
	for attempt := 1; attempt <= ingestAttempts; attempt++ {
		m, err = r.ingest(item, f, id, known)
		known = nil // a failed attempt may have changed it
		// A store still full after the bus's wait for room is not retried:
		// each attempt would wait as long again.
		if err == nil || errors.Is(err, errStopped) || errors.Is(err, pipeline.ErrSkip) || pipeline.IsPermanent(err) || errors.Is(err, bus.ErrStoreFull) {
			break
		}
		if attempt == ingestAttempts {
			break
		}
		d := b.NextBackOff()
		log.Warn("reading file failed; retrying", "attempt", attempt, "in", d, "err", err)
		select {
		case <-time.After(d):
		case <-r.stopping.Done():
			return m, errStopped
		}
	}
	if err == nil || errors.Is(err, errStopped) {
		return m, err
	}
	state := bus.FileFailed
	if errors.Is(err, pipeline.ErrSkip) {
		state = bus.FileSkipped
		r.emit(pipeline.Event{Kind: pipeline.EventDropped, FileID: id, Name: f.Name, Detail: err.Error()})
	} else {
		r.emit(pipeline.Event{Kind: pipeline.EventReadFailed, FileID: id, Name: f.Name, Error: pipeline.RedactURLs(err.Error()), Permanent: true})
	}
	if errors.Is(err, bus.ErrStoreFull) {
		// The file's chunks make room for the record that it failed and
		// for its deliveries to record theirs; a later read starts afresh
		// (resetFile) and needs none of them. A crash between the purge
		// and the record leaves a checkpoint whose chunks are gone: the
		// deliveries then find chunks missing and fail, and the file is
		// read afresh the time after.
		if perr := r.fb.Chunks.Purge(r.hard, jetstream.WithPurgeSubject(r.fb.ChunkSubject(id))); perr != nil {
			log.Warn("removing the chunks of a file that failed for want of room on the bus", "err", perr)
		}
	}
	_, uerr := bus.Update(withFile(r.hard, id, f.Name), r.fb.Store, bus.ManifestKey(id), func(m *bus.Manifest, exists bool) error {
		if !exists {
			*m = bus.Manifest{ID: id, Key: f.Key, Name: f.Name, Size: f.Size, Created: time.Now().UTC()}
		}
		m.State = state
		m.Error = pipeline.RedactURLs(err.Error())
		if state == bus.FileFailed {
			m.ReadError = m.Error
		}
		m.Updated = time.Now().UTC()
		if state == bus.FileSkipped {
			m.Outcome = pipeline.Skipped.String()
			m.Finished = m.Updated
		}
		return nil
	})
	return m, errors.Join(err, uerr)
}

// ingest puts one file on the bus, resuming from the manifest's checkpoint,
// and returns the manifest as written. known is the manifest as read
// before, if at hand.
func (r *Run) ingest(item pipeline.Item, f pipeline.File, id string, known *bus.Versioned[bus.Manifest]) (bus.Versioned[bus.Manifest], error) {
	ctx, cancel := context.WithCancel(withFile(r.hard, id, f.Name))
	defer cancel()
	stopWatch := context.AfterFunc(r.stopping, cancel)
	defer stopWatch()

	// Stages run before anything is recorded so a skipped file leaves no
	// deliveries behind; they run again on resume (they are deterministic).
	var cp *bus.Checkpoint
	mv, err := r.manifestOf(ctx, id, known)
	if err != nil {
		return mv, err
	}
	if mv.V.State == bus.FileIngesting {
		cp = mv.V.Checkpoint
	}
	chunkSize := r.flow.Bus.ChunkSize
	if mv.V.ChunkSize > 0 {
		chunkSize = mv.V.ChunkSize // a resumed file keeps its chunk size
	}

	out, next, closeSrc, ranged, err := r.openContent(ctx, item, f, cp, chunkSize, mv.V.State == bus.FileIngesting)
	if errors.Is(err, errStagesDiffer) {
		return r.readAfresh(item, f, id, mv.V, "the stages gave other bytes than the interrupted read (an encrypting stage, say)")
	}
	if err != nil {
		return mv, r.stopped(err)
	}
	defer closeSrc()
	out.Name, err = pipeline.CleanName(out.Name)
	if err != nil {
		return mv, err
	}
	// Read one chunk ahead, so the last chunk is published as such.
	cur, err := next()
	if err != nil && err != io.EOF {
		return mv, r.stopped(err)
	}
	following, ferr := next()
	if ferr != nil && ferr != io.EOF {
		return mv, r.stopped(ferr)
	}
	// An interrupted earlier read may have left chunks on the bus; the
	// chunked path below publishes over them as they expect.
	if cp == nil && ferr == io.EOF && mv.V.State != bus.FileIngesting {
		return r.ingestWhole(ctx, f, id, mv, out, cur, chunkSize, ackRemoves(item))
	}
	if mv, err = r.beginRead(ctx, item, f, id, mv, out, chunkSize); err != nil {
		return mv, err
	}

	p := &publisher{r: r, ctx: ctx, id: id, subject: r.fb.ChunkSubject(id), hash: sha256.New(), more: r.newDigests(), readBefore: mv.V.SourceRead,
		msgID: fmt.Sprintf("%s.%d.", id, mv.V.Epoch), size: mv.V.Size}
	stopBeat := r.heartbeat(ctx, id)
	defer stopBeat()
	if cp != nil {
		if ok, err := p.resume(cp, f.Name, ranged); err != nil {
			return mv, err
		} else if !ok {
			// A digest a sink's checksum file needs was not kept (the
			// sinks changed): what is on the bus cannot be hashed again.
			return r.readAfresh(item, f, id, mv.V, "a checksum file needs a digest the interrupted read did not keep")
		}
	}
	if err := p.publishAll(cur, following, ferr, next); err != nil {
		return mv, err
	}
	return r.endRead(p, f, id, mv)
}

// manifestOf returns file id's manifest: known when at hand, else as read.
func (r *Run) manifestOf(ctx context.Context, id string, known *bus.Versioned[bus.Manifest]) (bus.Versioned[bus.Manifest], error) {
	var mv bus.Versioned[bus.Manifest]
	if known != nil {
		return *known, nil
	}
	rev, err := r.fb.Store.Get(ctx, bus.ManifestKey(id), &mv.V)
	if err != nil {
		return mv, err
	}
	mv.Rev = rev
	return mv, nil
}

// beginRead records that file id is being read, in chunks, with what the
// stages made of it (out), and queues its deliveries unless that was done.
func (r *Run) beginRead(ctx context.Context, item pipeline.Item, f pipeline.File, id string, mv bus.Versioned[bus.Manifest], out pipeline.File, chunkSize int64) (bus.Versioned[bus.Manifest], error) {
	mv, err := bus.UpdateFrom(ctx, r.fb.Store, bus.ManifestKey(id), mv, func(m *bus.Manifest, exists bool) error {
		if exists && m.State == bus.FileIngesting && m.TasksPublished {
			return bus.ErrUnchanged
		}
		now := time.Now().UTC()
		if !exists || m.State != bus.FileIngesting {
			*m = bus.Manifest{ID: id, Key: f.Key, Size: -1, ChunkSize: chunkSize, Created: now, Epoch: m.Epoch, Payload: r.payloadName()}
		}
		m.Name, m.ModTime, m.Attrs, m.Sinks = out.Name, out.ModTime, out.Attrs, r.sinkNames()
		m.SourceRemoves = ackRemoves(item)
		m.Size = out.Size // known up front when no stage changed the content
		m.State, m.Updated = bus.FileIngesting, now
		return nil
	})
	if err != nil {
		return mv, r.stopped(err)
	}
	if mv.V.TasksPublished {
		return mv, nil
	}
	if err := r.queueDeliveries(ctx, id, mv.V.Epoch, r.sinkNames()); err != nil {
		return mv, r.stopped(err)
	}
	mv, err = bus.UpdateFrom(ctx, r.fb.Store, bus.ManifestKey(id), mv, func(m *bus.Manifest, exists bool) error {
		m.TasksPublished = true
		return nil
	})
	return mv, r.stopped(err)
}

// resume restores the hashes and position of an interrupted read from its
// checkpoint. It reports false when a digest a sink needs was not kept.
// ranged says the source reads from the checkpoint on; else the bytes
// before it are read again and discarded.
func (p *publisher) resume(cp *bus.Checkpoint, name string, ranged bool) (bool, error) {
	if err := p.hash.(encoding.BinaryUnmarshaler).UnmarshalBinary(cp.Hash); err != nil {
		return false, fmt.Errorf("resuming %s: bad checkpoint: %w", name, err)
	}
	if !p.more.restore(cp.Digests) {
		return false, nil
	}
	p.index, p.bytes, p.startBytes = cp.Chunks, cp.Bytes, cp.Bytes
	if !ranged {
		p.readBefore += cp.Bytes // read again and discarded to reach the checkpoint
	}
	return true, nil
}

// publishAll publishes cur and the chunks that next reads after it
// (following is the one after cur, ferr the error that came with it),
// checkpointing as it goes and when it stops, and waits for their acks.
func (p *publisher) publishAll(cur, following []byte, ferr error, next func() ([]byte, error)) error {
	r := p.r
	for {
		if r.stopping.Err() != nil {
			if err := p.checkpoint(r.hard); err != nil {
				return err
			}
			return errStopped
		}
		last := ferr == io.EOF
		if err := p.publish(cur, last); err != nil {
			return r.stopped(err)
		}
		if last {
			break
		}
		cur = following
		if p.index%checkpointEvery == 0 {
			if err := p.checkpoint(p.ctx); err != nil {
				return r.stopped(err)
			}
		}
		following, ferr = next()
		if ferr != nil && ferr != io.EOF {
			if cerr := p.checkpoint(r.hard); cerr != nil {
				return errors.Join(ferr, cerr)
			}
			return r.stopped(ferr)
		}
	}
	if err := p.drain(); err != nil {
		return r.stopped(err)
	}
	return nil
}

// endRead records the file as read, with its size, chunks and sums.
func (r *Run) endRead(p *publisher, f pipeline.File, id string, mv bus.Versioned[bus.Manifest]) (bus.Versioned[bus.Manifest], error) {
	sum, more := hex.EncodeToString(p.hash.Sum(nil)), p.more.sums()
	r.emitRead(id, f.Name, mv.V.Name, p.bytes, sum)
	// Checkpoints and heartbeats may have written the manifest since; the
	// compare-and-swap then reads it again.
	mv, err := bus.UpdateFrom(r.hard, r.fb.Store, bus.ManifestKey(id), mv, func(m *bus.Manifest, exists bool) error {
		m.Size, m.Chunks, m.SHA256, m.Digests = p.bytes, p.index, sum, more
		m.SourceRead = p.read()
		m.State, m.Checkpoint, m.Updated = bus.FileReady, nil, time.Now().UTC()
		return nil
	})
	if err != nil {
		return mv, err
	}
	r.countRead(mv.V)
	return mv, nil
}

// inlineMax is the largest file whose bytes travel inside its manifest
// rather than as a chunk, when the flow does not retain chunks.
const inlineMax = 32 << 10

// ingestWhole puts a file that fits in one chunk on the bus: the chunk (or,
// for a small file, the bytes inside the manifest), then the manifest, ready
// at once, then the deliveries' tasks (a restart that finds the file ready
// queues them again). Two or three round trips where a longer file takes
// several more, and a delivery finds everything in place.
func (r *Run) ingestWhole(ctx context.Context, f pipeline.File, id string, mv bus.Versioned[bus.Manifest], out pipeline.File, data []byte, chunkSize int64, removes bool) (bus.Versioned[bus.Manifest], error) {
	epoch := mv.V.Epoch // changes only in resetFile, before this
	size := int64(len(data))
	inline := size <= inlineMax && !r.flow.Bus.Retains()
	var content []byte
	if inline {
		content = bytes.Clone(data)
	} else {
		msg := r.codec.Encode(r.fb.ChunkSubject(id), r.chunkOf(0, data, true))
		start := time.Now()
		err := r.space.Do(ctx, size, func() error {
			_, err := r.fb.JS.PublishMsg(ctx, msg, jetstream.WithMsgID(fmt.Sprintf("%s.%d.0", id, epoch)), jetstream.WithExpectStream(r.fb.ChunkStream()))
			return err
		})
		if err != nil {
			return mv, r.stopped(fmt.Errorf("publishing chunk 0: %w", remaining(err, size)))
		}
		r.metrics.publish.Observe(time.Since(start).Seconds())
	}
	r.stats.bytesRead.Add(size)
	r.metrics.readBytes.Add(float64(size))
	sum := sha256.Sum256(data)
	more := r.newDigests().of(data)
	r.chunks.put(data)
	r.emitRead(id, f.Name, out.Name, size, hex.EncodeToString(sum[:]))

	mv, err := bus.UpdateFrom(ctx, r.fb.Store, bus.ManifestKey(id), mv, func(m *bus.Manifest, exists bool) error {
		now := time.Now().UTC()
		created, read := now, int64(0)
		if exists && m.State == bus.FileIngesting {
			created, read = m.Created, m.SourceRead
		}
		*m = bus.Manifest{ID: id, Key: f.Key, Name: out.Name, Size: size, SHA256: hex.EncodeToString(sum[:]), Digests: more,
			ModTime: out.ModTime, Attrs: out.Attrs, ChunkSize: chunkSize, Chunks: 1, SourceRead: read + size,
			Sinks: r.sinkNames(), State: bus.FileReady, TasksPublished: true, Epoch: epoch, Created: created, Updated: now,
			Inline: inline, Content: content, SourceRemoves: removes}
		if !inline {
			m.Payload = r.payloadName()
		}
		return nil
	})
	if err != nil {
		return mv, r.stopped(err)
	}
	// The file is ready: from here a failure is no read failure.
	if err := r.queueUntilDone(ctx, id, mv.V.Epoch, mv.V.Sinks); err != nil {
		return mv, err
	}
	r.countRead(mv.V)
	return mv, nil
}

// queueUntilDone queues task's deliveries (a file's id or a group's task)
// until that works, or returns errStopped once ctx ends or the run stops: a
// run that stops first leaves the file ready (or the group written), and
// the next one offered it queues them.
func (r *Run) queueUntilDone(ctx context.Context, task string, epoch int, sinks []string) error {
	b := newBackoff(time.Second, 30*time.Second)
	for {
		err := r.queueDeliveries(ctx, task, epoch, sinks)
		if err == nil {
			return nil
		}
		if r.stopping.Err() != nil || ctx.Err() != nil {
			return errStopped
		}
		d := b.NextBackOff()
		r.log.Warn("queueing deliveries failed; retrying", "task", task, "in", d, "err", err)
		sleep(ctx, d)
	}
}

// queueDeliveries publishes a delivery task of file id for each sink. The
// message ids make a task published again within the stream's duplicate
// window a no-op; later, the delivery tells it is a duplicate.
func (r *Run) queueDeliveries(ctx context.Context, id string, epoch int, sinks []string) error {
	for _, s := range sinks {
		err := r.space.Do(ctx, int64(len(id)), func() error {
			_, err := r.fb.JS.Publish(ctx, r.fb.TaskSubject(s), []byte(id), jetstream.WithMsgID(fmt.Sprintf("%s.%d.%s", id, epoch, s)))
			return err
		})
		if err != nil {
			return fmt.Errorf("queueing delivery to %s: %w", s, err)
		}
	}
	return nil
}

// remaining says in a refusal for want of room how much of the file was
// still to go onto the bus; other errors are returned as they are.
func remaining(err error, n int64) error {
	full, ok := err.(*bus.StoreFullError)
	if n <= 0 || !ok {
		return err
	}
	c := *full
	c.Remaining = n
	return &c
}

// stopped turns an error caused by the run stopping into errStopped.
func (r *Run) stopped(err error) error {
	if err != nil && r.stopping.Err() != nil {
		return errStopped
	}
	return err
}

// checkAttrs asks an item that checks the file the stages made
// (pipeline.AttrChecker) whether its Ack can act on it; a refusal is
// permanent: the same stages give the same attributes.
func checkAttrs(item pipeline.Item, f pipeline.File) error {
	c, ok := item.(pipeline.AttrChecker)
	if !ok {
		return nil
	}
	if err := c.CheckAttrs(f); err != nil {
		return pipeline.Permanent(err)
	}
	return nil
}

// openContent returns the file's metadata after the stages and a function
// yielding its content in chunks, starting after the checkpoint; ranged
// tells whether it reads byte ranges (so the checkpoint's bytes are not read
// again).
// readAfresh reads a file whose interrupted read cannot be continued from
// the start, in a new epoch; why says why, for the log.
func (r *Run) readAfresh(item pipeline.Item, f pipeline.File, id string, m bus.Manifest, why string) (bus.Versioned[bus.Manifest], error) {
	r.log.Info(why+": reading the file afresh", "file", f.Name, "id", id)
	if err := r.resetFile(id, m); err != nil {
		return bus.Versioned[bus.Manifest]{V: m}, err
	}
	return r.ingest(item, f, id, nil)
}

// errStagesDiffer says that a read resumed through stages cannot continue
// what an interrupted read put on the bus: the stages' bytes up to its
// checkpoint differ (a stage that encrypts with a fresh key), or there is
// no checkpoint to compare with while chunks of it may be there.
var errStagesDiffer = errors.New("the stages' output differs from the interrupted read's")

// openContent opens f's content as it goes onto the bus: ranges of the
// source, or the source through the stages. resuming says an earlier read
// of the file was interrupted; cp is its checkpoint, if any. Through
// stages, the bytes before the checkpoint are read again and must hash as
// they did (errStagesDiffer otherwise): stages are meant to be
// deterministic, and one that is not would join two different outputs.
func (r *Run) openContent(ctx context.Context, item pipeline.Item, f pipeline.File, cp *bus.Checkpoint, chunkSize int64, resuming bool) (_ pipeline.File, _ func() ([]byte, error), _ func(), ranged bool, _ error) {
	var skip int64
	if cp != nil {
		skip = cp.Bytes
	}
	ctx = pipeline.WithItem(ctx, item)
	if ro, ok := item.(pipeline.RangeOpener); ok && (len(r.stages) == 0 || r.byReference) && f.Size >= 0 {
		out, err := r.keepersOnly(ctx, f)
		if err == nil {
			err = checkAttrs(item, out)
		}
		if err != nil {
			return out, nil, nil, false, err
		}
		rr := newRangeReader(ctx, ro, f.Size, skip, chunkSize, r.flow.Bus.Readers, &r.chunks)
		return out, rr.next, rr.close, true, nil
	}
	f, content, closeAll, err := r.throughStages(ctx, item, f)
	if err != nil {
		return f, nil, nil, false, err
	}
	if resuming && len(r.stages) > 0 {
		if err := sameAsBefore(content, cp); err != nil {
			closeAll()
			return f, nil, nil, false, fmt.Errorf("resuming %s at byte %d: %w", f.Name, skip, err)
		}
	} else if skip > 0 {
		if _, err := io.CopyN(io.Discard, content, skip); err != nil {
			closeAll()
			return f, nil, nil, false, fmt.Errorf("resuming %s at byte %d: %w", f.Name, skip, err)
		}
	}
	return f, r.chunksOf(content, f.Name, chunkSize), closeAll, false, nil
}

// throughStages opens the item's content and runs it through the flow's
// stages. It returns the file as they left it, their output, and a
// function that closes the source and every stage.
func (r *Run) throughStages(ctx context.Context, item pipeline.Item, f pipeline.File) (pipeline.File, io.Reader, func(), error) {
	rc, err := item.Open(ctx)
	if err != nil {
		return f, nil, nil, fmt.Errorf("opening %s: %w", f.Name, err)
	}
	closers := []io.Closer{rc}
	closeAll := func() {
		for i := len(closers) - 1; i >= 0; i-- {
			_ = closers[i].Close() // what was read is checked by its sums, not by the close
		}
	}
	var content io.Reader = rc
	for i, st := range r.stages {
		f, content, err = st.Process(ctx, f, content)
		if err != nil {
			closeAll()
			if errors.Is(err, pipeline.ErrSkip) {
				return f, nil, nil, err
			}
			return f, nil, nil, fmt.Errorf("stage %d (%s): %w", i+1, r.flow.Stages[i].Type, err)
		}
		if c, ok := content.(io.Closer); ok {
			closers = append(closers, c)
		}
	}
	if err := checkAttrs(item, f); err != nil {
		closeAll()
		return f, nil, nil, err
	}
	return f, content, closeAll, nil
}

// chunksOf returns a function that reads content, the file name's, in
// chunks of chunkSize; the last may be shorter, and io.EOF follows it.
func (r *Run) chunksOf(content io.Reader, name string, chunkSize int64) func() ([]byte, error) {
	return func() ([]byte, error) {
		buf := r.chunks.get(chunkSize)
		n, err := io.ReadFull(content, buf)
		switch {
		case err == io.ErrUnexpectedEOF:
			return buf[:n], nil
		case err == io.EOF:
			return nil, io.EOF
		case err != nil:
			return nil, fmt.Errorf("reading %s: %w", name, err)
		}
		return buf, nil
	}
}

// sameAsBefore reads the bytes before checkpoint cp from content and checks
// that they hash to the checkpoint's state; errStagesDiffer when they do
// not or there is no checkpoint.
func sameAsBefore(content io.Reader, cp *bus.Checkpoint) error {
	if cp == nil {
		return errStagesDiffer
	}
	h := sha256.New()
	if _, err := io.CopyN(h, content, cp.Bytes); err != nil {
		if err == io.EOF {
			return errStagesDiffer // shorter than what the bus holds
		}
		return err
	}
	if state, err := h.(encoding.BinaryMarshaler).MarshalBinary(); err != nil || !bytes.Equal(state, cp.Hash) {
		return errStagesDiffer
	}
	return nil
}
