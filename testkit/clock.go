package testkit

import (
	"sync"
	"time"

	"github.com/mftflow/mftflow/pipeline/sla"
)

// ManualClock is a clock that moves only when a test moves it: code given
// it (an sla.Watcher) crosses deadlines hours apart without the test
// waiting. Timers due when the clock moves fire, each in its own goroutine
// as time.AfterFunc's do. It is safe for concurrent use.
type ManualClock struct {
	mu     sync.Mutex
	now    time.Time
	timers map[*manualTimer]bool
}

// NewManualClock returns a clock standing at now.
func NewManualClock(now time.Time) *ManualClock {
	return &ManualClock{now: now, timers: map[*manualTimer]bool{}}
}

// Now returns the clock's time.
func (c *ManualClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

// AfterFunc calls f once the clock has moved d on.
func (c *ManualClock) AfterFunc(d time.Duration, f func()) sla.Timer {
	c.mu.Lock()
	defer c.mu.Unlock()
	t := &manualTimer{clock: c, at: c.now.Add(d), f: f}
	if d <= 0 {
		go f()
		return t
	}
	c.timers[t] = true
	return t
}

// Set moves the clock to t (never back) and fires the timers due by then.
func (c *ManualClock) Set(t time.Time) {
	c.mu.Lock()
	if t.After(c.now) {
		c.now = t
	}
	var due []func()
	for timer := range c.timers {
		if !timer.at.After(c.now) {
			delete(c.timers, timer)
			due = append(due, timer.f)
		}
	}
	c.mu.Unlock()
	for _, f := range due {
		go f()
	}
}

// Advance moves the clock d on (see Set).
func (c *ManualClock) Advance(d time.Duration) { c.Set(c.Now().Add(d)) }

type manualTimer struct {
	clock *ManualClock
	at    time.Time
	f     func()
}

// Stop cancels the timer if it has not fired.
func (t *manualTimer) Stop() bool {
	t.clock.mu.Lock()
	defer t.clock.mu.Unlock()
	pending := t.clock.timers[t]
	delete(t.clock.timers, t)
	return pending
}

var _ sla.Clock = (*ManualClock)(nil)
