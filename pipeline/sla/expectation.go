package sla

import (
	"fmt"
	"strings"
	"time"

	"github.com/mftflow/mftflow/pipeline"
)

// expectation is a pipeline.Expectation, defaults applied, with its
// deadlines compiled. Its methods are the record's transitions: pure
// functions of a record and a time, which the watcher applies and writes
// with compare-and-swap, and which status reads apply without writing.
type expectation struct {
	pipeline.Expectation
	deadlines *pipeline.Deadlines
	// rule identifies the deadlines, to notice a changed flow file.
	rule string
	flow string
}

// arrival is a matching file seen by the watcher.
type arrival struct {
	id, name string
	at       time.Time
}

func compile(flow string, e pipeline.Expectation) (*expectation, error) {
	e = e.WithDefaults("")
	if err := e.Check(); err != nil {
		return nil, fmt.Errorf("expectation %q: %w", e.Name, err)
	}
	d, err := e.Deadlines()
	if err != nil {
		return nil, fmt.Errorf("expectation %q: %w", e.Name, err)
	}
	rule := strings.Join(append([]string{e.By, e.TimeZone}, e.Holidays...), "|")
	return &expectation{Expectation: e, deadlines: d, rule: rule, flow: flow}, nil
}

// complete reports whether p has every file expected. Extra files count
// too: they exist only beyond an earlier, smaller count.
func (x *expectation) complete(p *Period) bool { return p.Arrived() >= x.Count }

// warnAt is when a short period p raises its warning; zero without one.
func (x *expectation) warnAt(p *Period) time.Time {
	if x.WarnBefore <= 0 || p.Deadline.IsZero() {
		return time.Time{}
	}
	return p.Deadline.Add(-x.WarnBefore)
}

// due returns when r next needs advance: the current period's warning
// time, if it is still to come, else its deadline; false when there is no
// deadline ahead.
func (x *expectation) due(r *Record) (time.Time, bool) {
	p := &r.Current
	if p.Deadline.IsZero() {
		return time.Time{}, false
	}
	if at := x.warnAt(p); !at.IsZero() && p.Warned.IsZero() && !x.complete(p) {
		return at, true
	}
	return p.Deadline, true
}

// advance brings r up to now: it closes the current period if its deadline
// passed, and raises the warning if its time came. It returns the events
// raised.
func (x *expectation) advance(r *Record, now time.Time) []pipeline.Event {
	x.start(r, now)
	var events []pipeline.Event
	if d := r.Current.Deadline; !d.IsZero() && !now.Before(d) {
		events = append(events, x.closePeriod(r, now)...)
	}
	events = append(events, x.warn(r, now)...)
	x.settle(r, now)
	return events
}

// start gives a new record, or one made with other deadlines, the period
// that ends at the next deadline.
func (x *expectation) start(r *Record, now time.Time) {
	if r.Rule == x.rule && !r.Current.Deadline.IsZero() {
		return
	}
	r.Rule = x.rule
	r.Current.Deadline = x.deadlines.Next(now)
}

// closePeriod ends the current period, whose deadline has passed: short of
// files, it is missed, and stays as r.Late for late files until the next
// deadline. The next period ends at the first deadline after now; periods
// in between, which no watcher saw, are not judged.
func (x *expectation) closePeriod(r *Record, now time.Time) []pipeline.Event {
	p := r.Current
	r.Late = nil
	r.Current = Period{Deadline: x.deadlines.Next(now)}
	if x.complete(&p) {
		return nil
	}
	p.Missed = now
	r.Late = &p
	return []pipeline.Event{x.event(pipeline.EventSLAMissed, now, "", x.missedDetail(&p, now))}
}

// warn raises the current period's warning once its time has come, if
// the period is still short.
func (x *expectation) warn(r *Record, now time.Time) []pipeline.Event {
	p := &r.Current
	at := x.warnAt(p)
	if at.IsZero() || now.Before(at) || !p.Warned.IsZero() || x.complete(p) {
		return nil
	}
	p.Warned = now
	detail := fmt.Sprintf("%s, due %s (in %s)", x.counts(p), x.format(p.Deadline), span(p.Deadline.Sub(now)))
	return []pipeline.Event{x.event(pipeline.EventSLAWarning, now, "", detail)}
}

