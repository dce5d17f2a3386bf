package console

import (
	"cmp"
	"fmt"
	"path"
	"slices"
	"strings"
	"time"

	"github.com/mftflow/mftflow/pipeline"
	"github.com/mftflow/mftflow/pipeline/bus"
	"github.com/mftflow/mftflow/pipeline/engine"
)

// Limits of what one page lists; search narrows the rest.
const (
	maxTransfers = 100
	maxFailures  = 500
	maxResults   = 200
)

// flowSummary is a flow's line on the overview and head of its page.
type flowSummary struct {
	Flow                          string
	Ready                         bool // the console has read every record
	Files, Active, Done, Skipped  int
	FailedFiles, FailedDeliveries int
	Sinks                         []engine.SinkCounts
	Runners                       []runner
	Live                          *liveFlow // this process's run of the flow, if any
	NextPoll                      time.Time
	Updated                       time.Time
	ReadRate                      float64 // bytes per second onto the bus (live), else 0
	SinkRates                     map[string]float64
	ActiveShown, ActiveMore       int
	FailuresShown, FailuresMore   int
}

// runner is a run of the flow seen at work in its records.
type runner struct {
	ID     string
	Polls  bool // holds the source lease
	Active int  // deliveries under way
	This   bool // this process
}

// summarize counts a flow's files and deliveries and names its runners.
func summarize(snap *snapshot, ready bool, live *liveFlow, self string) flowSummary {
	st := snap.status
	s := flowSummary{Flow: st.Flow, Ready: ready, Files: len(st.Files), Sinks: st.Sinks, Live: live, SinkRates: map[string]float64{}}
	if st.Poll != nil {
		s.NextPoll = st.Poll.Next
	}
	for _, c := range st.Sinks {
		s.FailedDeliveries += c.Failed
	}
	byRun := map[string]*runner{}
	run := func(id string) *runner {
		if byRun[id] == nil {
			byRun[id] = &runner{ID: id, This: id != "" && id == self}
		}
		return byRun[id]
	}
	if h := snap.lease.Holder; h != "" && snap.at.Sub(snap.lease.Renewed) < 3*max(snap.lease.TTL, time.Second) {
		run(h).Polls = true
	}
	for _, f := range st.Files {
		switch fileStatus(f) {
		case statusActive:
			s.Active++
		case statusSkipped:
			s.Skipped++
		case statusFailedBefore:
			s.FailedFiles++
		default:
			s.Done++
		}
		s.Updated = maxTime(s.Updated, f.Manifest.Updated)
		for _, d := range f.Deliveries {
			if !bus.Final(d.State) && d.Owner != "" {
				run(runOf(d.Owner)).Active++
			}
			if r, ok := snap.rates[bus.DeliveryKey(d.File, d.Sink)]; ok && !bus.Final(d.State) {
				s.SinkRates[d.Sink] += r
			}
		}
	}
	for _, r := range byRun {
		s.Runners = append(s.Runners, *r)
	}
	slices.SortFunc(s.Runners, func(a, b runner) int { return strings.Compare(a.ID, b.ID) })
	if live != nil {
		s.ReadRate = live.ReadRate
		for name, r := range live.SinkRates {
			s.SinkRates[name] = r // this process's exact count beats the records' estimate
		}
	}
	return s
}

// runOf returns the run id of a delivery's owner ("RUN/3" or "RUN/1.3").
func runOf(owner string) string {
	if i := strings.LastIndexByte(owner, '/'); i > 0 {
		return owner[:i]
	}
	return owner
}

func maxTime(a, b time.Time) time.Time {
	if b.After(a) {
		return b
	}
	return a
}

// File statuses, as search offers them.
const (
	statusActive       = "in progress"
	statusPassed       = "passed"
	statusFailed       = "failed"
	statusMixed        = "mixed"
	statusSkipped      = "skipped"
	statusFailedBefore = "failed before delivery"
)

var statuses = []string{statusActive, statusPassed, statusFailed, statusMixed, statusSkipped, statusFailedBefore}

// fileStatus is a file's status in a word or three.
func fileStatus(f engine.FileStatus) string {
	m := f.Manifest
	switch {
	case f.Error != "":
		return statusFailedBefore
	case m.State == bus.FileSkipped:
		return statusSkipped
	case m.State != bus.FileDone || m.Replaying:
		return statusActive
	case m.Outcome == pipeline.Passed.String():
		return statusPassed
	case m.Outcome == pipeline.Mixed.String():
		return statusMixed
	case m.Outcome == pipeline.Skipped.String():
		return statusSkipped
	}
	return statusFailed
}

// transfer is a file under way with its deliveries.
type transfer struct {
	ID, Name, State string
	Size            int64 // -1: not known yet
	Read            int64 // bytes on the bus
	Deliveries      []progress
}

// progress is one delivery's headway.
type progress struct {
	Sink, State string
	Bytes, Size int64
	Rate        float64
	Attempts    int
	Error       string
}

// Percent is how much of the file the delivery has written, 0 to 100.
func (p progress) Percent() int { return percent(p.Bytes, p.Size) }

// ReadPercent is how much of the file is on the bus, 0 to 100.
func (t transfer) ReadPercent() int { return percent(t.Read, t.Size) }

func percent(n, of int64) int {
	if of <= 0 {
		if n > 0 || of == 0 {
			return 100
		}
		return 0
	}
	return int(min(100, n*100/of))
}

