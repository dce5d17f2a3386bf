package ftpd

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
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

	"github.com/mftflow/mftflow/testkit"
)

// The local test user scripts/ftpd.sh creates, and its password.
const (
	TestUser     = "mftflow-ftp"
	TestPassword = "mftflow-ftp-password"
)

// pamService is the PAM service scripts/ftpd.sh installs.
const pamService = "mftflow-ftp"

// Options change how Start configures the server.
type Options struct {
	// Implicit starts TLS at once on connect (implicit FTPS) instead of
	// after AUTH TLS.
	Implicit bool
}

// Server is a running vsftpd.
type Server struct {
	// Addr is the server's address, "127.0.0.1:port"; Host and Port are its
	// parts.
	Addr string
	Host string
	Port int
	// User and Password log in.
	User, Password string
	// CAFile holds the PEM certificate of the CA that issued the server's
	// certificate; CAPool is the same for Go code.
	CAFile string
	CAPool *x509.CertPool
	// UserDir is the directory the tests read and write (Dir), owned by
	// User and empty at start.
	testkit.UserDir
	// Base is the temporary directory holding the configuration,
	// certificate, log and Dir.
	Base string

	logPath  string
	daemon   *testkit.Daemon
	stopOnce sync.Once
}

// Binary returns the path of vsftpd, or "" if there is none.
func Binary() string {
	if p := os.Getenv("MFTFLOW_VSFTPD"); p != "" {
		return p
	}
	if fi, err := os.Stat("/usr/sbin/vsftpd"); err == nil && !fi.IsDir() {
		return "/usr/sbin/vsftpd"
	}
	if p, err := exec.LookPath("vsftpd"); err == nil {
		return p
	}
	return ""
}

// Start starts a vsftpd for t and stops it when t ends. Without vsftpd, root
// or the test user it skips t, saying what is missing.
func Start(t testing.TB, o Options) *Server {
	t.Helper()
	bin := Binary()
	switch {
	case bin == "":
		t.Skip("FTP server (vsftpd) not found: run ./scripts/ftpd.sh (installs Debian's vsftpd) or set MFTFLOW_VSFTPD")
	case os.Geteuid() != 0:
		t.Skip("the FTPS tests start vsftpd, which checks passwords only as root: run them as root")
	}
	if _, err := user.Lookup(TestUser); err != nil {
		t.Skipf("test user %s missing: run ./scripts/ftpd.sh as root", TestUser)
	}
	if _, err := os.Stat("/etc/pam.d/" + pamService); err != nil {
		t.Skipf("PAM service %s missing: run ./scripts/ftpd.sh as root", pamService)
	}
	var lastErr error
	for range 3 { // a port taken between picking and binding: try again
		srv, err := start(bin, o)
		if err == nil {
			t.Cleanup(srv.stop)
			return srv
		}
		lastErr = err
	}
	t.Fatalf("starting vsftpd (%s): %v", bin, lastErr)
	return nil
}

