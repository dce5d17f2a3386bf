package engine

import (
	"context"
	"encoding"
	"fmt"
	"hash"
	"strconv"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/mftflow/mftflow/pipeline/bus"
)

// publisher puts one file's chunks on the bus with a bounded number of
// publishes awaiting their ack.
type publisher struct {
	r       *Run
	ctx     context.Context
	id      string
	msgID   string // prefix of chunk message ids: file id and epoch
	subject string
	hash    hash.Hash
	more    digests // beyond sha256, for the sinks' checksum files
	index   int     // next chunk index
	bytes   int64   // bytes published so far
	size    int64   // the file's size, if known before the end; else -1
	pending []inFlight
	slowest int
	// startBytes is where this attempt started; readBefore counts the
	// source bytes read by earlier attempts (and to reach startBytes).
	startBytes, readBefore int64 // chunk index the slowest active delivery had reached, last we looked
}

func (p *publisher) publish(data []byte, last bool) error {
	p.reap()
	if err := p.r.awaitWindow(p.ctx, p.id, p.index, &p.slowest); err != nil {
		return err
	}
	msg := p.r.codec.Encode(p.subject, p.r.chunkOf(p.index, data, last))
	fut, err := p.r.fb.JS.PublishMsgAsync(msg, jetstream.WithMsgID(p.msgID+strconv.Itoa(p.index)), jetstream.WithExpectStream(p.r.fb.ChunkStream()))
	if err != nil {
		return fmt.Errorf("publishing chunk %d: %w", p.index, err)
	}
	p.hash.Write(data)
	p.more.Write(data)
	p.index++
	p.bytes += int64(len(data))
	p.r.stats.bytesRead.Add(int64(len(data)))
	p.r.metrics.readBytes.Add(float64(len(data)))
	p.pending = append(p.pending, inFlight{fut, data, time.Now()})
	for len(p.pending) >= publishWindow {
		if err := p.awaitOldest(p.ctx); err != nil {
			return err
		}
	}
	return nil
}

// read is the source bytes read over every attempt, up to what is published.
func (p *publisher) read() int64 { return p.readBefore + p.bytes - p.startBytes }

// inFlight is a chunk publish awaiting its ack, with the buffer it came from
// and when it was published.
type inFlight struct {
	fut jetstream.PubAckFuture
	buf []byte
	at  time.Time
}

// reap takes the acks that have arrived, oldest first, without waiting, so
// that buffers return to the pool early and the publish latency is measured
// close to when each ack came rather than when the window filled.
func (p *publisher) reap() {
	for len(p.pending) > 0 {
		select {
		case <-p.pending[0].fut.Ok():
		default:
			return
		}
		p.r.metrics.publish.Observe(time.Since(p.pending[0].at).Seconds())
		p.r.chunks.put(p.pending[0].buf)
		p.pending = p.pending[1:]
		p.r.space.Room()
	}
}

