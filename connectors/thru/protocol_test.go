package thru

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"
)

var testKey = []byte("0123456789abcdef")

func TestAuthHeaderRoundTrip(t *testing.T) {
	fixed, err := CBCFixedIV(testKey, []byte("fedcba9876543210"))
	if err != nil {
		t.Fatal(err)
	}
	random, err := CBCRandomIV(testKey)
	if err != nil {
		t.Fatal(err)
	}
	at := time.Date(2026, 11, 22, 10, 4, 5, 0, time.FixedZone("CET", 3600))
	claims := HeaderClaims{SiteURL: "site.thruinc.com", SiteAccessKey: "access", FlowSecretKey: "secret", Time: at}
	if got, want := claims.Plaintext(), "site.thruinc.com|access|secret|2026-11-22T09:04:05Z"; got != want {
		t.Fatalf("plaintext = %q, want %q", got, want)
	}
	if s := fmt.Sprint(claims); strings.Contains(s, "access") || strings.Contains(s, "secret") {
		t.Fatalf("printing claims shows the keys: %s", s)
	}
	for name, c := range map[string]HeaderCipher{"random-iv": random, "fixed-iv": fixed} {
		t.Run(name, func(t *testing.T) {
			v1, err := EncodeAuthHeader(c, claims)
			if err != nil {
				t.Fatal(err)
			}
			if !strings.HasPrefix(v1, "TransportMgrAuthHeader ") {
				t.Fatalf("header %q lacks the scheme", v1)
			}
			got, tok, err := DecodeAuthHeader(c, v1)
			if err != nil {
				t.Fatal(err)
			}
			if got != (HeaderClaims{SiteURL: "site.thruinc.com", SiteAccessKey: "access", FlowSecretKey: "secret", Time: at.UTC()}) {
				t.Fatalf("decoded %+v", got)
			}
			if tok != strings.TrimPrefix(v1, "TransportMgrAuthHeader ") {
				t.Fatalf("token %q", tok)
			}
			v2, _ := EncodeAuthHeader(c, claims)
			if (v1 == v2) != (name == "fixed-iv") {
				t.Fatalf("two encodings equal = %v", v1 == v2)
			}
		})
	}
	// A header from another key or mode does not decrypt.
	other, _ := CBCRandomIV([]byte("another key 16b!"))
	v, _ := EncodeAuthHeader(random, claims)
	if _, _, err := DecodeAuthHeader(other, v); !errors.Is(err, ErrBadAuthHeader) {
		t.Fatalf("wrong key: err = %v", err)
	}
	if _, err := EncodeAuthHeader(random, HeaderClaims{SiteAccessKey: "a|b"}); err == nil {
		t.Fatal("a '|' in a field was accepted")
	}
}

func TestDecodeAuthHeaderErrors(t *testing.T) {
	c, _ := CBCRandomIV(testKey)
	good := func(plain string) string {
		tok, _ := c.Encrypt([]byte(plain))
		return "TransportMgrAuthHeader " + tok
	}
	for _, v := range []string{
		"", "Bearer abc", "TransportMgrAuthHeader", "TransportMgrAuthHeader !!!",
		"TransportMgrAuthHeader QUJD",
		good("a|b|c"), good("a|b|c|yesterday"), good("a|b|c|d|2026-11-22T10:04:05Z"),
	} {
		if _, _, err := DecodeAuthHeader(c, v); !errors.Is(err, ErrBadAuthHeader) {
			t.Errorf("DecodeAuthHeader(%q) err = %v, want ErrBadAuthHeader", v, err)
		}
	}
}

func TestParseKey(t *testing.T) {
	for _, s := range []string{"000102030405060708090a0b0c0d0e0f", "AAECAwQFBgcICQoLDA0ODw=="} {
		k, err := ParseKey(s)
		if err != nil || len(k) != 16 || k[15] != 15 {
			t.Errorf("ParseKey(%q) = %v, %v", s, k, err)
		}
	}
	for _, s := range []string{"", "00", "not a key at all", "AAECAwQFBgcICQoLDA0ODxA="} {
		if _, err := ParseKey(s); err == nil || strings.Contains(err.Error(), s) && s != "" {
			t.Errorf("ParseKey(%q) err = %v", s, err)
		}
	}
	if _, err := NewHeaderCipher("ecb", "000102030405060708090a0b0c0d0e0f", ""); err == nil {
		t.Error("unknown mode accepted")
	}
	if _, err := NewHeaderCipher(ModeCBCFixedIV, "000102030405060708090a0b0c0d0e0f", "x"); err == nil {
		t.Error("bad IV accepted")
	}
}

