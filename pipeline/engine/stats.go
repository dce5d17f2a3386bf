package engine

import (
	"sync"
	"sync/atomic"
	"time"
)

// Stats is a snapshot of a run's counters since it started.
type Stats struct {
	Flow    string
	Started time.Time
	// Files by outcome; FilesInFlight are taken but not yet final.
	FilesSeen, FilesPassed, FilesFailed, FilesMixed, FilesSkipped, FilesInFlight int64
	// BytesKnown sums the known sizes of the files taken so far (for an ETA);
	// BytesRead counts bytes put on the bus.
	BytesKnown, BytesRead int64
	Sinks                 []SinkStats
}

// SinkStats counts one sink's deliveries in this run.
type SinkStats struct {
	Name string
	// BytesWritten counts bytes of parts written, including parts written
	// again after a failed attempt.
	BytesWritten                                int64
	Committed, Failed, Skipped, Retries, Active int64
}

type stats struct {
	started                                                               time.Time
	seen, passed, failed, mixed, skipped, inFlight, bytesKnown, bytesRead atomic.Int64

	mu    sync.Mutex
	sinks []*sinkStats
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
		BytesKnown: s.bytesKnown.Load(), BytesRead: s.bytesRead.Load(),
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, k := range s.sinks {
		out.Sinks = append(out.Sinks, SinkStats{
			Name: k.name, BytesWritten: k.bytes.Load(), Committed: k.committed.Load(), Failed: k.failed.Load(),
			Skipped: k.skipped.Load(), Retries: k.retries.Load(), Active: k.active.Load(),
		})
	}
	return out
}
