package notify

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/mftflow/mftflow/pipeline"
)

func acked(outcome string, sinks map[string]pipeline.SinkResult) pipeline.Event {
	return pipeline.Event{Kind: pipeline.EventAcked, Flow: "f", FileID: "id1", Name: "a.csv", Outcome: outcome, Sinks: sinks}
}

func TestTriggerOf(t *testing.T) {
	for _, tt := range []struct {
		ev   pipeline.Event
		want string
	}{
		{acked("passed", nil), "passed"},
		{acked("mixed", nil), "mixed"},
		{acked("skipped", nil), ""},
		{pipeline.Event{Kind: pipeline.EventSLAMissed}, "sla_missed"},
		{pipeline.Event{Kind: pipeline.EventCommitted, Outcome: "passed"}, ""},
		{pipeline.Event{Kind: pipeline.EventAttemptFailed, Permanent: true}, ""},
	} {
		if got := triggerOf(tt.ev); got != tt.want {
			t.Errorf("triggerOf(%s %s) = %q, want %q", tt.ev.Kind, tt.ev.Outcome, got, tt.want)
		}
	}
}

func TestRuleMatchesSinks(t *testing.T) {
	ok, bad := pipeline.SinkResult{Committed: true}, pipeline.SinkResult{Error: "refused"}
	r := func(on string, sinks ...string) rule {
		return rule{NotifyRule: pipeline.NotifyRule{On: []string{on}, Sinks: sinks}}
	}
	for _, tt := range []struct {
		name string
		rule rule
		ev   pipeline.Event
		want bool
	}{
		{"other trigger", r("failed"), acked("passed", nil), false},
		{"no sinks: every file", r("mixed"), acked("mixed", nil), true},
		{"passed, committed there", r("passed", "partner"), acked("passed", map[string]pipeline.SinkResult{"partner": ok}), true},
		{"passed without results: every sink committed", r("passed", "partner"), acked("passed", nil), true},
		{"mixed, failed there", r("mixed", "partner"), acked("mixed", map[string]pipeline.SinkResult{"partner": bad, "archive": ok}), true},
		{"mixed, failed elsewhere", r("mixed", "partner"), acked("mixed", map[string]pipeline.SinkResult{"partner": ok, "archive": bad}), false},
		{"mixed without results: told", r("mixed", "partner"), acked("mixed", nil), true},
		{"failed without results: every sink failed", r("failed", "partner"), acked("failed", nil), true},
		{"SLA of the flow", r("sla_missed", "partner"), pipeline.Event{Kind: pipeline.EventSLAMissed}, true},
		{"SLA of another sink", r("sla_missed", "partner"), pipeline.Event{Kind: pipeline.EventSLAMissed, Sink: "archive"}, false},
		{"SLA of the sink", r("sla_missed", "partner"), pipeline.Event{Kind: pipeline.EventSLAMissed, Sink: "partner"}, true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.rule.matches(triggerOf(tt.ev), tt.ev); got != tt.want {
				t.Errorf("matches = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestMessageID(t *testing.T) {
	ev := acked("failed", nil)
	ev.Time, ev.Runner = time.Unix(1, 0), "run-a"
	again := ev
	again.Time, again.Runner = time.Unix(2, 0), "run-b"
	if a, b := messageID(ev, "failed", "t1"), messageID(again, "failed", "t1"); a != b {
		t.Errorf("the same event emitted again by another run has id %s, then %s", a, b)
	}
	other := ev
	other.FileID = "id2"
	for name, id := range map[string]string{
		"another file":   messageID(other, "failed", "t1"),
		"another target": messageID(ev, "failed", "t2"),
	} {
		if id == messageID(ev, "failed", "t1") {
			t.Errorf("%s has the same id", name)
		}
	}
	sla := pipeline.Event{Kind: pipeline.EventSLAMissed, Detail: "daily-orders 06:00"}
	sla2 := sla
	sla2.Detail = "daily-invoices 07:00"
	if messageID(sla, "sla_missed", "t") == messageID(sla2, "sla_missed", "t") {
		t.Error("two SLA expectations have the same id")
	}
}

func TestNewMessageBoundsText(t *testing.T) {
	ev := acked("failed", map[string]pipeline.SinkResult{"partner": {Error: strings.Repeat("é", 5000)}})
	ev.Error = strings.Repeat("x", 10000)
	m := newMessage(ev, "failed", "t")
	if len(m.Error) > maxText || !strings.HasSuffix(m.Error, "…") {
		t.Errorf("Error kept %d bytes", len(m.Error))
	}
	if e := m.Sinks["partner"].Error; len(e) > maxSinkError || !strings.HasSuffix(e, "…") || !strings.HasPrefix(e, "é") {
		t.Errorf("sink error kept %d bytes, or was cut inside a character", len(e))
	}
}

func TestRetryAfter(t *testing.T) {
	now := time.Date(2026, 1, 2, 15, 4, 5, 0, time.UTC)
	for v, want := range map[string]time.Duration{
		"":                              0,
		"7":                             7 * time.Second,
		"-3":                            0,
		"99999":                         time.Hour,
		"Fri, 02 Jan 2026 15:05:05 GMT": time.Minute,
		"soon":                          0,
	} {
		if got := retryAfter(v, now); got != want {
			t.Errorf("retryAfter(%q) = %v, want %v", v, got, want)
		}
	}
}

func TestWebhookAnswers(t *testing.T) {
	w := &webhookSender{endpoint: "https://h"}
	for _, tt := range []struct {
		code       int
		header     string
		ok, perm   bool
		retryAfter time.Duration
	}{
		{code: 200, ok: true},
		{code: 204, ok: true},
		{code: 302, perm: true},
		{code: 400, perm: true},
		{code: 401},
		{code: 403},
		{code: 404, perm: true},
		{code: 410, perm: true},
		{code: 408},
		{code: 429, header: "3", retryAfter: 3 * time.Second},
		{code: 500},
		{code: 503, header: "2", retryAfter: 2 * time.Second},
	} {
		resp := &http.Response{StatusCode: tt.code, Status: http.StatusText(tt.code), Header: http.Header{}}
		if tt.header != "" {
			resp.Header.Set("Retry-After", tt.header)
		}
		err := w.answer(resp, []byte("no\nthanks"))
		if (err == nil) != tt.ok {
			t.Errorf("%d: err = %v", tt.code, err)
			continue
		}
		if err == nil {
			continue
		}
		se := err.(*SendError)
		if se.Permanent != tt.perm || IsPermanent(err) != tt.perm || se.RetryAfter != tt.retryAfter || se.Code != tt.code {
			t.Errorf("%d: %+v, want permanent %v, retry after %v", tt.code, se, tt.perm, tt.retryAfter)
		}
		if !strings.Contains(err.Error(), "no thanks") {
			t.Errorf("%d: %q does not quote the answer on one line", tt.code, err)
		}
	}
}
