package bench

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/mftflow/mftflow/pipeline/bus"

	"github.com/mftflow/mftflow/pipeline"
)

// stallWait is how long a publish waits for room in the window before the
// ceiling gives up on a server that acknowledges nothing.
const stallWait = 30 * time.Second

// Ceiling measures what the bus alone moves: total bytes in messages of
// chunkSize, published with JetStream async publish to a new file-store
// stream while an ordered consumer reads them back, from the first publish
// to the last message read. As the engine does with its window, the part
// already read is purged as it goes, so the server holds little at a time.
// The stream (named after name) is deleted afterwards. Messages carry no
// headers, checksums or compression: it is the ceiling the flow's own
// chunks cannot exceed on this server.
func Ceiling(ctx context.Context, nc *nats.Conn, name string, chunkSize, total int64, progress func(Progress)) (Measurement, error) {
	if progress == nil {
		progress = func(Progress) {}
	}
	if chunkSize <= 0 || total <= 0 {
		return Measurement{}, fmt.Errorf("bus ceiling: chunk size %d and bytes %d must be above 0", chunkSize, total)
	}
	if limit := nc.MaxPayload(); chunkSize+bus.HeaderRoom > limit {
		return Measurement{}, fmt.Errorf("bus ceiling: chunk size %s is above the server's max_payload of %d bytes", pipeline.ExactSize(chunkSize), limit)
	}
	// Keep about 32 MiB in flight, like the engine's default window.
	window := max(32<<20, 4*chunkSize)
	c := &ceiling{chunkSize: chunkSize, total: total, window: window, pending: int(max(4, window/chunkSize)),
		stream: "MFTBENCH_" + name, subject: "mftbench." + name}
	it, err := c.open(ctx, nc)
	if err != nil {
		return Measurement{}, err
	}
	defer c.deleteStream()
	defer it.Stop()

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	c.pubErr = make(chan error, 1)
	futures := make(chan jetstream.PubAckFuture, c.pending)
	start := time.Now()
	go c.publish(ctx, cancel, futures)
	go c.awaitAcks(ctx, cancel, futures)
	got, err := c.readBack(ctx, it, progress)
	if err != nil {
		return Measurement{}, err
	}
	elapsed := time.Since(start)
	progress(Progress{Bytes: got})
	if got != total {
		return Measurement{}, fmt.Errorf("bus ceiling: read back %d bytes of %d", got, total)
	}
	return Measurement{Seconds: elapsed.Seconds(), Bytes: got}, nil
}

// ceiling is one measurement of Ceiling.
type ceiling struct {
	chunkSize, total, window int64
	pending                  int // publishes in flight
	stream, subject          string
	js                       jetstream.JetStream
	s                        jetstream.Stream
	pubErr                   chan error // the first publish failure
}

// open creates the stream and the consumer that reads it back.
func (c *ceiling) open(ctx context.Context, nc *nats.Conn) (jetstream.MessagesContext, error) {
	js, err := jetstream.New(nc, jetstream.WithPublishAsyncMaxPending(c.pending))
	if err != nil {
		return nil, err
	}
	c.js = js
	c.s, err = js.CreateStream(ctx, jetstream.StreamConfig{
		Name:        c.stream,
		Description: "mftflow bench: raw bus ceiling",
		Subjects:    []string{c.subject},
		Storage:     jetstream.FileStorage,
		Retention:   jetstream.LimitsPolicy,
	})
	if err != nil {
		return nil, fmt.Errorf("bus ceiling: creating stream %s: %w", c.stream, err)
	}
	cons, err := c.s.OrderedConsumer(ctx, jetstream.OrderedConsumerConfig{})
	if err == nil {
		var it jetstream.MessagesContext
		if it, err = cons.Messages(jetstream.PullMaxBytes(int(c.window / 2))); err == nil {
			return it, nil
		}
		err = fmt.Errorf("bus ceiling: consuming: %w", err)
	} else {
		err = fmt.Errorf("bus ceiling: creating consumer: %w", err)
	}
	c.deleteStream()
	return nil, err
}

func (c *ceiling) deleteStream() {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	_ = c.js.DeleteStream(ctx, c.stream) // a benchmark's leftover; the next run names its own
}

// publish sends every message, handing each ack future to awaitAcks.
func (c *ceiling) publish(ctx context.Context, cancel context.CancelFunc, futures chan<- jetstream.PubAckFuture) {
	defer close(futures)
	payload := make([]byte, c.chunkSize)
	rand.Read(payload)
	count := (c.total + c.chunkSize - 1) / c.chunkSize
	lastSize := c.total - (count-1)*c.chunkSize
	for i := range count {
		data := payload
		if i == count-1 {
			data = payload[:lastSize]
		}
		// A full window only means the server is behind: wait for it
		// (nats.go gives up after 200ms by default, which a busy machine
		// reaches with small chunks).
		f, err := c.js.PublishAsync(c.subject, data, jetstream.WithStallWait(stallWait))
		if err != nil {
			c.pubErr <- fmt.Errorf("bus ceiling: publishing message %d: %w", i+1, err)
			cancel()
			return
		}
		select {
		case futures <- f:
		case <-ctx.Done():
			return
		}
	}
}

// awaitAcks fails the measurement on the first publish not acknowledged.
func (c *ceiling) awaitAcks(ctx context.Context, cancel context.CancelFunc, futures <-chan jetstream.PubAckFuture) {
	for f := range futures {
		select {
		case <-f.Ok():
		case err := <-f.Err():
			select {
			case c.pubErr <- fmt.Errorf("bus ceiling: publish not acknowledged: %w", err):
			default:
			}
			cancel()
			return
		case <-ctx.Done():
			return
		}
	}
}

// readBack reads every message, purging what it has read every half
// window, and returns the bytes read.
func (c *ceiling) readBack(ctx context.Context, it jetstream.MessagesContext, progress func(Progress)) (int64, error) {
	count := (c.total + c.chunkSize - 1) / c.chunkSize
	var got, purged int64
	for n := int64(0); n < count; n++ {
		msg, err := it.Next(jetstream.NextContext(ctx))
		if err != nil {
			return got, c.readError(ctx, err)
		}
		got += int64(len(msg.Data()))
		if got-purged >= c.window/2 {
			if md, err := msg.Metadata(); err == nil {
				// Everything before this message has been read.
				if err := c.s.Purge(ctx, jetstream.WithPurgeSequence(md.Sequence.Stream)); err == nil {
					purged = got
				}
			}
			progress(Progress{Bytes: got})
		}
	}
	return got, nil
}

// readError says why reading back stopped: a failed publish first.
func (c *ceiling) readError(ctx context.Context, err error) error {
	select {
	case perr := <-c.pubErr:
		return perr
	default:
	}
	if cerr := context.Cause(ctx); cerr != nil && !errors.Is(err, jetstream.ErrMsgIteratorClosed) {
		return fmt.Errorf("bus ceiling: %w", cerr)
	}
	return fmt.Errorf("bus ceiling: reading back: %w", err)
}
