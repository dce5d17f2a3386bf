package thrusim

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"math/rand/v2"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
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

// stampedReader yields n bytes: one random 64 KiB block over and over, each
// copy stamped with its number so that no two are alike. It costs no memory
// for the file and little time, even under the race detector.
type stampedReader struct {
	block, cur []byte
	blk        int64 // the block in cur, -1 for none
	off, n     int64
}

func newStampedReader(n int64) *stampedReader {
	block := make([]byte, 64<<10)
	rand.NewChaCha8([32]byte{1}).Read(block)
	return &stampedReader{block: block, cur: make([]byte, len(block)), blk: -1, n: n}
}

func (r *stampedReader) Read(p []byte) (int, error) {
	if r.off >= r.n {
		return 0, io.EOF
	}
	size := int64(len(r.block))
	if blk := r.off / size; blk != r.blk {
		copy(r.cur, r.block)
		binary.LittleEndian.PutUint64(r.cur, uint64(blk))
		r.blk = blk
	}
	p = p[:min(int64(len(p)), r.n-r.off)]
	n := copy(p, r.cur[r.off%size:])
	r.off += int64(n)
	return n, nil
}

// TestLargeFileConstantMemory drops off 1 GiB and picks it up again: the
// site keeps it on disk, so the heap of the process (client and site)
// stays a few buffers big, and the bytes arrive whole.
func TestLargeFileConstantMemory(t *testing.T) {
	if testing.Short() {
		t.Skip("moves 2 GiB through the simulator")
	}
	const size = 1 << 30
	const chunk = 16 << 20
	s := Start(t, Config{AESKey: "000102030405060708090a0b0c0d0e0f", SiteAccessKey: "access", PickupDelay: D(0),
		SpoolDir: t.TempDir(), Flows: []FlowConfig{{Code: "TRN1", SecretKey: "s"}}})
	cipher, _ := thru.NewHeaderCipher("", "000102030405060708090a0b0c0d0e0f", "")
	cl, err := thru.NewClient(thru.ClientConfig{BaseURL: s.URL, SiteAccessKey: "access", FlowSecretKey: "s", FlowCode: "TRN1", Cipher: cipher})
	if err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()
	peak := watchHeap(t)

	code, err := cl.ReserveFileCode(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := cl.SendChunkZero(ctx, code, "big.bin", size); err != nil {
		t.Fatal(err)
	}
	sent := sha256.New()
	src := io.TeeReader(newStampedReader(size), sent)
	for n, left := 1, int64(size); left > 0; n++ {
		c := min(left, chunk)
		if err := cl.SendChunk(ctx, code, n, c, src); err != nil {
			t.Fatal(err)
		}
		left -= c
	}
	if err := cl.SendEOF(ctx, code); err != nil {
		t.Fatal(err)
	}
	want := hex.EncodeToString(sent.Sum(nil))
	ds := s.Deliveries()
	if len(ds) != 1 || ds[0].Size != size || ds[0].SHA256 != want {
		t.Fatalf("deliveries %+v, want one of %d bytes with sha256 %s", ds, size, want)
	}

	// The delivered file, read from the spool, goes back out as a pickup.
	rc, err := ds[0].Open()
	if err != nil {
		t.Fatal(err)
	}
	_, err = s.AddPickupFrom("TRN1", "big.bin", rc)
	rc.Close()
	if err != nil {
		t.Fatal(err)
	}
	p, err := cl.Pickup(ctx)
	if err != nil {
		t.Fatal(err)
	}
	got := sha256.New()
	n, err := io.Copy(got, p.Body)
	p.Body.Close()
	if err != nil || n != size || hex.EncodeToString(got.Sum(nil)) != want {
		t.Fatalf("picked up %d bytes (%v) with sha256 %x, want %d with %s", n, err, got.Sum(nil), size, want)
	}
	grew := peak()
	t.Logf("the heap grew by %d KiB at its peak", grew>>10)
	if grew > 64<<20 {
		t.Fatalf("the heap grew by %d MiB moving 1 GiB each way; want a few buffers (< 64 MiB)", grew>>20)
	}
}

// watchHeap samples the heap in use until the returned function is called,
// which reports by how much it grew at its peak over where it started.
func watchHeap(t *testing.T) func() uint64 {
	var ms runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&ms)
	base, peak := ms.HeapInuse, ms.HeapInuse
	done, stopped := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(stopped)
		tick := time.NewTicker(20 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-done:
				return
			case <-tick.C:
				var ms runtime.MemStats
				runtime.ReadMemStats(&ms)
				peak = max(peak, ms.HeapInuse)
			}
		}
	}()
	var once sync.Once
	stop := func() uint64 {
		once.Do(func() { close(done); <-stopped })
		return peak - min(peak, base)
	}
	t.Cleanup(func() { stop() })
	return stop
}
