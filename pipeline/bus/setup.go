package bus

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/cenkalti/backoff/v5"
	"github.com/nats-io/nats.go"
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
	// Replicas is the replica count the streams, KV bucket and consumers
	// were given.
	Replicas int
}

// Setup is how a flow's streams and consumers are created.
type Setup struct {
	Flow  string
	Sinks []string
	// Replicas of the streams, KV bucket and consumers. Existing ones are
	// changed to it: JetStream adds or removes peers in place, and Ensure
	// waits until the streams run on the new count. 0 chooses:
	// DetectReplicas's count, or the existing streams' if higher; so an
	// unset count never shrinks a flow's streams.
	Replicas int
	AckWait  time.Duration // how long a task stays owned without an in-progress ack
	// MaxAckPending bounds the tasks of one sink held at once across runners.
	MaxAckPending int
}

// Ensure creates (or updates) the flow's streams, KV bucket and consumers.
// It is idempotent: runners sharing a flow all call it.
func Ensure(ctx context.Context, js jetstream.JetStream, s Setup) (*FlowBus, error) {
	n := Names{Flow: s.Flow}
	replicas := s.Replicas
	if replicas < 0 {
		return nil, fmt.Errorf("replicas %d: want 0 (choose) or a count from 1 to 5", replicas)
	}
	if replicas == 0 {
		var err error
		if replicas, err = chooseReplicas(ctx, js, n); err != nil {
			return nil, fmt.Errorf("choosing the replica count of flow %s (set one to skip this): %w", s.Flow, err)
		}
	}
	chunks, err := createStream(ctx, js, jetstream.StreamConfig{
		Name:        n.ChunkStream(),
		Description: "mftflow file chunks of flow " + s.Flow,
		Subjects:    []string{n.ChunkSubject("*")},
		Retention:   jetstream.LimitsPolicy,
		Storage:     jetstream.FileStorage,
		Replicas:    replicas,
		Duplicates:  2 * time.Minute,
		Discard:     jetstream.DiscardNew,
		// A direct get hands a chunk over as it is, where a get through
		// the API wraps it in JSON (base64: about 2 ms for a group's 512
		// KiB). With replicas a direct get may be answered by a replica
		// that lags behind, so only one copy allows it (see leaderReads).
		AllowDirect: replicas == 1,
	})
	if err != nil {
		return nil, err
	}
	tasks, err := createStream(ctx, js, jetstream.StreamConfig{
		Name:        n.TaskStream(),
		Description: "mftflow delivery tasks of flow " + s.Flow,
		Subjects:    []string{n.TaskSubject("*")},
		Retention:   jetstream.WorkQueuePolicy,
		Storage:     jetstream.FileStorage,
		Replicas:    replicas,
		Duplicates:  2 * time.Minute,
	})
	if err != nil {
		return nil, err
	}
	kv, err := retried(ctx, func(ctx context.Context) (jetstream.KeyValue, error) {
		return js.CreateOrUpdateKeyValue(ctx, jetstream.KeyValueConfig{
			Bucket:      n.Bucket(),
			Description: "mftflow state of flow " + s.Flow,
			Storage:     jetstream.FileStorage,
			Replicas:    replicas,
			History:     1,
		})
	})
	if err != nil {
		return nil, fmt.Errorf("creating KV bucket %s: %w", n.Bucket(), replicasHint(err, replicas))
	}
	if replicas > 1 {
		if kv, err = leaderReads(ctx, js, n); err != nil {
			return nil, err
		}
	}
	// A changed replica count takes effect in the background (for a few
	// seconds); a consumer can only grow onto servers its stream already
	// runs on, so it waits for them. Consumers then follow in the background.
	for _, name := range []string{n.ChunkStream(), n.TaskStream(), n.KVStream()} {
		if err := waitPlaced(ctx, js, name, replicas); err != nil {
			return nil, err
		}
	}
	fb := &FlowBus{Names: n, JS: js, Chunks: chunks, Tasks: tasks, Store: Store{KV: kv}, Consumers: map[string]jetstream.Consumer{}, Replicas: replicas}
	for _, sink := range s.Sinks {
		c, err := retried(ctx, func(ctx context.Context) (jetstream.Consumer, error) {
			return tasks.CreateOrUpdateConsumer(ctx, jetstream.ConsumerConfig{
				Durable:       n.Consumer(sink),
				Description:   "mftflow deliveries to sink " + sink,
				FilterSubject: n.TaskSubject(sink),
				AckPolicy:     jetstream.AckExplicitPolicy,
				AckWait:       s.AckWait,
				MaxDeliver:    -1,
				MaxAckPending: max(s.MaxAckPending, 1),
				Replicas:      replicas,
			})
		})
		if err != nil {
			return nil, fmt.Errorf("creating consumer for sink %s: %w", sink, err)
		}
		fb.Consumers[sink] = c
	}
	return fb, nil
}

