package smtpd_test

import (
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"

	"github.com/mftflow/mftflow/testkit/smtpd"
)

func TestSTARTTLSLoginAndMessage(t *testing.T) {
	s := smtpd.Start(t, smtpd.Options{})
	c, err := smtp.DialStartTLS(s.Addr, s.TLSConfig())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.Auth(sasl.NewPlainClient("", s.User, s.Password)); err != nil {
		t.Fatalf("AUTH: %v", err)
	}
	body := "Subject: hi\r\n\r\nhello\r\n"
	if err := c.SendMail("a@example.com", []string{"b@example.com"}, strings.NewReader(body)); err != nil {
		t.Fatalf("sending: %v", err)
	}
	got := s.Wait(t, 1, 5*time.Second)[0]
	if got.From != "a@example.com" || len(got.To) != 1 || got.To[0] != "b@example.com" || !got.TLS || got.User != s.User {
		t.Errorf("got %+v", got)
	}
	m, err := got.Parse()
	if err != nil || m.Header.Get("Subject") != "hi" {
		t.Errorf("parsed %v, %v", m, err)
	}
}

func TestNoLoginWithoutTLS(t *testing.T) {
	s := smtpd.Start(t, smtpd.Options{})
	c, err := smtp.Dial(s.Addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.Auth(sasl.NewPlainClient("", s.User, s.Password)); err == nil {
		t.Error("AUTH accepted in clear text")
	}
	if err := c.Mail("a@example.com", nil); err == nil {
		t.Error("MAIL accepted without a login")
	}
}

func TestWrongPassword(t *testing.T) {
	s := smtpd.Start(t, smtpd.Options{ImplicitTLS: true})
	c, err := smtp.DialTLS(s.Addr, s.TLSConfig())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	err = c.Auth(sasl.NewPlainClient("", s.User, "nope"))
	if se, ok := err.(*smtp.SMTPError); !ok || se.Code != 535 {
		t.Errorf("AUTH with a wrong password: %v, want 535", err)
	}
}
