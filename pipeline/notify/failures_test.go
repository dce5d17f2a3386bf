package notify_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/mftflow/mftflow/pipeline"
	"github.com/mftflow/mftflow/pipeline/bus"
	"github.com/mftflow/mftflow/pipeline/notify"
)

// waitStatus polls the Notifier's status until done holds.
func waitStatus(t *testing.T, n *notify.Notifier, what string, done func(notify.Status) bool) notify.Status {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		st, err := n.Status(ctx)
		cancel()
		if err != nil {
			t.Fatalf("Status: %v", err)
		}
		if done(st) {
			return st
		}
		if time.Now().After(deadline) {
			t.Fatalf("still waiting for %s; status: %+v", what, st)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func TestNotificationsPendingAtACrashAreSentAfterRestart(t *testing.T) {
	url, _ := startBus(t)
	recv := startReceiver(t)
	recv.answer(http.StatusServiceUnavailable)
	rules := []pipeline.NotifyRule{hookRule(recv.URL(), "failed")}

	// The first runner: its own connection, which the crash cuts.
	nc, err := nats.Connect(url)
	if err != nil {
		t.Fatal(err)
	}
	first := start(t, newJS(t, nc), rules, fastOptions())
	const files = 5
	for i := range files {
		first.Emit(failedFile(i))
	}
	recv.waitFor("a refused attempt", 10*time.Second, func(r []request) bool { return len(r) >= 1 })
	// The crash: the connection goes without a goodbye, nothing more is
	// acked or handed back; then the goroutines stop.
	nc.Close()
	first.Close()

	recv.answer(http.StatusOK)
	js := newJS(t, connect(t, url))
	pending, err := notify.Inspect(context.Background(), js, flow)
	if err != nil {
		t.Fatal(err)
	}
	if len(pending) != 1 || pending[0].Pending != files {
		t.Fatalf("after the crash: %+v, want one target with %d pending", pending, files)
	}
	before := len(recv.requests())
	second := start(t, js, rules, fastOptions())
	reqs := recv.waitFor("every file after the restart", 20*time.Second, func(r []request) bool {
		return len(okNames(r)) == files
	})
	if len(reqs) == before {
		t.Fatal("nothing sent after the restart")
	}
	for _, r := range reqs {
		if !r.validSig {
			t.Errorf("notification %s: invalid signature", r.msg.ID)
		}
	}
	waitStatus(t, second, "nothing pending", func(st notify.Status) bool { return st.Targets[0].Pending == 0 })
}

func connect(t *testing.T, url string) *nats.Conn {
	t.Helper()
	nc, err := nats.Connect(url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	return nc
}

func TestFailingEndpointShowsInStatusAndMetrics(t *testing.T) {
	_, js := startBus(t)
	recv := startReceiver(t)
	recv.answer(http.StatusInternalServerError)
	reg := prometheus.NewRegistry()
	opts := fastOptions()
	opts.Registerer = reg
	n := start(t, js, []pipeline.NotifyRule{hookRule(recv.URL(), "failed")}, opts)
	for i := range 3 {
		n.Emit(failedFile(i))
	}
	st := waitStatus(t, n, "a failing target", func(st notify.Status) bool {
		return len(st.Targets) == 1 && st.Targets[0].Failing && st.Targets[0].Failures >= 2 && st.Targets[0].Pending == 3
	})
	tgt := st.Targets[0]
	if tgt.Channel != "webhook" || tgt.Endpoint != "http://"+recv.addr || len(tgt.Rules) != 1 || tgt.Rules[0] != 0 {
		t.Errorf("target %+v", tgt)
	}
	if !strings.Contains(tgt.LastError, "answered 500 Internal Server Error: answered 500") || tgt.Since.IsZero() {
		t.Errorf("last error %q since %v", tgt.LastError, tgt.Since)
	}
	if strings.Contains(tgt.LastError, "t0ken") || strings.Contains(tgt.LastError, "/hooks") {
		t.Errorf("last error %q shows the URL's path or token", tgt.LastError)
	}
	if len(st.Failing()) != 1 {
		t.Errorf("Failing() = %+v", st.Failing())
	}
	waitMetric(t, reg, "mftflow_notify_pending", "webhook", 3)
	if v := metric(t, reg, "mftflow_notify_attempt_failures_total", "webhook"); v < 2 {
		t.Errorf("attempt failures = %v, want at least 2", v)
	}
	if v := metric(t, reg, "mftflow_notify_sent_total", "webhook"); v != 0 {
		t.Errorf("sent = %v, want 0", v)
	}

	// It recovers, and says so.
	recv.answer(http.StatusOK)
	waitStatus(t, n, "the target recovered", func(st notify.Status) bool {
		return !st.Targets[0].Failing && st.Targets[0].Pending == 0
	})
	waitMetric(t, reg, "mftflow_notify_sent_total", "webhook", 3)
	waitMetric(t, reg, "mftflow_notify_pending", "webhook", 0)
}

func TestEmitDoesNotWaitForAHangingReceiver(t *testing.T) {
	_, js := startBus(t)
	recv := startReceiver(t)
	hold := make(chan struct{})
	defer close(hold)
	recv.mu.Lock()
	recv.hold = hold
	recv.mu.Unlock()
	rule := hookRule(recv.URL(), "failed")
	rule.Webhook.Timeout = 10 * time.Second
	n := start(t, js, []pipeline.NotifyRule{rule}, fastOptions())
	n.Emit(failedFile(0))
	recv.waitFor("the hanging request", 10*time.Second, func(r []request) bool { return len(r) == 1 })
	for i := 1; i <= 20; i++ {
		began := time.Now()
		n.Emit(failedFile(i))
		if d := time.Since(began); d > time.Second {
			t.Fatalf("Emit took %v while a request hangs", d)
		}
	}
}

func TestGivenUp(t *testing.T) {
	for _, tt := range []struct {
		name string
		code int
		// giveUpAfter of 0 keeps the default (24h).
		giveUpAfter time.Duration
		reason      string
	}{
		{"410 Gone stops at once", http.StatusGone, 0, "answered 410 Gone"},
		{"still failing at the give-up age", http.StatusBadGateway, 300 * time.Millisecond, "answered 502 Bad Gateway"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, js := startBus(t)
			recv := startReceiver(t)
			recv.answer(tt.code)
			reg := prometheus.NewRegistry()
			opts := fastOptions()
			opts.Registerer, opts.GiveUpAfter = reg, tt.giveUpAfter
			n := start(t, js, []pipeline.NotifyRule{hookRule(recv.URL(), "failed")}, opts)
			n.Emit(failedFile(7))
			st := waitStatus(t, n, "a notification given up", func(st notify.Status) bool {
				return st.Targets[0].GivenUp == 1 && st.Targets[0].Pending == 0
			})
			g := st.Targets[0].LastGivenUp
			if g == nil || g.Name != "orders-007.csv" || g.Trigger != "failed" || !strings.Contains(g.Error, tt.reason) || g.ID != recv.requests()[0].msg.ID {
				t.Errorf("last given up: %+v", g)
			}
			if v := metric(t, reg, "mftflow_notify_given_up_total", "webhook"); v != 1 {
				t.Errorf("given up = %v, want 1", v)
			}
			if tt.code == http.StatusGone && len(recv.requests()) != 1 {
				t.Errorf("%d requests after 410 Gone, want 1", len(recv.requests()))
			}
		})
	}
}

func TestRetryAfterIsRespected(t *testing.T) {
	_, js := startBus(t)
	hits := make(chan time.Time, 10)
	var calls atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits <- time.Now()
		if calls.Add(1) == 1 {
			w.Header().Set("Retry-After", "1")
			w.WriteHeader(http.StatusTooManyRequests)
			return
		}
		w.WriteHeader(http.StatusNoContent)
	}))
	t.Cleanup(srv.Close)

	n := start(t, js, []pipeline.NotifyRule{hookRule(srv.URL, "failed")}, fastOptions())
	n.Emit(failedFile(1))
	first := waitHit(t, hits)
	second := waitHit(t, hits)
	if d := second.Sub(first); d < 900*time.Millisecond {
		t.Errorf("tried again after %v, before the 1s the receiver asked for", d)
	}
}

