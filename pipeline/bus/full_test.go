package bus_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/mftflow/mftflow/pipeline/bus"
)

func apiErr(code, errCode int, desc string) error {
	return &jetstream.APIError{Code: code, ErrorCode: jetstream.ErrorCode(errCode), Description: desc}
}

// JetStream's answers for a store without room are told apart by their
// error codes (nats-server's errors.json), wrapped or not; nothing else is
// taken for one.
func TestStoreFullClassification(t *testing.T) {
	for _, tc := range []struct {
		name string
		err  error
		want bus.StoreLimit
	}{
		{"insufficient resources", apiErr(503, 10023, "insufficient resources"), bus.ServerLimit},
		{"wrapped", fmt.Errorf("publishing chunk 3: %w", apiErr(503, 10023, "insufficient resources")), bus.ServerLimit},
		{"storage resources exceeded", apiErr(500, 10047, "insufficient storage resources available"), bus.ServerLimit},
		{"account limit", apiErr(400, 10002, "resource limits exceeded for account"), bus.AccountLimit},
		{"stream max_bytes", apiErr(503, 10077, "maximum bytes exceeded"), bus.StreamLimit},
		{"other store failure", apiErr(503, 10077, "message size exceeds maximum allowed"), 0},
		{"cluster unavailable", apiErr(503, 10008, "JetStream system temporarily unavailable"), 0},
		{"memory", apiErr(500, 10028, "insufficient memory resources available"), 0},
		{"timeout", nats.ErrTimeout, 0},
		{"plain", errors.New("insufficient resources"), 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			full := bus.AsStoreFull(tc.err, bus.StoreHint{}, 0)
			if got := bus.IsStoreFull(tc.err); got != (tc.want != 0) {
				t.Errorf("IsStoreFull = %t, want %t", got, tc.want != 0)
			}
			if tc.want == 0 {
				if full != nil {
					t.Errorf("AsStoreFull = %v, want nil", full)
				}
				return
			}
			if full == nil || full.Limit != tc.want {
				t.Fatalf("AsStoreFull = %#v, want limit %d", full, tc.want)
			}
			var api *jetstream.APIError
			if !errors.Is(full, bus.ErrStoreFull) || !errors.As(full, &api) {
				t.Errorf("%v: not ErrStoreFull, or the server's error is lost", full)
			}
			if again := bus.AsStoreFull(fmt.Errorf("x: %w", full), bus.StoreHint{}, 0); again != full {
				t.Errorf("AsStoreFull of a wrapped StoreFullError made a new one: %v", again)
			}
		})
	}
}

// The message says plainly what is full, where, how much was asked and
// what to do.
func TestStoreFullMessage(t *testing.T) {
	refusal := apiErr(503, 10023, "insufficient resources")
	for _, tc := range []struct {
		name string
		err  *bus.StoreFullError
		want string
	}{
		{"embedded", &bus.StoreFullError{Limit: bus.ServerLimit, Store: bus.EmbeddedStoreHint("./.mftflow", "--data"), Size: 1 << 20, Remaining: 150 << 20, Waited: 2 * time.Minute, Err: refusal},
			"the bus store is full: the embedded server's store in .mftflow/jetstream refused a write of 1.0 MiB with 150.0 MiB of the file still to go, and no room came for 2m0s: " +
				"free space on that file system and run again (the embedded server takes up to 75% of the space free when it starts), move --data to a larger file system, " +
				"or lower bus.window or bus.retention (JetStream: insufficient resources, error 10023)"},
		{"external", &bus.StoreFullError{Limit: bus.ServerLimit, Err: refusal},
			"the bus store is full: the NATS server's JetStream storage refused a write: free space on the server's disk or raise its JetStream max_file_store, " +
				"or lower bus.window or bus.retention (JetStream: insufficient resources, error 10023)"},
		{"account", &bus.StoreFullError{Limit: bus.AccountLimit, Size: 300, Err: apiErr(400, 10002, "resource limits exceeded for account")},
			"the bus store is full: the NATS account's JetStream storage limit refused a write of 300 B: raise the account's JetStream file storage limit, " +
				"or lower bus.window or bus.retention (JetStream: resource limits exceeded for account, error 10002)"},
	} {
		if got := tc.err.Error(); got != tc.want {
			t.Errorf("%s:\n got %s\nwant %s", tc.name, got, tc.want)
		}
	}
}

// A real server whose store is used up refuses chunk publishes and record
// writes alike with an error taken for a full store; removing chunks makes
// room again.
func TestStoreFullFromAServer(t *testing.T) {
	srv, err := bus.StartEmbedded(t.TempDir(), bus.WithMaxStore(2<<20))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv.Shutdown)
	js := newJS(t, srv.URL())
	fb := ensure(t, js, "full", 1)
	ctx := context.Background()
	chunk := make([]byte, 256<<10)
	var perr error
	for i := 0; i < 64 && perr == nil; i++ {
		_, perr = js.Publish(ctx, fb.ChunkSubject("f"), chunk)
	}
	full := bus.AsStoreFull(perr, bus.ServerStore, int64(len(chunk)))
	if full == nil || full.Limit != bus.ServerLimit {
		t.Fatalf("publishing 16 MiB into a 2 MiB store: %v; want a refusal for want of room", perr)
	}

	_, err = bus.Update(ctx, fb.Store, bus.ManifestKey("f"), func(m *bus.Manifest, exists bool) error {
		m.Name = "f"
		return nil
	})
	if !errors.As(err, &full) || !strings.HasPrefix(err.Error(), "writing file.f: the bus store is full: the NATS server's JetStream storage refused a write of ") {
		t.Fatalf("record write into a full store: %v; want a StoreFullError", err)
	}

	// With a wait, the write goes through once room is made.
	fb.Store.Space = &bus.SpaceWait{Max: time.Minute}
	go func() {
		time.Sleep(300 * time.Millisecond)
		fb.Chunks.Purge(ctx, jetstream.WithPurgeSubject(fb.ChunkSubject("f")))
	}()
	if _, err := bus.Update(ctx, fb.Store, bus.ManifestKey("f"), func(m *bus.Manifest, exists bool) error {
		m.Name = "f"
		return nil
	}); err != nil {
		t.Fatalf("record write waiting for room: %v", err)
	}
	if _, _, ok := fb.Store.Space.Full(); ok {
		t.Error("the store is still taken for full after the write went through")
	}
}
