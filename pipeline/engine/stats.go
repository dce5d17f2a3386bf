package engine

import (
	"sync"
	"sync/atomic"
	"time"

	"github.com/mftflow/mftflow/pipeline"
)

// Stats is a snapshot of a run's counters since it started.
type Stats struct {
	Flow    string
	Started time.Time
	// Files by the outcome this run gave them; FilesInFlight are taken but
	// not yet final. FilesEarlier are files another run of the flow (an
	// earlier one, or another runner's) finished, delivered or skipped,
	// which this one found done and did not send again.
	FilesSeen, FilesPassed, FilesFailed, FilesMixed, FilesSkipped, FilesInFlight, FilesEarlier int64
	// BytesKnown sums the known sizes of the files taken so far (for an ETA);
	// BytesRead counts bytes put on the bus.
	BytesKnown, BytesRead int64
	// Limit is the flow's bandwidth limit in force now (Flow.Rate), in
	// bytes per second; 0 for none.
	Limit int64
	Sinks []SinkStats
}

// SinkStats counts one sink's deliveries in this run.
type SinkStats struct {
	Name string
	// BytesWritten counts bytes of parts written, including parts written
	// again after a failed attempt.
	BytesWritten                                int64
	Committed, Failed, Skipped, Retries, Active int64
	// Limit is the sink's bandwidth limit in force now (SinkSpec.Rate), in
	// bytes per second; 0 for none.
	Limit int64
}

type stats struct {
	started                                                               time.Time
	seen, passed, failed, mixed, skipped, inFlight, bytesKnown, bytesRead atomic.Int64
	earlier                                                               atomic.Int64

	mu       sync.Mutex
	sinks    []*sinkStats
	outcomes map[string]pipeline.Status // failed files by id, as counted
}

// outcome records st as file id's outcome and returns the one counted
// before, if any. Only failed outcomes are kept: a replay changes no other,
// and a long run must not keep an entry for every file it passed.
func (s *stats) outcome(id string, st pipeline.Status) (prev pipeline.Status, counted bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	prev, counted = s.outcomes[id]
	delete(s.outcomes, id)
	if st == pipeline.Failed || st == pipeline.Mixed {
		if s.outcomes == nil {
			s.outcomes = map[string]pipeline.Status{}
		}
		s.outcomes[id] = st
	}
	return prev, counted
}

// counter returns the count of files with outcome st.
func (s *stats) counter(st pipeline.Status) *atomic.Int64 {
	switch st {
	case pipeline.Passed:
		return &s.passed
	case pipeline.Mixed:
		return &s.mixed
	case pipeline.Skipped:
		return &s.skipped
	}
	return &s.failed
}

type sinkStats struct {
	name                                               string
	bytes, committed, failed, skipped, retries, active atomic.Int64
}

func (s *stats) sink(name string) *sinkStats {
	s.mu.Lock()
	defer s.mu.Unlock()
	ss := &sinkStats{name: name}
	s.sinks = append(s.sinks, ss)
	return ss
}

// Stats returns the run's counters.
func (r *Run) Stats() Stats {
	s := &r.stats
	out := Stats{
		Flow: r.flow.Name, Started: s.started,
		FilesSeen: s.seen.Load(), FilesPassed: s.passed.Load(), FilesFailed: s.failed.Load(),
		FilesMixed: s.mixed.Load(), FilesSkipped: s.skipped.Load(), FilesInFlight: s.inFlight.Load(),
		BytesKnown: s.bytesKnown.Load(), BytesRead: s.bytesRead.Load(), FilesEarlier: s.earlier.Load(),
		Limit: r.throttle.Limit(),
	}
	limits := map[string]int64{}
	for _, k := range r.sinks {
		limits[k.spec.Name] = k.throttle.Limit()
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, k := range s.sinks {
		out.Sinks = append(out.Sinks, SinkStats{
			Name: k.name, BytesWritten: k.bytes.Load(), Committed: k.committed.Load(), Failed: k.failed.Load(),
			Skipped: k.skipped.Load(), Retries: k.retries.Load(), Active: k.active.Load(), Limit: limits[k.name],
		})
	}
	return out
}
