package bus_test

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/mftflow/mftflow/pipeline"
	"github.com/mftflow/mftflow/pipeline/bus"
)

// FuzzNamesStayDistinct follows two source names through what the engine
// does to a name on its way to a sink: the source check, the manifest and
// delivery records in KV, the default name template and a local sink's
// path. Two different names that pass must never become one.
func FuzzNamesStayDistinct(f *testing.F) {
	for _, p := range [][2]string{
		{"\xff.txt", "\xfe.txt"}, {"\x80.txt", "\uFFFD.txt"}, {"a//b", "a/b"}, {"./a", "a"},
		{"a/", "a"}, {"d\xe9j\xe0/vu", "déjà/vu"}, {`{"base64":"eA=="}`, "x"}, {"ok.txt", "ok.txt "},
	} {
		f.Add(p[0], p[1])
	}
	const dir = "/srv/out"
	through := func(t *testing.T, name string) (string, bool) {
		if pipeline.CheckSourceName(name) != nil {
			return "", false
		}
		b, err := json.Marshal(bus.Manifest{Key: name, Name: name})
		if err != nil {
			t.Fatalf("encoding the manifest of %q: %v", name, err)
		}
		var m bus.Manifest
		if err := json.Unmarshal(b, &m); err != nil {
			t.Fatalf("decoding the manifest of %q: %v", name, err)
		}
		if m.Name != name || m.Key != name {
			t.Fatalf("manifest of %q came back as name %q, key %q", name, m.Name, m.Key)
		}
		b, _ = json.Marshal(bus.Delivery{Name: name})
		var d bus.Delivery
		if err := json.Unmarshal(b, &d); err != nil || d.Name != name {
			t.Fatalf("delivery record of %q came back as %q (%v)", name, d.Name, err)
		}
		out, err := pipeline.ExpandName("{name}", pipeline.File{Name: m.Name}, time.Time{})
		if err != nil || out != name {
			t.Fatalf("{name} of %q = %q, %v", name, out, err)
		}
		p, err := pipeline.JoinInside(dir, out)
		if err != nil {
			t.Fatalf("a name the source check accepts is refused by the sink: %q: %v", name, err)
		}
		return p, true
	}
	f.Fuzz(func(t *testing.T, a, b string) {
		pa, oka := through(t, a)
		pb, okb := through(t, b)
		if oka && okb && a != b && pa == pb {
			t.Fatalf("%q and %q both become %q", a, b, pa)
		}
	})
}
