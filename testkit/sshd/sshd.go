package sshd

import (
	"crypto/ed25519"
	"crypto/rand"
	"encoding/pem"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/knownhosts"

	"github.com/mftflow/mftflow/testkit"
)

// The local test user scripts/sshd.sh creates, and its password.
const (
	TestUser     = "mftflow-sftp"
	TestPassword = "mftflow-sftp-password"
)

// Server is a running sshd.
type Server struct {
	// Addr is the server's address, "127.0.0.1:port".
	Addr string
	// Host and Port are Addr's parts.
	Host string
	Port int
	// User is the login name the server accepts.
	User string
	// Password is User's password, or "" when password logins are not
	// possible (the tests do not run as root, or the test user is missing).
	Password string
	// ClientKey is the path of the client's private key (OpenSSH PEM, not
	// encrypted); ClientSigner is the same key for Go code.
	ClientKey    string
	ClientSigner ssh.Signer
	// HostKey is the server's public host key.
	HostKey ssh.PublicKey
	// KnownHostsFile holds KnownHostsLine, ready for a client to trust.
	KnownHostsFile string
	// UserDir is the directory that SFTP clients read and write (Dir); the
	// server has no chroot, so remote paths are the same as local ones.
	// It is owned by User and starts empty.
	testkit.UserDir
	// Base is the temporary directory holding the configuration, keys, log
	// and Dir.
	Base string

	logPath  string
	daemon   *testkit.Daemon
	stopOnce sync.Once

	encMu     sync.Mutex
	encrypted map[string]string // passphrase -> key file
}

// Binary returns the path of sshd, or "" if there is none.
func Binary() string {
	if p := os.Getenv("MFTFLOW_SSHD"); p != "" {
		return p
	}
	if fi, err := os.Stat("/usr/sbin/sshd"); err == nil && !fi.IsDir() {
		return "/usr/sbin/sshd"
	}
	if p, err := exec.LookPath("sshd"); err == nil {
		return p
	}
	return ""
}

// Start starts an sshd for t and stops it when t ends. Without sshd it
// skips t, saying how to install it.
func Start(t testing.TB) *Server {
	t.Helper()
	bin := Binary()
	if bin == "" {
		t.Skip("OpenSSH server (sshd) not found: run ./scripts/sshd.sh (installs Debian's openssh-server) or set MFTFLOW_SSHD")
	}
	abs, err := filepath.Abs(bin)
	if err != nil {
		t.Fatalf("sshd %s: %v", bin, err)
	}
	var lastErr error
	for range 3 { // a port taken between picking and binding: try again
		srv, err := start(abs)
		if err == nil {
			t.Cleanup(srv.stop)
			return srv
		}
		lastErr = err
	}
	t.Fatalf("starting sshd (%s): %v", abs, lastErr)
	return nil
}

func start(bin string) (srv *Server, err error) {
	base, err := os.MkdirTemp("", "mftflow-sshd-")
	if err != nil {
		return nil, err
	}
	defer func() {
		if err != nil {
			_ = os.RemoveAll(base) // a temporary directory: one left behind only takes space
		}
	}()
	// The login user must reach its files and authorized_keys below base.
	if err := os.Chmod(base, 0o755); err != nil {
		return nil, err
	}
	s := &Server{Base: base, Host: "127.0.0.1", logPath: filepath.Join(base, "sshd.log")}
	var owned bool
	if s.UserDir, owned, err = testkit.NewUserDir(filepath.Join(base, "files"), TestUser); err != nil {
		return nil, err
	}
	if err := s.pickUser(owned); err != nil {
		return nil, err
	}

	hostKey, authorized, err := s.writeKeys()
	if err != nil {
		return nil, err
	}
	s.Port, err = testkit.FreePort()
	if err != nil {
		return nil, err
	}
	s.Addr = net.JoinHostPort(s.Host, strconv.Itoa(s.Port))
	s.KnownHostsFile = filepath.Join(base, "known_hosts")
	if err := os.WriteFile(s.KnownHostsFile, []byte(s.KnownHostsLine()+"\n"), 0o644); err != nil {
		return nil, err
	}

	config, err := s.writeConfig(hostKey, authorized)
	if err != nil {
		return nil, err
	}
	if os.Geteuid() == 0 {
		// sshd running as root insists on its privilege separation directory.
		if err := os.MkdirAll("/run/sshd", 0o755); err != nil {
			return nil, fmt.Errorf("creating /run/sshd: %w", err)
		}
	}

	// -D: stay in the foreground, so the test owns the process; -E: log to
	// a file the test can read.
	if s.daemon, err = testkit.StartDaemon(bin, "-D", "-f", config, "-E", s.logPath); err != nil {
		return nil, err
	}
	if err := s.daemon.WaitGreeting(s.Addr, "SSH-2.0-", nil, 30*time.Second); err != nil {
		s.daemon.Stop()
		return nil, fmt.Errorf("%w\nlog:\n%s", err, s.Log())
	}
	return s, nil
}

