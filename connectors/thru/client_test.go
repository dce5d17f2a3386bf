package thru_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mftflow/mftflow/connectors/thru"
	"github.com/mftflow/mftflow/pipeline"
	"github.com/mftflow/mftflow/testkit"
	"github.com/mftflow/mftflow/testkit/thrusim"
)

const (
	aesKey    = "000102030405060708090a0b0c0d0e0f"
	accessKey = "site-access-key"
	secret1   = "flow-secret-one"
	secret2   = "flow-secret-two"
	apiKey    = "content-api-key"
	endpoint  = "flow:TRN1/endpoint:END1/flowendpoint:6"
)

func siteConfig() thrusim.Config {
	return thrusim.Config{
		SiteAccessKey: accessKey, AESKey: aesKey, PickupDelay: thrusim.D(0),
		Flows: []thrusim.FlowConfig{
			{Code: "TRN1", SecretKey: secret1, Name: "orders",
				Sender:    thru.Organization{ParticipantCode: "P1", ExternalCode: "123456789", Name: "Acme"},
				Endpoints: []thrusim.EndpointConfig{{Code: "END1", ID: "6"}, {Code: "CSV", ID: "7", NamePattern: "*.csv", MaxFileSize: 1000}}},
			{Code: "TRN2", SecretKey: secret2},
		},
		APIKeys: []string{apiKey}, MaxChunkSize: 64 << 10,
	}
}

func newSite(t *testing.T, mod func(*thrusim.Config)) *thrusim.Server {
	cfg := siteConfig()
	if mod != nil {
		mod(&cfg)
	}
	return thrusim.Start(t, cfg)
}