func waitHit(t *testing.T, hits chan time.Time) time.Time {
	t.Helper()
	select {
	case at := <-hits:
		return at
	case <-time.After(10 * time.Second):
		t.Fatal("no request")
	}
	return time.Time{}
}

func TestNoRulesTouchNothing(t *testing.T) {
	_, js := startBus(t)
	n := start(t, js, nil, fastOptions())
	n.Emit(failedFile(1))
	if _, err := js.Stream(context.Background(), bus.Names{Flow: flow}.NotifyStream()); !errors.Is(err, jetstream.ErrStreamNotFound) {
		t.Errorf("stream lookup: %v, want not found", err)
	}
	st, err := n.Status(context.Background())
	if err != nil || len(st.Targets) != 0 {
		t.Errorf("Status = %+v, %v", st, err)
	}
}

func TestNewRefusesBadRulesWithoutSecrets(t *testing.T) {
	_, js := startBus(t)
	rules := []pipeline.NotifyRule{
		{On: []string{"failed"}, Email: &pipeline.EmailTarget{Server: "mail.example.com", TLS: "none", User: "u", Password: "hunter2", From: "a@b.c", To: []string{"d@e.f"}}},
		{On: []string{"failed", "done"}, Webhook: &pipeline.WebhookTarget{URL: "https://h/t0ken", Secret: "s3cr3t"}, Pos: pipeline.Pos{File: "f.yaml", Line: 9, Column: 5}},
	}
	_, err := notify.New(context.Background(), js, flow, rules, fastOptions())
	want := "notify[0]: email.tls: none sends the mail (and any password) in clear text: it is allowed only for a server on this machine (localhost, 127.0.0.1, ::1); use starttls or tls\n" +
		`f.yaml:9:5: notify[1]: on[1]: unknown event "done" (known: passed, failed, mixed, sla_warning, sla_missed, sla_met)`
	if err == nil || err.Error() != want {
		t.Errorf("New: %v\nwant: %s", err, want)
	}
	if _, err := notify.New(context.Background(), js, "bad name", nil, fastOptions()); err == nil {
		t.Error("New accepted a flow name with a space")
	}
}

// metric returns the value of the series of name with labels flow and
// channel, 0 when there is none.
func metric(t *testing.T, reg *prometheus.Registry, name, channel string) float64 {
	t.Helper()
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range families {
		if f.GetName() != name {
			continue
		}
		for _, m := range f.GetMetric() {
			labels := map[string]string{}
			for _, l := range m.GetLabel() {
				labels[l.GetName()] = l.GetValue()
			}
			if labels["flow"] != flow || labels["channel"] != channel {
				continue
			}
			if c := m.GetCounter(); c != nil {
				return c.GetValue()
			}
			return m.GetGauge().GetValue()
		}
	}
	return 0
}

// waitMetric waits until the series of name reaches want.
func waitMetric(t *testing.T, reg *prometheus.Registry, name, channel string, want float64) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for metric(t, reg, name, channel) != want {
		if time.Now().After(deadline) {
			t.Fatalf("%s{channel=%q} = %v, want %v", name, channel, metric(t, reg, name, channel), want)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