func (p *publisher) awaitOldest(ctx context.Context) error {
	fut, buf, at := p.pending[0].fut, p.pending[0].buf, p.pending[0].at
	p.pending = p.pending[1:]
	select {
	case <-fut.Ok():
		p.r.metrics.publish.Observe(time.Since(at).Seconds())
		p.r.chunks.put(buf)
		p.r.space.Room()
		return nil
	case perr := <-fut.Err():
		p.r.log.Debug("publishing a chunk again", "err", perr)
		// Publish again synchronously; the message id deduplicates it if the
		// first one did land. A store without room is waited for.
		msg := fut.Msg()
		err := p.r.space.Do(ctx, int64(len(msg.Data)), func() error {
			_, err := p.r.fb.JS.PublishMsg(ctx, msg, jetstream.WithMsgID(msg.Header.Get("Nats-Msg-Id")))
			return err
		})
		if err != nil {
			if p.size >= 0 {
				// What was on the bus before this chunk and the ones
				// published after it.
				onBus := p.bytes - int64(len(buf))
				for _, f := range p.pending {
					onBus -= int64(len(f.buf))
				}
				err = remaining(err, p.size-onBus)
			}
			return fmt.Errorf("publishing chunk %s: %w", msg.Header.Get(bus.HeaderIndex), err)
		}
		p.r.metrics.publish.Observe(time.Since(at).Seconds())
		p.r.chunks.put(buf)
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (p *publisher) drain() error {
	for len(p.pending) > 0 {
		if err := p.awaitOldest(p.ctx); err != nil {
			return err
		}
	}
	return nil
}

// checkpoint waits for every publish and records how far the file got.
func (p *publisher) checkpoint(ctx context.Context) error {
	for len(p.pending) > 0 {
		if err := p.awaitOldest(ctx); err != nil {
			return err
		}
	}
	state, err := p.hash.(encoding.BinaryMarshaler).MarshalBinary()
	if err != nil {
		return err
	}
	more, err := p.more.state()
	if err != nil {
		return err
	}
	_, err = bus.Update(ctx, p.r.fb.Store, bus.ManifestKey(p.id), func(m *bus.Manifest, exists bool) error {
		if m.State != bus.FileIngesting {
			return bus.ErrUnchanged
		}
		m.Checkpoint = &bus.Checkpoint{Chunks: p.index, Bytes: p.bytes, Hash: state, Digests: more}
		m.SourceRead = p.read()
		m.Updated = time.Now().UTC()
		return nil
	})
	return err
}

// awaitWindow blocks while chunk index lies more than the flow's window
// beyond the slowest delivery of file id that is writing or yet to start.
// Deliveries waiting for a retry, and sinks that wait for the whole file
// (ManifestFirst), do not hold reading back; their chunks stay on the bus until they need them.
// slowest caches the last position seen, so the records are read only when
// the window seems full.
func (r *Run) awaitWindow(ctx context.Context, id string, index int, slowest *int) error {
	chunk := r.flow.Bus.ChunkSize
	for {
		window := r.flow.Bus.Window
		if int64(index-*slowest)*chunk < window {
			return nil
		}
		// Taken before the records are read, so a change made after the
		// reading wakes the wait below.
		moved := r.finisher.nextMove(id)
		pos, active := -1, false
		for _, s := range r.sinks {
			var d bus.Delivery
			rev, err := r.fb.Store.Get(ctx, bus.DeliveryKey(id, s.spec.Name), &d)
			if err != nil {
				return err
			}
			// A delivery not started yet holds reading back (it will start
			// at the first chunk); one waiting for a retry or for the whole
			// file (ManifestFirst) does not.
			if rev != 0 && d.State != bus.DeliveryActive && d.State != bus.DeliveryCommitting {
				continue
			}
			at := 0
			if d.Prefix != nil {
				at = d.Prefix.Chunks
			}
			// A sink must be able to finish its next parts inside the window.
			window = max(window, 2*d.PartSize)
			if !active || at < pos {
				pos, active = at, true
			}
		}
		if !active {
			*slowest = index
			return nil
		}
		*slowest = pos
		if int64(index-pos)*chunk < window {
			return nil
		}
		// The finisher's watch of the delivery records says when a sink
		// moved on; the timer covers a watch that fell behind.
		t := time.NewTimer(windowRecheck)
		select {
		case <-moved:
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return ctx.Err()
		}
		t.Stop()
	}
}

// windowRecheck is how often a read held back by its window looks at the
// deliveries without being woken.
const windowRecheck = 500 * time.Millisecond

// chunkPool recycles chunk buffers between reads, sparing the allocation and
// zeroing of a chunk-sized buffer for every chunk of every file.
type chunkPool struct{ pool sync.Pool }

// get returns a buffer of length n.
func (c *chunkPool) get(n int64) []byte {
	if b, ok := c.pool.Get().(*[]byte); ok && int64(cap(*b)) >= n {
		return (*b)[:n]
	}
	return make([]byte, n)
}

// put recycles b; b must not be used afterwards.
func (c *chunkPool) put(b []byte) {
	if cap(b) > 0 {
		c.pool.Put(&b)
	}
}

// heartbeat marks the manifest as being read every AckWait until stopped,
// so deliveries waiting for chunks can tell a slow source from a read that
// no runner is doing any more.
func (r *Run) heartbeat(ctx context.Context, id string) (stop func()) {
	ctx, cancel := context.WithCancel(ctx)
	go func() {
		t := time.NewTicker(r.e.opts.AckWait)
		defer t.Stop()
		for {
			select {
			case <-t.C:
				// A beat that is not written is written at the next tick.
				_, _ = bus.Update(ctx, r.fb.Store, bus.ManifestKey(id), func(m *bus.Manifest, exists bool) error {
					if m.State != bus.FileIngesting {
						return bus.ErrUnchanged
					}
					m.Updated = time.Now().UTC()
					return nil
				})
			case <-ctx.Done():
				return
			}
		}
	}()
	return cancel
}
