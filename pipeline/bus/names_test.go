package bus_test

import (
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/mftflow/mftflow/pipeline/bus"
)

// TestParseKeyRoundTrip builds each kind of key and takes it apart again.
func TestParseKeyRoundTrip(t *testing.T) {
	const id, sink = "0123456789abcdef0123456789abcdef", "out_2-b"
	for _, tc := range []struct {
		key  string
		want bus.Key
	}{
		{bus.ManifestKey(id), bus.Key{Kind: bus.KeyManifest, ID: id}},
		{bus.DeliveryKey(id, sink), bus.Key{Kind: bus.KeyDelivery, ID: id, Sink: sink}},
		{bus.GroupKey(id), bus.Key{Kind: bus.KeyGroup, ID: id}},
		{bus.GroupDeliveryKey(id, sink), bus.Key{Kind: bus.KeyGroupDelivery, ID: id, Sink: sink}},
		{bus.ReplayKey(id), bus.Key{Kind: bus.KeyReplay, ID: id}},
		{bus.PollKey, bus.Key{Kind: bus.KeyPoll}},
	} {
		got, ok := bus.ParseKey(tc.key)
		if !ok {
			t.Errorf("ParseKey(%q): not a key", tc.key)
			continue
		}
		if diff := cmp.Diff(tc.want, got); diff != "" {
			t.Errorf("ParseKey(%q) (-want +got):\n%s", tc.key, diff)
		}
	}
}

// TestParseKeyRejects lists keys that no builder makes.
func TestParseKeyRejects(t *testing.T) {
	for _, key := range []string{"", "file", "file.", "file.a.b", "grp.", "replay.a.b", "dlv.a", "gdlv", "poll.x", "src.lease", "other.a"} {
		if k, ok := bus.ParseKey(key); ok {
			t.Errorf("ParseKey(%q) = %+v, want no key", key, k)
		}
	}
}
