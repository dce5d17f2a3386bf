package sla

import (
	"slices"
	"time"
)

// State is an expectation's condition, in Status and the sla_state metric.
type State string

const (
	// StateOK: the current period has its files, or its deadline is not
	// near yet (before the warning).
	StateOK State = "ok"
	// StateWarning: the warning time of the current period has passed and
	// it is still short of files.
	StateWarning State = "warning"
	// StateMissed: a deadline passed short of files, and no late file has
	// made up for it yet; it lasts until then, or until the next deadline.
	StateMissed State = "missed"
)

// gauge is the sla_state metric's value of a state.
func (s State) gauge() float64 {
	switch s {
	case StateWarning:
		return 1
	case StateMissed:
		return 2
	}
	return 0
}

// Record is one expectation's state, as a Store keeps it: the period under
// way and, after a miss, the missed period that a late file may still clear.
// What it says was raised (Warned, Missed, Met) was raised once, by the
// watcher whose write of it went through.
type Record struct {
	Current Period `json:"current"`
	// Late is the period before Current when its deadline passed short of
	// files: until Current's deadline, arriving files count for it first.
	// It stays after a late file clears it (Met set), so that a file
	// offered again is not counted for Current as well.
	Late *Period `json:"late,omitempty"`
	// Rule is the expectation's deadline rule the record was made with;
	// when the flow changes it, the current period takes the new deadline.
	Rule  string    `json:"rule"`
	State State     `json:"state"`
	Since time.Time `json:"since"`
}

// Period is what arrived between one deadline and the next.
type Period struct {
	Deadline time.Time `json:"deadline"`
	// Files are the ids of the files counted (Event.FileID, else the
	// name), at most the expected count; Extra counts files beyond it,
	// which are not told apart.
	Files []string `json:"files,omitempty"`
	Extra int      `json:"extra,omitempty"`
	// Warned, Missed and Met are when sla_warning and sla_missed were
	// raised and when the period got its files; zero if not.
	Warned time.Time `json:"warned,omitzero"`
	Missed time.Time `json:"missed,omitzero"`
	Met    time.Time `json:"met,omitzero"`
}

// Arrived is how many files arrived in the period.
func (p *Period) Arrived() int {
	if p == nil {
		return 0
	}
	return len(p.Files) + p.Extra
}

// has reports whether the file with id id was counted.
func (p *Period) has(id string) bool {
	return p != nil && slices.Contains(p.Files, id)
}

// add counts the file with id id, keeping at most count ids.
func (p *Period) add(id string, count int) {
	if len(p.Files) < count {
		p.Files = append(p.Files, id)
	} else {
		p.Extra++
	}
}

// clone returns a copy of r that shares nothing with it.
func (r Record) clone() Record {
	r.Current.Files = slices.Clone(r.Current.Files)
	if r.Late != nil {
		late := *r.Late
		late.Files = slices.Clone(late.Files)
		r.Late = &late
	}
	return r
}
