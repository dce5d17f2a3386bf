package engine

import (
	"context"
	"errors"
	"fmt"
	"net"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"golang.org/x/sync/errgroup"

	"github.com/mftflow/mftflow/pipeline"
	"github.com/mftflow/mftflow/pipeline/bus"
)

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