// writeKeys writes the host key and the client's key with its
// authorized_keys file below Base.
func (s *Server) writeKeys() (hostKey, authorized string, err error) {
	base := s.Base
	hostPub, hostPEM, err := newKey()
	if err != nil {
		return "", "", err
	}
	s.HostKey = hostPub
	hostKey = filepath.Join(base, "ssh_host_ed25519_key")
	if err := os.WriteFile(hostKey, hostPEM, 0o600); err != nil {
		return "", "", err
	}
	clientPub, clientPEM, err := newKey()
	if err != nil {
		return "", "", err
	}
	s.ClientKey = filepath.Join(base, "client_ed25519_key")
	if err := os.WriteFile(s.ClientKey, clientPEM, 0o600); err != nil {
		return "", "", err
	}
	if s.ClientSigner, err = ssh.ParsePrivateKey(clientPEM); err != nil {
		return "", "", err
	}
	authorized = filepath.Join(base, "authorized_keys")
	if err := os.WriteFile(authorized, ssh.MarshalAuthorizedKey(clientPub), 0o644); err != nil {
		return "", "", err
	}

	return hostKey, authorized, nil
}

// writeConfig writes sshd_config for an SFTP-only server on Addr.
func (s *Server) writeConfig(hostKey, authorized string) (string, error) {
	base := s.Base
	password := "no"
	if s.Password != "" {
		password = "yes"
	}
	config := filepath.Join(base, "sshd_config")
	conf := strings.Join([]string{
		"ListenAddress " + s.Addr,
		"HostKey " + hostKey,
		"PidFile " + filepath.Join(base, "sshd.pid"),
		"AuthorizedKeysFile " + authorized,
		"AllowUsers " + s.User,
		"PermitRootLogin prohibit-password",
		"PubkeyAuthentication yes",
		"PasswordAuthentication " + password,
		"PermitEmptyPasswords no",
		"KbdInteractiveAuthentication no",
		"UsePAM no",
		// The temporary directory is not root's alone; sshd would refuse it.
		"StrictModes no",
		"UseDNS no",
		// SFTP only, as on Thru's endpoints: no shell, no forwarding.
		"Subsystem sftp internal-sftp",
		"ForceCommand internal-sftp",
		"PermitTTY no",
		"AllowTcpForwarding no",
		"AllowAgentForwarding no",
		"X11Forwarding no",
		"PermitTunnel no",
		"MaxStartups 100",
		"MaxSessions 100",
		"MaxAuthTries 10",
		"LoginGraceTime 30",
		// DEBUG shows global requests such as keepalive@openssh.com in the log.
		"LogLevel DEBUG",
		"",
	}, "\n")
	if err := os.WriteFile(config, []byte(conf), 0o644); err != nil {
		return "", err
	}
	return config, nil
}

// pickUser chooses the login user: the test user when it owns the files
// (the tests run as root and it exists), else the current user.
func (s *Server) pickUser(testUser bool) error {
	if testUser {
		s.User, s.Password = TestUser, TestPassword
		return nil
	}
	u, err := user.Current()
	if err != nil {
		return fmt.Errorf("finding the current user: %w", err)
	}
	s.User = u.Username
	return nil
}

func newKey() (ssh.PublicKey, []byte, error) {
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return nil, nil, err
	}
	block, err := ssh.MarshalPrivateKey(priv, "")
	if err != nil {
		return nil, nil, err
	}
	sshPub, err := ssh.NewPublicKey(pub)
	if err != nil {
		return nil, nil, err
	}
	return sshPub, pem.EncodeToMemory(block), nil
}

// stop ends the listening sshd and removes the temporary directory. Sessions
// still open end when their clients close.
func (s *Server) stop() {
	s.stopOnce.Do(func() {
		s.daemon.Stop()
		_ = os.RemoveAll(s.Base) // a temporary directory: one left behind only takes space
	})
}

// KnownHostsLine is the known_hosts line for the server's host key, such as
// "[127.0.0.1]:40123 ssh-ed25519 AAAA...".
func (s *Server) KnownHostsLine() string {
	return knownhosts.Line([]string{knownhosts.Normalize(s.Addr)}, s.HostKey)
}

// EncryptedClientKey writes the client key encrypted with passphrase to a
// file and returns its path. Encrypting is slow on purpose (bcrypt), so the
// file is made once per passphrase.
func (s *Server) EncryptedClientKey(t testing.TB, passphrase string) string {
	t.Helper()
	s.encMu.Lock()
	defer s.encMu.Unlock()
	if p, ok := s.encrypted[passphrase]; ok {
		return p
	}
	pemBytes, err := os.ReadFile(s.ClientKey)
	if err != nil {
		t.Fatal(err)
	}
	raw, err := ssh.ParseRawPrivateKey(pemBytes)
	if err != nil {
		t.Fatal(err)
	}
	block, err := ssh.MarshalPrivateKeyWithPassphrase(raw, "", []byte(passphrase))
	if err != nil {
		t.Fatal(err)
	}
	f, err := os.CreateTemp(s.Base, "client_encrypted_*_key")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.Write(pem.EncodeToMemory(block)); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	if s.encrypted == nil {
		s.encrypted = map[string]string{}
	}
	s.encrypted[passphrase] = f.Name()
	return f.Name()
}

// Log returns what the server logged so far.
func (s *Server) Log() string {
	b, _ := os.ReadFile(s.logPath)
	return string(b)
}
