package notify_test

import (
	"io"
	"mime"
	"mime/quotedprintable"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-smtp"
	"github.com/google/go-cmp/cmp"

	"github.com/mftflow/mftflow/pipeline"
	"github.com/mftflow/mftflow/pipeline/notify"
	"github.com/mftflow/mftflow/testkit/smtpd"
)

func mailRule(s *smtpd.Server, tls string) pipeline.NotifyRule {
	return pipeline.NotifyRule{On: []string{"failed", "sla_missed"}, Email: &pipeline.EmailTarget{
		Server: s.Addr, TLS: tls, User: s.User, Password: s.Password,
		From:    "mftflow <mftflow@example.com>",
		To:      []string{"ops@example.com", "Partner Desk <desk@example.com>"},
		Subject: "{flow}: {outcome} {name}",
		Timeout: 10 * time.Second,
	}}
}

func TestEmailOverSTARTTLSWithLogin(t *testing.T) {
	_, js := startBus(t)
	srv := smtpd.Start(t, smtpd.Options{})
	opts := fastOptions()
	opts.TLSConfig = srv.TLSConfig()
	n := start(t, js, []pipeline.NotifyRule{mailRule(srv, "starttls")}, opts)

	ev := failedFile(3)
	ev.Name = "Bestellungen-März.csv"
	ev.Sinks["archive"] = pipeline.SinkResult{Committed: true}
	n.Emit(ev)
	got := srv.Wait(t, 1, 10*time.Second)[0]

	if !got.TLS || got.User != smtpd.DefaultUser {
		t.Errorf("received over TLS %v, logged in as %q", got.TLS, got.User)
	}
	if got.From != "mftflow@example.com" {
		t.Errorf("MAIL FROM %q", got.From)
	}
	if diff := cmp.Diff([]string{"ops@example.com", "desk@example.com"}, got.To); diff != "" {
		t.Errorf("RCPT TO (-want +got):\n%s", diff)
	}
	msg, err := got.Parse()
	if err != nil {
		t.Fatal(err)
	}
	subject, err := new(mime.WordDecoder).DecodeHeader(msg.Header.Get("Subject"))
	if err != nil {
		t.Fatal(err)
	}
	id := msg.Header.Get(notify.HeaderDelivery)
	for name, want := range map[string]string{
		"Subject":          "orders: failed Bestellungen-März.csv",
		"From":             `"mftflow" <mftflow@example.com>`,
		"To":               `<ops@example.com>, "Partner Desk" <desk@example.com>`,
		"Message-Id":       "<" + id + "@mftflow>",
		"Content-Type":     "text/plain; charset=utf-8",
		"Auto-Submitted":   "auto-generated",
		notify.HeaderEvent: "failed",
	} {
		v := msg.Header.Get(name)
		if name == "Subject" {
			v = subject
		}
		if v != want {
			t.Errorf("header %s = %q, want %q", name, v, want)
		}
	}
	if len(id) != 32 {
		t.Errorf("delivery id %q", id)
	}
	if _, err := msg.Header.Date(); err != nil {
		t.Errorf("Date: %v", err)
	}
	body, err := io.ReadAll(quotedprintable.NewReader(msg.Body))
	if err != nil {
		t.Fatal(err)
	}
	want := strings.Join([]string{
		`Flow "orders": failed`,
		``,
		`File:         Bestellungen-März.csv`,
		`Size:         1234 bytes`,
		`File ID:      f003`,
		`Outcome:      failed`,
		`Detail:       partner: 553 mailbox full`,
		`Time:         2026-03-01T12:00:03Z`,
		`Runner:       run-1`,
		``,
		`Sinks:`,
		`  archive              committed`,
		`  partner              failed: 553 mailbox full`,
		``,
		`Notification ` + id,
		``,
	}, "\r\n")
	if diff := cmp.Diff(want, string(body)); diff != "" {
		t.Errorf("body (-want +got):\n%s", diff)
	}
}

func TestEmailOverImplicitTLS(t *testing.T) {
	_, js := startBus(t)
	srv := smtpd.Start(t, smtpd.Options{ImplicitTLS: true})
	opts := fastOptions()
	opts.TLSConfig = srv.TLSConfig()
	n := start(t, js, []pipeline.NotifyRule{mailRule(srv, "tls")}, opts)
	n.Emit(pipeline.Event{Kind: pipeline.EventSLAMissed, Flow: flow, Detail: "daily orders by 06:00"})
	got := srv.Wait(t, 1, 10*time.Second)[0]
	msg, err := got.Parse()
	if err != nil {
		t.Fatal(err)
	}
	if s := msg.Header.Get("Subject"); s != "orders: sla_missed" {
		t.Errorf("Subject %q", s)
	}
}

func TestEmailRefusedIsGivenUp(t *testing.T) {
	_, js := startBus(t)
	srv := smtpd.Start(t, smtpd.Options{Refuse: func(smtpd.Message) error {
		return &smtp.SMTPError{Code: 550, EnhancedCode: smtp.EnhancedCode{5, 1, 1}, Message: "no such mailbox"}
	}})
	opts := fastOptions()
	opts.TLSConfig = srv.TLSConfig()
	n := start(t, js, []pipeline.NotifyRule{mailRule(srv, "starttls")}, opts)
	n.Emit(failedFile(1))
	st := waitStatus(t, n, "the refused mail given up", func(st notify.Status) bool { return st.Targets[0].GivenUp == 1 })
	if e := st.Targets[0].LastGivenUp.Error; !strings.Contains(e, "DATA: SMTP error 550: no such mailbox") || strings.Contains(e, srv.Password) {
		t.Errorf("given up with %q", e)
	}
}

func TestEmailWrongPasswordIsRetried(t *testing.T) {
	_, js := startBus(t)
	srv := smtpd.Start(t, smtpd.Options{})
	rule := mailRule(srv, "starttls")
	rule.Email.Password = "wrong-password"
	opts := fastOptions()
	opts.TLSConfig = srv.TLSConfig()
	n := start(t, js, []pipeline.NotifyRule{rule}, opts)
	n.Emit(failedFile(1))
	st := waitStatus(t, n, "a login refused twice", func(st notify.Status) bool { return st.Targets[0].Failures >= 2 })
	if e := st.Targets[0].LastError; !strings.Contains(e, "AUTH: SMTP error 535") || strings.Contains(e, "wrong-password") {
		t.Errorf("last error %q", e)
	}
	if st.Targets[0].GivenUp != 0 || st.Targets[0].Pending != 1 {
		t.Errorf("a refused login gave up %d, left %d pending; want it kept", st.Targets[0].GivenUp, st.Targets[0].Pending)
	}
}

func TestEmailWithoutTrustIsNotSent(t *testing.T) {
	_, js := startBus(t)
	srv := smtpd.Start(t, smtpd.Options{})
	n := start(t, js, []pipeline.NotifyRule{mailRule(srv, "starttls")}, fastOptions())
	n.Emit(failedFile(1))
	st := waitStatus(t, n, "a failing TLS handshake", func(st notify.Status) bool { return st.Targets[0].Failing })
	if e := st.Targets[0].LastError; !strings.Contains(e, "TLS handshake: tls: failed to verify certificate") {
		t.Errorf("last error %q", e)
	}
	if got := srv.Messages(); len(got) != 0 {
		t.Errorf("the server got %d messages from a client that does not trust it", len(got))
	}
}
