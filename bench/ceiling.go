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
	pending := int(max(4, window/chunkSize))
	js, err := jetstream.New(nc, jetstream.WithPublishAsyncMaxPending(pending))
	if err != nil {
		return Measurement{}, err
	}
	stream, subject := "MFTBENCH_"+name, "mftbench."+name
	s, err := js.CreateStream(ctx, jetstream.StreamConfig{
		Name:        stream,
		Description: "mftflow bench: raw bus ceiling",
		Subjects:    []string{subject},
		Storage:     jetstream.FileStorage,
		Retention:   jetstream.LimitsPolicy,
	})
	if err != nil {
		return Measurement{}, fmt.Errorf("bus ceiling: creating stream %s: %w", stream, err)
	}
	defer func() {
		dctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		js.DeleteStream(dctx, stream)
	}()
	cons, err := s.OrderedConsumer(ctx, jetstream.OrderedConsumerConfig{})
	if err != nil {
		return Measurement{}, fmt.Errorf("bus ceiling: creating consumer: %w", err)
	}
	it, err := cons.Messages(jetstream.PullMaxBytes(int(window / 2)))
	if err != nil {
		return Measurement{}, fmt.Errorf("bus ceiling: consuming: %w", err)
	}
	defer it.Stop()

	payload := make([]byte, chunkSize)
	rand.Read(payload)
	count := (total + chunkSize - 1) / chunkSize
	lastSize := total - (count-1)*chunkSize

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	pubErr := make(chan error, 1)
	futures := make(chan jetstream.PubAckFuture, pending)
	start := time.Now()
	go func() {
		defer close(futures)
		for i := range count {
			data := payload
			if i == count-1 {
				data = payload[:lastSize]
			}
			// A full window only means the server is behind: wait for
			// it (nats.go gives up after 200ms by default, which a busy
			// machine reaches with small chunks).
			f, err := js.PublishAsync(subject, data, jetstream.WithStallWait(stallWait))
			if err != nil {
				pubErr <- fmt.Errorf("bus ceiling: publishing message %d: %w", i+1, err)
				cancel()
				return
			}
			select {
			case futures <- f:
			case <-ctx.Done():
				return
			}
		}
	}()
	go func() {
		for f := range futures {
			select {
			case <-f.Ok():
			case err := <-f.Err():
				select {
				case pubErr <- fmt.Errorf("bus ceiling: publish not acknowledged: %w", err):
				default:
				}
				cancel()
				return
			case <-ctx.Done():
				return
			}
		}
	}()

	var got, n int64
	purged := int64(0)
	for n < count {
		msg, err := it.Next(jetstream.NextContext(ctx))
		if err != nil {
			select {
			case perr := <-pubErr:
				return Measurement{}, perr
			default:
			}
			if cerr := context.Cause(ctx); cerr != nil && !errors.Is(err, jetstream.ErrMsgIteratorClosed) {
				return Measurement{}, fmt.Errorf("bus ceiling: %w", cerr)
			}
			return Measurement{}, fmt.Errorf("bus ceiling: reading back: %w", err)
		}
		got += int64(len(msg.Data()))
		n++
		if got-purged >= window/2 {
			if md, err := msg.Metadata(); err == nil {
				// Everything before this message has been read.
				if err := s.Purge(ctx, jetstream.WithPurgeSequence(md.Sequence.Stream)); err == nil {
					purged = got
				}
			}
			progress(Progress{Bytes: got})
		}
	}
	elapsed := time.Since(start)
	progress(Progress{Bytes: got})
	if got != total {
		return Measurement{}, fmt.Errorf("bus ceiling: read back %d bytes of %d", got, total)
	}
	return Measurement{Seconds: elapsed.Seconds(), Bytes: got}, nil
}
