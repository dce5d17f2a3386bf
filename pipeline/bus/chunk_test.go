package bus_test

import (
	"bytes"
	"errors"
	"strings"
	"testing"

	"github.com/nats-io/nats.go"

	"github.com/mftflow/mftflow/pipeline/bus"
	"github.com/mftflow/mftflow/testkit"
)

func TestCodecRoundTrip(t *testing.T) {
	text := []byte(strings.Repeat("order,customer,amount\n", 5000))
	random := testkit.RandomContent(1, 100<<10)
	for _, comp := range []string{"none", "s2", "zstd"} {
		c, err := bus.NewCodec(comp)
		if err != nil {
			t.Fatal(err)
		}
		for _, tc := range []struct {
			name       string
			data       []byte
			compressed bool
		}{
			{"empty", nil, false},
			{"tiny", []byte("x"), false},
			{"text", text, comp != "none"},
			{"random", random, false},                                // does not shrink: sent as it is
			{"large random", testkit.RandomContent(2, 1<<20), false}, // its sample does not shrink: not even tried
			{"large text", []byte(strings.Repeat("order,customer,amount\n", 50000)), comp != "none"},
		} {
			for _, last := range []bool{false, true} {
				m := c.Encode("mft.f.chunk.x", bus.Chunk{Index: 7, Data: tc.data, Last: last})
				if got := m.Header.Get(bus.HeaderEnc) != ""; got != tc.compressed {
					t.Errorf("%s/%s: compressed %v, want %v", comp, tc.name, got, tc.compressed)
				}
				ch, err := c.Decode(m.Header, m.Data)
				if err != nil {
					t.Fatalf("%s/%s: %v", comp, tc.name, err)
				}
				if ch.Index != 7 || ch.Last != last || !bytes.Equal(ch.Data, tc.data) {
					t.Errorf("%s/%s: decoded index %d last %v, %d bytes; want 7, %v, %d bytes", comp, tc.name, ch.Index, ch.Last, len(ch.Data), last, len(tc.data))
				}
			}
		}
	}
}

// Every codec reads what any other wrote: the compression setting may change
// between runs while chunks are on the bus.
func TestCodecsReadEachOther(t *testing.T) {
	text := []byte(strings.Repeat("abc", 10000))
	for _, from := range []string{"none", "s2", "zstd"} {
		enc, _ := bus.NewCodec(from)
		m := enc.Encode("s", bus.Chunk{Data: text})
		for _, to := range []string{"none", "s2", "zstd"} {
			dec, _ := bus.NewCodec(to)
			if ch, err := dec.Decode(m.Header, m.Data); err != nil || !bytes.Equal(ch.Data, text) {
				t.Errorf("%s → %s: %v", from, to, err)
			}
		}
	}
}

func TestCodecDetectsCorruption(t *testing.T) {
	c, _ := bus.NewCodec("s2")
	good := c.Encode("s", bus.Chunk{Index: 3, Data: []byte(strings.Repeat("hello ", 1000))})
	raw := c.Encode("s", bus.Chunk{Index: 3, Data: []byte("plain")})
	flip := func(b []byte) []byte { b = bytes.Clone(b); b[len(b)/2] ^= 1; return b }
	with := func(m *nats.Msg, k, v string) nats.Header {
		h := nats.Header{}
		for key, vals := range m.Header {
			h[key] = append([]string(nil), vals...)
		}
		h.Set(k, v)
		return h
	}
	for _, tc := range []struct {
		name string
		h    nats.Header
		data []byte
		want string
	}{
		{"flipped compressed byte", good.Header, flip(good.Data), "corrupt chunk: chunk 3: "},
		{"flipped raw byte", raw.Header, flip(raw.Data), "corrupt chunk: chunk 3: checksum "},
		{"wrong length", with(raw, bus.HeaderLen, "4"), raw.Data, "corrupt chunk: chunk 3: 5 bytes, header says 4"},
		{"bad index", with(raw, bus.HeaderIndex, "x"), raw.Data, `corrupt chunk: bad Mft-Index header "x"`},
		{"unknown encoding", with(raw, bus.HeaderEnc, "lz4"), raw.Data, `corrupt chunk: chunk 3: unknown encoding "lz4"`},
	} {
		_, err := c.Decode(tc.h, tc.data)
		if err == nil || !errors.Is(err, bus.ErrCorrupt) || !strings.HasPrefix(err.Error(), tc.want) {
			t.Errorf("%s: got %v, want an ErrCorrupt starting %q", tc.name, err, tc.want)
		}
	}
}

func FuzzDecode(f *testing.F) {
	c, _ := bus.NewCodec("zstd")
	for _, d := range [][]byte{nil, []byte("x"), []byte(strings.Repeat("ab", 600))} {
		m := c.Encode("s", bus.Chunk{Index: 1, Data: d})
		f.Add(m.Header.Get(bus.HeaderIndex), m.Header.Get(bus.HeaderLen), m.Header.Get(bus.HeaderSum), m.Header.Get(bus.HeaderEnc), "", m.Data)
		r := c.Encode("s", bus.RefTo(2, d, true))
		f.Add(r.Header.Get(bus.HeaderIndex), r.Header.Get(bus.HeaderLen), r.Header.Get(bus.HeaderSum), "", r.Header.Get(bus.HeaderRef), r.Data)
	}
	f.Fuzz(func(t *testing.T, idx, n, sum, enc, ref string, data []byte) {
		h := nats.Header{}
		h.Set(bus.HeaderIndex, idx)
		h.Set(bus.HeaderLen, n)
		h.Set(bus.HeaderSum, sum)
		if enc != "" {
			h.Set(bus.HeaderEnc, enc)
		}
		if ref != "" {
			h.Set(bus.HeaderRef, ref)
		}
		ch, err := c.Decode(h, data)
		if err != nil {
			if !errors.Is(err, bus.ErrCorrupt) {
				t.Fatalf("error %v is not ErrCorrupt", err)
			}
			return
		}
		if again := c.Encode("s", ch); again.Header.Get(bus.HeaderSum) != sum {
			t.Fatalf("accepted a chunk whose checksum does not match")
		}
	})
}

func TestBitmap(t *testing.T) {
	var b bus.Bitmap
	for _, n := range []int{0, 7, 8, 63, 1000} {
		b = b.Set(n)
	}
	for n := 0; n < 1100; n++ {
		want := n == 0 || n == 7 || n == 8 || n == 63 || n == 1000
		if b.Has(n) != want {
			t.Errorf("Has(%d) = %v", n, !want)
		}
	}
	if b.Count() != 5 {
		t.Errorf("Count = %d, want 5", b.Count())
	}
}

func TestFileIDIsStableAndScoped(t *testing.T) {
	if first, again := bus.FileID("a", "k"), bus.FileID("a", "k"); first != again {
		t.Error("same flow and key gave different ids")
	}
	if bus.FileID("a", "k") == bus.FileID("b", "k") || bus.FileID("a", "k1") == bus.FileID("a", "k") {
		t.Error("different flows or keys gave the same id")
	}
	if bus.FileID("a\x00b", "c") == bus.FileID("a", "b\x00c") {
		t.Error("flow and key run together")
	}
}
