package bus

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/nats-io/nats.go/jetstream"
)

// refusal is the server's answer to a write when its store is used up.
var refusal = &jetstream.APIError{Code: 503, ErrorCode: 10023, Description: "insufficient resources"}

// fakeClock drives a SpaceWait's time: sleeping moves it on.
type fakeClock struct{ t time.Time }

func (c *fakeClock) now() time.Time               { return c.t }
func (c *fakeClock) sleep(d time.Duration)        { c.t = c.t.Add(d) }
func (c *fakeClock) wait(w *SpaceWait) *SpaceWait { w.now, w.sleep = c.now, c.sleep; return w }

// events records what a SpaceWatcher hears.
type events []string

func (e *events) Refused(ctx context.Context, err *StoreFullError, first bool) {
	*e = append(*e, fmt.Sprintf("refused first=%t waited=%s", first, err.Waited))
}

func (e *events) Ended(ctx context.Context, err error) {
	*e = append(*e, fmt.Sprintf("ended %v", err != nil))
}

// A write refused for want of room is tried again with backoff until it
// goes through; the watcher hears of each refusal and of the end.
func TestSpaceWaitGoesOnWhenRoomComes(t *testing.T) {
	clock := &fakeClock{t: time.Unix(0, 0)}
	var ev events
	w := clock.wait(&SpaceWait{Max: time.Minute, Watch: &ev})
	calls := 0
	err := w.Do(context.Background(), 1<<20, func() error {
		calls++
		if calls <= 3 {
			return fmt.Errorf("publishing: %w", refusal)
		}
		return nil
	})
	if err != nil || calls != 4 {
		t.Fatalf("Do = %v after %d calls; want nil after 4", err, calls)
	}
	want := events{"refused first=true waited=0s", "refused first=false waited=0s", "refused first=false waited=0s", "ended false"}
	if diff := cmp.Diff(want, ev); diff != "" {
		t.Errorf("watcher heard (-want +got):\n%s", diff)
	}
	if _, _, full := w.Full(); full {
		t.Error("the store is still taken for full after a write went through")
	}
}

// A store that stays full fails the write after the bound, with how long
// it waited; while the spell lasts, a new write gives up at its first
// refusal instead of waiting the bound again; a write that goes through
// ends the spell.
func TestSpaceWaitGivesUpAfterTheBound(t *testing.T) {
	clock := &fakeClock{t: time.Unix(0, 0)}
	var ev events
	w := clock.wait(&SpaceWait{Max: 10 * time.Second, Watch: &ev, Hint: StoreHint{Where: "the store in x", Fix: "make room"}})
	refuse := func() error { return refusal }
	err := w.Do(context.Background(), 4096, refuse)
	var full *StoreFullError
	if !errors.As(err, &full) || full.Waited != 10*time.Second || full.Size != 4096 || full.Limit != ServerLimit {
		t.Fatalf("Do = %#v; want a StoreFullError of a 4096-byte write after waiting 10s", err)
	}
	if since, last, ok := w.Full(); !ok || !since.Equal(time.Unix(0, 0)) || last == nil {
		t.Errorf("Full() = %v, %v, %t; want full since the first refusal", since, last, ok)
	}

	ev = nil
	calls := 0
	err = w.Do(context.Background(), 0, func() error { calls++; return refusal })
	if !errors.As(err, &full) || calls != 1 {
		t.Errorf("a write during a spell older than the bound: %v after %d calls; want a StoreFullError after 1", err, calls)
	}
	if diff := cmp.Diff(events{"refused first=true waited=10s", "ended true"}, ev); diff != "" {
		t.Errorf("watcher heard (-want +got):\n%s", diff)
	}

	w.Room()
	if _, _, ok := w.Full(); ok {
		t.Error("Room did not end the spell")
	}
	calls = 0
	err = w.Do(context.Background(), 0, func() error {
		calls++
		if calls == 1 {
			return refusal
		}
		return nil
	})
	if err != nil || calls != 2 {
		t.Errorf("a write after the spell: %v after %d calls; want it to wait again and go through", err, calls)
	}
}

// Without a SpaceWait a refusal is returned at once, and other errors are
// returned as they are.
func TestSpaceWaitNil(t *testing.T) {
	var w *SpaceWait
	calls := 0
	err := w.Do(context.Background(), 0, func() error { calls++; return refusal })
	var full *StoreFullError
	if !errors.As(err, &full) || calls != 1 || full.Waited != 0 {
		t.Errorf("nil SpaceWait: %v after %d calls; want a StoreFullError at once", err, calls)
	}
	if w.Room(); func() bool { _, _, ok := w.Full(); return ok }() {
		t.Error("a nil SpaceWait says full")
	}
	other := errors.New("boom")
	if err := RetryTransient(context.Background(), func() error { return other }); err != other {
		t.Errorf("RetryTransient changed a plain error: %v", err)
	}
}
