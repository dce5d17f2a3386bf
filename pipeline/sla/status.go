package sla

import (
	"context"
	"time"

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
