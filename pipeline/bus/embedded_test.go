package bus_test

import (
	"testing"
	"time"

	"github.com/mftflow/mftflow/pipeline/bus"
)

func TestEmbeddedSync(t *testing.T) {
	for _, tc := range []struct {
		name string
		opts []bus.EmbeddedOption
		want bus.Sync
	}{
		{"default", nil, bus.Sync{Interval: bus.DefaultSyncInterval}},
		{"always", []bus.EmbeddedOption{bus.WithSync(bus.Sync{Always: true})}, bus.Sync{Always: true, Interval: bus.DefaultSyncInterval}},
		{"interval", []bus.EmbeddedOption{bus.WithSync(bus.Sync{Interval: 5 * time.Second})}, bus.Sync{Interval: 5 * time.Second}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv, err := bus.StartEmbedded(t.TempDir(), tc.opts...)
			if err != nil {
				t.Fatal(err)
			}
			defer srv.Shutdown()
			if got := srv.Sync(); got != tc.want {
				t.Errorf("the server's JetStream syncs %+v, want %+v", got, tc.want)
			}
		})
	}
}

func TestSyncString(t *testing.T) {
	for _, tc := range []struct {
		s    bus.Sync
		want string
	}{
		{bus.Sync{}, "2m0s"},
		{bus.Sync{Always: true}, "always"},
		{bus.Sync{Interval: 10 * time.Second}, "10s"},
	} {
		if got := tc.s.String(); got != tc.want {
			t.Errorf("%+v: %q, want %q", tc.s, got, tc.want)
		}
	}
}
