package ops_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"errors"
	"io"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/mftflow/mftflow/ops"
	"github.com/mftflow/mftflow/pipeline"
	"github.com/mftflow/mftflow/pipeline/bus"
	"github.com/mftflow/mftflow/pipeline/engine"
	"github.com/mftflow/mftflow/testkit"
)

// serve starts the handler on a real HTTP server on 127.0.0.1.
func serve(t *testing.T, o ops.Options) string {
	t.Helper()
	h, err := ops.NewHandler(o)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return srv.URL
}

func get(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("GET %s: reading the body: %v", url, err)
	}
	return resp.StatusCode, string(b)
}

func newEngine(t *testing.T, nc *nats.Conn, reg prometheus.Registerer) *engine.Engine {
	t.Helper()
	eng, err := engine.New(nc, engine.Options{Metrics: reg, AckWait: 5 * time.Second, Grace: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	return eng
}

func TestHealthz(t *testing.T) {
	nc := testkit.ConnectNATS(t, testkit.StartNATS(t))
	url := serve(t, ops.Options{Conn: nc})
	if code, body := get(t, url+"/healthz"); code != http.StatusOK || body != "ok\n" {
		t.Errorf("/healthz: %d %q, want 200 \"ok\\n\"", code, body)
	}
}

func TestNewHandlerNeedsAConnection(t *testing.T) {
	_, err := ops.NewHandler(ops.Options{})
	want := "ops: Options.Conn is nil: the handler needs the runner's NATS connection"
	if err == nil || err.Error() != want {
		t.Errorf("error %v, want %q", err, want)
	}
}

func TestReadyz(t *testing.T) {
	srv, err := bus.StartEmbedded(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv.Shutdown)
	nc, err := nats.Connect(srv.URL(), nats.MaxReconnects(-1), nats.ReconnectWait(50*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	url := serve(t, ops.Options{Conn: nc, Flows: []ops.Flow{{Name: "ready", Sinks: []string{"mem"}}}, Timeout: 2 * time.Second})

	// Before the flow starts, its streams and bucket do not exist.
	code, body := get(t, url+"/readyz")
	want := "not ready\n" +
		"- flow ready: stream MFT_ready_CHUNKS: does not exist yet\n" +
		"- flow ready: stream MFT_ready_TASKS: does not exist yet\n" +
		"- flow ready: KV bucket mft_ready: does not exist yet\n"
	if code != http.StatusServiceUnavailable || body != want {
		t.Errorf("/readyz before the flow started: %d\n%s\nwant 503\n%s", code, body, want)
	}

	run, err := newEngine(t, nc, nil).Start(context.Background(), pipeline.Flow{
		Name:   "ready",
		Source: pipeline.SourceOf(testkit.NewMemorySource(nil, false)),
		Sinks:  []pipeline.SinkSpec{pipeline.SinkOf("mem", testkit.NewMemorySink())},
	})
	if err != nil {
		t.Fatal(err)
	}
	if code, body := get(t, url+"/readyz"); code != http.StatusOK || body != "ok\n" {
		t.Errorf("/readyz while the flow runs: %d %q, want 200 \"ok\\n\"", code, body)
	}
	if err := run.Stop(context.Background()); err != nil {
		t.Fatal(err)
	}

	// NATS goes away: not ready, and saying why.
	srv.Shutdown()
	deadline := time.Now().Add(10 * time.Second)
	for nc.Status() == nats.CONNECTED && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	code, body = get(t, url+"/readyz")
	want = "not ready\n- NATS: not connected (RECONNECTING)\n"
	if code != http.StatusServiceUnavailable || body != want {
		t.Errorf("/readyz after NATS stopped: %d %q, want 503 %q", code, body, want)
	}
	if code, _ := get(t, url+"/healthz"); code != http.StatusOK {
		t.Errorf("/healthz after NATS stopped: %d, want 200 (the process is alive)", code)
	}
}

func TestReadyzNamesAMissingConsumer(t *testing.T) {
	nc := testkit.ConnectNATS(t, testkit.StartNATS(t))
	testkit.RunToEnd(t, newEngine(t, nc, nil), pipeline.Flow{
		Name:   "partial",
		Source: pipeline.SourceOf(testkit.NewMemorySource(nil, true)),
		Sinks:  []pipeline.SinkSpec{pipeline.SinkOf("a", testkit.NewMemorySink())},
	})
	url := serve(t, ops.Options{Conn: nc, Flows: []ops.Flow{{Name: "partial", Sinks: []string{"a", "b"}}}})
	code, body := get(t, url+"/readyz")
	want := "not ready\n- flow partial: consumer sink_b of sink b: does not exist yet\n"
	if code != http.StatusServiceUnavailable || body != want {
		t.Errorf("/readyz: %d %q, want 503 %q", code, body, want)
	}
}

// A reason the runs give (a bus store refusing writes for want of room)
// makes /readyz answer 503 with it, and only while they give it.
func TestReadyzSaysWhatTheRunsSay(t *testing.T) {
	nc := testkit.ConnectNATS(t, testkit.StartNATS(t))
	var mu sync.Mutex
	var problems []string
	url := serve(t, ops.Options{Conn: nc, Problems: func() []string {
		mu.Lock()
		defer mu.Unlock()
		return problems
	}})
	if code, body := get(t, url+"/readyz"); code != http.StatusOK || body != "ok\n" {
		t.Errorf("/readyz without problems: %d %q, want 200 \"ok\\n\"", code, body)
	}
	full := "flow orders: the bus store is full: the embedded server's store in .mftflow/jetstream has refused writes for 12s (a file waiting for room fails after 2m0s): free space on that file system"
	mu.Lock()
	problems = []string{full}
	mu.Unlock()
	if code, body := get(t, url+"/readyz"); code != http.StatusServiceUnavailable || body != "not ready\n- "+full+"\n" {
		t.Errorf("/readyz with the store full: %d %q", code, body)
	}
	mu.Lock()
	problems = nil
	mu.Unlock()
	if code, _ := get(t, url+"/readyz"); code != http.StatusOK {
		t.Errorf("/readyz once the store has room: %d, want 200", code)
	}
}

func TestStatusIsReadStatus(t *testing.T) {
	nc := testkit.ConnectNATS(t, testkit.StartNATS(t))
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	eng := newEngine(t, nc, nil)
	down := pipeline.SinkOf("down", testkit.FailAlways(testkit.NewMemorySink(), errors.New("no route to host")))
	down.Retry.Attempts = 1
	testkit.RunToEnd(t, eng, pipeline.Flow{
		Name:   "one",
		Source: pipeline.SourceOf(testkit.NewMemorySource(map[string][]byte{"a.txt": []byte("a\n"), "b/c.bin": testkit.RandomContent(1, 300<<10)}, true)),
		Sinks:  []pipeline.SinkSpec{pipeline.SinkOf("mem", testkit.NewMemorySink()), down},
	})
	testkit.RunToEnd(t, eng, pipeline.Flow{
		Name:   "two",
		Source: pipeline.SourceOf(testkit.NewMemorySource(map[string][]byte{"x": []byte("x")}, true)),
		Sinks:  []pipeline.SinkSpec{pipeline.SinkOf("mem", testkit.NewMemorySink())},
	})
	url := serve(t, ops.Options{Conn: nc})

	for _, c := range []struct {
		query string
		flows []string
	}{
		{"", nil},
		{"?flow=two", []string{"two"}},
		{"?flow=two,one", []string{"two", "one"}},
	} {
		want, err := engine.ReadStatus(context.Background(), js, c.flows...)
		if err != nil {
			t.Fatal(err)
		}
		resp, err := http.Get(url + "/status" + c.query)
		if err != nil {
			t.Fatal(err)
		}
		var got []engine.FlowStatus
		err = json.NewDecoder(resp.Body).Decode(&got)
		resp.Body.Close()
		if err != nil || resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != "application/json" {
			t.Fatalf("/status%s: %d %s, decoding: %v", c.query, resp.StatusCode, resp.Header.Get("Content-Type"), err)
		}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("/status%s differs from ReadStatus (-want +got):\n%s", c.query, diff)
		}
	}
	all, err := engine.ReadStatus(context.Background(), js)
	if err != nil || len(all) != 2 || all[0].Flow != "one" || len(all[0].Sinks) != 2 || all[0].Sinks[0].Failed != 2 {
		t.Errorf("state read: %+v, %v; want two flows and two failed deliveries to down (a status worth comparing)", all, err)
	}
	code, body := get(t, url+"/status?flow=nope")
	if want := "no state for flow \"nope\" on this server\n"; code != http.StatusNotFound || body != want {
		t.Errorf("/status?flow=nope: %d %q, want 404 %q", code, body, want)
	}
}

func TestMetricsOverHTTP(t *testing.T) {
	nc := testkit.ConnectNATS(t, testkit.StartNATS(t))
	reg := prometheus.NewRegistry()
	files := map[string][]byte{"a.bin": testkit.RandomContent(1, 3<<20+5), "b.txt": []byte("hello\n"), "empty": nil}
	var total float64
	for _, b := range files {
		total += float64(len(b))
	}
	local := testkit.NewMemorySink()
	testkit.RunToEnd(t, newEngine(t, nc, reg), pipeline.Flow{
		Name:   "scraped",
		Source: pipeline.SourceOf(testkit.NewMemorySource(files, true)),
		Sinks:  []pipeline.SinkSpec{pipeline.SinkOf("local", local)},
	})
	url := serve(t, ops.Options{Conn: nc, Gatherer: reg})

	code, body := get(t, url+"/metrics")
	if code != http.StatusOK {
		t.Fatalf("/metrics: %d\n%s", code, body)
	}
	parser := expfmt.NewTextParser(model.UTF8Validation)
	families, err := parser.TextToMetricFamilies(strings.NewReader(body))
	if err != nil {
		t.Fatalf("parsing /metrics: %v\n%s", err, body)
	}
	value := func(name string) float64 {
		f, ok := families[name]
		if !ok || len(f.GetMetric()) != 1 {
			t.Fatalf("/metrics has no single series %s:\n%s", name, body)
		}
		return f.GetMetric()[0].GetCounter().GetValue()
	}
	var delivered float64
	for _, b := range local.Files() {
		delivered += float64(len(b))
	}
	if got := value("mftflow_delivered_bytes_total"); got != delivered || got != total {
		t.Errorf("mftflow_delivered_bytes_total = %v; the sink holds %v bytes, the source had %v", got, delivered, total)
	}
	if got := value("mftflow_delivered_files_total"); got != float64(len(local.Files())) || got != 3 {
		t.Errorf("mftflow_delivered_files_total = %v; the sink holds %d files", got, len(local.Files()))
	}
}

// ListenTLS serves HTTPS with a certificate and key read by LoadTLS.
func TestListenTLS(t *testing.T) {
	dir := t.TempDir()
	certFile, keyFile, pool := writeSelfSigned(t, dir)
	if _, err := ops.LoadTLS(certFile, filepath.Join(dir, "missing.pem")); err == nil || !strings.Contains(err.Error(), "loading the HTTPS certificate") {
		t.Errorf("LoadTLS with a missing key: %v", err)
	}
	cfg, err := ops.LoadTLS(certFile, keyFile)
	if err != nil {
		t.Fatal(err)
	}
	nc := testkit.ConnectNATS(t, testkit.StartNATS(t))
	h, err := ops.NewHandler(ops.Options{Conn: nc})
	if err != nil {
		t.Fatal(err)
	}
	srv, err := ops.ListenTLS("127.0.0.1:0", h, cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Shutdown(context.Background())
	c := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
	resp, err := c.Get("https://" + srv.Addr() + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || resp.TLS == nil {
		t.Errorf("GET /healthz over HTTPS: %d, TLS %v", resp.StatusCode, resp.TLS != nil)
	}
	if resp, err := http.Get("http://" + srv.Addr() + "/healthz"); err == nil {
		resp.Body.Close()
		if resp.StatusCode == http.StatusOK {
			t.Error("plain HTTP was answered on the HTTPS address")
		}
	}
}

// writeSelfSigned writes a self-signed certificate for 127.0.0.1 and its
// key, and returns their paths and a pool trusting the certificate.
func writeSelfSigned(t *testing.T, dir string) (certFile, keyFile string, pool *x509.CertPool) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "127.0.0.1"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}, KeyUsage: x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kb, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	certFile, keyFile = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600)
	os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kb}), 0o600)
	cert, _ := x509.ParseCertificate(der)
	pool = x509.NewCertPool()
	pool.AddCert(cert)
	return certFile, keyFile, pool
}
