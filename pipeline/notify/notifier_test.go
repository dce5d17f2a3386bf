package notify_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/mftflow/mftflow/pipeline"
	"github.com/mftflow/mftflow/pipeline/notify"
	"github.com/mftflow/mftflow/testkit"
)

const (
	flow   = "orders"
	secret = "hook-secret"
)

// fastOptions retry quickly, so that tests of failures take a second.
func fastOptions() notify.Options {
	return notify.Options{
		InitialBackoff: 50 * time.Millisecond,
		MaxBackoff:     200 * time.Millisecond,
		AckWait:        2 * time.Second,
		RefreshEvery:   50 * time.Millisecond,
		Replicas:       1,
	}
}

// startBus starts an embedded NATS server and returns its URL and a
// JetStream context on a connection that lasts the test.
func startBus(t *testing.T) (string, jetstream.JetStream) {
	t.Helper()
	url := testkit.StartNATS(t)
	return url, newJS(t, testkit.ConnectNATS(t, url))
}

func newJS(t *testing.T, nc *nats.Conn) jetstream.JetStream {
	t.Helper()
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	return js
}

func start(t *testing.T, js jetstream.JetStream, rules []pipeline.NotifyRule, opts notify.Options) *notify.Notifier {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	n, err := notify.New(ctx, js, flow, rules, opts)
	if err != nil {
		t.Fatalf("notify.New: %v", err)
	}
	t.Cleanup(func() { n.Close() })
	return n
}

func hookRule(url string, on ...string) pipeline.NotifyRule {
	return pipeline.NotifyRule{On: on, Webhook: &pipeline.WebhookTarget{URL: url, Secret: secret, Timeout: time.Second}}
}

// failedFile is the acked event of a file whose delivery to partner failed.
func failedFile(i int) pipeline.Event {
	return pipeline.Event{
		Kind: pipeline.EventAcked, Time: time.Date(2026, 3, 1, 12, 0, i, 0, time.UTC), Flow: flow, Runner: "run-1",
		FileID: fmt.Sprintf("f%03d", i), Name: fmt.Sprintf("orders-%03d.csv", i), Size: 1234, Outcome: "failed",
		Detail: "partner: 553 mailbox full",
		Sinks:  map[string]pipeline.SinkResult{"partner": {Error: "553 mailbox full"}},
	}
}

// request is what the receiver got.
type request struct {
	header   http.Header
	body     []byte
	msg      notify.Message
	validSig bool
	at       time.Time
	code     int // the answer
}

// receiver is a webhook receiver: a real HTTP server on 127.0.0.1 that
// can answer with an error, or go down and come back on the same address.
type receiver struct {
	t    *testing.T
	addr string
	mu   sync.Mutex
	srv  *http.Server
	code int // the answer; 0 is 200
	// hold, when set, makes requests wait until it is closed.
	hold    chan struct{}
	got     []request
	arrived chan struct{}
}

func startReceiver(t *testing.T) *receiver {
	t.Helper()
	r := &receiver{t: t, arrived: make(chan struct{})}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	r.addr = l.Addr().String()
	r.serve(l)
	t.Cleanup(r.down)
	return r
}

func (r *receiver) URL() string { return "http://" + r.addr + "/hooks/mftflow?token=t0ken" }

func (r *receiver) serve(l net.Listener) {
	srv := &http.Server{Handler: http.HandlerFunc(r.handle)}
	r.mu.Lock()
	r.srv = srv
	r.mu.Unlock()
	go srv.Serve(l)
}

// down closes the listener and every connection.
func (r *receiver) down() {
	r.mu.Lock()
	srv := r.srv
	r.srv = nil
	r.mu.Unlock()
	if srv != nil {
		srv.Close()
	}
}