func start(bin string, o Options) (srv *Server, err error) {
	base, err := os.MkdirTemp("", "mftflow-ftpd-")
	if err != nil {
		return nil, err
	}
	defer func() {
		if err != nil {
			_ = os.RemoveAll(base) // a temporary directory: one left behind only takes space
		}
	}()
	if err := os.Chmod(base, 0o755); err != nil { // the login user reaches Dir
		return nil, err
	}
	s := &Server{Base: base, Host: "127.0.0.1", User: TestUser, Password: TestPassword, logPath: filepath.Join(base, "vsftpd.log")}
	if s.UserDir, _, err = testkit.NewUserDir(filepath.Join(base, "files"), TestUser); err != nil {
		return nil, err
	}
	certFile, keyFile, err := s.writeCertificates()
	if err != nil {
		return nil, err
	}
	if s.Port, err = testkit.FreePort(); err != nil {
		return nil, err
	}
	s.Addr = net.JoinHostPort(s.Host, strconv.Itoa(s.Port))
	// Passive ports below Linux's ephemeral range, a block per server.
	pasv := 20000 + 50*int(randUint(200))
	implicit := "NO"
	if o.Implicit {
		implicit = "YES"
	}
	conf := strings.Join([]string{
		"listen=YES",
		"listen_address=" + s.Host,
		"listen_port=" + strconv.Itoa(s.Port),
		"background=NO",
		"anonymous_enable=NO",
		"local_enable=YES",
		"write_enable=YES",
		"local_umask=022",
		"local_root=" + s.Dir,
		"check_shell=NO",
		"userlist_enable=NO",
		"pam_service_name=" + pamService,
		// The sandbox is for hardened hosts; containers often lack what it needs.
		"seccomp_sandbox=NO",
		"secure_chroot_dir=/var/run/vsftpd/empty",
		"pasv_enable=YES",
		"pasv_address=" + s.Host,
		"pasv_min_port=" + strconv.Itoa(pasv),
		"pasv_max_port=" + strconv.Itoa(pasv+49),
		"ssl_enable=YES",
		"implicit_ssl=" + implicit,
		"rsa_cert_file=" + certFile,
		"rsa_private_key_file=" + keyFile,
		"force_local_logins_ssl=YES",
		"force_local_data_ssl=YES",
		"require_ssl_reuse=YES",
		"ssl_ciphers=HIGH",
		"vsftpd_log_file=" + s.logPath,
		"xferlog_enable=YES",
		"log_ftp_protocol=YES",
		"max_clients=200",
		"max_per_ip=200",
		"",
	}, "\n")
	config := filepath.Join(base, "vsftpd.conf")
	if err := os.WriteFile(config, []byte(conf), 0o600); err != nil {
		return nil, err
	}
	if err := os.MkdirAll("/var/run/vsftpd/empty", 0o755); err != nil {
		return nil, err
	}
	if s.daemon, err = testkit.StartDaemon(bin, config); err != nil {
		return nil, err
	}
	var wrap func(net.Conn) net.Conn
	if o.Implicit {
		wrap = func(c net.Conn) net.Conn { return tls.Client(c, &tls.Config{RootCAs: s.CAPool, ServerName: s.Host}) }
	}
	if err := s.daemon.WaitGreeting(s.Addr, "220", wrap, 30*time.Second); err != nil {
		s.daemon.Stop()
		return nil, fmt.Errorf("%w\nlog:\n%s", err, s.Log())
	}
	return s, nil
}

// writeCertificates makes a CA and a server certificate signed by it.
func (s *Server) writeCertificates() (certFile, keyFile string, err error) {
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return "", "", err
	}
	now := time.Now()
	caTmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "mftflow test CA"},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(24 * time.Hour),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		return "", "", err
	}
	ca, err := x509.ParseCertificate(caDER)
	if err != nil {
		return "", "", err
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return "", "", err
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(2),
		Subject:      pkix.Name{CommonName: "127.0.0.1"},
		NotBefore:    now.Add(-time.Hour),
		NotAfter:     now.Add(24 * time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		IPAddresses:  []net.IP{net.ParseIP("127.0.0.1")},
		DNSNames:     []string{"localhost"},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey)
	if err != nil {
		return "", "", err
	}
	keyDER, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		return "", "", err
	}
	s.CAFile = filepath.Join(s.Base, "ca.pem")
	certFile, keyFile = filepath.Join(s.Base, "cert.pem"), filepath.Join(s.Base, "key.pem")
	for _, f := range []struct {
		path, kind string
		der        []byte
	}{{s.CAFile, "CERTIFICATE", caDER}, {certFile, "CERTIFICATE", der}, {keyFile, "EC PRIVATE KEY", keyDER}} {
		if err := os.WriteFile(f.path, pem.EncodeToMemory(&pem.Block{Type: f.kind, Bytes: f.der}), 0o600); err != nil {
			return "", "", err
		}
	}
	s.CAPool = x509.NewCertPool()
	s.CAPool.AddCert(ca)
	return certFile, keyFile, nil
}

func randUint(n int64) int64 {
	v, err := rand.Int(rand.Reader, big.NewInt(n))
	if err != nil {
		return 0
	}
	return v.Int64()
}

// stop ends the listening vsftpd and removes the temporary directory.
// Sessions already open end when their clients close.
func (s *Server) stop() {
	s.stopOnce.Do(func() {
		s.daemon.Stop()
		_ = os.RemoveAll(s.Base) // a temporary directory: one left behind only takes space
	})
}

// Log returns what the server logged so far (commands and answers, with
// passwords hidden).
func (s *Server) Log() string {
	b, _ := os.ReadFile(s.logPath)
	return string(b)
}
