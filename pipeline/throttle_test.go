package pipeline

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"sync"
	"testing"
	"time"
)

// fakeClock never sleeps: a sleep moves its time on to the sleeper's
// deadline (unless another sleeper moved it further already), so a test
// runs through minutes of paced traffic at once and counts exactly.
type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) SleepUntil(ctx context.Context, t time.Time) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if t.After(c.now) {
		c.now = t
	}
	return nil
}

func (c *fakeClock) set(t time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = t
}

// tally is a writer that checks, at every write, that the bytes written
// since start stay within limit bytes per second.
type tally struct {
	t      *testing.T
	clock  *fakeClock
	start  time.Time
	limit  float64
	mu     sync.Mutex
	total  int64
	excess float64 // the most bytes written beyond the limit at any write
}

func (w *tally) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.total += int64(len(p))
	allowed := w.limit * w.clock.Now().Sub(w.start).Seconds()
	w.excess = max(w.excess, float64(w.total)-allowed)
	return len(p), nil
}

func mustRate(t *testing.T, s string) Rate {
	t.Helper()
	r, err := ParseRate(s)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func part(chunks, size int) *net.Buffers {
	nb := make(net.Buffers, chunks)
	for i := range nb {
		nb[i] = make([]byte, size)
	}
	return &nb
}

// TestThrottleHoldsItsLimit writes 64 MiB through one throttle from eight
// goroutines at once, by each of the ways a sink takes a part (WriteTo,
// Read, SlicesOf), and checks at every write that the bytes so far never
// exceed the limit by more than a rounding error, and that the limit is
// reached: the writes end when 64 MiB at 4 MiB/s would.
func TestThrottleHoldsItsLimit(t *testing.T) {
	const limit, total, writers = 4 << 20, 64 << 20, 8
	start := time.Date(2026, 3, 4, 12, 0, 0, 0, time.UTC)
	clock := &fakeClock{now: start}
	th := newThrottle(mustRate(t, "4MiB"), clock)
	w := &tally{t: t, clock: clock, start: start, limit: limit}
	ctx := context.Background()
	var wg sync.WaitGroup
	for i := range writers {
		wg.Go(func() {
			for range total / writers / (4 << 20) {
				r := Paced(ctx, part(4, 1<<20), th)
				var err error
				switch i % 3 {
				case 0:
					_, err = io.Copy(w, r)
				case 1:
					_, err = io.Copy(w, struct{ io.Reader }{r}) // Read only
				case 2:
					sl, ok := SlicesOf(r, 0, 4<<20)
					if !ok {
						err = errors.New("SlicesOf found no slices in a paced *net.Buffers")
						break
					}
					_, err = sl.WriteTo(w)
				}
				if err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	if w.total != total {
		t.Fatalf("wrote %d bytes, want %d", w.total, total)
	}
	if w.excess > 1 {
		t.Errorf("the writes ran up to %.0f bytes ahead of 4 MiB/s", w.excess)
	}
	if took, want := clock.Now().Sub(start), 16*time.Second; took < want-time.Millisecond || took > want+want/100 {
		t.Errorf("64 MiB at 4 MiB/s took %v, want %v", took, want)
	}
}

// TestThrottleTimetable runs a timetable through its changes on a fake
// clock: off until 08:00, 1 MiB/s until 09:00, 4 MiB/s until 10:00, then
// off, and again the next day. A wait that spans 09:00 is paced at 1 MiB/s
// up to it and at 4 MiB/s after it.
func TestThrottleTimetable(t *testing.T) {
	day := time.Date(2026, 3, 4, 0, 0, 0, 0, time.Local)
	at := func(h, m, s int) time.Time {
		return day.Add(time.Duration(h)*time.Hour + time.Duration(m)*time.Minute + time.Duration(s)*time.Second)
	}
	clock := &fakeClock{now: at(7, 59, 0)}
	th := newThrottle(mustRate(t, "08:00,1M 09:00,4M 10:00,off"), clock)
	ctx := context.Background()

	if th.Limit() != 0 {
		t.Fatalf("limit at 07:59: %d, want none", th.Limit())
	}
	if err := th.Wait(ctx, 1<<30); err != nil || !clock.Now().Equal(at(7, 59, 0)) {
		t.Fatalf("1 GiB before 08:00 waited until %v (%v), want no wait", clock.Now(), err)
	}

	clock.set(at(8, 0, 0))
	if th.Limit() != 1<<20 {
		t.Fatalf("limit at 08:00: %d, want 1MiB", th.Limit())
	}
	if err := th.Wait(ctx, 2<<20); err != nil {
		t.Fatal(err)
	}
	if took := clock.Now().Sub(at(8, 0, 0)); took < 1999*time.Millisecond || took > 2100*time.Millisecond {
		t.Errorf("2 MiB at 1 MiB/s took %v, want 2s", took)
	}

	// 1 MiB up to 09:00 at 1 MiB/s, then 4 MiB at 4 MiB/s.
	clock.set(at(8, 59, 59))
	from := clock.Now()
	if err := th.Wait(ctx, 5<<20); err != nil {
		t.Fatal(err)
	}
	if took := clock.Now().Sub(from); took < 1900*time.Millisecond || took > 2200*time.Millisecond {
		t.Errorf("5 MiB across the change to 4 MiB/s at 09:00 took %v, want about 2s (1s + 1s)", took)
	}
	if th.Limit() != 4<<20 {
		t.Errorf("limit after 09:00: %d, want 4MiB", th.Limit())
	}

	clock.set(at(10, 0, 0))
	if th.Limit() != 0 {
		t.Errorf("limit at 10:00: %d, want none", th.Limit())
	}
	clock.set(at(32, 0, 0)) // 08:00 the next day
	if th.Limit() != 1<<20 {
		t.Errorf("limit at 08:00 the next day: %d, want 1MiB", th.Limit())
	}
}

// TestPacedSlicesAreTheCallers: through a throttle, SlicesOf still hands
// out the part's own slices (no copy), after charging them.
func TestPacedSlicesAreTheCallers(t *testing.T) {
	start := time.Date(2026, 3, 4, 12, 0, 0, 0, time.UTC)
	clock := &fakeClock{now: start}
	th := newThrottle(mustRate(t, "1MiB"), clock)
	nb := part(2, 1<<20)
	sl, ok := SlicesOf(Paced(context.Background(), nb, th), 1<<20, 1<<20)
	if !ok {
		t.Fatal("SlicesOf found no slices")
	}
	if &sl.Buffers()[0][0] != &(*nb)[1][0] {
		t.Error("SlicesOf copied the part")
	}
	if took := clock.Now().Sub(start); took < 999*time.Millisecond || took > time.Second {
		t.Errorf("1 MiB at 1 MiB/s was charged %v, want 1s", took)
	}
}

func TestPacedEnds(t *testing.T) {
	if r := Paced(context.Background(), bytes.NewReader(nil), nil, nil); r == nil {
		t.Fatal("nil reader")
	} else if _, paced := r.(*pacedReader); paced {
		t.Error("Paced without throttles wrapped the reader")
	}
	// A wait ends with its context.
	th := NewThrottle(mustRate(t, "1KiB"))
	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(20*time.Millisecond, cancel)
	_, err := io.Copy(io.Discard, Paced(ctx, part(1, 1<<20), th))
	if !errors.Is(err, context.Canceled) {
		t.Errorf("copy through a throttle whose context ended: %v, want context.Canceled", err)
	}
	var nilThrottle *Throttle
	if err := nilThrottle.Wait(ctx, 1<<40); err != nil || nilThrottle.Limit() != 0 {
		t.Errorf("a nil Throttle limits: %v", err)
	}
}
