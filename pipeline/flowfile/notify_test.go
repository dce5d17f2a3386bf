package flowfile

import (
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/mftflow/mftflow/pipeline"
)

// notifySinks is a flow's sinks for the notify cases: "partner" and the
// default-named "memory".
const notifySinks = "sinks: [{name: partner, memory: {}}, memory: {}]"

func TestParseNotify(t *testing.T) {
	in := lines(
		"name: x", srcOK, notifySinks,
		"notify:",
		"  - on: [failed, mixed, sla_missed]",
		"    sinks: [partner, memory]",
		`    webhook: {url: "https://hooks.example.com/x", secret: "${HOOK_SECRET}", headers: {X-Team: ops}, timeout: 5s}`,
		"  - on: failed",
		"    email:",
		"      server: smtp.example.com:587",
		"      tls: starttls",
		"      user: ops",
		"      password: ${SMTP_PASSWORD}",
		"      from: mftflow@example.com",
		"      to: [ops@example.com, Partner Desk <desk@example.com>]",
		`      subject: "{flow}: {outcome} {name}"`,
	)
	f, err := Parse("f.yaml", []byte(in), testRegistry(t), env(map[string]string{"HOOK_SECRET": "h00k", "SMTP_PASSWORD": "hunter2"}))
	if err != nil {
		t.Fatal(err)
	}
	want := []pipeline.NotifyRule{
		{
			On: []string{"failed", "mixed", "sla_missed"}, Sinks: []string{"partner", "memory"},
			Webhook: &pipeline.WebhookTarget{URL: "https://hooks.example.com/x", Secret: "h00k", Headers: map[string]string{"X-Team": "ops"}, Timeout: 5 * time.Second},
			Pos:     pipeline.Pos{File: "f.yaml", Line: 5, Column: 5},
		},
		{
			On: []string{"failed"},
			Email: &pipeline.EmailTarget{Server: "smtp.example.com:587", TLS: "starttls", User: "ops", Password: "hunter2",
				From: "mftflow@example.com", To: []string{"ops@example.com", "Partner Desk <desk@example.com>"}, Subject: "{flow}: {outcome} {name}"},
			Pos: pipeline.Pos{File: "f.yaml", Line: 8, Column: 5},
		},
	}
	if diff := cmp.Diff(want, f.Notify); diff != "" {
		t.Errorf("Notify (-want +got):\n%s", diff)
	}
}

