package thrusim

import (
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/mftflow/mftflow/connectors/thru"
)

func TestLoadConfig(t *testing.T) {
	dir := t.TempDir()
	yml := filepath.Join(dir, "site.yaml")
	os.WriteFile(yml, []byte(`
site_access_key: access
aes_key: 000102030405060708090a0b0c0d0e0f
timestamp_window: 5m
pickup_delay: 0s
flows:
  - code: TRN1
    secret_key: s1
    pickup_delay: 2s
    endpoints:
      - {code: END1, id: "6", name_pattern: "*.csv"}
api_keys: [k1]
`), 0o600)
	c, err := LoadConfig(yml)
	if err != nil {
		t.Fatal(err)
	}
	if time.Duration(c.TimestampWindow) != 5*time.Minute || time.Duration(*c.PickupDelay) != 0 ||
		time.Duration(*c.Flows[0].PickupDelay) != 2*time.Second || c.Flows[0].Endpoints[0].NamePattern != "*.csv" || c.APIKeys[0] != "k1" {
		t.Fatalf("config = %+v", c)
	}
	js := filepath.Join(dir, "site.json")
	os.WriteFile(js, []byte(`{"aes_key": "000102030405060708090a0b0c0d0e0f", "flows": [{"code": "TRN1", "secret_key": "s"}], "max_chunk_size": 1024}`), 0o600)
	if c, err := LoadConfig(js); err != nil || c.MaxChunkSize != 1024 {
		t.Fatalf("json config: %+v %v", c, err)
	}
	os.WriteFile(yml, []byte("flows:\n  - code: A\n    secret: x\n"), 0o600)
	if _, err := LoadConfig(yml); err == nil || !strings.Contains(err.Error(), "secret") {
		t.Fatalf("unknown key: %v", err)
	}
}

func TestNewRejectsBadConfig(t *testing.T) {
	for _, c := range []Config{
		{Flows: []FlowConfig{{Code: "A", SecretKey: "s"}, {Code: "A", SecretKey: "t"}}},
		{Flows: []FlowConfig{{Code: "A", SecretKey: "s"}, {Code: "B", SecretKey: "s"}}},
		{Flows: []FlowConfig{{Code: "A"}}},
		{Flows: []FlowConfig{{Code: "A", SecretKey: "s", Endpoints: []EndpointConfig{{Code: "E/1", ID: "1"}}}}},
		{AESKey: "short"},
	} {
		if _, err := New(c); err == nil {
			t.Errorf("New(%+v) accepted", c)
		}
	}
}

func TestAdminHTTP(t *testing.T) {
	s := Start(t, Config{AESKey: "000102030405060708090a0b0c0d0e0f", Admin: true, PickupDelay: D(0),
		Flows: []FlowConfig{{Code: "TRN1", SecretKey: "s"}}})
	do := func(method, path, body string) (int, string) {
		req, _ := http.NewRequest(method, s.URL+path, strings.NewReader(body))
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	for _, path := range []string{"/_admin/deliveries", "/_admin/outcomes", "/_admin/calls"} {
		if st, body := do("GET", path, ""); st != 200 || body != "[]\n" {
			t.Errorf("GET %s on a new site: %d %q; want an empty list, []", path, st, body)
		}
	}
	st, body := do("POST", "/_admin/pickup/TRN1?name=a.csv", "hello")
	var got struct{ FileCode string }
	if st != 200 || json.Unmarshal([]byte(body), &got) != nil || !thru.ValidFileCode(got.FileCode) || s.PickupQueue("TRN1") != 1 {
		t.Fatalf("pickup: %d %s", st, body)
	}
	if st, _ := do("POST", "/_admin/pickup/NOPE?name=a", "x"); st != 400 {
		t.Fatalf("pickup to an unknown flow: %d", st)
	}
	if st, body := do("PUT", "/_admin/faults", `{"failRate": 1, "failStatus": 500, "latency": "1ms"}`); st != 200 {
		t.Fatalf("faults: %d %s", st, body)
	}
	if st, _ := do("GET", thru.PathPickup+"TRN1", ""); st != 500 {
		t.Fatalf("call with failRate 1: %d", st)
	}
	do("PUT", "/_admin/faults", `{}`)
	do("POST", "/_admin/fail-nth", `{"kind": "pickup", "n": 2, "status": 429}`)
	if st, _ := do("GET", thru.PathPickup+"TRN1", ""); st != 429 {
		t.Fatalf("second pickup call: %d, want the injected 429", st)
	}
	if st, _ := do("GET", thru.PathPickup+"TRN1", ""); st != 403 {
		t.Fatalf("pickup without a header: %d", st)
	}
	st, body = do("GET", "/_admin/calls", "")
	var calls []Call
	if st != 200 || json.Unmarshal([]byte(body), &calls) != nil || len(calls) != 3 || calls[0].Fault != "status" || calls[1].Fault != "nth" || calls[2].Error == "" {
		t.Fatalf("calls: %s", body)
	}
	// Without Admin the paths are not served.
	s2 := Start(t, Config{})
	resp, err := http.Get(s2.URL + "/_admin/calls")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 404 {
		t.Fatalf("admin without Admin: %d", resp.StatusCode)
	}
}

func TestLoseAnswer(t *testing.T) {
	s := Start(t, Config{AESKey: "000102030405060708090a0b0c0d0e0f", SiteAccessKey: "access", Admin: true, PickupDelay: D(0),
		Flows: []FlowConfig{{Code: "TRN1", SecretKey: "s"}}})
	cipher, _ := thru.NewHeaderCipher("", "000102030405060708090a0b0c0d0e0f", "")
	cl, err := thru.NewClient(thru.ClientConfig{BaseURL: s.URL, SiteAccessKey: "access", FlowSecretKey: "s", FlowCode: "TRN1",
		Cipher: cipher, Retry: thru.RetryPolicy{Attempts: 1}})
	if err != nil {
		t.Fatal(err)
	}
	// The site hands the file out, then the answer is lost: the queue is
	// empty and the client heard nothing.
	s.AddPickup("TRN1", "a.csv", []byte("hello"))
	s.LoseAnswerNth(KindPickup, 1)
	var ce *thru.CallError
	if _, err := cl.Pickup(t.Context()); !errors.As(err, &ce) || ce.Status != 0 {
		t.Fatalf("pickup whose answer was lost: %v", err)
	}
	if n := s.PickupQueue("TRN1"); n != 0 {
		t.Fatalf("%d files queued; the site should have handed the file out", n)
	}
	if c := s.Calls(); len(c) != 1 || c[0].Status != 0 || c[0].Fault != "nth" {
		t.Fatalf("calls = %+v", c)
	}
	// The admin endpoint sets the same fault.
	resp, err := http.Post(s.URL+"/_admin/fail-nth", "application/json", strings.NewReader(`{"kind": "reserve", "n": 1, "lose": true}`))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if _, err := cl.ReserveFileCode(t.Context()); !errors.As(err, &ce) || ce.Status != 0 {
		t.Fatalf("reservation whose answer was lost: %v", err)
	}
	if _, err := cl.ReserveFileCode(t.Context()); err != nil {
		t.Fatalf("the next reservation: %v", err)
	}
}
