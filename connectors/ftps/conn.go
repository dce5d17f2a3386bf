package ftps

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/textproto"
	"os"
	"path"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/jlaffaye/ftp"
	"golang.org/x/sync/semaphore"

	"github.com/mftflow/mftflow/internal/discard"
	"github.com/mftflow/mftflow/pipeline"
)

// Values of ConnConfig.TLS.
const (
	TLSExplicit = "explicit"
	TLSImplicit = "implicit"
)

// ConnConfig is how to reach and log in to an FTPS server. Source and sink
// share it.
type ConnConfig struct {
	// Host and Port of the server; Port 0 means 21 for explicit TLS and 990
	// for implicit TLS.
	Host string `config:"host"`
	Port int    `config:"port"`
	// User logs in with Password.
	User     string `config:"user"`
	Password string `config:"password"`
	// TLS is TLSExplicit (AUTH TLS on the control connection; the default
	// for "") or TLSImplicit (TLS from the first byte).
	TLS string `config:"tls"`
	// CAFile holds the PEM certificates trusted to issue the server's
	// certificate; "" trusts the system's roots.
	CAFile string `config:"ca_file"`
	// ServerName is the name the server's certificate must be issued for;
	// "" means Host.
	ServerName string `config:"server_name"`
	// ClientCert and ClientKey are PEM files of a client certificate, for
	// servers that ask for one.
	ClientCert string `config:"client_cert"`
	ClientKey  string `config:"client_key"`
	// InsecureSkipVerify accepts any server certificate. For tests only.
	InsecureSkipVerify bool `config:"insecure_skip_verify"`
	// DisableEPSV uses PASV only, for servers or firewalls that mishandle
	// EPSV.
	DisableEPSV bool `config:"disable_epsv"`
	// DisableTLS13 keeps to TLS 1.2, for servers whose TLS 1.3 fails
	// transfers (vsftpd 3.0 answers uploads "426 Failure reading network
	// stream").
	DisableTLS13 bool `config:"disable_tls13"`
	// MaxConnections bounds the connections open at once (FTP carries one
	// transfer per connection); 0 means DefaultMaxConnections.
	MaxConnections int `config:"max_connections"`
	// ConnectTimeout bounds connecting and logging in; 0 means
	// DefaultConnectTimeout.
	ConnectTimeout time.Duration `config:"connect_timeout"`
	// IOTimeout is how long a connection may wait for the server to answer
	// or take data before it is given up; 0 means DefaultIOTimeout.
	IOTimeout time.Duration `config:"io_timeout"`
	// Logger receives warnings; nil means slog.Default().
	Logger *slog.Logger
}

