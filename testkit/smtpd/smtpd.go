package smtpd

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"io"
	"log"
	"math/big"
	"net"
	"net/mail"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"

	"github.com/mftflow/mftflow/internal/discard"
)

// The login Start uses when Options leaves it empty.
const (
	DefaultUser     = "mftflow"
	DefaultPassword = "mftflow-smtp-password"
)

// Options change how Start sets up the server.
type Options struct {
	// User and Password are the only login accepted (defaults
	// DefaultUser, DefaultPassword).
	User, Password string
	// ImplicitTLS speaks TLS from the first byte instead of STARTTLS.
	ImplicitTLS bool
	// Refuse, when set, answers each message's DATA: nil takes the
	// message, an error (an *smtp.SMTPError for a chosen reply code)
	// refuses it. Refused messages are not kept.
	Refuse func(Message) error
}

// Message is one message the server took.
type Message struct {
	From string
	To   []string
	// Data is the message as received: headers, blank line, body.
	Data []byte
	// User is the login it came with; TLS whether the connection was
	// encrypted.
	User string
	TLS  bool
}

// Parse reads m.Data as a mail message.
func (m Message) Parse() (*mail.Message, error) {
	return mail.ReadMessage(bytes.NewReader(m.Data))
}

// Server is a running SMTP server.
type Server struct {
	// Addr is "127.0.0.1:port".
	Addr           string
	User, Password string
	// RootCAs trusts the server's certificate.
	RootCAs *x509.CertPool

	opts     Options
	mu       sync.Mutex
	messages []Message
	arrived  chan struct{} // closed and replaced on each message
}

// Start starts a server for the test; it stops when the test ends.
func Start(t testing.TB, opts Options) *Server {
	t.Helper()
	if opts.User == "" {
		opts.User, opts.Password = DefaultUser, DefaultPassword
	}
	cert, pool, err := selfSigned()
	if err != nil {
		t.Fatalf("smtpd: making a certificate: %v", err)
	}
	s := &Server{User: opts.User, Password: opts.Password, RootCAs: pool, opts: opts, arrived: make(chan struct{})}
	srv := smtp.NewServer(smtp.BackendFunc(func(c *smtp.Conn) (smtp.Session, error) {
		return &session{s: s, conn: c}, nil
	}))
	srv.Domain = "localhost"
	srv.TLSConfig = &tls.Config{Certificates: []tls.Certificate{cert}}
	srv.ReadTimeout, srv.WriteTimeout = time.Minute, time.Minute
	srv.MaxMessageBytes = 10 << 20
	srv.ErrorLog = log.New(io.Discard, "", 0)
	var l net.Listener
	if opts.ImplicitTLS {
		l, err = tls.Listen("tcp", "127.0.0.1:0", srv.TLSConfig)
	} else {
		l, err = net.Listen("tcp", "127.0.0.1:0")
	}
	if err != nil {
		t.Fatalf("smtpd: listening: %v", err)
	}
	s.Addr = l.Addr().String()
	served := make(chan struct{})
	go func() {
		defer close(served)
		_ = srv.Serve(l) // returns when Close below ends it
	}()
	t.Cleanup(func() {
		discard.Close(srv)
		<-served
	})
	return s
}

// TLSConfig is a client configuration that trusts the server.
func (s *Server) TLSConfig() *tls.Config { return &tls.Config{RootCAs: s.RootCAs} }

// Messages returns the messages taken so far, in order.
func (s *Server) Messages() []Message {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Message(nil), s.messages...)
}

// Wait waits until the server holds at least n messages and returns them,
// failing the test after timeout.
func (s *Server) Wait(t testing.TB, n int, timeout time.Duration) []Message {
	t.Helper()
	deadline := time.After(timeout)
	for {
		s.mu.Lock()
		got, arrived := append([]Message(nil), s.messages...), s.arrived
		s.mu.Unlock()
		if len(got) >= n {
			return got
		}
		select {
		case <-arrived:
		case <-deadline:
			t.Fatalf("smtpd: %d messages after %v, want %d", len(got), timeout, n)
		}
	}
}

func (s *Server) keep(m Message) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.messages = append(s.messages, m)
	close(s.arrived)
	s.arrived = make(chan struct{})
}

// session is one connection's mail transaction.
type session struct {
	s    *Server
	conn *smtp.Conn
	user string
	msg  Message
}

func (ss *session) AuthMechanisms() []string { return []string{sasl.Plain} }

func (ss *session) Auth(string) (sasl.Server, error) {
	return sasl.NewPlainServer(func(identity, user, password string) error {
		if user != ss.s.User || password != ss.s.Password || (identity != "" && identity != user) {
			return smtp.ErrAuthFailed
		}
		ss.user = user
		return nil
	}), nil
}

func (ss *session) Mail(from string, _ *smtp.MailOptions) error {
	if ss.user == "" {
		return smtp.ErrAuthRequired
	}
	ss.msg = Message{From: from, User: ss.user}
	return nil
}

func (ss *session) Rcpt(to string, _ *smtp.RcptOptions) error {
	ss.msg.To = append(ss.msg.To, to)
	return nil
}

func (ss *session) Data(r io.Reader) error {
	data, err := io.ReadAll(r)
	if err != nil {
		return err
	}
	m := ss.msg
	_, m.TLS = ss.conn.TLSConnectionState()
	m.Data = data
	if ss.s.opts.Refuse != nil {
		if err := ss.s.opts.Refuse(m); err != nil {
			return err
		}
	}
	ss.s.keep(m)
	return nil
}

func (ss *session) Reset()        { ss.msg = Message{} }
func (ss *session) Logout() error { return nil }

// selfSigned makes a certificate for 127.0.0.1 and localhost, and a pool
// that trusts it.
func selfSigned() (tls.Certificate, *x509.CertPool, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return tls.Certificate{}, nil, err
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(now.UnixNano()),
		Subject:               pkix.Name{CommonName: "mftflow test SMTP server"},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(24 * time.Hour),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		IPAddresses:           []net.IP{net.ParseIP("127.0.0.1")},
		DNSNames:              []string{"localhost"},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return tls.Certificate{}, nil, err
	}
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		return tls.Certificate{}, nil, err
	}
	pool := x509.NewCertPool()
	pool.AddCert(leaf)
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key, Leaf: leaf}, pool, nil
}