// notifyErrorCases are flow files with broken notify lists and the exact
// errors Parse gives; FuzzParse starts from them too.
var notifyErrorCases = []struct {
	name string
	in   string
	env  map[string]string
	want string
}{
	{
		name: "not a list",
		in:   lines("name: x", srcOK, sinksOK, "notify: {on: failed}"),
		want: `f.yaml:4:9: notify: want a list of rules, each with on: and a webhook or an email, got a mapping`,
	},
	{
		name: "unknown event, at the item",
		in:   lines("name: x", srcOK, sinksOK, `notify: [{on: [failed, done], webhook: {url: "http://h"}}]`),
		want: `f.yaml:4:24: notify[0].on[1]: unknown event "done" (known: passed, failed, mixed, sla_warning, sla_missed, sla_met)`,
	},
	{
		name: "no events",
		in:   lines("name: x", srcOK, sinksOK, "notify:", "  - webhook: {url: 'http://h'}", "    on:"),
		want: `f.yaml:6:5: notify[0].on: say which events to tell: a list of passed, failed, mixed, sla_warning, sla_missed, sla_met`,
	},
	{
		name: "neither webhook nor email",
		in:   lines("name: x", srcOK, sinksOK, "notify:", "  - on: [failed]"),
		want: `f.yaml:5:5: notify[0].webhook: the rule has no target: add webhook: {url: ...} or email: {server: ..., from: ..., to: [...]}`,
	},
	{
		name: "both webhook and email",
		in:   lines("name: x", srcOK, sinksOK, "notify:", "  - on: [failed]", "    webhook: {url: 'http://h'}", "    email: {server: h, from: a@b, to: c@d}"),
		want: `f.yaml:7:5: notify[0].email: the rule has both a webhook and an email target: give each its own rule, with the same on: list`,
	},
	{
		name: "URL with another scheme, its path not shown",
		in:   lines("name: x", srcOK, sinksOK, "notify:", "  - on: [failed]", "    webhook: {url: 'ftp://h/t0ken'}"),
		want: `f.yaml:6:20: notify[0].webhook.url: scheme "ftp" is not supported: use https (or http)`,
	},
	{
		name: "URL missing",
		in:   lines("name: x", srcOK, sinksOK, "notify:", "  - on: [failed]", "    webhook: {secret: s}"),
		want: `f.yaml:6:5: notify[0].webhook.url: missing: give the receiver's address, such as "https://hooks.example.com/mftflow"`,
	},
	{
		name: "unknown keys",
		in:   lines("name: x", srcOK, sinksOK, "notify:", "  - on: [failed]", "    when: always", "    webhook: {uri: 'http://h'}"),
		want: lines(
			`f.yaml:6:5: unknown key "when" (known: on, sinks, webhook, email)`,
			`f.yaml:7:15: unknown key "uri" (known: url, secret, headers, timeout)`,
		),
	},
	{
		name: "secret from an unset variable",
		in:   lines("name: x", srcOK, sinksOK, "notify:", "  - on: [failed]", "    webhook: {url: 'http://h', secret: '${HOOK_SECRET}'}"),
		want: `f.yaml:6:40: environment variable "HOOK_SECRET" is not set (use ${HOOK_SECRET:default} for a default)`,
	},
	{
		name: "secret and header values are not shown",
		in: lines("name: x", srcOK, sinksOK, "notify:", "  - on: [failed]",
			"    webhook: {url: 'http://h', secret: [hunter2], headers: {Authorization: [Bearer t0ken]}}"),
		want: lines(
			`f.yaml:6:40: notify[0].webhook.secret: want a string, got a list`,
			`f.yaml:6:76: notify[0].webhook.headers: want a map of strings, key "Authorization" is a list`,
		),
	},
	{
		name: "webhook timeout",
		in:   lines("name: x", srcOK, sinksOK, "notify:", "  - on: [failed]", "    webhook: {url: 'http://h', timeout: 1h}"),
		want: `f.yaml:6:41: notify[0].webhook.timeout: 1h0m0s is out of range: give a duration from 1s to 5m0s, or leave it out`,
	},
	{
		name: "unknown sink, at its name",
		in:   lines("name: x", srcOK, notifySinks, "notify:", "  - on: [failed]", "    sinks: [memory, partnr]", "    webhook: {url: 'http://h'}"),
		want: `f.yaml:6:21: notify[0].sinks[1]: unknown sink "partnr" (the flow's sinks: partner, memory)`,
	},
	{
		name: "email: bad tls mode, bad address, empty to",
		in: lines("name: x", srcOK, sinksOK, "notify:", "  - on: [failed]", "    email:",
			"      server: smtp.example.com:smtp", "      tls: ssl", "      from: mftflow@example.com", "      to: []"),
		want: lines(
			`f.yaml:7:15: notify[0].email.server: "smtp.example.com:smtp" is not "host:port": the port must be a number from 1 to 65535`,
			`f.yaml:8:12: notify[0].email.tls: want one of starttls, tls, none, got "ssl"`,
			`f.yaml:10:11: notify[0].email.to: no recipients: list at least one address`,
		),
	},
	{
		name: "email in clear text to another host",
		in:   lines("name: x", srcOK, sinksOK, "notify:", "  - on: [failed]", "    email: {server: mail.example.com, tls: none, from: a@b.c, to: d@e.f}"),
		want: `f.yaml:6:44: notify[0].email.tls: none sends the mail (and any password) in clear text: it is allowed only for a server on this machine (localhost, 127.0.0.1, ::1); use starttls or tls`,
	},
	{
		name: "email user without password, a bad recipient, a bad subject",
		in: lines("name: x", srcOK, sinksOK, "notify:", "  - on: [failed]",
			"    email: {server: h, user: ops, password: '${PW:}', from: a@b.c, to: [d@e.f, ops], subject: '{flow} {file}'}"),
		want: lines(
			`f.yaml:6:45: notify[0].email.password: user "ops" is set but the password is empty: set both, or neither to send without logging in`,
			`f.yaml:6:80: notify[0].email.to[1]: "ops" is not a mail address (mail: missing '@' or angle-addr)`,
			`f.yaml:6:95: notify[0].email.subject: unknown placeholder {file} (known: {flow}, {outcome}, {name}, {size}, {sink}, {file_id}, {detail})`,
		),
	},
}

func TestParseNotifyErrors(t *testing.T) {
	reg := testRegistry(t)
	for _, tt := range notifyErrorCases {
		t.Run(tt.name, func(t *testing.T) {
			f, err := Parse("f.yaml", []byte(tt.in), reg, env(tt.env))
			if err == nil {
				t.Fatalf("Parse succeeded with %+v, want error:\n%s", f, tt.want)
			}
			if diff := cmp.Diff(strings.TrimSuffix(tt.want, "\n"), err.Error()); diff != "" {
				t.Errorf("error mismatch (-want +got):\n%s", diff)
			}
			for _, secret := range []string{"hunter2", "t0ken"} {
				if strings.Contains(err.Error(), secret) {
					t.Errorf("the error shows %q", secret)
				}
			}
		})
	}
}