// transfers lists the files under way, the oldest first, at most limit,
// and how many more there are.
func transfers(snap *snapshot, limit int) ([]transfer, int) {
	var active []engine.FileStatus
	for _, f := range snap.status.Files {
		if fileStatus(f) == statusActive {
			active = append(active, f)
		}
	}
	slices.SortStableFunc(active, func(a, b engine.FileStatus) int { return a.Manifest.Created.Compare(b.Manifest.Created) })
	more := max(0, len(active)-limit)
	active = active[:min(len(active), limit)]
	out := make([]transfer, 0, len(active))
	for _, f := range active {
		m := f.Manifest
		t := transfer{ID: m.ID, Name: m.Name, State: m.State, Size: m.Size, Read: m.SourceRead}
		if m.State != bus.FileIngesting {
			t.Read = max(m.Size, 0)
		}
		for _, d := range f.Deliveries {
			t.Deliveries = append(t.Deliveries, progress{Sink: d.Sink, State: d.State, Bytes: written(d, m.Size),
				Size: m.Size, Rate: snap.rates[bus.DeliveryKey(m.ID, d.Sink)], Attempts: d.Attempts, Error: d.Error})
		}
		out = append(out, t)
	}
	return out, more
}

// written is how many of a file's size bytes a delivery has written.
func written(d bus.Delivery, size int64) int64 {
	switch {
	case d.State == bus.DeliveryCommitted:
		return max(d.Bytes, size, 0)
	case d.PartSize <= 0:
		return 0
	}
	var n int64
	for i := range len(d.Done) * 8 {
		if d.Done.Has(i) {
			n += d.PartSize
			if size >= 0 && int64(i+1)*d.PartSize > size {
				n -= int64(i+1)*d.PartSize - size // the last part is short
			}
		}
	}
	return max(n, 0)
}

// failure is a failed delivery, or a file that failed before delivery
// (Sink empty).
type failure struct {
	Flow, File, Name, Sink string
	Attempts, Replays      int
	Error                  string
	At                     time.Time
}

// Replayable reports whether Replay applies: a delivery, not a file that
// failed before one.
func (f failure) Replayable() bool { return f.Sink != "" }

// failures lists a flow's failed deliveries and files, the latest first,
// at most limit, and how many more there are.
func failures(snap *snapshot, limit int) ([]failure, int) {
	var out []failure
	for _, f := range snap.status.Files {
		m := f.Manifest
		if f.Error != "" {
			out = append(out, failure{Flow: snap.status.Flow, File: m.ID, Name: m.Name, Error: f.Error, At: cmp.Or(m.Finished, m.Updated)})
		}
		for _, d := range f.Deliveries {
			if d.State == bus.DeliveryFailed {
				out = append(out, failure{Flow: snap.status.Flow, File: m.ID, Name: cmp.Or(m.Name, d.Name), Sink: d.Sink,
					Attempts: d.Attempts, Replays: d.Replays, Error: d.Error, At: d.Updated})
			}
		}
	}
	slices.SortStableFunc(out, func(a, b failure) int {
		if c := b.At.Compare(a.At); c != 0 {
			return c
		}
		return strings.Compare(a.Name+"\x00"+a.Sink, b.Name+"\x00"+b.Sink)
	})
	more := max(0, len(out)-limit)
	return out[:min(len(out), limit)], more
}

// query is a search.
type query struct {
	Flow   string
	Text   string // a name glob ("*.csv"), a part of a name, or the start of an id
	Status string
	Since  string
	Until  string
	since  time.Time
	until  time.Time
}

// parse checks the times of q, given as RFC 3339, as the value of a
// datetime-local field (local time), or as a duration before now.
func (q *query) parse(now time.Time) error {
	var err error
	if q.since, err = parseWhen(q.Since, now); err != nil {
		return fmt.Errorf("since: %w", err)
	}
	if q.until, err = parseWhen(q.Until, now); err != nil {
		return fmt.Errorf("until: %w", err)
	}
	if q.Status != "" && !slices.Contains(statuses, q.Status) {
		return fmt.Errorf("status %q: want one of %s", q.Status, strings.Join(statuses, ", "))
	}
	return nil
}

func parseWhen(s string, now time.Time) (time.Time, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return time.Time{}, nil
	}
	for _, layout := range []string{time.RFC3339, "2006-01-02T15:04:05", "2006-01-02T15:04", "2006-01-02"} {
		if t, err := time.ParseInLocation(layout, s, time.Local); err == nil {
			return t, nil
		}
	}
	if d, err := time.ParseDuration(s); err == nil && d >= 0 {
		return now.Add(-d), nil
	}
	return time.Time{}, fmt.Errorf("%q: want a time such as 2026-12-01T08:00 or a duration before now such as 24h", s)
}

// match reports whether file f of a flow is one q looks for.
func (q *query) match(f engine.FileStatus) bool {
	m := f.Manifest
	if t := q.Text; t != "" {
		ok := strings.HasPrefix(m.ID, t) || strings.Contains(strings.ToLower(m.Name), strings.ToLower(t))
		if !ok && strings.ContainsAny(t, "*?[") {
			ok, _ = path.Match(t, m.Name)
			if !ok {
				ok, _ = path.Match(t, path.Base(m.Name))
			}
		}
		if !ok {
			return false
		}
	}
	if q.Status != "" && fileStatus(f) != q.Status {
		return false
	}
	if !q.since.IsZero() && m.Created.Before(q.since) {
		return false
	}
	if !q.until.IsZero() && m.Created.After(q.until) {
		return false
	}
	return true
}

// result is a file found by a search.
type result struct {
	Flow, ID, Name, Status string
	Size                   int64
	Arrived, Updated       time.Time
	Sinks                  []string // "sink: state"
}

func resultOf(flow string, f engine.FileStatus) result {
	m := f.Manifest
	r := result{Flow: flow, ID: m.ID, Name: m.Name, Status: fileStatus(f), Size: m.Size, Arrived: m.Created, Updated: m.Updated}
	for _, d := range f.Deliveries {
		r.Sinks = append(r.Sinks, d.Sink+": "+d.State)
	}
	return r
}