// arrive counts a matching file: for the missed period first, while it is
// short, else for the current one. A file counted already is not counted
// again. It raises sla_met when the file clears a miss or, before the
// deadline, a warning.
func (x *expectation) arrive(r *Record, a arrival) []pipeline.Event {
	if r.Late.has(a.id) || r.Current.has(a.id) {
		return nil
	}
	if late := r.Late; late != nil && late.Met.IsZero() {
		late.add(a.id, x.Count)
		if !x.complete(late) {
			return nil
		}
		late.Met = a.at
		x.settle(r, a.at)
		return []pipeline.Event{x.event(pipeline.EventSLAMet, a.at, a.name, x.lateDetail(late, a))}
	}
	p := &r.Current
	was := x.complete(p)
	p.add(a.id, x.Count)
	if was || !x.complete(p) {
		return nil
	}
	p.Met = a.at
	x.settle(r, a.at)
	if p.Warned.IsZero() {
		return nil // on time and nothing raised: nothing to clear
	}
	detail := fmt.Sprintf("%s, %s before the deadline %s, after a warning", x.counts(p), span(p.Deadline.Sub(a.at)), x.format(p.Deadline))
	return []pipeline.Event{x.event(pipeline.EventSLAMet, a.at, a.name, detail)}
}

// state is r's condition.
func (x *expectation) state(r *Record) State {
	switch {
	case r.Late != nil && r.Late.Met.IsZero():
		return StateMissed
	case !r.Current.Warned.IsZero() && !x.complete(&r.Current):
		return StateWarning
	}
	return StateOK
}

// settle records when r's state changed.
func (x *expectation) settle(r *Record, now time.Time) {
	if s := x.state(r); s != r.State {
		r.State, r.Since = s, now
	}
}

func (x *expectation) event(kind pipeline.EventKind, at time.Time, name, detail string) pipeline.Event {
	return pipeline.Event{Kind: kind, Time: at, Flow: x.flow, Name: name, Detail: x.Name + ": " + detail}
}

// counts says how many files of how many arrived in p.
func (x *expectation) counts(p *Period) string {
	return fmt.Sprintf("%d of %d files matching %q", p.Arrived(), x.Count, x.Files)
}

func (x *expectation) missedDetail(p *Period, now time.Time) string {
	detail := fmt.Sprintf("%s by the deadline %s", x.counts(p), x.format(p.Deadline))
	if late := now.Sub(p.Deadline); late >= time.Minute {
		detail += fmt.Sprintf("; noticed %s after it, when a watcher ran again", span(late))
	}
	return detail
}

func (x *expectation) lateDetail(p *Period, a arrival) string {
	switch late := a.at.Sub(p.Deadline); {
	case late < 0:
		return fmt.Sprintf("%s: %s arrived before the deadline %s but was counted after it", x.counts(p), a.name, x.format(p.Deadline))
	case late == 0:
		return fmt.Sprintf("%s: late, %s arrived at the deadline %s", x.counts(p), a.name, x.format(p.Deadline))
	default:
		return fmt.Sprintf("%s: late, %s arrived %s after the deadline %s", x.counts(p), a.name, span(late), x.format(p.Deadline))
	}
}

// format prints t in the expectation's zone.
func (x *expectation) format(t time.Time) string {
	return t.In(x.deadlines.Location()).Format("Mon 2006-01-02 15:04 MST")
}

// span prints d to the second without trailing zero units: 20m, 1h5m, 45s.
func span(d time.Duration) string {
	s := d.Round(time.Second).String()
	if strings.HasSuffix(s, "m0s") {
		s = s[:len(s)-2]
	}
	if strings.HasSuffix(s, "h0m") {
		s = s[:len(s)-2]
	}
	return s
}
