package bus

import (
	"context"
	"errors"
	"testing"

	"github.com/nats-io/nats.go"
)

// A request of Ensure whose answer never comes is sent again with a fresh
// deadline; a server without JetStream (no responders) is said at once.
func TestRetriedSendsALostRequestAgain(t *testing.T) {
	calls := 0
	v, err := retried(context.Background(), func(ctx context.Context) (int, error) {
		calls++
		if _, ok := ctx.Deadline(); !ok {
			t.Error("an attempt without a deadline")
		}
		if calls < 3 {
			return 0, context.DeadlineExceeded
		}
		return 42, nil
	})
	if v != 42 || err != nil || calls != 3 {
		t.Errorf("retried = %d, %v after %d calls; want 42, nil after 3", v, err, calls)
	}

	calls = 0
	_, err = retried(context.Background(), func(ctx context.Context) (int, error) {
		calls++
		return 0, nats.ErrNoResponders
	})
	if !errors.Is(err, nats.ErrNoResponders) || calls != 1 {
		t.Errorf("no responders: %v after %d calls; want it at once", err, calls)
	}
}