func (c *ConnConfig) check() error {
	bad := func(field, format string, args ...any) error {
		return &pipeline.FieldError{Connector: "ftps", Field: field, Err: fmt.Errorf(format, args...)}
	}
	switch c.TLS {
	case "":
		c.TLS = TLSExplicit
	case TLSExplicit, TLSImplicit:
	default:
		return bad("tls", "want explicit or implicit, got %q", c.TLS)
	}
	if c.Host == "" {
		return bad("host", "required field is missing")
	}
	if c.Port == 0 {
		c.Port = DefaultPort
		if c.TLS == TLSImplicit {
			c.Port = DefaultImplicitPort
		}
	}
	if c.Port < 0 || c.Port > 65535 {
		return bad("port", "%d is not a TCP port (1-65535)", c.Port)
	}
	if c.User == "" {
		return bad("user", "required field is missing")
	}
	if (c.ClientCert == "") != (c.ClientKey == "") {
		return bad("client_cert", "give client_cert and client_key together")
	}
	if c.MaxConnections < 0 {
		return bad("max_connections", "must not be negative")
	}
	if c.MaxConnections == 0 {
		c.MaxConnections = DefaultMaxConnections
	}
	if c.ConnectTimeout <= 0 {
		c.ConnectTimeout = DefaultConnectTimeout
	}
	if c.IOTimeout <= 0 {
		c.IOTimeout = DefaultIOTimeout
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	return nil
}

func (c *ConnConfig) addr() string { return net.JoinHostPort(c.Host, strconv.Itoa(c.Port)) }

// tlsConfig reads the CA and client certificate files. Its errors are
// permanent: they are the user's to fix.
func (c *ConnConfig) tlsConfig() (*tls.Config, error) {
	bad := func(field string, err error) error {
		return pipeline.Permanent(&pipeline.FieldError{Connector: "ftps", Field: field, Err: err})
	}
	// The cache key of a TLS session is the server name: set, so that data
	// connections (to other ports) resume the control connection's session,
	// which servers such as vsftpd require.
	cfg := &tls.Config{ServerName: c.Host, MinVersion: tls.VersionTLS12, InsecureSkipVerify: c.InsecureSkipVerify}
	if c.DisableTLS13 {
		cfg.MaxVersion = tls.VersionTLS12
	}
	if c.ServerName != "" {
		cfg.ServerName = c.ServerName
	}
	if c.CAFile != "" {
		pemBytes, err := os.ReadFile(c.CAFile)
		if err != nil {
			return nil, bad("ca_file", fmt.Errorf("reading the CA certificates: %w", err))
		}
		cfg.RootCAs = x509.NewCertPool()
		if !cfg.RootCAs.AppendCertsFromPEM(pemBytes) {
			return nil, bad("ca_file", fmt.Errorf("%s holds no PEM certificate", c.CAFile))
		}
	}
	if c.ClientCert != "" {
		cert, err := tls.LoadX509KeyPair(c.ClientCert, c.ClientKey)
		if err != nil {
			return nil, bad("client_cert", fmt.Errorf("loading %s and %s: %w", c.ClientCert, c.ClientKey, err))
		}
		cfg.Certificates = []tls.Certificate{cert}
	}
	if c.InsecureSkipVerify {
		c.Logger.Warn("ftps: insecure_skip_verify is set: the server's certificate is not checked, so anyone on the network path can read and change the files",
			"host", c.addr())
	}
	return cfg, nil
}

// pool keeps the connections of one Source or Sink: up to MaxConnections
// at once, idle ones kept for reuse.
type pool struct {
	cfg   ConnConfig
	tls   *tls.Config
	slots *semaphore.Weighted // one per open session, MaxConnections in all

	mu     sync.Mutex
	idle   []*session
	closed bool
}

// session is one logged-in control connection and the data connections
// dialled for it.
type session struct {
	c    *ftp.ServerConn
	home string // the login directory, absolute
	used time.Time

	mu     sync.Mutex
	conns  []net.Conn
	broken bool // a connection failed or was cut: never reused
}

// idleCheck is how long a connection may sit idle before its next use
// checks that the server still holds it (NOOP).
const idleCheck = 15 * time.Second

func newPool(c ConnConfig) (*pool, error) {
	if err := c.check(); err != nil {
		return nil, err
	}
	tc, err := c.tlsConfig()
	if err != nil {
		return nil, err
	}
	return &pool{cfg: c, tls: tc, slots: semaphore.NewWeighted(int64(c.MaxConnections))}, nil
}

// do runs fn on a session, dialling one if none is idle. ctx ending cuts
// the session's connections, so fn returns promptly. doing says what fn
// does, for errors. The session is kept for reuse unless it broke.
func (p *pool) do(ctx context.Context, doing string, fn func(*session) error) error {
	s, err := p.get(ctx)
	if err != nil {
		return err
	}
	stop := context.AfterFunc(ctx, s.cut)
	err = fn(s)
	if !stop() || ctx.Err() != nil {
		s.cut()
		if err == nil {
			err = ctx.Err()
		}
	}
	p.put(s, err)
	if err == nil {
		return nil
	}
	if cerr := ctx.Err(); cerr != nil {
		return fmt.Errorf("ftps %s: %s: %w", p.cfg.addr(), doing, cerr)
	}
	return p.opError(doing, err)
}

// get takes a slot and returns an idle session or a new one.
func (p *pool) get(ctx context.Context) (*session, error) {
	if err := p.slots.Acquire(ctx, 1); err != nil {
		return nil, err
	}
	for {
		p.mu.Lock()
		if p.closed {
			p.mu.Unlock()
			p.slots.Release(1)
			return nil, pipeline.Permanent(fmt.Errorf("ftps %s: the connector is closed", p.cfg.addr()))
		}
		var s *session
		if n := len(p.idle); n > 0 {
			s, p.idle = p.idle[n-1], p.idle[:n-1]
		}
		p.mu.Unlock()
		if s == nil {
			break
		}
		if time.Since(s.used) < idleCheck || s.c.NoOp() == nil {
			return s, nil
		}
		s.close() // the server dropped it while idle
	}
	s, err := p.dial(ctx)
	if err != nil {
		p.slots.Release(1)
		return nil, err
	}
	return s, nil
}

// put returns s to the idle list, or closes it if it broke or err says its
// connection failed, and frees its slot.
func (p *pool) put(s *session, err error) {
	defer p.slots.Release(1)
	if err != nil && brokenBy(err) {
		s.cut()
	}
	s.mu.Lock()
	broken := s.broken
	s.mu.Unlock()
	p.mu.Lock()
	keep := !broken && !p.closed
	if keep {
		s.used = time.Now()
		p.idle = append(p.idle, s)
	}
	p.mu.Unlock()
	if !keep {
		s.close()
	}
}

// close closes the idle sessions; sessions in use close when returned.
func (p *pool) close() {
	p.mu.Lock()
	idle := p.idle
	p.idle, p.closed = nil, true
	p.mu.Unlock()
	for _, s := range idle {
		s.close()
	}
}

// dial connects, logs in and finds the login directory.
func (p *pool) dial(ctx context.Context) (*session, error) {
	s := &session{}
	// Each session has a TLS session cache of its own: its data
	// connections must resume its control connection's TLS session, not
	// another connection's.
	tc := p.tls.Clone()
	tc.ClientSessionCache = tls.NewLRUClientSessionCache(1)
	dialer := &net.Dialer{Timeout: p.cfg.ConnectTimeout}
	control := true
	dial := func(network, addr string) (net.Conn, error) {
		// Only the control connection is dialled under ctx: data
		// connections come later, under other calls' contexts, which cut
		// the session when they end.
		dctx := context.Background()
		if control {
			dctx = ctx
		}
		raw, err := dialer.DialContext(dctx, network, addr)
		if err != nil {
			return nil, err
		}
		var c net.Conn = &deadlineConn{Conn: raw, timeout: p.cfg.IOTimeout}
		// The library adds TLS to an explicit control connection after
		// AUTH TLS; the rest is ours.
		if !control || p.cfg.TLS == TLSImplicit {
			c = tls.Client(c, tc)
		}
		control = false
		s.track(c)
		return c, nil
	}
	opts := []ftp.DialOption{
		ftp.DialWithDialFunc(dial),
		ftp.DialWithDisabledEPSV(p.cfg.DisableEPSV),
		ftp.DialWithShutTimeout(p.cfg.IOTimeout),
	}
	if p.cfg.TLS == TLSImplicit {
		opts = append(opts, ftp.DialWithTLS(tc))
	} else {
		opts = append(opts, ftp.DialWithExplicitTLS(tc))
	}
	stop := context.AfterFunc(ctx, s.cut)
	defer stop()
	deadline := time.AfterFunc(p.cfg.ConnectTimeout, s.cut)
	defer deadline.Stop()
	c, err := ftp.Dial(p.cfg.addr(), opts...)
	if err != nil {
		s.cut()
		return nil, p.dialError(ctx, err)
	}
	s.c = c
	if err := c.Login(p.cfg.User, p.cfg.Password); err != nil {
		s.close()
		return nil, p.dialError(ctx, err)
	}
	if s.home, err = c.CurrentDir(); err != nil {
		s.close()
		return nil, p.dialError(ctx, err)
	}
	s.used = time.Now()
	return s, nil
}

func (s *session) track(c net.Conn) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.conns = append(s.conns, c)
	if s.broken {
		discard.Close(c)
	}
}

