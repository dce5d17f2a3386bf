package sftp

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/pkg/sftp"
	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/knownhosts"

	"github.com/mftflow/mftflow/internal/discard"
	"github.com/mftflow/mftflow/pipeline"
)

// ConnConfig is how to reach and log in to an SFTP server. Source and sink
// share it.
type ConnConfig struct {
	// Host and Port of the server; Port 0 means 22.
	Host string `config:"host"`
	Port int    `config:"port"`
	// User logs in with Password, the private key at PrivateKey (decrypted
	// with PrivateKeyPassphrase if it is encrypted), or both: the key is
	// offered first.
	User                 string `config:"user"`
	Password             string `config:"password"`
	PrivateKey           string `config:"private_key"`
	PrivateKeyPassphrase string `config:"private_key_passphrase"`
	// KnownHosts is the known_hosts file that must hold the server's host
	// key. Required unless InsecureIgnoreHostKey is set.
	KnownHosts string `config:"known_hosts"`
	// InsecureIgnoreHostKey accepts any host key, so anyone between the
	// runner and the server can read and change the files. For tests only.
	InsecureIgnoreHostKey bool `config:"insecure_ignore_host_key"`
	// KeepAlive is how often an idle connection sends keepalive@openssh.com
	// and a cheap SFTP request; a connection whose server does not answer
	// within ConnectTimeout is closed. 0 means DefaultKeepAlive; negative
	// turns keep-alives off.
	KeepAlive time.Duration
	// ConnectTimeout bounds connecting and logging in; 0 means
	// DefaultConnectTimeout.
	ConnectTimeout time.Duration `config:"connect_timeout"`
	// Logger receives warnings; nil means slog.Default().
	Logger *slog.Logger
}