// apiAttempt bounds one request of Ensure to JetStream's API: a request
// whose answer is lost (a cluster electing its meta leader, a server
// stopping) is sent again rather than waited on until ctx ends; creating or
// updating with the same configuration again is harmless. apiBudget bounds
// the attempts together.
const (
	apiAttempt = 10 * time.Second
	apiBudget  = time.Minute
)

// retried runs call with a deadline of apiAttempt, again while it fails
// transiently and the budget lasts, waiting transientPace.
func retried[T any](ctx context.Context, call func(context.Context) (T, error)) (T, error) {
	pace := transientPace()
	return backoff.Retry(ctx, func() (T, error) {
		actx, cancel := context.WithTimeout(ctx, apiAttempt)
		defer cancel()
		v, err := call(actx)
		// No responders at all is a server without JetStream more often
		// than a passing state: said at once.
		if err != nil && (!Transient(err) || errors.Is(err, nats.ErrNoResponders) || ctx.Err() != nil) {
			return v, backoff.Permanent(err)
		}
		return v, err
	}, backoff.WithBackOff(&pace), backoff.WithMaxElapsedTime(apiBudget))
}

// createStream creates or updates the stream of cfg.
func createStream(ctx context.Context, js jetstream.JetStream, cfg jetstream.StreamConfig) (jetstream.Stream, error) {
	st, err := retried(ctx, func(ctx context.Context) (jetstream.Stream, error) {
		return js.CreateOrUpdateStream(ctx, cfg)
	})
	if err != nil {
		return nil, fmt.Errorf("creating stream %s: %w", cfg.Name, replicasHint(err, cfg.Replicas))
	}
	return st, nil
}

// leaderReads turns off direct gets on the flow's KV stream and binds the
// bucket again. A direct get may be answered by a replica that lags behind,
// and runners read records right after another runner wrote them (a task
// names a manifest written just before): with replicas, every read goes to
// the stream's leader.
func leaderReads(ctx context.Context, js jetstream.JetStream, n Names) (jetstream.KeyValue, error) {
	st, err := js.Stream(ctx, n.KVStream())
	if err != nil {
		return nil, fmt.Errorf("reading stream %s: %w", n.KVStream(), err)
	}
	if cfg := st.CachedInfo().Config; cfg.AllowDirect {
		cfg.AllowDirect = false
		if _, err := js.UpdateStream(ctx, cfg); err != nil {
			return nil, fmt.Errorf("updating stream %s: %w", n.KVStream(), err)
		}
	}
	kv, err := js.KeyValue(ctx, n.Bucket())
	if err != nil {
		return nil, fmt.Errorf("opening KV bucket %s: %w", n.Bucket(), err)
	}
	return kv, nil
}

// replicasHint adds what to do to JetStream's refusal of a replica count.
func replicasHint(err error, replicas int) error {
	if replicas > 1 && isPlacementError(err) {
		return fmt.Errorf("%w (%d replicas need a JetStream cluster of at least %d servers: lower the replica count)", err, replicas, replicas)
	}
	return err
}

// placeTimeout bounds the wait for a changed replica count, which
// JetStream completes within seconds unless servers are missing.
const placeTimeout = 2 * time.Minute

// waitPlaced waits until stream name runs on replicas servers.
func waitPlaced(ctx context.Context, js jetstream.JetStream, name string, replicas int) error {
	ctx, cancel := context.WithTimeout(ctx, placeTimeout)
	defer cancel()
	for {
		s, err := js.Stream(ctx, name)
		if err != nil {
			return fmt.Errorf("reading stream %s: %w", name, err)
		}
		ci := s.CachedInfo().Cluster
		placed := 1
		if ci != nil {
			placed += len(ci.Replicas)
		}
		if placed == replicas {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("stream %s runs on %d servers, not the %d of its replica count, after %v (are servers of the cluster down?): %w", name, placed, replicas, placeTimeout, ctx.Err())
		case <-time.After(200 * time.Millisecond):
		}
	}
}
