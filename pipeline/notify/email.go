package notify

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"maps"
	"mime"
	"mime/quotedprintable"
	"net"
	"net/mail"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode"

	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"

	"github.com/mftflow/mftflow/internal/discard"
	"github.com/mftflow/mftflow/pipeline"
)

// emailSender mails notifications through one SMTP server.
type emailSender struct {
	cfg      pipeline.EmailTarget
	endpoint string
	// tls is the client configuration for STARTTLS and implicit TLS
	// (roots for tests); ServerName is set per connection.
	tls *tls.Config
	// from and to are the envelope addresses.
	from string
	to   []string
	// helo is the name the client gives in EHLO.
	helo string
}

func newEmailSender(cfg pipeline.EmailTarget, tlsConfig *tls.Config) *emailSender {
	s := &emailSender{cfg: cfg, endpoint: cfg.Endpoint(), tls: tlsConfig, helo: heloName()}
	if a, err := mail.ParseAddress(cfg.From); err == nil {
		s.from = a.Address
	}
	for _, to := range cfg.To {
		if a, err := mail.ParseAddress(to); err == nil {
			s.to = append(s.to, a.Address)
		}
	}
	return s
}

// heloName is this host's name for EHLO, or "localhost" when it has none
// fit for the command line.
func heloName() string {
	name, err := os.Hostname()
	if err != nil || name == "" || strings.ContainsFunc(name, func(r rune) bool { return r <= ' ' || r > '~' }) {
		return "localhost"
	}
	return name
}

// send delivers m in one SMTP session: connect, TLS as configured, EHLO,
// AUTH when a user is set, MAIL, RCPT, DATA, QUIT. ctx bounds it all.
func (s *emailSender) send(ctx context.Context, m *Message, _ []byte) error {
	c, err := s.connect(ctx)
	if err != nil {
		return err
	}
	defer discard.Close(c) // after a QUIT only frees the socket
	if err := s.login(c); err != nil {
		return err
	}
	msg := s.compose(m, time.Now())
	if err := c.Mail(s.from, nil); err != nil {
		return s.fail("MAIL FROM", err)
	}
	for _, to := range s.to {
		if err := c.Rcpt(to, nil); err != nil {
			return s.fail("RCPT TO", err)
		}
	}
	w, err := c.Data()
	if err != nil {
		return s.fail("DATA", err)
	}
	if _, err := w.Write(msg); err != nil {
		return s.fail("DATA", err)
	}
	if err := w.Close(); err != nil {
		return s.fail("DATA", err)
	}
	// The server has the message: a failed QUIT changes nothing.
	_ = c.Quit()
	return nil
}

// connect dials the server, sets up TLS as the target says and greets it.
// The connection is closed when ctx ends, which ends any call on it.
func (s *emailSender) connect(ctx context.Context) (*smtp.Client, error) {
	addr := s.cfg.Addr()
	host, _, _ := net.SplitHostPort(addr)
	var d net.Dialer
	conn, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, s.fail("connect", err)
	}
	stop := context.AfterFunc(ctx, func() { discard.Close(conn) })
	if deadline, ok := ctx.Deadline(); ok {
		_ = conn.SetDeadline(deadline) // fails only on a closed socket, and then so does the next call
	}
	tlsConfig := s.tls.Clone()
	if tlsConfig == nil {
		tlsConfig = &tls.Config{}
	}
	tlsConfig.ServerName = host
	var c *smtp.Client
	switch s.cfg.TLS {
	case pipeline.EmailImplicitTLS:
		tc := tls.Client(conn, tlsConfig)
		if err := tc.HandshakeContext(ctx); err != nil {
			stop()
			discard.Close(conn)
			return nil, s.fail("TLS handshake", err)
		}
		c = smtp.NewClient(tc)
	case pipeline.EmailPlain:
		c = smtp.NewClient(conn)
	default:
		c, err = smtp.NewClientStartTLS(conn, tlsConfig)
		if err != nil {
			stop()
			discard.Close(conn)
			return nil, s.fail("STARTTLS", err)
		}
	}
	if err := c.Hello(s.helo); err != nil {
		stop()
		discard.Close(c)
		return nil, s.fail("EHLO", err)
	}
	return c, nil
}

// login authenticates when the target has a user: PLAIN, or LOGIN when the
// server offers only that.
func (s *emailSender) login(c *smtp.Client) error {
	if s.cfg.User == "" {
		return nil
	}
	var auth sasl.Client
	switch {
	case c.SupportsAuth(sasl.Plain):
		auth = sasl.NewPlainClient("", s.cfg.User, s.cfg.Password)
	case c.SupportsAuth(sasl.Login):
		auth = sasl.NewLoginClient(s.cfg.User, s.cfg.Password)
	default:
		_, offered := c.Extension("AUTH")
		if offered == "" {
			offered = "none"
		}
		return &SendError{Endpoint: s.endpoint, Op: "AUTH",
			Err: fmt.Errorf("the server offers no PLAIN or LOGIN login (it offers: %s); check the server and its TLS mode, or remove user and password", offered)}
	}
	if err := c.Auth(auth); err != nil {
		return s.fail("AUTH", err)
	}
	return nil
}

// authCodes are the 5xx replies about the login (RFC 4954): the
// credentials are at fault, not the notification, and once they are fixed
// the waiting notifications pass.
var authCodes = []int{530, 534, 535, 538}

