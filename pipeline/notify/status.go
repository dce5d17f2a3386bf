package notify

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/mftflow/mftflow/pipeline/bus"
)

// TargetState is what the bus keeps about one target, so that every
// runner of the flow, and "runner status" from another process, sees the
// same: whether sending to it fails and since when, and what was given
// up.
type TargetState struct {
	// Target is the target's id (a fingerprint of where it sends).
	Target   string `json:"target"`
	Channel  string `json:"channel"`
	Endpoint string `json:"endpoint"`
	// Failing says the last attempt failed. Since is when the failures
	// in a row began, Failures how many attempts failed since then (by
	// every runner), LastError and LastAttempt the latest one's.
	Failing     bool      `json:"failing"`
	Since       time.Time `json:"since,omitzero"`
	Failures    int64     `json:"failures,omitempty"`
	LastError   string    `json:"last_error,omitempty"`
	LastAttempt time.Time `json:"last_attempt,omitzero"`
	// GivenUp counts the notifications dropped unsent, ever; LastGivenUp
	// is the latest of them.
	GivenUp     int64    `json:"given_up,omitempty"`
	LastGivenUp *GivenUp `json:"last_given_up,omitempty"`
}

// GivenUp is a notification that was dropped unsent.
type GivenUp struct {
	ID      string    `json:"id"`
	Trigger string    `json:"event"`
	Name    string    `json:"name,omitempty"`
	At      time.Time `json:"at"`
	Error   string    `json:"error"`
}

// TargetStatus is a target's state with what is waiting for it.
type TargetStatus struct {
	TargetState
	// Pending counts notifications on the bus not sent yet: waiting,
	// being sent, or waiting to be tried again.
	Pending uint64 `json:"pending"`
	// Rules are the indices (from 0) of the rules in the flow's notify
	// list that send to this target. None: the flow's rules no longer
	// name it, and its pending notifications wait for a rule that does.
	Rules []int `json:"rules"`
}

// Status is a flow's notifications at a glance.
type Status struct {
	Flow string `json:"flow"`
	// Targets are the targets of the flow's rules in their order, then
	// any target of earlier rules that still has notifications pending
	// or a state on the bus.
	Targets []TargetStatus `json:"targets"`
	// PublishFailures counts events this Notifier could not put on the
	// bus (they are not sent); LastPublishError is the latest error.
	PublishFailures  int64     `json:"publish_failures,omitempty"`
	LastPublishError string    `json:"last_publish_error,omitempty"`
	LastPublishAt    time.Time `json:"last_publish_at,omitzero"`
}

// Failing returns the targets whose last attempt failed.
func (s Status) Failing() []TargetStatus {
	var out []TargetStatus
	for _, t := range s.Targets {
		if t.Failing {
			out = append(out, t)
		}
	}
	return out
}

// Inspect reads the notification state of flow from the bus: each
// target's pending count and state, sorted by target id. It needs no
// Notifier, for "runner status" in another process. A flow that never had
// notifications gives none and no error.
func Inspect(ctx context.Context, js jetstream.JetStream, flow string) ([]TargetStatus, error) {
	n := bus.Names{Flow: flow}
	stream, err := js.Stream(ctx, n.NotifyStream())
	if errors.Is(err, jetstream.ErrStreamNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("reading stream %s: %w", n.NotifyStream(), err)
	}
	byID := map[string]*TargetStatus{}
	get := func(id string) *TargetStatus {
		if byID[id] == nil {
			byID[id] = &TargetStatus{TargetState: TargetState{Target: id}}
		}
		return byID[id]
	}
	consumers := stream.ListConsumers(ctx)
	for info := range consumers.Info() {
		if id, ok := strings.CutPrefix(info.Name, n.NotifyConsumer("")); ok {
			get(id).Pending = info.NumPending + uint64(info.NumAckPending)
		}
	}
	if err := consumers.Err(); err != nil {
		return nil, fmt.Errorf("listing the consumers of stream %s: %w", n.NotifyStream(), err)
	}
	states, err := readStates(ctx, js, n)
	if err != nil {
		return nil, err
	}
	for _, st := range states {
		get(st.Target).TargetState = st
	}
	out := make([]TargetStatus, 0, len(byID))
	for _, t := range byID {
		out = append(out, *t)
	}
	slices.SortFunc(out, func(a, b TargetStatus) int { return strings.Compare(a.Target, b.Target) })
	return out, nil
}

// stateKey is the KV key of a target's state.
func stateKey(id string) string { return "target." + id }

func readStates(ctx context.Context, js jetstream.JetStream, n bus.Names) ([]TargetState, error) {
	kv, err := js.KeyValue(ctx, n.NotifyBucket())
	if errors.Is(err, jetstream.ErrBucketNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("opening KV bucket %s: %w", n.NotifyBucket(), err)
	}
	keys, err := kv.ListKeys(ctx)
	if err != nil {
		return nil, fmt.Errorf("listing KV bucket %s: %w", n.NotifyBucket(), err)
	}
	defer func() { _ = keys.Stop() }() // only read
	var out []TargetState
	for key := range keys.Keys() {
		e, err := kv.Get(ctx, key)
		if errors.Is(err, jetstream.ErrKeyNotFound) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("reading %s from KV bucket %s: %w", key, n.NotifyBucket(), err)
		}
		var st TargetState
		if err := json.Unmarshal(e.Value(), &st); err != nil {
			return nil, fmt.Errorf("reading %s from KV bucket %s: %w", key, n.NotifyBucket(), err)
		}
		out = append(out, st)
	}
	return out, nil
}

// stateStore writes target states with compare-and-swap, so that the
// counts of several runners add up.
type stateStore struct{ kv jetstream.KeyValue }

// casTries bounds the compare-and-swap loop of update.
const casTries = 10

// create writes st unless the target has a state already.
func (s stateStore) create(ctx context.Context, st TargetState) error {
	data, err := json.Marshal(st)
	if err != nil {
		return err
	}
	_, err = s.kv.Create(ctx, stateKey(st.Target), data)
	if errors.Is(err, jetstream.ErrKeyExists) {
		return nil
	}
	return err
}

// update applies change to the state of target id.
func (s stateStore) update(ctx context.Context, id string, change func(*TargetState)) error {
	var err error
	for range casTries {
		var st TargetState
		var rev uint64
		e, gerr := s.kv.Get(ctx, stateKey(id))
		switch {
		case errors.Is(gerr, jetstream.ErrKeyNotFound):
		case gerr != nil:
			return gerr
		default:
			rev = e.Revision()
			if err := json.Unmarshal(e.Value(), &st); err != nil {
				return err
			}
		}
		st.Target = id
		change(&st)
		data, merr := json.Marshal(st)
		if merr != nil {
			return merr
		}
		if rev == 0 {
			_, err = s.kv.Create(ctx, stateKey(id), data)
		} else {
			_, err = s.kv.Update(ctx, stateKey(id), data, rev)
		}
		if err == nil || ctx.Err() != nil {
			return err
		}
	}
	return fmt.Errorf("updating the state of target %s: it kept changing under this update: %w", id, err)
}