// cut closes every connection of s at once, which makes a call blocked on
// one return, and marks s broken.
func (s *session) cut() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.broken = true
	for _, c := range s.conns {
		discard.Close(c) // cutting is the point; a failed close changes nothing
	}
}

// close says goodbye to the server when it can, then cuts.
func (s *session) close() {
	s.mu.Lock()
	broken := s.broken
	s.mu.Unlock()
	if !broken && s.c != nil {
		_ = s.c.Quit() // a courtesy; the cut below ends the session either way
	}
	s.cut()
}

// abs returns the absolute remote path of p, relative to the login
// directory.
func (s *session) abs(p string) string {
	if path.IsAbs(p) {
		return path.Clean(p)
	}
	return path.Join(s.home, p)
}

// deadlineConn gives every read and write a deadline, so that a server
// that stops answering fails the call instead of hanging it.
type deadlineConn struct {
	net.Conn
	timeout time.Duration
}

func (c *deadlineConn) Read(b []byte) (int, error) {
	if err := c.Conn.SetReadDeadline(time.Now().Add(c.timeout)); err != nil {
		return 0, err
	}
	return c.Conn.Read(b)
}

func (c *deadlineConn) Write(b []byte) (int, error) {
	if err := c.Conn.SetWriteDeadline(time.Now().Add(c.timeout)); err != nil {
		return 0, err
	}
	return c.Conn.Write(b)
}