// fail wraps an error of step op. A 5xx reply is permanent (RFC 5321: the
// same command would fail again), except those about the login; anything
// else is tried again.
func (s *emailSender) fail(op string, err error) error {
	if isTLSError(err) {
		// After STARTTLS the handshake happens with the next command.
		op = "TLS handshake"
	}
	e := &SendError{Endpoint: s.endpoint, Op: op, Err: err}
	var se *smtp.SMTPError
	if errors.As(err, &se) {
		e.Code = se.Code
		e.Permanent = se.Code >= 500 && se.Code <= 599 && !slices.Contains(authCodes, se.Code)
	}
	return e
}

// isTLSError reports whether err is a failed TLS handshake: a certificate
// not trusted or not for the server, or a TLS alert.
func isTLSError(err error) bool {
	var verify *tls.CertificateVerificationError
	var alert tls.AlertError
	var record tls.RecordHeaderError
	var unknown x509.UnknownAuthorityError
	var host x509.HostnameError
	var invalid x509.CertificateInvalidError
	return errors.As(err, &verify) || errors.As(err, &alert) || errors.As(err, &record) ||
		errors.As(err, &unknown) || errors.As(err, &host) || errors.As(err, &invalid)
}

// compose writes the message: headers, then the facts as quoted-printable
// plain text, with CRLF line ends.
func (s *emailSender) compose(m *Message, now time.Time) []byte {
	var b bytes.Buffer
	header := func(name, value string) { b.WriteString(name + ": " + value + "\r\n") }
	header("From", addressList([]string{s.cfg.From}))
	header("To", addressList(s.cfg.To))
	header("Subject", mime.QEncoding.Encode("utf-8", subject(s.cfg.Subject, m)))
	header("Date", now.Format(time.RFC1123Z))
	header("Message-ID", "<"+m.ID+"@mftflow>")
	header("MIME-Version", "1.0")
	header("Content-Type", "text/plain; charset=utf-8")
	header("Content-Transfer-Encoding", "quoted-printable")
	// Auto-Submitted keeps vacation replies away (RFC 3834).
	header("Auto-Submitted", "auto-generated")
	header(HeaderEvent, m.Trigger)
	header(HeaderDelivery, m.ID)
	b.WriteString("\r\n")
	qp := quotedprintable.NewWriter(&b)
	// Into memory: neither can fail.
	_, _ = qp.Write([]byte(strings.ReplaceAll(text(m), "\n", "\r\n")))
	_ = qp.Close()
	return b.Bytes()
}

// addressList formats addresses for a header, encoding display names as
// net/mail does.
func addressList(list []string) string {
	out := make([]string, 0, len(list))
	for _, s := range list {
		if a, err := mail.ParseAddress(s); err == nil {
			out = append(out, a.String())
		}
	}
	return strings.Join(out, ", ")
}

// maxSubject bounds a subject line, in characters.
const maxSubject = 200

// subject fills the template's placeholders from m, on one line.
func subject(template string, m *Message) string {
	if template == "" {
		template = pipeline.DefaultEmailSubject
	}
	size := ""
	if m.Size > 0 || m.Kind == pipeline.EventAcked {
		size = strconv.FormatInt(m.Size, 10)
	}
	values := map[string]string{
		"flow": m.Flow, "outcome": m.Trigger, "name": m.Name, "size": size,
		"sink": m.Sink, "file_id": m.FileID, "detail": m.Detail,
	}
	out := template
	for _, name := range pipeline.NotifyPlaceholders {
		out = strings.ReplaceAll(out, "{"+name+"}", values[name])
	}
	out = strings.Join(strings.FieldsFunc(out, func(r rune) bool { return unicode.IsSpace(r) || unicode.IsControl(r) }), " ")
	if r := []rune(out); len(r) > maxSubject {
		out = string(r[:maxSubject-1]) + "…"
	}
	return out
}

// text is the mail's body: the event's facts, one per line.
func text(m *Message) string {
	var b strings.Builder
	fmt.Fprintf(&b, "Flow %q: %s\n\n", m.Flow, m.Trigger)
	line := func(label, value string) {
		if value != "" {
			fmt.Fprintf(&b, "%-13s %s\n", label+":", value)
		}
	}
	line("File", m.Name)
	if m.Name != "" && (m.Size > 0 || m.Kind == pipeline.EventAcked) {
		line("Size", strconv.FormatInt(m.Size, 10)+" bytes")
	}
	line("SHA-256", m.SHA256)
	line("File ID", m.FileID)
	line("Outcome", m.Outcome)
	line("Sink", m.Sink)
	line("Location", m.Location)
	line("Error", m.Error)
	line("Detail", m.Detail)
	if !m.Time.IsZero() {
		line("Time", m.Time.UTC().Format(time.RFC3339))
	}
	line("Runner", m.Runner)
	if len(m.Sinks) > 0 {
		b.WriteString("\nSinks:\n")
		for _, name := range slices.Sorted(maps.Keys(m.Sinks)) {
			r := m.Sinks[name]
			state := "committed"
			if !r.Committed {
				state = "failed: " + r.Error
			}
			fmt.Fprintf(&b, "  %-20s %s\n", name, state)
		}
	}
	fmt.Fprintf(&b, "\nNotification %s\n", m.ID)
	return b.String()
}
