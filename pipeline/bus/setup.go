package bus

import (
	"context"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// FlowBus holds one flow's streams, KV store and per-sink task consumers.
type FlowBus struct {
	Names
	JS        jetstream.JetStream
	Chunks    jetstream.Stream
	Tasks     jetstream.Stream
	Store     Store
	Consumers map[string]jetstream.Consumer // by sink name
}

// Setup is how a flow's streams and consumers are created.
type Setup struct {
	Flow     string
	Sinks    []string
	Replicas int           // 0 means 1
	AckWait  time.Duration // how long a task stays owned without an in-progress ack
	// MaxAckPending bounds the tasks of one sink held at once across runners.
	MaxAckPending int
}

// Ensure creates (or updates) the flow's streams, KV bucket and consumers.
// It is idempotent: runners sharing a flow all call it.
func Ensure(ctx context.Context, js jetstream.JetStream, s Setup) (*FlowBus, error) {
	n := Names{Flow: s.Flow}
	replicas := max(s.Replicas, 1)
	chunks, err := js.CreateOrUpdateStream(ctx, jetstream.StreamConfig{
		Name:        n.ChunkStream(),
		Description: "mftflow file chunks of flow " + s.Flow,
		Subjects:    []string{n.ChunkSubject("*")},
		Retention:   jetstream.LimitsPolicy,
		Storage:     jetstream.FileStorage,
		Replicas:    replicas,
		Duplicates:  2 * time.Minute,
		Discard:     jetstream.DiscardNew,
	})
	if err != nil {
		return nil, fmt.Errorf("creating stream %s: %w", n.ChunkStream(), err)
	}
	tasks, err := js.CreateOrUpdateStream(ctx, jetstream.StreamConfig{
		Name:        n.TaskStream(),
		Description: "mftflow delivery tasks of flow " + s.Flow,
		Subjects:    []string{n.TaskSubject("*")},
		Retention:   jetstream.WorkQueuePolicy,
		Storage:     jetstream.FileStorage,
		Replicas:    replicas,
		Duplicates:  2 * time.Minute,
	})
	if err != nil {
		return nil, fmt.Errorf("creating stream %s: %w", n.TaskStream(), err)
	}
	kv, err := js.CreateOrUpdateKeyValue(ctx, jetstream.KeyValueConfig{
		Bucket:      n.Bucket(),
		Description: "mftflow state of flow " + s.Flow,
		Storage:     jetstream.FileStorage,
		Replicas:    replicas,
		History:     1,
	})
	if err != nil {
		return nil, fmt.Errorf("creating KV bucket %s: %w", n.Bucket(), err)
	}
	fb := &FlowBus{Names: n, JS: js, Chunks: chunks, Tasks: tasks, Store: Store{KV: kv}, Consumers: map[string]jetstream.Consumer{}}
	for _, sink := range s.Sinks {
		c, err := tasks.CreateOrUpdateConsumer(ctx, jetstream.ConsumerConfig{
			Durable:       n.Consumer(sink),
			Description:   "mftflow deliveries to sink " + sink,
			FilterSubject: n.TaskSubject(sink),
			AckPolicy:     jetstream.AckExplicitPolicy,
			AckWait:       s.AckWait,
			MaxDeliver:    -1,
			MaxAckPending: max(s.MaxAckPending, 1),
			Replicas:      replicas,
		})
		if err != nil {
			return nil, fmt.Errorf("creating consumer for sink %s: %w", sink, err)
		}
		fb.Consumers[sink] = c
	}
	return fb, nil
}