// check validates c and fills in defaults. connector names the connector in
// errors ("sftp").
func (c *ConnConfig) check(connector string) error {
	bad := func(field, format string, args ...any) error {
		return &pipeline.FieldError{Connector: connector, Field: field, Err: fmt.Errorf(format, args...)}
	}
	if c.Host == "" {
		return bad("host", "required field is missing")
	}
	if c.Port == 0 {
		c.Port = DefaultPort
	}
	if c.Port < 0 || c.Port > 65535 {
		return bad("port", "%d is not a TCP port (1-65535)", c.Port)
	}
	if c.User == "" {
		return bad("user", "required field is missing")
	}
	if c.Password == "" && c.PrivateKey == "" {
		return bad("password", "give password, private_key or both")
	}
	if c.PrivateKeyPassphrase != "" && c.PrivateKey == "" {
		return bad("private_key_passphrase", "set, but private_key is empty")
	}
	if c.KnownHosts == "" && !c.InsecureIgnoreHostKey {
		return bad("known_hosts", "required unless insecure_ignore_host_key is true: "+
			"give a known_hosts file holding the server's host key (ssh-keyscan -p %d %s > known_hosts, "+
			"then check the fingerprint with the server's administrator)", c.Port, c.Host)
	}
	if c.KeepAlive == 0 {
		c.KeepAlive = DefaultKeepAlive
	}
	if c.ConnectTimeout <= 0 {
		c.ConnectTimeout = DefaultConnectTimeout
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	return nil
}

// addr is "host:port".
func (c *ConnConfig) addr() string { return net.JoinHostPort(c.Host, strconv.Itoa(c.Port)) }

// clientConfig builds the SSH client configuration, reading the key and
// known_hosts files. Its errors are permanent: they are the user's to fix.
func (c *ConnConfig) clientConfig(connector string) (*ssh.ClientConfig, error) {
	bad := func(field string, err error) error {
		return pipeline.Permanent(&pipeline.FieldError{Connector: connector, Field: field, Err: err})
	}
	var auth []ssh.AuthMethod
	if c.PrivateKey != "" {
		pemBytes, err := os.ReadFile(c.PrivateKey)
		if err != nil {
			return nil, bad("private_key", fmt.Errorf("reading the private key: %w", err))
		}
		var signer ssh.Signer
		if c.PrivateKeyPassphrase != "" {
			signer, err = ssh.ParsePrivateKeyWithPassphrase(pemBytes, []byte(c.PrivateKeyPassphrase))
		} else {
			signer, err = ssh.ParsePrivateKey(pemBytes)
		}
		var missing *ssh.PassphraseMissingError
		switch {
		case errors.As(err, &missing):
			return nil, bad("private_key", fmt.Errorf("%s is encrypted: set private_key_passphrase", c.PrivateKey))
		case errors.Is(err, x509.IncorrectPasswordError):
			return nil, bad("private_key_passphrase", fmt.Errorf("does not decrypt %s", c.PrivateKey))
		case err != nil:
			return nil, bad("private_key", fmt.Errorf("%s: %w", c.PrivateKey, err))
		}
		auth = append(auth, ssh.PublicKeys(signer))
	}
	if c.Password != "" {
		auth = append(auth, ssh.Password(c.Password))
	}
	hostKey := ssh.InsecureIgnoreHostKey()
	if !c.InsecureIgnoreHostKey {
		cb, err := knownhosts.New(c.KnownHosts)
		if err != nil {
			return nil, bad("known_hosts", fmt.Errorf("reading %s: %w", c.KnownHosts, err))
		}
		hostKey = cb
	}
	return &ssh.ClientConfig{
		User:            c.User,
		Auth:            auth,
		HostKeyCallback: hostKey,
		Timeout:         c.ConnectTimeout,
		ClientVersion:   "SSH-2.0-mftflow",
	}, nil
}

// session is one SSH connection with its SFTP client.
type session struct {
	ssh  *ssh.Client
	sftp *sftp.Client
	dead chan struct{} // closed once the connection is gone
	// broken is set, before closing it, when a call or the keep-alive
	// found the connection unusable: no later call may pick it up, even
	// before dead is closed.
	broken atomic.Bool
	wg     sync.WaitGroup
}

// alive reports whether the connection still stands.
func (s *session) alive() bool {
	if s.broken.Load() {
		return false
	}
	select {
	case <-s.dead:
		return false
	default:
		return true
	}
}

// kill marks the connection unusable and closes it.
func (s *session) kill() {
	s.broken.Store(true)
	discard.Close(s.ssh) // closing is the point; a failed close changes nothing
}

// close ends the connection and waits for its goroutines.
func (s *session) close() {
	discard.Close(s.sftp) // files written through it were closed (and checked) already
	discard.Close(s.ssh)
	s.wg.Wait()
}

// conn holds at most one session and dials a new one when it is needed and
// the last one is gone, so a dropped connection costs one failed call,
// never a wedged connector. It is safe for concurrent use.
type conn struct {
	cfg       ConnConfig
	connector string
	ssh       *ssh.ClientConfig
	hasPosix  bool

	mu     sync.Mutex
	cur    *session
	closed bool

	// closing ends a dial in progress when the connector is closed, so
	// Close does not wait for a slow server.
	closing     context.Context
	closingStop context.CancelFunc

	// onKeepAlive, if set, is called after each answered keep-alive (tests).
	onKeepAlive func()
}

var errConnClosed = errors.New("the connector is closed")

func newConn(cfg ConnConfig, connector string) (*conn, error) {
	sc, err := cfg.clientConfig(connector)
	if err != nil {
		return nil, err
	}
	if cfg.InsecureIgnoreHostKey {
		cfg.Logger.Warn("sftp: insecure_ignore_host_key is set: the server's identity is not checked, "+
			"so anyone on the network path can read and change the files; set known_hosts instead",
			"connector", connector, "host", cfg.addr())
	}
	closing, stop := context.WithCancel(context.Background())
	return &conn{cfg: cfg, connector: connector, ssh: sc, closing: closing, closingStop: stop}, nil
}

// get returns the live session, dialling one if needed.
func (c *conn) get(ctx context.Context) (*session, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return nil, pipeline.Permanent(fmt.Errorf("sftp %s: %w", c.cfg.addr(), errConnClosed))
	}
	if c.cur != nil && c.cur.alive() {
		return c.cur, nil
	}
	if c.cur != nil {
		c.cur.close()
		c.cur = nil
	}
	s, err := c.dial(ctx)
	if err != nil {
		return nil, err
	}
	c.cur = s
	return s, nil
}

// close ends the session for good.
func (c *conn) close() {
	c.closingStop()
	c.mu.Lock()
	defer c.mu.Unlock()
	c.closed = true
	if c.cur != nil {
		c.cur.close()
		c.cur = nil
	}
}