// brokenBy reports whether err means the connection cannot carry another
// command: a network error, or the server closing it (421).
func brokenBy(err error) bool {
	var te *textproto.Error
	if errors.As(err, &te) {
		return te.Code == ftp.StatusNotAvailable
	}
	var ne net.Error
	return errors.As(err, &ne) || errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) ||
		errors.Is(err, syscall.EPIPE) || errors.Is(err, syscall.ECONNRESET) || errors.Is(err, net.ErrClosed)
}

// code returns the FTP reply code of err, or 0.
func code(err error) int {
	var te *textproto.Error
	if errors.As(err, &te) {
		return te.Code
	}
	return 0
}

// reply is err's reply from the server, as "550 Failed to open file.".
func reply(err error) string {
	var te *textproto.Error
	if errors.As(err, &te) {
		return strconv.Itoa(te.Code) + " " + te.Msg
	}
	return err.Error()
}

// dialError explains a failed connection or login.
func (p *pool) dialError(ctx context.Context, err error) error {
	addr := p.cfg.addr()
	if cerr := ctx.Err(); cerr != nil {
		return fmt.Errorf("ftps %s: connecting: %w", addr, cerr)
	}
	var (
		unknownCA x509.UnknownAuthorityError
		hostErr   x509.HostnameError
		invalid   x509.CertificateInvalidError
		verify    *tls.CertificateVerificationError
	)
	switch {
	case code(err) == ftp.StatusNotLoggedIn:
		return pipeline.Permanent(fmt.Errorf("ftps %s: login as %q refused (%s): check user and password", addr, p.cfg.User, reply(err)))
	case errors.As(err, &unknownCA):
		return pipeline.Permanent(fmt.Errorf("ftps %s: the server's certificate is not trusted (%v): give the CA that issued it in ca_file", addr, err))
	case errors.As(err, &hostErr):
		return pipeline.Permanent(fmt.Errorf("ftps %s: the server's certificate is not for %q (%v): fix host, or set server_name to a name the certificate holds", addr, p.tls.ServerName, err))
	case errors.As(err, &invalid), errors.As(err, &verify):
		return pipeline.Permanent(fmt.Errorf("ftps %s: the server's certificate is not valid: %v", addr, err))
	case errors.Is(err, syscall.ECONNREFUSED):
		return fmt.Errorf("ftps %s: connection refused: is the FTP server running, and listening on port %d?", addr, p.cfg.Port)
	case code(err) != 0 && code(err) >= 500:
		return pipeline.Permanent(fmt.Errorf("ftps %s: logging in as %q: the server refused (%s)", addr, p.cfg.User, reply(err)))
	}
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return fmt.Errorf("ftps %s: no answer within %v while connecting (%v)", addr, p.cfg.ConnectTimeout, err)
	}
	return fmt.Errorf("ftps %s: connecting: %w", addr, err)
}