// up listens again on the same address.
func (r *receiver) up() {
	r.t.Helper()
	var l net.Listener
	var err error
	for range 50 {
		if l, err = net.Listen("tcp", r.addr); err == nil {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err != nil {
		r.t.Fatalf("listening again on %s: %v", r.addr, err)
	}
	r.serve(l)
}

func (r *receiver) answer(code int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.code = code
}

func (r *receiver) handle(w http.ResponseWriter, req *http.Request) {
	body, _ := io.ReadAll(req.Body)
	got := request{header: req.Header.Clone(), body: body, at: time.Now(),
		validSig: notify.VerifySignature(secret, body, req.Header.Get(notify.HeaderSignature))}
	if err := json.Unmarshal(body, &got.msg); err != nil {
		r.t.Errorf("receiver: body is not a Message: %v", err)
	}
	r.mu.Lock()
	code, hold := r.code, r.hold
	if code == 0 {
		code = http.StatusOK
	}
	got.code = code
	r.got = append(r.got, got)
	close(r.arrived)
	r.arrived = make(chan struct{})
	r.mu.Unlock()
	if hold != nil {
		select {
		case <-hold:
		case <-req.Context().Done():
		}
	}
	if code == http.StatusServiceUnavailable {
		w.Header().Set("Retry-After", "0")
	}
	w.WriteHeader(code)
	fmt.Fprintf(w, "answered %d", code)
}

func (r *receiver) requests() []request {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.got)
}

// waitFor waits until done holds for the requests received.
func (r *receiver) waitFor(what string, timeout time.Duration, done func([]request) bool) []request {
	r.t.Helper()
	deadline := time.After(timeout)
	for {
		r.mu.Lock()
		got, arrived := slices.Clone(r.got), r.arrived
		r.mu.Unlock()
		if done(got) {
			return got
		}
		select {
		case <-arrived:
		case <-deadline:
			r.t.Fatalf("after %v, still waiting for %s (%d requests)", timeout, what, len(got))
		}
	}
}

func TestWebhookReceivedWithValidSignature(t *testing.T) {
	_, js := startBus(t)
	recv := startReceiver(t)
	rule := hookRule(recv.URL(), "failed", "mixed")
	rule.Webhook.Headers = map[string]string{"X-Team": "ops"}
	n := start(t, js, []pipeline.NotifyRule{rule}, fastOptions())

	ev := failedFile(1)
	n.Emit(pipeline.Event{Kind: pipeline.EventAcked, Flow: flow, FileID: "p", Name: "ok.csv", Outcome: "passed"})
	n.Emit(ev)
	got := recv.waitFor("the notification", 10*time.Second, func(r []request) bool { return len(r) >= 1 })[0]

	if !got.validSig {
		t.Errorf("signature %q does not verify", got.header.Get(notify.HeaderSignature))
	}
	if notify.VerifySignature("another secret", got.body, got.header.Get(notify.HeaderSignature)) {
		t.Error("the signature verifies under another secret")
	}
	wantHeaders := map[string]string{
		"Content-Type":        "application/json",
		notify.HeaderEvent:    "failed",
		notify.HeaderDelivery: got.msg.ID,
		"X-Team":              "ops",
		"User-Agent":          "mftflow-notify/1",
	}
	for name, want := range wantHeaders {
		if v := got.header.Get(name); v != want {
			t.Errorf("header %s = %q, want %q", name, v, want)
		}
	}
	var body map[string]any
	if err := json.Unmarshal(got.body, &body); err != nil {
		t.Fatal(err)
	}
	want := map[string]any{
		"id": got.msg.ID, "event": "failed", "kind": "acked", "time": "2026-03-01T12:00:01Z", "flow": flow, "runner": "run-1",
		"file_id": "f001", "name": "orders-001.csv", "size": 1234.0, "outcome": "failed", "detail": "partner: 553 mailbox full",
		"sinks": map[string]any{"partner": map[string]any{"committed": false, "error": "553 mailbox full"}},
	}
	if diff := cmp.Diff(want, body); diff != "" {
		t.Errorf("body (-want +got):\n%s", diff)
	}
	if len(got.msg.ID) != 32 {
		t.Errorf("id %q: want 32 hex digits", got.msg.ID)
	}

	// The same event emitted again (a runner that crashed before it knew
	// it had emitted) is dropped by the stream; the next file's
	// notification comes after where it would have.
	n.Emit(ev)
	n.Emit(failedFile(2))
	reqs := recv.waitFor("the next file", 10*time.Second, func(r []request) bool { return len(r) >= 2 })
	if diff := cmp.Diff([]string{"orders-001.csv", "orders-002.csv"}, names(reqs)); diff != "" {
		t.Errorf("files told (-want +got):\n%s", diff)
	}
}

func names(reqs []request) []string {
	var out []string
	for _, r := range reqs {
		out = append(out, r.msg.Name)
	}
	return out
}

func TestRulesWithOneTargetSendOnce(t *testing.T) {
	_, js := startBus(t)
	recv := startReceiver(t)
	other := startReceiver(t)
	n := start(t, js, []pipeline.NotifyRule{
		hookRule(recv.URL(), "failed"),
		hookRule(recv.URL(), "failed", "mixed"),
		hookRule(other.URL(), "failed"),
	}, fastOptions())
	n.Emit(failedFile(1))
	n.Emit(failedFile(2))
	recv.waitFor("two files", 10*time.Second, func(r []request) bool { return len(r) >= 2 })
	got := other.waitFor("two files", 10*time.Second, func(r []request) bool { return len(r) >= 2 })
	if a, b := recv.requests()[0].msg.ID, got[0].msg.ID; a == b {
		t.Errorf("two targets got the same id %s", a)
	}
	if diff := cmp.Diff([]string{"orders-001.csv", "orders-002.csv"}, names(recv.requests())); diff != "" {
		t.Errorf("the target of two rules got (-want +got):\n%s", diff)
	}
}

func TestReceiverDownThenUpGetsEverything(t *testing.T) {
	_, js := startBus(t)
	recv := startReceiver(t)
	recv.answer(http.StatusServiceUnavailable)
	n := start(t, js, []pipeline.NotifyRule{hookRule(recv.URL(), "failed")}, fastOptions())

	const files = 10
	for i := range files {
		began := time.Now()
		n.Emit(failedFile(i))
		if d := time.Since(began); d > time.Second {
			t.Errorf("Emit took %v while the receiver answers 503", d)
		}
	}
	recv.waitFor("three refused attempts", 10*time.Second, func(r []request) bool { return len(r) >= 3 })
	recv.down()
	time.Sleep(500 * time.Millisecond) // a few backoff steps against a closed port
	recv.answer(http.StatusOK)
	recv.up()

	want := make([]string, files)
	for i := range files {
		want[i] = failedFile(i).Name
	}
	reqs := recv.waitFor("every file", 20*time.Second, func(r []request) bool {
		return len(okNames(r)) == files
	})
	for _, r := range reqs {
		if !r.validSig {
			t.Errorf("notification %s: invalid signature", r.msg.ID)
		}
	}
	// Each notification keeps its id across attempts.
	byName := map[string]string{}
	for _, r := range reqs {
		if id, seen := byName[r.msg.Name]; seen && id != r.msg.ID {
			t.Errorf("%s came with id %s, then %s", r.msg.Name, id, r.msg.ID)
		}
		byName[r.msg.Name] = r.msg.ID
	}
	if diff := cmp.Diff(want, okNames(reqs)); diff != "" {
		t.Errorf("files told (-want +got):\n%s", diff)
	}
	waitStatus(t, n, "the target recovered", func(st notify.Status) bool {
		return len(st.Targets) == 1 && !st.Targets[0].Failing && st.Targets[0].Pending == 0
	})
}

// okNames returns the names of the files whose notification the receiver
// took (answered 200), sorted, each once.
func okNames(reqs []request) []string {
	var out []string
	for _, r := range reqs {
		if r.code == http.StatusOK && !slices.Contains(out, r.msg.Name) {
			out = append(out, r.msg.Name)
		}
	}
	slices.Sort(out)
	return out
}
