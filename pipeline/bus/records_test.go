package bus_test

import (
	"context"
	"testing"

	"github.com/mftflow/mftflow/pipeline/bus"
	"github.com/mftflow/mftflow/testkit"
)

type counter struct {
	N    int    `json:"n"`
	Note string `json:"note,omitempty"`
}

// UpdateFrom writes in one round trip from a current revision and falls
// back to reading the record when the revision it was given is stale, so a
// write made meanwhile by someone else is never lost.
func TestUpdateFrom(t *testing.T) {
	ctx := context.Background()
	fb := ensure(t, newJS(t, testkit.StartNATS(t)), "records", 1)
	incr := func(c *counter, exists bool) error { c.N++; return nil }

	// Revision 0 expects no record: created in one write.
	v1, err := bus.UpdateFrom(ctx, fb.Store, "k", bus.Versioned[counter]{}, incr)
	if err != nil || v1.V.N != 1 || v1.Rev == 0 {
		t.Fatalf("first write: %+v, %v; want n=1 at a revision", v1, err)
	}
	v2, err := bus.UpdateFrom(ctx, fb.Store, "k", v1, incr)
	if err != nil || v2.V.N != 2 || v2.Rev <= v1.Rev {
		t.Fatalf("write from the current revision: %+v, %v; want n=2 at a later revision", v2, err)
	}

	// Someone else writes; a write from the stale v2 must build on theirs.
	if _, err := bus.Update(ctx, fb.Store, "k", func(c *counter, exists bool) error { c.N, c.Note = 10, "theirs"; return nil }); err != nil {
		t.Fatal(err)
	}
	v3, err := bus.UpdateFrom(ctx, fb.Store, "k", v2, incr)
	if err != nil || v3.V.N != 11 || v3.V.Note != "theirs" {
		t.Fatalf("write from a stale revision: %+v, %v; want n=11 with their note", v3, err)
	}
	// A stale revision 0 (the record exists after all) too.
	v4, err := bus.UpdateFrom(ctx, fb.Store, "k", bus.Versioned[counter]{}, incr)
	if err != nil || v4.V.N != 12 {
		t.Fatalf("create over an existing record: %+v, %v; want n=12", v4, err)
	}

	// ErrUnchanged decided on a stale copy is decided again on the record.
	calls := 0
	v5, err := bus.UpdateFrom(ctx, fb.Store, "k", v2, func(c *counter, exists bool) error {
		calls++
		if c.N < 12 {
			return bus.ErrUnchanged
		}
		c.Note = "seen 12"
		return nil
	})
	if err != nil || calls != 2 || v5.V.Note != "seen 12" || v5.V.N != 12 {
		t.Fatalf("unchanged on a stale copy: %+v, %v, %d calls; want the note written after reading n=12", v5, err, calls)
	}
	var got counter
	if rev, err := fb.Store.Get(ctx, "k", &got); err != nil || rev != v5.Rev || got != v5.V {
		t.Fatalf("stored %+v at %d, %v; want %+v at %d", got, rev, err, v5.V, v5.Rev)
	}
}

func TestBitmapPrefix(t *testing.T) {
	var b bus.Bitmap
	for _, n := range []int{0, 1, 2, 4, 9} {
		b = b.Set(n)
	}
	p := b.Prefix()
	for n := range 12 {
		if p.Has(n) != (n <= 2) {
			t.Errorf("Prefix of {0,1,2,4,9} has %d: %v", n, p.Has(n))
		}
	}
	if bus.Bitmap(nil).Set(1).Prefix() != nil {
		t.Error("Prefix of {1} is not empty")
	}
}