// opError explains a failed command: doing says what ("writing part 2 of
// \"a.csv\" to /in/.a.csv.tmp"). Replies 4xx and broken connections are
// retryable; other 5xx replies (a missing file, a refused permission) are
// permanent.
func (p *pool) opError(doing string, err error) error {
	addr := p.cfg.addr()
	switch c := code(err); {
	case pipeline.IsPermanent(err), errors.Is(err, pipeline.ErrSkip):
		return err // already explained
	case c == ftp.StatusNotLoggedIn:
		return pipeline.Permanent(fmt.Errorf("ftps %s: %s: not logged in (%s)", addr, doing, reply(err)))
	case c == ftp.StatusFileUnavailable || c == ftp.StatusBadFileName:
		return pipeline.Permanent(fmt.Errorf("ftps %s: %s: refused (%s): check that the path exists and that user %q may do this there",
			addr, doing, reply(err), p.cfg.User))
	case c >= 500:
		return pipeline.Permanent(fmt.Errorf("ftps %s: %s: refused (%s)", addr, doing, reply(err)))
	case c == ftp.StatusTransfertAborted && !p.cfg.DisableTLS13 && strings.Contains(reply(err), "Failure reading network stream"):
		return fmt.Errorf("ftps %s: %s: the server answered %s; tried again (servers such as vsftpd 3.0 fail TLS 1.3 transfers so: if it persists, set disable_tls13: true)", addr, doing, reply(err))
	case c >= 400:
		return fmt.Errorf("ftps %s: %s: the server answered %s; tried again", addr, doing, reply(err))
	case brokenBy(err):
		return fmt.Errorf("ftps %s: %s: the connection was lost (%v); it is dialled again on the next try", addr, doing, err)
	}
	return fmt.Errorf("ftps %s: %s: %w", addr, doing, err)
}

// loc names a remote path for messages: ftps://host:port/abs/path, or
// ftps://host:port/~/rel/path for a path relative to the login directory.
func (p *pool) loc(remote string) string {
	if !path.IsAbs(remote) {
		remote = "/~/" + remote
	}
	return "ftps://" + p.cfg.addr() + remote
}

// missingDir is the error for a configured directory the server refuses to
// enter.
func (p *pool) missingDir(dir string, err error) error {
	return pipeline.Permanent(fmt.Errorf("ftps %s: the remote directory %q does not exist or may not be entered (%s): create it on the server, fix directory or ask for access",
		p.cfg.addr(), dir, reply(err)))
}

// fileExists reports whether the server has a file at p (SIZE answers).
func fileExists(sess *session, p string) (bool, error) {
	_, err := sess.c.FileSize(p)
	switch {
	case err == nil:
		return true, nil
	case code(err) == ftp.StatusFileUnavailable:
		return false, nil
	}
	return false, err
}

// mkdirAll creates the directory dir and its parents where missing.
func mkdirAll(sess *session, dir string) error {
	if sess.c.ChangeDir(dir) == nil {
		return nil
	}
	if parent := path.Dir(dir); parent != dir {
		if err := mkdirAll(sess, parent); err != nil {
			return err
		}
	}
	err := sess.c.MakeDir(dir)
	if err != nil && !brokenBy(err) && sess.c.ChangeDir(dir) == nil {
		return nil // made meanwhile by another upload
	}
	return err
}
