package pipeline

import (
	"maps"
	"time"
	"unicode/utf8"
)

// EventKind says what happened to a file (or a flow) in an Event.
type EventKind string

// The kinds of events the engine emits, in the order a file meets them.
const (
	// EventDiscovered: the source offered the file (Name, Size, Key).
	EventDiscovered EventKind = "discovered"
	// EventRenamed: the stages gave the file another name (Name is the
	// new one, Detail the name at the source).
	EventRenamed EventKind = "renamed"
	// EventDropped: a stage dropped the file (Detail: why); it is acked
	// as skipped.
	EventDropped EventKind = "dropped"
	// EventRead: the whole file is on the bus (Size, SHA256).
	EventRead EventKind = "read"
	// EventReadFailed: reading the file failed (Error); Permanent says
	// whether it is tried again.
	EventReadFailed EventKind = "read_failed"
	// EventAttempt: a delivery attempt to Sink begins (Attempt counts
	// from 1).
	EventAttempt EventKind = "attempt"
	// EventPartRetry: writing part Part to Sink failed and is tried
	// again (Error).
	EventPartRetry EventKind = "part_retry"
	// EventAttemptFailed: the attempt failed (Error); Permanent says the
	// delivery failed for good, else it is tried again after a backoff.
	EventAttemptFailed EventKind = "attempt_failed"
	// EventCommitted: Sink holds the file (Location: the sink's object,
	// path, URL or session id where it knows one).
	EventCommitted EventKind = "committed"
	// EventAcked: the source is told the file's Outcome (Detail: its
	// message); a failed ack is logged and tried again after a restart.
	EventAcked EventKind = "acked"
	// EventReplay: a replay of the file's delivery to Sink (every sink
	// when empty) was asked for, by By.
	EventReplay EventKind = "replay"
	// EventSLAWarning, EventSLAMissed, EventSLAMet: an expected arrival
	// (Detail names it) is late soon, late, or arrived.
	EventSLAWarning EventKind = "sla_warning"
	EventSLAMissed  EventKind = "sla_missed"
	EventSLAMet     EventKind = "sla_met"
)

// Event is one step of a file through a flow, as the engine reports it to
// the flow's audit trail, its notifications and embedding programs. Fields
// that do not apply to a kind are empty.
type Event struct {
	Kind EventKind `json:"kind"`
	Time time.Time `json:"time"`
	Flow string    `json:"flow"`
	// Runner is the run id of the runner that saw it.
	Runner string `json:"runner,omitempty"`
	// FileID is the engine's id of the file (File.ID).
	FileID string `json:"file_id,omitempty"`
	Name   string `json:"name,omitempty"`
	Size   int64  `json:"size,omitempty"`
	SHA256 string `json:"sha256,omitempty"`
	Sink   string `json:"sink,omitempty"`
	// Attempt counts a sink's delivery attempts from 1; Part is a part's
	// index.
	Attempt  int    `json:"attempt,omitempty"`
	Part     int    `json:"part,omitempty"`
	Location string `json:"location,omitempty"`
	// Outcome is the file's status for EventAcked.
	Outcome   string `json:"outcome,omitempty"`
	Error     string `json:"error,omitempty"`
	Permanent bool   `json:"permanent,omitempty"`
	// By names who asked (a replay: the user or program).
	By     string `json:"by,omitempty"`
	Detail string `json:"detail,omitempty"`
	// Sinks holds each sink's result for EventAcked, by sink name, when
	// the engine has them (Outcome.Sinks): notifications narrowed to some
	// sinks read it.
	Sinks map[string]SinkResult `json:"sinks,omitempty"`
	// Exact holds the exact bytes of Name, Detail and Location, by their
	// JSON names, where they are not valid UTF-8: file names are bytes to
	// most file systems, JSON strings are UTF-8, and the plain fields then
	// carry U+FFFD for each odd byte (ForJSON, FromJSON).
	Exact map[string][]byte `json:"exact,omitempty"`
}

// ForJSON returns ev with Exact set for each of its names that JSON would
// change, so that FromJSON gives them back whole.
func (ev Event) ForJSON() Event {
	if utf8.ValidString(ev.Name) && utf8.ValidString(ev.Detail) && utf8.ValidString(ev.Location) {
		return ev // nearly always: no copy, no map
	}
	ev.Exact = maps.Clone(ev.Exact)
	for field, v := range ev.names() {
		if !utf8.ValidString(*v) {
			if ev.Exact == nil {
				ev.Exact = map[string][]byte{}
			}
			ev.Exact[field] = []byte(*v)
		}
	}
	return ev
}

// FromJSON returns ev, read from JSON, with its names as they were given
// to ForJSON.
func (ev Event) FromJSON() Event {
	if ev.Exact == nil {
		return ev
	}
	for field, v := range ev.names() {
		if raw, ok := ev.Exact[field]; ok {
			*v = string(raw)
		}
	}
	ev.Exact = nil
	return ev
}

// names points at the fields that may hold a file's name, by JSON name.
func (ev *Event) names() map[string]*string {
	return map[string]*string{"name": &ev.Name, "detail": &ev.Detail, "location": &ev.Location}
}

// EventSink receives a flow's events. Emit is called from the engine's
// goroutines, concurrently, in the order things happened for each file; it
// must not block for long (a slow consumer queues the events itself).
type EventSink interface {
	Emit(Event)
}

// EventFunc adapts a function to EventSink.
type EventFunc func(Event)

// Emit calls fn.
func (fn EventFunc) Emit(e Event) { fn(e) }

// Locator is an optional Upload ability: after Commit, Location says where
// the sink put the file (a path, s3://bucket/key, a Thru file code...), for
// the audit trail.
type Locator interface {
	Location() string
}

// WholeLocator is Locator for a WholeWriter sink: where WriteWhole puts f.
type WholeLocator interface {
	LocationOf(f File) string
}