// dial connects, checks the host key, logs in and starts SFTP.
func (c *conn) dial(ctx context.Context) (*session, error) {
	addr := c.cfg.addr()
	ctx, cancel := context.WithTimeout(ctx, c.cfg.ConnectTimeout)
	defer cancel()
	defer context.AfterFunc(c.closing, cancel)()
	var d net.Dialer
	nc, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, c.dialError(err)
	}
	// The handshake has no context: a deadline on the socket bounds it, and
	// closing the socket stops it when ctx ends first.
	_ = nc.SetDeadline(time.Now().Add(c.cfg.ConnectTimeout)) // fails only on a closed socket, and so does the handshake
	stop := context.AfterFunc(ctx, func() { discard.Close(nc) })
	var hostKeyErr error
	hostKeyChecked := false
	cfg := *c.ssh
	cfg.HostKeyCallback = func(host string, remote net.Addr, key ssh.PublicKey) error {
		err := c.ssh.HostKeyCallback(host, remote, key)
		if err != nil {
			hostKeyErr = c.hostKeyError(key, err)
			return hostKeyErr
		}
		hostKeyChecked = true
		return nil
	}
	sc, chans, reqs, err := ssh.NewClientConn(nc, addr, &cfg)
	interrupted := !stop() // ctx ended and closed the socket
	if err == nil && interrupted {
		discard.Close(sc)
		err = ctx.Err()
	}
	if err != nil {
		discard.Close(nc)
		switch {
		case hostKeyErr != nil:
			return nil, hostKeyErr
		case interrupted:
			return nil, fmt.Errorf("sftp: connecting to %s: %w", addr, c.timeoutOr(ctx.Err()))
		case hostKeyChecked && !isNetError(err):
			// The server is the right one and said no to every way of
			// logging in we offered.
			return nil, pipeline.Permanent(c.authError())
		}
		return nil, fmt.Errorf("sftp: connecting to %s: %w", addr, c.timeoutOr(err))
	}
	client := ssh.NewClient(sc, chans, reqs)
	// Still under the socket's deadline: a server that never starts SFTP
	// does not hang the call.
	sftpClient, err := sftp.NewClient(client,
		sftp.UseConcurrentWrites(true),
		sftp.UseConcurrentReads(true),
	)
	_ = nc.SetDeadline(time.Time{}) // fails only on a closed socket, and so will the first call
	if err != nil {
		discard.Close(client)
		if isNetError(err) {
			return nil, fmt.Errorf("sftp: starting the SFTP subsystem on %s: %w", addr, c.timeoutOr(err))
		}
		return nil, pipeline.Permanent(fmt.Errorf("sftp: starting the SFTP subsystem on %s as %q: %w (the server may not offer SFTP to this user)", addr, c.cfg.User, err))
	}
	_, c.hasPosix = sftpClient.HasExtension("posix-rename@openssh.com")
	s := &session{ssh: client, sftp: sftpClient, dead: make(chan struct{})}
	s.wg.Go(func() {
		_ = client.Wait() // returns when the connection ends; the calls on it say why
		close(s.dead)
	})
	if c.cfg.KeepAlive > 0 {
		s.wg.Go(func() { c.keepAlive(s) })
	}
	return s, nil
}

// timeoutOr names a timeout as one.
func (c *conn) timeoutOr(err error) error {
	var ne net.Error
	if errors.Is(err, context.DeadlineExceeded) || errors.As(err, &ne) && ne.Timeout() {
		return fmt.Errorf("no answer within %v (connect_timeout): is the host and port right, and does a firewall let the connection through?", c.cfg.ConnectTimeout)
	}
	return err
}

func isNetError(err error) bool {
	var ne net.Error
	return errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) || errors.As(err, &ne) || errors.Is(err, syscall.ECONNRESET)
}

// dialError explains a failed TCP connection.
func (c *conn) dialError(err error) error {
	addr := c.cfg.addr()
	if errors.Is(err, syscall.ECONNREFUSED) {
		return fmt.Errorf("sftp: connecting to %s: connection refused: nothing listens on port %d of %s; is the SFTP server running and the port right?", addr, c.cfg.Port, c.cfg.Host)
	}
	var dnsErr *net.DNSError
	if errors.As(err, &dnsErr) && dnsErr.IsNotFound {
		return pipeline.Permanent(fmt.Errorf("sftp: connecting to %s: host %q not found: check host", addr, c.cfg.Host))
	}
	return fmt.Errorf("sftp: connecting to %s: %w", addr, c.timeoutOr(err))
}

// authError explains a refused login.
func (c *conn) authError() error {
	var what string
	switch {
	case c.cfg.Password != "" && c.cfg.PrivateKey != "":
		what = fmt.Sprintf("refused both the private key %s and the password", c.cfg.PrivateKey)
	case c.cfg.PrivateKey != "":
		what = fmt.Sprintf("refused the private key %s", c.cfg.PrivateKey)
	default:
		what = "refused the password"
	}
	return fmt.Errorf("sftp: logging in to %s as %q: the server %s: check user, password and private_key, and that the key is authorised for this user on the server",
		c.cfg.addr(), c.cfg.User, what)
}

