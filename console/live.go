package console

import (
	"context"
	"sync"
	"time"

	"github.com/mftflow/mftflow/pipeline/engine"
)

// liveFlow is this process's run of a flow, from its counters
// (engine.Run.Stats), with rates over the last sampling interval.
type liveFlow struct {
	engine.Stats
	ReadRate  float64            // bytes per second put on the bus
	SinkRates map[string]float64 // bytes per second written, by sink
}

// Done counts the files this run finished.
func (l *liveFlow) Done() int64 {
	return l.FilesPassed + l.FilesFailed + l.FilesMixed + l.FilesSkipped
}

// live samples the counters of the runs in this process every interval.
type live struct {
	stats    func() []engine.Stats
	interval time.Duration
	now      func() time.Time

	mu    sync.Mutex
	flows map[string]*liveFlow
	at    time.Time
	wake  chan struct{} // closed and replaced at every sample
}

func newLive(stats func() []engine.Stats, interval time.Duration, now func() time.Time) *live {
	return &live{stats: stats, interval: interval, now: now, flows: map[string]*liveFlow{}, wake: make(chan struct{})}
}

func (l *live) run(ctx context.Context) {
	if l.stats == nil {
		return
	}
	t := time.NewTicker(l.interval)
	defer t.Stop()
	l.sample()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			l.sample()
		}
	}
}

func (l *live) sample() {
	now := l.now()
	all := l.stats()
	l.mu.Lock()
	defer l.mu.Unlock()
	secs := now.Sub(l.at).Seconds()
	next := make(map[string]*liveFlow, len(all))
	for _, s := range all {
		f := &liveFlow{Stats: s, SinkRates: map[string]float64{}}
		if prev := l.flows[s.Flow]; prev != nil && secs > 0 {
			f.ReadRate = max(0, float64(s.BytesRead-prev.BytesRead)/secs)
			for _, k := range s.Sinks {
				for _, pk := range prev.Sinks {
					if pk.Name == k.Name {
						f.SinkRates[k.Name] = max(0, float64(k.BytesWritten-pk.BytesWritten)/secs)
					}
				}
			}
		}
		next[s.Flow] = f
	}
	l.flows, l.at = next, now
	close(l.wake)
	l.wake = make(chan struct{})
}

// flow returns the latest sample of flow's run here, or nil.
func (l *live) flow(name string) *liveFlow {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.flows[name]
}

// wait returns a channel closed at the next sample; nil (never) without runs.
func (l *live) wait() <-chan struct{} {
	if l.stats == nil {
		return nil
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.wake
}
