package pipeline_test

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/mftflow/mftflow/pipeline"
)

func TestNotifyRuleCheck(t *testing.T) {
	hook := func(w pipeline.WebhookTarget) pipeline.NotifyRule {
		return pipeline.NotifyRule{On: []string{"failed"}, Webhook: &w}
	}
	mail := func(e pipeline.EmailTarget) pipeline.NotifyRule {
		if e.From == "" {
			e.From = "mftflow@example.com"
		}
		if e.To == nil {
			e.To = []string{"ops@example.com"}
		}
		return pipeline.NotifyRule{On: []string{"failed"}, Email: &e}
	}
	for _, tt := range []struct {
		name string
		rule pipeline.NotifyRule
		want []string
	}{
		{"webhook", hook(pipeline.WebhookTarget{URL: "https://h.example/x?token=t", Secret: "s", Headers: map[string]string{"X-Team": "ops"}}), nil},
		{"email", mail(pipeline.EmailTarget{Server: "smtp.example.com", User: "u", Password: "p", Subject: "{flow} {outcome}"}), nil},
		{"plain email on localhost", mail(pipeline.EmailTarget{Server: "127.0.0.1:2525", TLS: "none"}), nil},
		{"an unknown event", pipeline.NotifyRule{On: []string{"passed", "done"}, Webhook: &pipeline.WebhookTarget{URL: "http://h"}},
			[]string{`on[1]: unknown event "done" (known: passed, failed, mixed, sla_warning, sla_missed, sla_met)`}},
		{"no events", pipeline.NotifyRule{Webhook: &pipeline.WebhookTarget{URL: "http://h"}},
			[]string{"on: say which events to tell: a list of passed, failed, mixed, sla_warning, sla_missed, sla_met"}},
		{"no target", pipeline.NotifyRule{On: []string{"failed"}},
			[]string{"webhook: the rule has no target: add webhook: {url: ...} or email: {server: ..., from: ..., to: [...]}"}},
		{"two targets", pipeline.NotifyRule{On: []string{"failed"}, Webhook: &pipeline.WebhookTarget{URL: "http://h"}, Email: &pipeline.EmailTarget{}},
			[]string{"email: the rule has both a webhook and an email target: give each its own rule, with the same on: list"}},
		{"URL with another scheme, token not shown", hook(pipeline.WebhookTarget{URL: "ftp://h/secret-token"}),
			[]string{`webhook.url: scheme "ftp" is not supported: use https (or http)`}},
		{"URL without host", hook(pipeline.WebhookTarget{URL: "https:///x"}), []string{"webhook.url: the URL has no host: write it as https://host/path"}},
		{"reserved and bad headers", hook(pipeline.WebhookTarget{URL: "http://h", Headers: map[string]string{"X-Mftflow-Event": "x", "a b": "c", "X-Ok": "a\nb"}}),
			[]string{`webhook.headers: header "X-Mftflow-Event" is set by mftflow itself: leave it out`,
				`webhook.headers: the value of header "X-Ok" holds a line break or NUL: give it on one line`,
				`webhook.headers: "a b" is not a valid header name: use letters, digits and '-'`}},
		{"timeout", hook(pipeline.WebhookTarget{URL: "http://h", Timeout: time.Hour}),
			[]string{"webhook.timeout: 1h0m0s is out of range: give a duration from 1s to 5m0s, or leave it out"}},
		{"plain email elsewhere", mail(pipeline.EmailTarget{Server: "smtp.example.com", TLS: "none"}),
			[]string{"email.tls: none sends the mail (and any password) in clear text: it is allowed only for a server on this machine (localhost, 127.0.0.1, ::1); use starttls or tls"}},
		{"bad port", mail(pipeline.EmailTarget{Server: "smtp.example.com:smtp"}),
			[]string{`email.server: "smtp.example.com:smtp" is not "host:port": the port must be a number from 1 to 65535`}},
		{"password without user, secret not shown", mail(pipeline.EmailTarget{Server: "h", Password: "hunter2"}),
			[]string{"email.user: a password is set but no user: set both, or neither to send without logging in"}},
		{"no recipients", pipeline.NotifyRule{On: []string{"failed"}, Email: &pipeline.EmailTarget{Server: "h", From: "a@b"}},
			[]string{"email.to: no recipients: list at least one address"}},
		{"bad recipient", mail(pipeline.EmailTarget{Server: "h", To: []string{"ops@example.com", "ops"}}),
			[]string{`email.to[1]: "ops" is not a mail address (mail: missing '@' or angle-addr)`}},
		{"subject", mail(pipeline.EmailTarget{Server: "h", Subject: "{flow} {file}"}),
			[]string{"email.subject: unknown placeholder {file} (known: {flow}, {outcome}, {name}, {size}, {sink}, {file_id}, {detail})"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			var got []string
			for _, e := range unwrapAll(tt.rule.Check()) {
				var ne *pipeline.NotifyError
				if !errors.As(e, &ne) {
					t.Errorf("%v is not a *NotifyError", e)
				}
				got = append(got, e.Error())
				for _, secret := range []string{"hunter2", "secret-token"} {
					if strings.Contains(e.Error(), secret) {
						t.Errorf("%q shows a secret", e)
					}
				}
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("errors (-want +got):\n%s", diff)
			}
		})
	}
}

func unwrapAll(err error) []error {
	if err == nil {
		return nil
	}
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		return j.Unwrap()
	}
	return []error{err}
}

func TestFlowCheckNotify(t *testing.T) {
	f := pipeline.Flow{
		Name:   "f",
		Source: pipeline.Use("local", nil),
		Sinks:  []pipeline.SinkSpec{{Component: pipeline.Use("local", nil)}, {Name: "partner", Component: pipeline.Use("s3", nil)}},
		Notify: []pipeline.NotifyRule{
			{On: []string{"failed"}, Sinks: []string{"local", "partner"}, Webhook: &pipeline.WebhookTarget{URL: "http://h"}},
			{On: []string{"mixed"}, Sinks: []string{"s3"}, Webhook: &pipeline.WebhookTarget{URL: "http://h"}, Pos: pipeline.Pos{File: "f.yaml", Line: 9, Column: 5}},
		},
	}
	want := `f.yaml:9:5: notify[1].sinks[0]: unknown sink "s3" (the flow's sinks: local, partner)`
	if err := f.Check(); err == nil || err.Error() != want {
		t.Errorf("Check = %v, want %s", err, want)
	}
}

func TestTargetsHideSecrets(t *testing.T) {
	w := pipeline.WebhookTarget{URL: "https://user:pw@hooks.example.com/services/T0/B0/token", Secret: "hunter2", Headers: map[string]string{"Authorization": "Bearer tok"}}
	e := pipeline.EmailTarget{Server: "smtp.example.com", User: "u", Password: "hunter2"}
	for _, s := range []string{w.String(), w.GoString(), e.String(), e.GoString()} {
		for _, secret := range []string{"hunter2", "token", "pw", "tok"} {
			if strings.Contains(s, secret) {
				t.Errorf("%q shows %q", s, secret)
			}
		}
	}
	if got := w.Endpoint(); got != "https://hooks.example.com" {
		t.Errorf("Endpoint = %q", got)
	}
	if got := e.Endpoint(); got != "smtp://smtp.example.com:587" {
		t.Errorf("Endpoint = %q", got)
	}
}