// hostKeyError explains a host key that known_hosts does not vouch for.
func (c *conn) hostKeyError(key ssh.PublicKey, err error) error {
	addr := c.cfg.addr()
	fp := key.Type() + " " + ssh.FingerprintSHA256(key)
	var ke *knownhosts.KeyError
	var re *knownhosts.RevokedError
	switch {
	case errors.As(err, &ke) && len(ke.Want) == 0:
		return pipeline.Permanent(fmt.Errorf("sftp: connecting to %s: the server's host key (%s) is not in known_hosts file %s: "+
			"check the fingerprint with the server's administrator, then add the key (ssh-keyscan -p %d %s >> %s)",
			addr, fp, c.cfg.KnownHosts, c.cfg.Port, c.cfg.Host, c.cfg.KnownHosts))
	case errors.As(err, &ke):
		w := ke.Want[0]
		return pipeline.Permanent(fmt.Errorf("sftp: connecting to %s: HOST KEY MISMATCH: the server presented %s, but known_hosts file %s (line %d) expects %s %s: "+
			"the server's key changed or someone is intercepting the connection; ask the server's administrator before updating known_hosts",
			addr, fp, w.Filename, w.Line, w.Key.Type(), ssh.FingerprintSHA256(w.Key)))
	case errors.As(err, &re):
		return pipeline.Permanent(fmt.Errorf("sftp: connecting to %s: the server's host key (%s) is marked revoked in %s (line %d)",
			addr, fp, re.Revoked.Filename, re.Revoked.Line))
	}
	return pipeline.Permanent(fmt.Errorf("sftp: connecting to %s: checking the host key: %w", addr, err))
}

// keepAliveEnded notes the answer to a keep-alive that the connection's end
// cut short: the end is why it failed, so it is worth a debug line only.
func (c *conn) keepAliveEnded(err error) {
	if err != nil {
		c.cfg.Logger.Debug("sftp: a keep-alive ended with the connection", "connector", c.connector, "error", err)
	}
}

// keepAlive sends a keepalive@openssh.com request and a cheap SFTP request
// every interval while the session stands: the first keeps firewalls and
// the SSH server from dropping an idle connection, the second servers (like
// Thru's) that count only SFTP commands as activity. A server that does not
// answer within the connect timeout gets its connection closed, so calls
// waiting on it fail instead of hanging.
func (c *conn) keepAlive(s *session) {
	t := time.NewTicker(c.cfg.KeepAlive)
	defer t.Stop()
	for {
		select {
		case <-s.dead:
			return
		case <-t.C:
		}
		answered := make(chan error, 1)
		go func() {
			_, _, err := s.ssh.SendRequest("keepalive@openssh.com", true, nil)
			if err == nil {
				_, err = s.sftp.Getwd()
			}
			answered <- err
		}()
		timer := time.NewTimer(c.cfg.ConnectTimeout)
		select {
		case err := <-answered:
			timer.Stop()
			if err != nil {
				s.kill()
				<-s.dead
				return
			}
			if c.onKeepAlive != nil {
				c.onKeepAlive()
			}
		case <-timer.C:
			c.cfg.Logger.Warn("sftp: the server did not answer a keep-alive; closing the connection",
				"connector", c.connector, "host", c.cfg.addr(), "waited", c.cfg.ConnectTimeout)
			s.kill()
			<-s.dead
			c.keepAliveEnded(<-answered)
			return
		case <-s.dead:
			c.keepAliveEnded(<-answered)
			return
		}
	}
}

// opError describes a failed SFTP call: doing says what ("creating
// temporary file /in/.x.tmp"). A call that failed because the connection
// went away is retryable, and the next call dials again; a missing file or
// a refused permission is permanent.
func (c *conn) opError(s *session, doing string, err error) error {
	addr := c.cfg.addr()
	switch {
	case errors.Is(err, sftp.ErrSSHFxConnectionLost):
		s.kill() // the next call dials again
		return fmt.Errorf("sftp %s: %s: the connection was lost; it is dialled again on the next try", addr, doing)
	case !s.alive() || isNetError(err) || errors.Is(err, syscall.EPIPE):
		// The connection broke, and the session may not have noticed yet.
		s.kill()
		return fmt.Errorf("sftp %s: %s: the connection was lost (%v); it is dialled again on the next try", addr, doing, err)
	case errors.Is(err, fs.ErrPermission):
		return pipeline.Permanent(fmt.Errorf("sftp %s: %s: %w: the server does not let user %q do this; ask its administrator for access",
			addr, doing, fs.ErrPermission, c.cfg.User))
	case errors.Is(err, fs.ErrNotExist):
		return pipeline.Permanent(fmt.Errorf("sftp %s: %s: %w", addr, doing, fs.ErrNotExist))
	}
	return fmt.Errorf("sftp %s: %s: %w", addr, doing, err)
}