func TestDropOffPartNames(t *testing.T) {
	if got := ChunkZeroName("FL1"); got != "FL1_Chunk000000.txt" {
		t.Errorf("ChunkZeroName = %q", got)
	}
	if got := ChunkName("FL1", 15); got != "FL1_Chunk000015" {
		t.Errorf("ChunkName = %q", got)
	}
	if got := EOFName("FL1"); got != "EOFFL1" {
		t.Errorf("EOFName = %q", got)
	}
	for _, tc := range []struct {
		name string
		kind DropOffPartKind
		code string
		n    int
	}{
		{"FL5885807902_Chunk000000.txt", PartChunkZero, "FL5885807902", 0},
		{"FL5885807902_Chunk000001", PartContent, "FL5885807902", 1},
		{"FL5885807902_Chunk999999", PartContent, "FL5885807902", 999999},
		{"EOFFL5885807902", PartEOF, "FL5885807902", 0},
	} {
		kind, code, n, err := ParseDropOffPartName(tc.name)
		if err != nil || kind != tc.kind || code != tc.code || n != tc.n {
			t.Errorf("ParseDropOffPartName(%q) = %v %q %d %v", tc.name, kind, code, n, err)
		}
	}
	for _, bad := range []string{"", "FL1_Chunk000000", "FL1_Chunk000001.txt", "FL1-Chunk000001", "FL1_Chunk1", "EOF", "EOFFL-1", "FL1_Chunk0000001"} {
		if _, _, _, err := ParseDropOffPartName(bad); err == nil {
			t.Errorf("ParseDropOffPartName(%q) accepted", bad)
		}
	}
}

func TestPickupDisposition(t *testing.T) {
	for _, name := range []string{"a.csv", "report 2026.txt", `quote".txt`, "naïve-ñ.csv", "a-b-c"} {
		code, got, err := ParsePickupDisposition(PickupDisposition("FL42", name))
		if err != nil || code != "FL42" || got != name {
			t.Errorf("round trip of %q: %q %q %v", name, code, got, err)
		}
	}
	for name, want := range map[string]string{
		"a.csv":     `attachment; filename="FL42-a.csv"`,
		"a b.csv":   `attachment; filename="FL42-a b.csv"`,
		`q"uote`:    `attachment; filename="FL42-q\"uote"`,
		"naïve.csv": `attachment; filename*=utf-8''FL42-na%C3%AFve.csv`,
	} {
		if got := PickupDisposition("FL42", name); got != want {
			t.Errorf("PickupDisposition(FL42, %q) = %s, want %s", name, got, want)
		}
	}
	for _, bad := range []string{"", "attachment", `attachment; filename="a.csv"`, `attachment; filename="FL1-"`} {
		if _, _, err := ParsePickupDisposition(bad); err == nil {
			t.Errorf("ParsePickupDisposition(%q) accepted", bad)
		}
	}
}

func TestEndpointPath(t *testing.T) {
	p, err := ParseEndpointPath("flow:FLCKGR/endpoint:END9GSR/flowendpoint:6")
	if err != nil || p != (EndpointPath{"FLCKGR", "END9GSR", "6"}) {
		t.Fatalf("got %+v, %v", p, err)
	}
	if p.String() != "flow:FLCKGR/endpoint:END9GSR/flowendpoint:6" {
		t.Fatalf("String = %q", p)
	}
	for _, bad := range []string{"", "flow:A/endpoint:B", "flow:A/endpoint:B/flowendpoint:", "flow:A/endpoint:B/flowendpoint:6/", "endpoint:B/flow:A/flowendpoint:6", "flow:A B/endpoint:B/flowendpoint:6", "flow:A/endpoint:../flowendpoint:6"} {
		if _, err := ParseEndpointPath(bad); !errors.Is(err, ErrBadEndpointPath) {
			t.Errorf("ParseEndpointPath(%q) err = %v", bad, err)
		}
	}
}

func FuzzDecodeAuthHeader(f *testing.F) {
	c, _ := CBCRandomIV(testKey)
	v, _ := EncodeAuthHeader(c, HeaderClaims{SiteURL: "s", SiteAccessKey: "a", FlowSecretKey: "k", Time: time.Unix(0, 0)})
	f.Add(v)
	f.Add("TransportMgrAuthHeader AAAA")
	f.Add("")
	f.Fuzz(func(t *testing.T, v string) {
		claims, _, err := DecodeAuthHeader(c, v)
		if err != nil {
			return
		}
		// Whatever decodes re-encodes to the same claims.
		again, err := EncodeAuthHeader(c, claims)
		if err != nil {
			return // a field with '|' cannot come out of a 4-field split
		}
		back, _, err := DecodeAuthHeader(c, again)
		if err != nil || back != claims {
			t.Fatalf("re-encoding %+v gave %+v, %v", claims, back, err)
		}
	})
}

func FuzzParseEndpointPath(f *testing.F) {
	f.Add("flow:FLCKGR/endpoint:END9GSR/flowendpoint:6")
	f.Add("flow:/endpoint:/flowendpoint:")
	f.Fuzz(func(t *testing.T, s string) {
		p, err := ParseEndpointPath(s)
		if err != nil {
			return
		}
		if p.String() != s {
			t.Fatalf("%q parsed to %+v which prints as %q", s, p, p)
		}
		if again, err := ParseEndpointPath(p.String()); err != nil || again != p {
			t.Fatalf("round trip of %+v: %+v, %v", p, again, err)
		}
	})
}
