package sla

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/mftflow/mftflow/pipeline"
)

// Status is one expectation's state, for "runner status".
type Status struct {
	Name  string `json:"name"`
	Files string `json:"files"`
	State State  `json:"state"`
	// Since is when State began.
	Since time.Time `json:"since"`
	// Deadline ends the current period; zero when there is none within
	// five years. WarnAt is its warning time, zero without warn_before.
	Deadline time.Time `json:"deadline,omitzero"`
	WarnAt   time.Time `json:"warn_at,omitzero"`
	// Arrived of Expected files have arrived in the current period.
	Arrived  int `json:"arrived"`
	Expected int `json:"expected"`
	// MissedDeadline, in state missed, is the deadline missed; a late file
	// clears it until Deadline. MissedArrived files arrived for it.
	MissedDeadline time.Time `json:"missed_deadline,omitzero"`
	MissedArrived  int       `json:"missed_arrived,omitempty"`
}

// ReadStatus returns the state of exps (as given to New) at now, read from
// store, without a Watcher: what "runner status" shows. A deadline that
// passed while no watcher ran shows as missed, although nobody raised it.
func ReadStatus(ctx context.Context, store Store, exps []pipeline.Expectation, now time.Time) ([]Status, error) {
	compiled, err := compileAll("", exps)
	if err != nil {
		return nil, err
	}
	return statusOf(ctx, store, compiled, now)
}

func statusOf(ctx context.Context, store Store, exps []*expectation, now time.Time) ([]Status, error) {
	out := make([]Status, 0, len(exps))
	for _, x := range exps {
		rec, _, err := store.Load(ctx, x.Name)
		if err != nil {
			return nil, err
		}
		x.advance(&rec, now) // as a watcher would, without raising
		out = append(out, x.status(&rec))
	}
	return out, nil
}

// status reports r, brought up to date.
func (x *expectation) status(r *Record) Status {
	s := Status{
		Name: x.Name, Files: x.Files, State: r.State, Since: r.Since,
		Deadline: r.Current.Deadline, WarnAt: x.warnAt(&r.Current),
		Arrived: r.Current.Arrived(), Expected: x.Count,
	}
	if s.State == StateMissed {
		s.MissedDeadline, s.MissedArrived = r.Late.Deadline, r.Late.Arrived()
	}
	return s
}

// ExpectationsKey holds, in a flow's KV bucket, the flow's expectations as
// its runner last ran them (SaveExpectations), for readers of its state
// that have no flow file: "runner status" and the console.
const ExpectationsKey = "slaconf"

// SaveExpectations records exps under ExpectationsKey in kv.
func SaveExpectations(ctx context.Context, kv jetstream.KeyValue, exps []pipeline.Expectation) error {
	b, err := json.Marshal(exps)
	if err == nil {
		_, err = kv.Put(ctx, ExpectationsKey, b)
	}
	if err != nil {
		return fmt.Errorf("recording its expectations: %w", err)
	}
	return nil
}

// LoadExpectations reads what SaveExpectations wrote; nil when nothing.
func LoadExpectations(ctx context.Context, kv jetstream.KeyValue) ([]pipeline.Expectation, error) {
	e, err := kv.Get(ctx, ExpectationsKey)
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return nil, nil
	} else if err != nil {
		return nil, fmt.Errorf("reading the expectations in KV bucket %s: %w", kv.Bucket(), err)
	}
	var exps []pipeline.Expectation
	if err := json.Unmarshal(e.Value(), &exps); err != nil {
		return nil, fmt.Errorf("decoding the expectations in KV bucket %s: %w", kv.Bucket(), err)
	}
	return exps, nil
}

// ReadFlowStatus returns the state at now of the expectations last saved
// in a flow's bucket kv (SaveExpectations), read from the records there;
// nil for a flow without expectations.
func ReadFlowStatus(ctx context.Context, kv jetstream.KeyValue, now time.Time) ([]Status, error) {
	exps, err := LoadExpectations(ctx, kv)
	if err != nil || len(exps) == 0 {
		return nil, err
	}
	return ReadStatus(ctx, NewKVStore(kv), exps, now)
}