func newClient(t *testing.T, site *thrusim.Server, mod func(*thru.ClientConfig)) *thru.Client {
	t.Helper()
	c, err := thru.NewHeaderCipher("", aesKey, "")
	if err != nil {
		t.Fatal(err)
	}
	cfg := thru.ClientConfig{
		BaseURL: site.URL, SiteAccessKey: accessKey, FlowSecretKey: secret1, FlowCode: "TRN1", Cipher: c,
		APIKey: apiKey, Retry: thru.RetryPolicy{Attempts: 5, MinBackoff: time.Millisecond, MaxBackoff: 10 * time.Millisecond},
	}
	if mod != nil {
		mod(&cfg)
	}
	cl, err := thru.NewClient(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return cl
}

func TestPickup(t *testing.T) {
	site := newSite(t, nil)
	cl := newClient(t, site, nil)
	ctx := t.Context()
	if _, err := cl.Pickup(ctx); !errors.Is(err, thru.ErrNoFile) {
		t.Fatalf("empty queue: err = %v, want ErrNoFile", err)
	}
	codeA, _ := site.AddPickup("TRN1", "a.csv", []byte("alpha"))
	codeB, _ := site.AddPickup("TRN1", "report 2026-b.txt", []byte("bravo!"))
	for _, want := range []struct{ code, name, content string }{{codeA, "a.csv", "alpha"}, {codeB, "report 2026-b.txt", "bravo!"}} {
		p, err := cl.Pickup(ctx)
		if err != nil {
			t.Fatal(err)
		}
		b, err := io.ReadAll(p.Body)
		p.Body.Close()
		if err != nil || p.FileCode != want.code || p.Name != want.name || p.Size != int64(len(want.content)) || string(b) != want.content {
			t.Fatalf("picked up %+v %q %v, want %+v", p, b, err, want)
		}
	}
	if _, err := cl.Pickup(ctx); !errors.Is(err, thru.ErrNoFile) {
		t.Fatalf("drained queue: err = %v, want ErrNoFile", err)
	}
}

func TestPickupAvailabilityDelay(t *testing.T) {
	site := newSite(t, func(c *thrusim.Config) { c.PickupDelay = nil }) // default 10 s
	cl := newClient(t, site, nil)
	site.AddPickup("TRN1", "a", []byte("1"))
	site.AddPickup("TRN1", "b", []byte("2"))
	p, err := cl.Pickup(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	p.Body.Close()
	if _, err := cl.Pickup(t.Context()); !errors.Is(err, thru.ErrNoFile) {
		t.Fatalf("second pickup within the delay: err = %v, want ErrNoFile", err)
	}
	if site.PickupQueue("TRN1") != 1 {
		t.Fatal("the second file left the queue")
	}
}

func TestPickupCutMidBody(t *testing.T) {
	site := newSite(t, nil)
	cl := newClient(t, site, nil)
	site.AddPickup("TRN1", "big.bin", testkit.RandomContent(1, 256<<10))
	site.FailNth(thrusim.KindPickup, 1, 0)
	p, err := cl.Pickup(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	defer p.Body.Close()
	if _, err := io.ReadAll(p.Body); err == nil {
		t.Fatal("reading a cut pickup body succeeded")
	}
}

// dropOff sends content as a drop-off in chunks of chunk bytes, concurrently
// and in reverse order.
func dropOff(t *testing.T, cl *thru.Client, code, name string, content []byte, chunk int) {
	t.Helper()
	ctx := t.Context()
	if err := cl.SendChunkZero(ctx, code, name, int64(len(content))); err != nil {
		t.Fatal(err)
	}
	n := (len(content) + chunk - 1) / chunk
	var wg sync.WaitGroup
	errs := make([]error, n+1)
	for i := n; i >= 1; i-- {
		part := content[(i-1)*chunk : min(i*chunk, len(content))]
		wg.Go(func() { errs[i] = cl.SendChunk(ctx, code, i, int64(len(part)), bytes.NewReader(part)) })
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		t.Fatal(err)
	}
	if err := cl.SendEOF(ctx, code); err != nil {
		t.Fatal(err)
	}
}

func TestDropOff(t *testing.T) {
	site := newSite(t, nil)
	cl := newClient(t, site, nil)
	code, err := cl.ReserveFileCode(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	content := testkit.RandomContent(2, 300_000)
	dropOff(t, cl, code, "out/orders.csv", content, 64<<10)
	d := site.Deliveries()
	if len(d) != 1 || d[0].Via != "dropoff" || d[0].FileCode != code || d[0].Flow != "TRN1" || d[0].Name != "out/orders.csv" || d[0].SHA256 != testkit.SHA256Hex(content) {
		t.Fatalf("deliveries = %+v", d)
	}
	// EOF again (a sink committing twice after a crash) delivers nothing new.
	if err := cl.SendEOF(t.Context(), code); err != nil || len(site.Deliveries()) != 1 {
		t.Fatalf("second EOF: %v, %d deliveries", err, len(site.Deliveries()))
	}
	// Every request carried a fresh header: the site refuses replays, so
	// all these calls succeeding shows it.
	for _, c := range site.Calls() {
		if c.Status != http.StatusOK {
			t.Errorf("call %+v", c)
		}
	}
	// An empty file is chunk zero and EOF.
	code2, _ := cl.ReserveFileCode(t.Context())
	dropOff(t, cl, code2, "empty", nil, 10)
	if d := site.Deliveries(); len(d) != 2 || d[1].Size != 0 {
		t.Fatalf("deliveries = %+v", d)
	}
}

func TestDropOffIncomplete(t *testing.T) {
	site := newSite(t, nil)
	cl := newClient(t, site, func(c *thru.ClientConfig) { c.Retry.Attempts = 1 })
	ctx := t.Context()
	code, _ := cl.ReserveFileCode(ctx)
	if err := cl.SendChunk(ctx, code, 1, 1, strings.NewReader("x")); err == nil || !strings.Contains(err.Error(), "before chunk zero") {
		t.Fatalf("chunk before chunk zero: %v", err)
	}
	cl.SendChunkZero(ctx, code, "f", 3)
	cl.SendChunk(ctx, code, 1, 1, strings.NewReader("a"))
	cl.SendChunk(ctx, code, 3, 1, strings.NewReader("c"))
	err := cl.SendEOF(ctx, code)
	want := fmt.Sprintf(`thru: FlowDropOffChunk EOF for file %q on flow TRN1: HTTP 500 Internal Server Error: "Drop-off of file %s failed: EOF: chunks missing: 2 (have 2 chunks up to 3)"; the site failed or is busy; retry later, and see the site's message if it persists`, code, code)
	if err == nil || err.Error() != want {
		t.Fatalf("EOF with a gap:\n got %v\nwant %s", err, want)
	}
	if pipeline.IsPermanent(err) {
		t.Error("a 500 is permanent")
	}
	if err := cl.SendChunk(ctx, code, 2, 5, strings.NewReader("bb")); err == nil {
		t.Fatal("a short body was sent")
	}
	cl.SendChunk(ctx, code, 2, 2, strings.NewReader("bb"))
	if err := cl.SendEOF(ctx, code); err == nil || !strings.Contains(err.Error(), "add up to 4 bytes in 3 chunks, the file size is 3") {
		t.Fatalf("EOF with wrong sizes: %v", err)
	}
	if err := cl.SendChunkZero(ctx, "FL999", "f", 1); err == nil || !strings.Contains(err.Error(), "unknown File Code") {
		t.Fatalf("unknown file code: %v", err)
	}
}

func TestPrivateExchangeMetadataOutcome(t *testing.T) {
	site := newSite(t, nil)
	cl := newClient(t, site, nil)
	ctx := t.Context()
	code, _ := site.AddPickup("TRN1", "in.edi", []byte("request"))
	p, err := cl.Pickup(ctx)
	if err != nil {
		t.Fatal(err)
	}
	p.Body.Close()
	info, err := cl.FileMetadata(ctx, code)
	if err != nil {
		t.Fatal(err)
	}
	if info.FileCode != code || info.FileName != "in.edi" || info.FileSize != 7 || info.FlowCode != "TRN1" || info.Source.ExternalCode != "123456789" || len(info.Raw) == 0 {
		t.Fatalf("metadata = %+v", info)
	}
	dropOff(t, cl, p.FileCode, "in.edi.response", []byte("response"), 4)
	o := thru.FlowOutcome{FileCode: code, FlowOutcome: thru.OutcomeMixed, FlowInstanceCode: "run-1", ActivityMessage: "1 of 2 sinks failed"}
	if err := cl.ReportOutcome(ctx, o); err != nil {
		t.Fatal(err)
	}
	if got := site.Outcomes(); len(got) != 1 || got[0].FileCode != code || got[0].FlowOutcome != 3 || got[0].FlowInstanceCode != "run-1" || got[0].ActivityMessage != o.ActivityMessage {
		t.Fatalf("outcomes = %+v", got)
	}
	if _, err := cl.FileMetadata(ctx, "FL404"); err == nil {
		t.Fatal("metadata of an unknown file")
	}
}

func TestAccessDenied(t *testing.T) {
	site := newSite(t, nil)
	hint := "; the site refused the TransportMgrAuthHeader for flow %s: check the site URL, site access key, flow secret key and AES key, " +
		"that this machine's clock is within the site's window of UTC, and that the flow code matches the flow the keys belong to"
	for _, tc := range []struct {
		name string
		mod  func(*thru.ClientConfig)
		want string
	}{
		{"wrong flow secret", func(c *thru.ClientConfig) { c.FlowSecretKey = "guess" },
			`thru: FlowDropOffChunk reserve File Code on flow TRN1: HTTP 403 Forbidden: "Access denied: unknown flow secret key"` + fmt.Sprintf(hint, "TRN1")},
		{"wrong access key", func(c *thru.ClientConfig) { c.SiteAccessKey = "guess" },
			`thru: FlowDropOffChunk reserve File Code on flow TRN1: HTTP 403 Forbidden: "Access denied: unknown site URL or site access key"` + fmt.Sprintf(hint, "TRN1")},
		{"flow code mismatch", func(c *thru.ClientConfig) { c.FlowCode = "TRN2" },
			`thru: FlowDropOffChunk reserve File Code on flow TRN2: HTTP 403 Forbidden: "Access denied: flow code TRN2 in the URL does not match the authorization header"` + fmt.Sprintf(hint, "TRN2")},
		{"expired timestamp", func(c *thru.ClientConfig) { c.Now = func() time.Time { return time.Now().Add(-2 * time.Minute) } },
			`thru: FlowDropOffChunk reserve File Code on flow TRN1: HTTP 403 Forbidden: "Access denied: authorization header expired (its time is 2m0s away from the site's clock; the window is 30s)"` + fmt.Sprintf(hint, "TRN1")},
		{"wrong AES key", func(c *thru.ClientConfig) { c.Cipher, _ = thru.CBCRandomIV([]byte("another key 16b!")) },
			`thru: FlowDropOffChunk reserve File Code on flow TRN1: HTTP 403 Forbidden: "Access denied: invalid authorization header"` + fmt.Sprintf(hint, "TRN1")},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cl := newClient(t, site, tc.mod)
			_, err := cl.ReserveFileCode(t.Context())
			if err == nil || err.Error() != tc.want {
				t.Fatalf("\n got %v\nwant %s", err, tc.want)
			}
			if !errors.Is(err, thru.ErrAccessDenied) || !pipeline.IsPermanent(err) {
				t.Fatalf("errors.Is(ErrAccessDenied) = %v, permanent = %v", errors.Is(err, thru.ErrAccessDenied), pipeline.IsPermanent(err))
			}
			for _, s := range []string{accessKey, secret1, secret2, aesKey} {
				if strings.Contains(err.Error(), s) {
					t.Fatalf("the error shows a secret: %v", err)
				}
			}
		})
	}
	// Permanent errors are not retried.
	n := len(site.CallsOf(thrusim.KindReserve))
	if n != 5 {
		t.Fatalf("%d reserve calls, want 5 (one per case)", n)
	}
}

func TestReplayedHeaderRefused(t *testing.T) {
	site := newSite(t, nil)
	c, _ := thru.NewHeaderCipher("", aesKey, "")
	h, err := thru.EncodeAuthHeader(c, thru.HeaderClaims{SiteAccessKey: accessKey, FlowSecretKey: secret1, Time: time.Now()})
	if err != nil {
		t.Fatal(err)
	}
	get := func() (int, string) {
		req, _ := http.NewRequest(http.MethodGet, site.URL+thru.PathDropOff+"TRN1", nil)
		req.Header.Set("Authorization", h)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, strings.TrimSpace(string(b))
	}
	if st, body := get(); st != http.StatusOK {
		t.Fatalf("first use: %d %s", st, body)
	}
	if st, body := get(); st != http.StatusForbidden || body != "Access denied: authorization header already used" {
		t.Fatalf("replay: %d %q", st, body)
	}
}

func TestTimestampWindowConfigurable(t *testing.T) {
	site := newSite(t, func(c *thrusim.Config) { c.TimestampWindow = thrusim.Duration(5 * time.Minute) })
	cl := newClient(t, site, func(c *thru.ClientConfig) { c.Now = func() time.Time { return time.Now().Add(-2 * time.Minute) } })
	if _, err := cl.ReserveFileCode(t.Context()); err != nil {
		t.Fatalf("a header 2 minutes old in a 5 minute window: %v", err)
	}
}

func TestRetriesInjected503PerChunk(t *testing.T) {
	site := newSite(t, nil)
	cl := newClient(t, site, func(c *thru.ClientConfig) { c.Retry.Attempts = 10 })
	code, _ := cl.ReserveFileCode(t.Context())
	site.SetFaults(thrusim.Faults{FailRate: 0.4, Kinds: []string{thrusim.KindChunk}})
	site.FailNth(thrusim.KindChunkZero, 1, http.StatusInternalServerError)
	site.FailNth(thrusim.KindEOF, 1, 0) // connection cut
	content := testkit.RandomContent(3, 20*1000)
	dropOff(t, cl, code, "x.bin", content, 1000)
	site.SetFaults(thrusim.Faults{})
	d := site.Deliveries()
	if len(d) != 1 || d[0].SHA256 != testkit.SHA256Hex(content) {
		t.Fatalf("deliveries = %+v", d)
	}
	failed := 0
	for _, c := range site.CallsOf(thrusim.KindChunk) {
		if c.Fault != "" {
			failed++
		}
	}
	if failed == 0 || len(site.CallsOf(thrusim.KindChunk)) != 20+failed {
		t.Fatalf("%d chunk calls with %d injected failures: only failed chunks should be sent again", len(site.CallsOf(thrusim.KindChunk)), failed)
	}
	if len(site.CallsOf(thrusim.KindChunkZero)) != 2 || len(site.CallsOf(thrusim.KindEOF)) != 2 {
		t.Fatalf("chunk zero and EOF were not retried once each: %d, %d", len(site.CallsOf(thrusim.KindChunkZero)), len(site.CallsOf(thrusim.KindEOF)))
	}
}

func TestNoRetryWithoutSeekableBody(t *testing.T) {
	site := newSite(t, nil)
	cl := newClient(t, site, nil)
	code, _ := cl.ReserveFileCode(t.Context())
	cl.SendChunkZero(t.Context(), code, "f", 3)
	site.FailNth(thrusim.KindChunk, 1, http.StatusServiceUnavailable)
	err := cl.SendChunk(t.Context(), code, 1, 3, io.MultiReader(strings.NewReader("abc")))
	var ce *thru.CallError
	if !errors.As(err, &ce) || ce.Status != 503 || ce.Call != "FlowDropOffChunk chunk 1" || pipeline.IsPermanent(err) {
		t.Fatalf("err = %v", err)
	}
	if n := len(site.CallsOf(thrusim.KindChunk)); n != 1 {
		t.Fatalf("%d calls, want 1", n)
	}
}

func meta(name string) thru.FileMetadata {
	return thru.FileMetadata{EndpointPath: endpoint, Attributes: thru.FileAttributes{FileName: name, FileTime: "06/22/2022", Path: `\in`}}
}

func TestPreflight(t *testing.T) {
	site := newSite(t, nil)
	cl := newClient(t, site, nil)
	ctx := t.Context()
	p, err := cl.Preflight(ctx, meta("a.txt"))
	if err != nil {
		t.Fatal(err)
	}
	if p.Refused() || p.Accepted == nil || p.MaxChunkSize != 64<<10 || p.SimpleUploadURL != site.URL+thru.PathContent || p.ChunkedUploadURL != site.URL+thru.PathUploadSessions {
		t.Fatalf("preflight = %+v", p)
	}
	m := meta("a.txt")
	m.EndpointPath = "flow:TRN1/endpoint:CSV/flowendpoint:7"
	if p, err := cl.Preflight(ctx, m); err != nil || !p.Refused() || !strings.Contains(p.Reason, `does not match the endpoint's pattern "*.csv"`) {
		t.Fatalf("preflight of a refused name = %+v, %v", p, err)
	}
}

func TestInvalidEndpointPath(t *testing.T) {
	site := newSite(t, nil)
	cl := newClient(t, site, nil)
	for _, tc := range []struct{ path, want string }{
		{"flow:TRN1/endpoint:END1", `thru: Content preflight for file "a.txt" on endpoint flow:TRN1/endpoint:END1: HTTP 409 Conflict: "Invalid endpoint path \"flow:TRN1/endpoint:END1\": want flow:{FlowCode}/endpoint:{EndpointCode}/flowendpoint:{Id}"; the endpoint path is malformed or names no endpoint of the site: check flow code, endpoint code and flow endpoint id`},
		{"flow:TRN1/endpoint:END1/flowendpoint:9", `thru: Content preflight for file "a.txt" on endpoint flow:TRN1/endpoint:END1/flowendpoint:9: HTTP 409 Conflict: "Invalid endpoint path \"flow:TRN1/endpoint:END1/flowendpoint:9\": no such flow endpoint"; the endpoint path is malformed or names no endpoint of the site: check flow code, endpoint code and flow endpoint id`},
	} {
		m := meta("a.txt")
		m.EndpointPath = tc.path
		_, err := cl.Preflight(t.Context(), m)
		if err == nil || err.Error() != tc.want {
			t.Fatalf("\n got %v\nwant %s", err, tc.want)
		}
		if !errors.Is(err, thru.ErrInvalidEndpointPath) || !pipeline.IsPermanent(err) {
			t.Fatalf("not a permanent ErrInvalidEndpointPath: %v", err)
		}
		if _, err := cl.CreateSession(t.Context(), &m); !errors.Is(err, thru.ErrInvalidEndpointPath) {
			t.Fatalf("session with a bad path: %v", err)
		}
	}
}

func TestContentAuth(t *testing.T) {
	site := newSite(t, func(c *thrusim.Config) { c.BearerTokens = []string{"jwt"} })
	bad := newClient(t, site, func(c *thru.ClientConfig) { c.APIKey = "wrong" })
	_, err := bad.Preflight(t.Context(), meta("a"))
	if !errors.Is(err, thru.ErrAccessDenied) || !pipeline.IsPermanent(err) || strings.Contains(err.Error(), "wrong") {
		t.Fatalf("err = %v", err)
	}
	bearer := newClient(t, site, func(c *thru.ClientConfig) { c.APIKey, c.BearerToken = "", "jwt" })
	if _, err := bearer.Preflight(t.Context(), meta("a")); err != nil {
		t.Fatal(err)
	}
}

// headerRecorder keeps the headers of the last request it sent.
type headerRecorder struct {
	mu   sync.Mutex
	last http.Header
}

func (h *headerRecorder) RoundTrip(r *http.Request) (*http.Response, error) {
	h.mu.Lock()
	h.last = r.Header.Clone()
	h.mu.Unlock()
	return http.DefaultTransport.RoundTrip(r)
}

// TestContentAPIKeyWhereTheDocumentsSay sends the Content API key in the
// Authorization header by default, as the seed says, and in X-Api-Key when
// asked to; the site takes both.
func TestContentAPIKeyWhereTheDocumentsSay(t *testing.T) {
	site := newSite(t, nil)
	for _, tc := range []struct {
		in, authorization, xAPIKey string
	}{
		{"", apiKey, ""},
		{thru.APIKeyInAuthorization, apiKey, ""},
		{thru.APIKeyInHeader, "", apiKey},
	} {
		rec := &headerRecorder{}
		cl := newClient(t, site, func(c *thru.ClientConfig) { c.APIKeyIn, c.HTTPClient = tc.in, &http.Client{Transport: rec} })
		if _, err := cl.Preflight(t.Context(), meta("a")); err != nil {
			t.Fatalf("api_key_in %q: %v", tc.in, err)
		}
		if got, x := rec.last.Get("Authorization"), rec.last.Get(thru.APIKeyHeader); got != tc.authorization || x != tc.xAPIKey {
			t.Errorf("api_key_in %q: Authorization %q, X-Api-Key %q; want %q and %q", tc.in, got, x, tc.authorization, tc.xAPIKey)
		}
	}
}

func TestSimpleUpload(t *testing.T) {
	site := newSite(t, nil)
	cl := newClient(t, site, nil)
	content := testkit.RandomContent(4, 200_000) // above MaxChunkSize: the limit is for chunks
	res, err := cl.UploadSimple(t.Context(), meta("a.bin"), int64(len(content)), bytes.NewReader(content))
	if err != nil {
		t.Fatal(err)
	}
	d := site.Deliveries()
	if len(d) != 1 || d[0].Via != "content" || d[0].FileCode != res.FileCode || res.Size != 200_000 || d[0].EndpointPath != endpoint || d[0].Name != "a.bin" || d[0].SHA256 != testkit.SHA256Hex(content) {
		t.Fatalf("result %+v, deliveries %+v", res, d)
	}
	m := meta("big.csv")
	m.EndpointPath = "flow:TRN1/endpoint:CSV/flowendpoint:7"
	if _, err := cl.UploadSimple(t.Context(), m, 2000, bytes.NewReader(make([]byte, 2000))); err == nil || !strings.Contains(err.Error(), "above the endpoint's limit of 1000 bytes") {
		t.Fatalf("upload above the size limit: %v", err)
	}
	// A failure the site answers is retried from the start of a seekable
	// body. (A cut connection is not, once the whole request went out: see
	// TestLostAnswerSimpleUploadNotSentAgain.)
	site.FailNth(thrusim.KindSimpleUpload, 3, http.StatusServiceUnavailable)
	if _, err := cl.UploadSimple(t.Context(), meta("b.bin"), int64(len(content)), bytes.NewReader(content)); err != nil {
		t.Fatal(err)
	}
	if d := site.Deliveries(); len(d) != 2 || d[1].SHA256 != testkit.SHA256Hex(content) {
		t.Fatalf("deliveries %+v", d)
	}
}

// putChunks sends the given chunks of content concurrently.
func putChunks(t *testing.T, cl *thru.Client, id string, content []byte, chunk int, seqs []int) {
	t.Helper()
	var wg sync.WaitGroup
	errs := make([]error, len(seqs))
	for i, seq := range seqs {
		part := content[(seq-1)*chunk : min(seq*chunk, len(content))]
		wg.Go(func() { errs[i] = cl.PutChunk(t.Context(), id, seq, int64(len(part)), bytes.NewReader(part)) })
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		t.Fatal(err)
	}
}

func TestUploadSession(t *testing.T) {
	site := newSite(t, nil)
	cl := newClient(t, site, nil)
	ctx := t.Context()
	content := testkit.RandomContent(5, 5*(64<<10)+123)
	id, err := cl.CreateSession(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := cl.UpdateSession(ctx, id, meta("s.bin")); err != nil {
		t.Fatal(err)
	}
	site.FailNth(thrusim.KindSessionPut, 2, http.StatusServiceUnavailable)
	site.FailNth(thrusim.KindSessionPut, 4, 0)
	putChunks(t, cl, id, content, 64<<10, []int{6, 2, 5, 1, 3, 4})
	st, err := cl.SessionStatus(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	if st.State != thru.SessionOpen || len(st.Chunks) != 6 || st.Chunks[5] != (thru.ChunkMeta{SequenceNumber: 6, Size: 123}) || st.Metadata.Attributes.FileName != "s.bin" {
		t.Fatalf("status = %+v", st)
	}
	res, err := cl.CommitSession(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	d := site.Deliveries()
	if len(d) != 1 || d[0].FileCode != res.FileCode || d[0].SHA256 != testkit.SHA256Hex(content) {
		t.Fatalf("deliveries %+v", d)
	}
	if again, err := cl.CommitSession(ctx, id); err != nil || again.FileCode != res.FileCode || len(site.Deliveries()) != 1 {
		t.Fatalf("second commit: %+v %v", again, err)
	}
	if err := cl.PutChunk(ctx, id, 7, 1, strings.NewReader("x")); err == nil || !strings.Contains(err.Error(), "is committed") {
		t.Fatalf("chunk after commit: %v", err)
	}
}

func TestUploadSessionResume(t *testing.T) {
	site := newSite(t, nil)
	ctx := t.Context()
	content := testkit.RandomContent(6, 4*1000+1)
	first := newClient(t, site, nil)
	m := meta("r.bin")
	id, err := first.CreateSession(ctx, &m)
	if err != nil {
		t.Fatal(err)
	}
	putChunks(t, first, id, content, 1000, []int{1, 3})
	if _, err := first.CommitSession(ctx, id); err == nil || !strings.Contains(err.Error(), "chunks missing: 2") {
		t.Fatalf("commit with a gap: %v", err)
	}
	// A new client (after a crash) asks the site what it holds and sends the rest.
	second := newClient(t, site, nil)
	st, err := second.SessionStatus(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	have := map[int]bool{}
	for _, c := range st.Chunks {
		have[c.SequenceNumber] = true
	}
	var missing []int
	for seq := 1; seq <= 5; seq++ {
		if !have[seq] {
			missing = append(missing, seq)
		}
	}
	if fmt.Sprint(missing) != "[2 4 5]" {
		t.Fatalf("missing = %v", missing)
	}
	putChunks(t, second, id, content, 1000, missing)
	if _, err := second.CommitSession(ctx, id); err != nil {
		t.Fatal(err)
	}
	if d := site.Deliveries(); len(d) != 1 || d[0].SHA256 != testkit.SHA256Hex(content) {
		t.Fatalf("deliveries %+v", d)
	}
	puts := len(site.CallsOf(thrusim.KindSessionPut))
	if puts != 5 {
		t.Fatalf("%d chunk PUTs, want 5: the resumed upload re-sent chunks the site had", puts)
	}
}

func TestUploadSessionErrors(t *testing.T) {
	site := newSite(t, nil)
	cl := newClient(t, site, nil)
	ctx := t.Context()
	if _, err := cl.SessionStatus(ctx, "nosuch"); !errors.Is(err, thru.ErrNotFound) || !pipeline.IsPermanent(err) {
		t.Fatalf("status of a missing session: %v", err)
	}
	id, _ := cl.CreateSession(ctx, nil)
	if _, err := cl.CommitSession(ctx, id); err == nil || !strings.Contains(err.Error(), "has no file metadata") {
		t.Fatalf("commit without metadata: %v", err)
	}
	big := make([]byte, 64<<10+1)
	err := cl.PutChunk(ctx, id, 1, int64(len(big)), bytes.NewReader(big))
	var ce *thru.CallError
	if !errors.As(err, &ce) || ce.Status != http.StatusRequestEntityTooLarge || !pipeline.IsPermanent(err) {
		t.Fatalf("chunk above the maximum: %v", err)
	}
	if err := cl.AbortSession(ctx, id, thru.AbortCancelled, "user cancelled"); err != nil {
		t.Fatal(err)
	}
	info, ok := site.Session(id)
	if !ok || info.State != thru.SessionAborted || info.Abort == nil || *info.Abort != (thru.AbortRequest{Status: 1, Message: "user cancelled"}) {
		t.Fatalf("session = %+v", info)
	}
	if err := cl.PutChunk(ctx, id, 1, 1, strings.NewReader("x")); err == nil || !strings.Contains(err.Error(), "is aborted") {
		t.Fatalf("chunk after abort: %v", err)
	}
	id2, _ := cl.CreateSession(ctx, nil)
	if err := cl.AbortSession(ctx, id2, thru.AbortError, "disk failed"); err != nil {
		t.Fatal(err)
	}
	if info, _ := site.Session(id2); info.Abort.Status != thru.AbortError {
		t.Fatalf("abort status %+v", info.Abort)
	}
}

func TestContextCancelled(t *testing.T) {
	site := newSite(t, nil)
	cl := newClient(t, site, nil)
	site.SetFaults(thrusim.Faults{Latency: thrusim.Duration(time.Minute)})
	ctx, cancel := context.WithTimeout(t.Context(), 100*time.Millisecond)
	defer cancel()
	start := time.Now()
	if _, err := cl.ReserveFileCode(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("err = %v", err)
	}
	if time.Since(start) > 5*time.Second {
		t.Fatal("the call outlived its context")
	}
}

func TestResponseTimeoutRetried(t *testing.T) {
	site := newSite(t, nil)
	site.SetFaults(thrusim.Faults{Latency: thrusim.Duration(300 * time.Millisecond), Kinds: []string{thrusim.KindReserve}})
	cl := newClient(t, site, func(c *thru.ClientConfig) { c.ResponseTimeout, c.Retry.Attempts = 50*time.Millisecond, 2 })
	_, err := cl.ReserveFileCode(t.Context())
	var ce *thru.CallError
	if !errors.As(err, &ce) || ce.Status != 0 || pipeline.IsPermanent(err) || !strings.Contains(err.Error(), "timeout") {
		t.Fatalf("err = %v", err)
	}
	time.Sleep(400 * time.Millisecond) // let the slow handlers finish before counting
	if n := len(site.CallsOf(thrusim.KindReserve)); n != 2 {
		t.Fatalf("%d calls, want 2", n)
	}
}

// User info in the base URL (a password, or a token in the user part)
// shows in no error.
func TestBaseURLUserInfoRedacted(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed := ln.Addr().String()
	ln.Close() // nothing listens there now: connections are refused
	for _, tc := range []struct{ base, want string }{
		{"http://user:topsecret@" + closed, "http://user:xxxxx@" + closed + "/"},
		{"http://topsecret@" + closed, "http://xxxxx@" + closed + "/"},
	} {
		cl, err := thru.NewClient(thru.ClientConfig{BaseURL: tc.base, APIKey: apiKey,
			Retry: thru.RetryPolicy{Attempts: 1}})
		if err != nil {
			t.Fatal(err)
		}
		_, err = cl.Preflight(t.Context(), meta("a"))
		if err == nil || strings.Contains(err.Error(), "topsecret") || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("base %s: %v\nwant it to name %s and hide the secret", tc.base, err, tc.want)
		}
	}
	_, err = thru.NewClient(thru.ClientConfig{BaseURL: "ftp://user:topsecret@example.com"})
	want := `thru: base URL "ftp://user:xxxxx@example.com": want http(s)://host[:port]`
	if err == nil || err.Error() != want {
		t.Errorf("NewClient: %v\nwant %s", err, want)
	}
}

// TestFixedIVHeadersNeverRepeat drops off a file of several chunks, sent at
// once, with a fixed-IV cipher: the same plaintext would give the same
// header, which the site refuses as a replay. Every call must carry a
// header of its own (a second of its own), and none is refused.
func TestFixedIVHeadersNeverRepeat(t *testing.T) {
	const iv = "fedcba9876543210fedcba9876543210"
	site := newSite(t, func(c *thrusim.Config) { c.CipherMode, c.IV = thru.ModeCBCFixedIV, iv })
	cipher, err := thru.NewHeaderCipher(thru.ModeCBCFixedIV, aesKey, iv)
	if err != nil {
		t.Fatal(err)
	}
	cl := newClient(t, site, func(c *thru.ClientConfig) { c.Cipher = cipher })
	code, err := cl.ReserveFileCode(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	content := testkit.RandomContent(4, 300_000)
	dropOff(t, cl, code, "orders.csv", content, 64<<10)
	if d := site.Deliveries(); len(d) != 1 || d[0].SHA256 != testkit.SHA256Hex(content) {
		t.Fatalf("deliveries = %+v", d)
	}
	for _, c := range site.Calls() {
		if c.Status != http.StatusOK {
			t.Errorf("call %+v: refused", c)
		}
	}
}

// TestRefusedHeaderTriedOnceMore has two clients with the same keys and a
// fixed IV call in the same second: the site refuses the second header as
// a replay, and that client tries once more with a header of its own.
func TestRefusedHeaderTriedOnceMore(t *testing.T) {
	const iv = "fedcba9876543210fedcba9876543210"
	site := newSite(t, func(c *thrusim.Config) { c.CipherMode, c.IV = thru.ModeCBCFixedIV, iv })
	cipher, _ := thru.NewHeaderCipher(thru.ModeCBCFixedIV, aesKey, iv)
	at := time.Now()
	fixed := func(c *thru.ClientConfig) { c.Cipher, c.Now = cipher, func() time.Time { return at } }
	a, b := newClient(t, site, fixed), newClient(t, site, fixed)
	if _, err := a.ReserveFileCode(t.Context()); err != nil {
		t.Fatal(err)
	}
	if _, err := b.ReserveFileCode(t.Context()); err != nil {
		t.Fatalf("the second client's call failed: %v", err)
	}
	var statuses []int
	for _, c := range site.Calls() {
		statuses = append(statuses, c.Status)
	}
	if !slices.Equal(statuses, []int{http.StatusOK, http.StatusForbidden, http.StatusOK}) {
		t.Errorf("call statuses %v; want the second client's first header refused, then one of its own accepted", statuses)
	}
}

// TestOddContentAnswersAreNoFailures answers the Content API as a site may
// where the documents are silent: a preflight without "accepted" (accepted),
// an upload or commit whose 200 carries no JSON (done): none of them may
// turn into a failure; an explicit refusal still refuses.
func TestOddContentAnswersAreNoFailures(t *testing.T) {
	answers := map[string]string{
		"OPTIONS " + thru.PathContent:                    `{"maxChunkSize": 65536}`,
		"POST " + thru.PathContent:                       `OK`,
		"POST " + thru.PathUploadSessions + "/s1/Commit": ``,
	}
	var (
		logged strings.Builder
		mu     sync.Mutex
	)
	stub := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		mu.Lock()
		defer mu.Unlock()
		fmt.Fprint(w, answers[r.Method+" "+r.URL.Path])
	}))
	defer stub.Close()
	cl, err := thru.NewClient(thru.ClientConfig{BaseURL: stub.URL, APIKey: apiKey,
		Logger: slog.New(slog.NewTextHandler(&logged, nil))})
	if err != nil {
		t.Fatal(err)
	}
	if p, err := cl.Preflight(t.Context(), meta("a.txt")); err != nil || p.Refused() || p.MaxChunkSize != 65536 {
		t.Errorf("preflight without accepted: %+v, %v; want accepted, max chunk 65536", p, err)
	}
	if res, err := cl.UploadSimple(t.Context(), meta("a.txt"), 3, strings.NewReader("abc")); err != nil || res == nil {
		t.Errorf("simple upload answered 200 OK in plain text: %+v, %v; want done", res, err)
	}
	if res, err := cl.CommitSession(t.Context(), "s1"); err != nil || res == nil {
		t.Errorf("commit answered an empty 200: %+v, %v; want done", res, err)
	}
	if !strings.Contains(logged.String(), "Content simple upload") || strings.Contains(logged.String(), apiKey) {
		t.Errorf("log %q; want the odd upload answer named, and no key", logged.String())
	}
	mu.Lock()
	answers["OPTIONS "+thru.PathContent] = `{"accepted": false, "reason": "too big"}`
	mu.Unlock()
	if p, err := cl.Preflight(t.Context(), meta("a.txt")); err != nil || !p.Refused() || p.Reason != "too big" {
		t.Errorf("an explicit refusal: %+v, %v; want refused, too big", p, err)
	}
}

// TestFlowKeysReachOnlyTheirFlowsFiles asks for the metadata of a file of
// flow TRN1, and posts its outcome, with the keys of flow TRN2: the site
// answers as for a file it does not know, and records no outcome.
func TestFlowKeysReachOnlyTheirFlowsFiles(t *testing.T) {
	site := newSite(t, nil)
	code, err := site.AddPickup("TRN1", "a.csv", []byte("x"))
	if err != nil {
		t.Fatal(err)
	}
	other := newClient(t, site, func(c *thru.ClientConfig) { c.FlowSecretKey, c.FlowCode = secret2, "TRN2" })
	if _, err := other.FileMetadata(t.Context(), code); err == nil || !strings.Contains(err.Error(), "File "+code+" not found") {
		t.Errorf("another flow's FileMetadata: %v; want not found", err)
	}
	if err := other.ReportOutcome(t.Context(), thru.FlowOutcome{FileCode: code, FlowOutcome: thru.OutcomePassed}); err == nil {
		t.Error("another flow's outcome was accepted")
	}
	if o := site.Outcomes(); len(o) != 0 {
		t.Errorf("outcomes %+v; want none", o)
	}
	own := newClient(t, site, nil)
	if info, err := own.FileMetadata(t.Context(), code); err != nil || info.FileName != "a.csv" {
		t.Errorf("the flow's own FileMetadata: %+v, %v", info, err)
	}
}
