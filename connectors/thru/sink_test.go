package thru_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/mftflow/mftflow/connectors/thru"
	"github.com/mftflow/mftflow/pipeline"
	"github.com/mftflow/mftflow/testkit"
	"github.com/mftflow/mftflow/testkit/thrusim"
)

func newSink(t *testing.T, site *thrusim.Server, mod func(*thru.SinkConfig)) *thru.Sink {
	t.Helper()
	cfg := thru.SinkConfig{Client: clientConfig(t, site), Mode: thru.ModeDropOff, EndpointPath: endpoint, PartSize: 64 << 10}
	if mod != nil {
		mod(&cfg)
	}
	s, err := thru.NewSink(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func file(name string, content []byte) pipeline.File {
	return pipeline.File{ID: "f1", Name: name, Size: int64(len(content)), SHA256: testkit.SHA256Hex(content), ModTime: time.Date(2026, 6, 22, 0, 0, 0, 0, time.UTC)}
}

// writeAll writes content in the upload's parts, skipping those in skip.
func writeAll(t *testing.T, u pipeline.Upload, content []byte, skip map[int]bool) {
	t.Helper()
	ps := u.Plan().PartSize
	n := max(1, (int64(len(content))+ps-1)/ps)
	for i := int64(0); i < n; i++ {
		if skip[int(i)] {
			continue
		}
		part := content[i*ps : min((i+1)*ps, int64(len(content)))]
		p := pipeline.Part{Number: int(i), Offset: i * ps, Size: int64(len(part)), Last: i == n-1}
		if err := u.WritePart(t.Context(), p, bytes.NewReader(part)); err != nil {
			t.Fatal(err)
		}
	}
}

// deliver opens, writes and commits f with content through s.
func deliver(t *testing.T, s pipeline.Sink, f pipeline.File, content []byte) {
	t.Helper()
	u, err := s.Open(t.Context(), f, nil)
	if err != nil {
		t.Fatal(err)
	}
	writeAll(t, u, content, nil)
	if err := u.Commit(t.Context(), f); err != nil {
		t.Fatal(err)
	}
}

func TestSinkDropOffReusesPickupFileCode(t *testing.T) {
	site := newSite(t, nil)
	code, _ := site.AddPickup("TRN1", "order.edi", []byte("request"))
	s := newSink(t, site, nil)
	content := testkit.RandomContent(7, 150_000)
	f := file("order.edi.ack", content).WithAttr(thru.AttrFileCode, code)
	u, err := s.Open(t.Context(), f, nil)
	if err != nil {
		t.Fatal(err)
	}
	writeAll(t, u, content, nil)
	if err := u.Commit(t.Context(), f); err != nil {
		t.Fatal(err)
	}
	d := site.Deliveries()
	if len(d) != 1 || d[0].FileCode != code || d[0].Name != "order.edi.ack" || d[0].SHA256 != f.SHA256 {
		t.Fatalf("deliveries = %+v", d)
	}
	if n := len(site.CallsOf(thrusim.KindReserve)); n != 0 {
		t.Fatalf("%d reservations for a file with a File Code", n)
	}
	if !s.ManifestFirst(pipeline.File{Size: -1}) || s.ManifestFirst(pipeline.File{Size: 10}) {
		t.Fatal("ManifestFirst should ask for the manifest only when the size is unknown")
	}
}

func TestSinkDropOffResume(t *testing.T) {
	site := newSite(t, nil)
	s := newSink(t, site, nil)
	content := testkit.RandomContent(8, 4*(64<<10)+5)
	f := file("r.bin", content)
	u, err := s.Open(t.Context(), f, nil)
	if err != nil {
		t.Fatal(err)
	}
	writeAll(t, u, content, map[int]bool{1: true, 3: true, 4: true})
	state := u.State()
	// A new runner resumes with the state and writes the parts not recorded.
	u2, err := newSink(t, site, nil).Open(t.Context(), f, state)
	if err != nil {
		t.Fatal(err)
	}
	writeAll(t, u2, content, map[int]bool{0: true, 2: true})
	if err := u2.Commit(t.Context(), f); err != nil {
		t.Fatal(err)
	}
	if d := site.Deliveries(); len(d) != 1 || d[0].SHA256 != f.SHA256 {
		t.Fatalf("deliveries = %+v", d)
	}
	if r, z, c := len(site.CallsOf(thrusim.KindReserve)), len(site.CallsOf(thrusim.KindChunkZero)), len(site.CallsOf(thrusim.KindChunk)); r != 1 || z != 1 || c != 5 {
		t.Fatalf("%d reservations, %d chunk zeros, %d chunks; want 1, 1, 5", r, z, c)
	}
}

func TestSinkContentSimple(t *testing.T) {
	site := newSite(t, nil)
	s := newSink(t, site, func(c *thru.SinkConfig) { c.Mode, c.SimpleThreshold = thru.ModeContent, thru.AdvisedSimpleThreshold })
	content := testkit.RandomContent(9, 300_000)
	f := file("dir/sub/s.bin", content)
	u, err := s.Open(t.Context(), f, nil)
	if err != nil {
		t.Fatal(err)
	}
	if p := u.Plan(); p.PartSize < int64(len(content)) || p.Concurrency != 1 {
		t.Fatalf("plan %+v: a simple upload is one part", p)
	}
	writeAll(t, u, content, nil)
	if err := u.Commit(t.Context(), f); err != nil {
		t.Fatal(err)
	}
	d := site.Deliveries()
	if len(d) != 1 || d[0].Name != "s.bin" || d[0].Path != `\dir\sub` || d[0].SHA256 != f.SHA256 {
		t.Fatalf("deliveries = %+v", d)
	}
	if len(site.CallsOf(thrusim.KindPreflight)) != 1 || len(site.CallsOf(thrusim.KindSimpleUpload)) != 1 || len(site.CallsOf(thrusim.KindSessionCreate)) != 0 {
		t.Fatalf("calls = %+v", site.Calls())
	}
}

func TestSinkContentSessionResumeAndAbort(t *testing.T) {
	site := newSite(t, nil)
	mod := func(c *thru.SinkConfig) { c.Mode, c.SimpleThreshold = thru.ModeContent, 1000 }
	content := testkit.RandomContent(10, 5*(64<<10))
	f := file("big.bin", content)
	u, err := newSink(t, site, mod).Open(t.Context(), f, nil)
	if err != nil {
		t.Fatal(err)
	}
	if p := u.Plan(); p.PartSize != 64<<10 {
		t.Fatalf("plan %+v, want the preflight's 64 KiB chunks", p)
	}
	writeAll(t, u, content, map[int]bool{2: true, 4: true})
	// The engine recorded only part 0; the site holds 0, 1 and 3.
	u2, err := newSink(t, site, mod).Open(t.Context(), f, u.State())
	if err != nil {
		t.Fatal(err)
	}
	writeAll(t, u2, content, map[int]bool{0: true})
	if err := u2.Commit(t.Context(), f); err != nil {
		t.Fatal(err)
	}
	if d := site.Deliveries(); len(d) != 1 || d[0].SHA256 != f.SHA256 {
		t.Fatalf("deliveries = %+v", d)
	}
	if n := len(site.CallsOf(thrusim.KindSessionPut)); n != 5 {
		t.Fatalf("%d chunk PUTs, want 5: the resumed upload sent chunks the site had", n)
	}
	if n := len(site.CallsOf(thrusim.KindSessionGet)); n != 1 {
		t.Fatalf("%d session GETs, want 1", n)
	}
	// Commit again with the same state (the runner died before recording it).
	u3, err := newSink(t, site, mod).Open(t.Context(), f, u2.State())
	if err != nil {
		t.Fatal(err)
	}
	if err := u3.Commit(t.Context(), f); err != nil || len(site.Deliveries()) != 1 {
		t.Fatalf("repeated commit: %v, %d deliveries", err, len(site.Deliveries()))
	}

	for _, tc := range []struct {
		cause  error
		status int
		msg    string
	}{{nil, thru.AbortCancelled, "cancelled"}, {errors.New("disk full"), thru.AbortError, "disk full"}} {
		u, err := newSink(t, site, mod).Open(t.Context(), f, nil)
		if err != nil {
			t.Fatal(err)
		}
		writeAll(t, u, content[:64<<10], nil)
		if err := u.Abort(t.Context(), tc.cause); err != nil {
			t.Fatal(err)
		}
		var st struct{ Session string }
		jsonUnmarshal(t, u.State(), &st)
		info, _ := site.Session(st.Session)
		if info.State != thru.SessionAborted || info.Abort.Status != tc.status || info.Abort.Message != tc.msg {
			t.Fatalf("session after Abort(%v): %+v %+v", tc.cause, info.SessionStatus, info.Abort)
		}
	}
}

func TestSinkContentRefusals(t *testing.T) {
	site := newSite(t, nil)
	if _, err := thru.NewSink(thru.SinkConfig{Client: clientConfig(t, site), Mode: thru.ModeContent, EndpointPath: "flow:TRN1"}); !errors.Is(err, thru.ErrBadEndpointPath) {
		t.Fatalf("malformed path: %v", err)
	}
	s := newSink(t, site, func(c *thru.SinkConfig) {
		c.Mode, c.EndpointPath = thru.ModeContent, "flow:TRN1/endpoint:END1/flowendpoint:99"
	})
	_, err := s.Open(t.Context(), file("a.csv", []byte("x")), nil)
	if !errors.Is(err, thru.ErrInvalidEndpointPath) || !pipeline.IsPermanent(err) {
		t.Fatalf("unknown endpoint: %v", err)
	}
	s = newSink(t, site, func(c *thru.SinkConfig) {
		c.Mode, c.EndpointPath = thru.ModeContent, "flow:TRN1/endpoint:CSV/flowendpoint:7"
	})
	_, err = s.Open(t.Context(), file("a.txt", []byte("x")), nil)
	if !pipeline.IsPermanent(err) || !strings.Contains(err.Error(), `does not match the endpoint's pattern "*.csv"`) {
		t.Fatalf("refused by preflight: %v", err)
	}
}

func TestSourceAckReportsOutcome(t *testing.T) {
	site := newSite(t, nil)
	code, _ := site.AddPickup("TRN1", "in.csv", []byte("a,b\n"))
	code2, _ := site.AddPickup("TRN1", "skip.csv", []byte("x"))
	src, err := thru.NewSource(context.Background(), thru.SourceConfig{Client: clientConfig(t, site), PollInterval: 10 * time.Millisecond, SpoolDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	it, err := src.Next(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if f := it.File(); f.Name != "in.csv" || f.Attr(thru.AttrFileCode) != code || f.Key != "thru:"+code || f.Size != 4 {
		t.Fatalf("file = %+v", f)
	}
	o := pipeline.Outcome{Status: pipeline.Mixed, Message: "1 of 2 sinks failed", RunID: "run-7",
		Sinks: map[string]pipeline.SinkResult{"a": {Committed: true}, "b": {Error: "HTTP 500"}}}
	if err := it.Ack(t.Context(), o); err != nil {
		t.Fatal(err)
	}
	if err := it.Ack(t.Context(), o); err != nil {
		t.Fatal(err)
	}
	it2, err := src.Next(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if err := it2.Ack(t.Context(), pipeline.Outcome{Status: pipeline.Skipped, Message: "too small", RunID: "run-7"}); err != nil {
		t.Fatal(err)
	}
	got := site.Outcomes()
	want := []thru.FlowOutcome{
		{FileCode: code, FlowOutcome: 3, FlowInstanceCode: "run-7", ActivityMessage: "1 of 2 sinks failed", ActivityDetail: "b: HTTP 500"},
		{FileCode: code2, FlowOutcome: 1, FlowInstanceCode: "run-7", ActivityMessage: "skipped: too small"},
	}
	if len(got) != 2 || got[0].FileCode != want[0].FileCode || got[0].FlowOutcome != 3 || got[0].ActivityDetail != want[0].ActivityDetail ||
		got[1].FlowOutcome != 1 || got[1].ActivityMessage != want[1].ActivityMessage || got[0].FlowInstanceCode != "run-7" {
		t.Fatalf("outcomes = %+v", got)
	}
}

func TestSourceWrongKeysFailNext(t *testing.T) {
	site := newSite(t, nil)
	cc := clientConfig(t, site)
	cc.FlowSecretKey = "wrong"
	src, err := thru.NewSource(context.Background(), thru.SourceConfig{Client: cc, PollInterval: 10 * time.Millisecond, SpoolDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	if _, err := src.Next(t.Context()); !errors.Is(err, thru.ErrAccessDenied) {
		t.Fatalf("Next with wrong keys: %v", err)
	}
}

func TestRegister(t *testing.T) {
	site := newSite(t, nil)
	r := pipeline.NewRegistry()
	if err := thru.Register(r); err != nil {
		t.Fatal(err)
	}
	raw := map[string]any{"base_url": site.URL, "site_access_key": accessKey, "flow_secret_key": secret1,
		"flow_code": "TRN1", "aes_key": aesKey, "part_size": "64KiB"}
	snk, err := r.NewSink(t.Context(), "thru", raw)
	if err != nil {
		t.Fatal(err)
	}
	content := []byte("hello thru")
	deliver(t, snk, file("h.txt", content), content)
	delete(raw, "part_size")
	raw["poll_interval"], raw["spool_dir"] = "10ms", t.TempDir()
	src, err := r.NewSource(t.Context(), "thru", raw)
	if err != nil {
		t.Fatal(err)
	}
	src.Close()
	bad := map[string]any{"base_url": site.URL, "aes_key": "secretvalue-not-a-key"}
	if _, err := r.NewSink(t.Context(), "thru", bad); err == nil || strings.Contains(err.Error(), "secretvalue") {
		t.Fatalf("bad key: %v", err)
	}
	if _, err := r.NewSink(t.Context(), "thru", map[string]any{"base_url": site.URL, "mode": "content", "api_key": "k", "endpoint_path": "nope"}); err == nil {
		t.Fatal("a malformed endpoint path was accepted")
	}
}

func jsonUnmarshal(t *testing.T, b []byte, v any) {
	t.Helper()
	if err := json.Unmarshal(b, v); err != nil {
		t.Fatal(err)
	}
}

// The engine's parts are whole bus chunks, larger than the session chunks:
// the sink cuts each part into chunks numbered by offset and, on resume,
// skips the chunks the site holds.
func TestSinkContentCutsPartsIntoChunks(t *testing.T) {
	site := newSite(t, nil) // MaxChunkSize 64 KiB
	mod := func(c *thru.SinkConfig) { c.Mode, c.SimpleThreshold, c.PartSize = thru.ModeContent, -1, 1<<20 }
	content := testkit.RandomContent(12, 7*(64<<10)+99)
	f := file("cut.bin", content)
	u, err := newSink(t, site, mod).Open(t.Context(), f, nil)
	if err != nil {
		t.Fatal(err)
	}
	if p := u.Plan(); p.PartSize != 64<<10 {
		t.Fatalf("plan %+v", p)
	}
	var st struct{ Session string }
	jsonUnmarshal(t, u.State(), &st)
	cl := newClient(t, site, nil)
	for _, seq := range []int{1, 2, 6} {
		b := content[(seq-1)*(64<<10) : seq*(64<<10)]
		if err := cl.PutChunk(t.Context(), st.Session, seq, int64(len(b)), bytes.NewReader(b)); err != nil {
			t.Fatal(err)
		}
	}
	u2, err := newSink(t, site, mod).Open(t.Context(), f, u.State())
	if err != nil {
		t.Fatal(err)
	}
	const part = 256 << 10 // as the engine rounds 64 KiB up to its bus chunk
	for i, off := 0, 0; off < len(content); i, off = i+1, off+part {
		b := content[off:min(off+part, len(content))]
		p := pipeline.Part{Number: i, Offset: int64(off), Size: int64(len(b)), Last: off+part >= len(content)}
		if err := u2.WritePart(t.Context(), p, bytes.NewReader(b)); err != nil {
			t.Fatal(err)
		}
	}
	if err := u2.Commit(t.Context(), f); err != nil {
		t.Fatal(err)
	}
	if d := site.Deliveries(); len(d) != 1 || d[0].SHA256 != f.SHA256 {
		t.Fatalf("deliveries = %+v", d)
	}
	if n := len(site.CallsOf(thrusim.KindSessionPut)); n != 8 {
		t.Fatalf("%d chunk PUTs, want 8 (3 before the resume, 5 after)", n)
	}
	err = u2.WritePart(t.Context(), pipeline.Part{Number: 1, Offset: 1000, Size: 10}, bytes.NewReader(make([]byte, 10)))
	if !pipeline.IsPermanent(err) || !strings.Contains(err.Error(), "not a multiple of the session chunk size 65536") {
		t.Fatalf("misaligned part: %v", err)
	}
}

// A session chunk the site failed is sent again alone, from the part's own
// slices: the part's other chunks are not sent twice.
func TestSinkContentPartRetryResumesAtFailedChunk(t *testing.T) {
	site := newSite(t, nil) // MaxChunkSize 64 KiB
	mod := func(c *thru.SinkConfig) { c.Mode, c.SimpleThreshold, c.PartSize = thru.ModeContent, -1, 1<<20 }
	content := testkit.RandomContent(13, 4*(64<<10))
	f := file("retry.bin", content)
	u, err := newSink(t, site, mod).Open(t.Context(), f, nil)
	if err != nil {
		t.Fatal(err)
	}
	site.FailNth(thrusim.KindSessionPut, 3, 503)
	p := pipeline.Part{Number: 0, Size: int64(len(content)), Last: true}
	body := net.Buffers{content[:100_000], content[100_000:]} // as the engine hands parts over
	if err := u.WritePart(t.Context(), p, &body); err != nil {
		t.Fatal(err)
	}
	if err := u.Commit(t.Context(), f); err != nil {
		t.Fatal(err)
	}
	if d := site.Deliveries(); len(d) != 1 || d[0].SHA256 != f.SHA256 {
		t.Fatalf("deliveries = %+v", d)
	}
	if n := len(site.CallsOf(thrusim.KindSessionPut)); n != 5 {
		t.Fatalf("%d chunk PUTs, want 5 (chunks 1 to 4 and chunk 3 again)", n)
	}
	if got := site.CallsOf(thrusim.KindSessionPut)[2]; got.Status != 503 {
		t.Fatalf("third chunk PUT: %+v, want the injected 503", got)
	}
}
