package pipeline

import (
	"context"
	"io"
	"net"
	"sync"
	"time"

	"golang.org/x/time/rate"
)

// Throttle holds the bytes that pass through it to a Rate, however many
// goroutines share it: one token bucket (golang.org/x/time/rate) whose
// limit follows the Rate's timetable. The engine keeps one per sink and one
// per flow, and paces every part it hands to a sink through them (Paced),
// so parallel parts and files share the limit instead of each having it.
//
// The bucket holds a tenth of a second of traffic (at least 32 KiB, or the
// limit when it is lower, and at most 16 MiB): waits are taken that much at
// a time, so the bytes flow smoothly and a wait larger than the bucket never
// fails. It starts empty, so a run's first second is paced like the rest.
//
// A nil *Throttle limits nothing.
type Throttle struct {
	rate  Rate
	clock clock

	mu    sync.Mutex
	lim   *rate.Limiter // nil while no limit is in force
	last  time.Time     // the latest time given to lim: it never goes back
	limit int64         // the limit in force, bytes per second; 0: none
	next  time.Time     // when the timetable changes the limit next; zero: never
	ready bool          // the timetable has been read once
}

// clock is the time a Throttle paces by; tests give one that does not sleep.
type clock interface {
	Now() time.Time
	// SleepUntil blocks until t, or until ctx ends and then returns its
	// error.
	SleepUntil(ctx context.Context, t time.Time) error
}

type realClock struct{}

func (realClock) Now() time.Time { return time.Now() }

func (realClock) SleepUntil(ctx context.Context, t time.Time) error {
	timer := time.NewTimer(time.Until(t))
	defer timer.Stop()
	select {
	case <-timer.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// NewThrottle returns a Throttle for r, or nil when r never limits.
// Timetable times are read in the local time zone.
func NewThrottle(r Rate) *Throttle { return newThrottle(r, realClock{}) }

func newThrottle(r Rate, c clock) *Throttle {
	if !r.Limited() {
		return nil
	}
	return &Throttle{rate: r, clock: c}
}

// Limit returns the limit in force now, in bytes per second; 0 for none.
func (t *Throttle) Limit() int64 {
	limit, _ := t.current()
	return limit
}

// current returns the limit in force now and how many bytes one wait
// takes; 0, 0 when nothing limits.
func (t *Throttle) current() (limit int64, step int) {
	if t == nil {
		return 0, 0
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	t.update(t.now())
	if t.limit == 0 {
		return 0, 0
	}
	return t.limit, t.lim.Burst()
}

// Wait blocks until n more bytes may pass, or until ctx ends and then
// returns its error. Safe for concurrent use; any n is fine.
func (t *Throttle) Wait(ctx context.Context, n int64) error {
	for t != nil && n > 0 {
		t.mu.Lock()
		now := t.now()
		t.update(now)
		if t.limit == 0 {
			t.mu.Unlock()
			return nil
		}
		k := min(n, int64(t.lim.Burst()))
		res := t.lim.ReserveN(now, int(k)) // k is within the burst: always OK
		t.mu.Unlock()
		if d := res.DelayFrom(now); d > 0 {
			if err := t.clock.SleepUntil(ctx, now.Add(d)); err != nil {
				t.mu.Lock()
				res.CancelAt(t.now())
				t.mu.Unlock()
				return err
			}
		}
		n -= k
	}
	return nil
}

// now returns the clock's time, never earlier than a time already used:
// the bucket would count time twice if it went back. Callers hold mu.
func (t *Throttle) now() time.Time {
	n := t.clock.Now()
	if n.Before(t.last) {
		n = t.last
	}
	t.last = n
	return n
}

// update applies the timetable's limit at now when a change is due: the
// first wait at or after a change sets the limit, so no goroutine needs to
// watch the clock. Callers hold mu.
func (t *Throttle) update(now time.Time) {
	if t.ready && (t.next.IsZero() || now.Before(t.next)) {
		return
	}
	t.ready = true
	limit, next := t.rate.At(now)
	t.next = next
	if limit == t.limit {
		return
	}
	t.limit = limit
	switch {
	case limit == 0:
		t.lim = nil
	case t.lim == nil:
		b := burstFor(limit)
		t.lim = rate.NewLimiter(rate.Limit(limit), b)
		t.lim.ReserveN(now, b) // start empty
	default:
		t.lim.SetLimitAt(now, rate.Limit(limit))
		t.lim.SetBurstAt(now, burstFor(limit))
	}
}

// burstFor is the bucket size for a limit: a tenth of a second of traffic,
// at least 32 KiB (or the limit, when lower) and at most 16 MiB.
func burstFor(limit int64) int {
	b := max(limit/10, min(limit, 32<<10))
	return int(min(b, 16<<20))
}

// Paced returns r with its bytes paced by each of throttles (nil ones
// limit nothing), or r itself when all are nil. A Read returns at most one
// wait's worth of bytes, once they may pass; ctx bounds the waits, and a
// Read whose wait ends with ctx returns ctx's error.
//
// When r is a *net.Buffers, as the engine hands parts to sinks, the paced
// reader writes its slices without copying them (WriteTo), and SlicesOf
// still finds them: it charges the bytes it returns before returning them,
// since the caller sends them from the slices at once.
func Paced(ctx context.Context, r io.Reader, throttles ...*Throttle) io.Reader {
	var ts []*Throttle
	for _, t := range throttles {
		if t != nil {
			ts = append(ts, t)
		}
	}
	if len(ts) == 0 {
		return r
	}
	return &pacedReader{ctx: ctx, r: r, ts: ts}
}

type pacedReader struct {
	ctx context.Context
	r   io.Reader
	ts  []*Throttle
}

// wait takes n bytes from every throttle.
func (p *pacedReader) wait(n int64) error {
	for _, t := range p.ts {
		if err := t.Wait(p.ctx, n); err != nil {
			return err
		}
	}
	return nil
}

// step is the least bytes one wait takes among the throttles that limit
// now; 0 when none does.
func (p *pacedReader) step() int {
	s := 0
	for _, t := range p.ts {
		if _, n := t.current(); n > 0 && (s == 0 || n < s) {
			s = n
		}
	}
	return s
}

func (p *pacedReader) Read(b []byte) (int, error) {
	if s := p.step(); s > 0 && len(b) > s {
		b = b[:s]
	}
	n, err := p.r.Read(b)
	if n > 0 {
		if werr := p.wait(int64(n)); werr != nil {
			return 0, werr
		}
	}
	return n, err
}

// WriteTo writes the bytes to w as they may pass, from r's own slices when
// r is a *net.Buffers.
func (p *pacedReader) WriteTo(w io.Writer) (int64, error) {
	nb, ok := p.r.(*net.Buffers)
	if !ok {
		return io.Copy(w, struct{ io.Reader }{p})
	}
	var total int64
	for len(*nb) > 0 {
		b := (*nb)[0]
		if s := p.step(); s > 0 && len(b) > s {
			b = b[:s]
		}
		if err := p.wait(int64(len(b))); err != nil {
			return total, err
		}
		n, err := w.Write(b)
		total += int64(n)
		if (*nb)[0] = (*nb)[0][n:]; len((*nb)[0]) == 0 {
			*nb = (*nb)[1:]
		}
		if err != nil {
			return total, err
		}
	}
	return total, nil
}
