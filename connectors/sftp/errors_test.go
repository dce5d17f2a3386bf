package sftp

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net"
	"os"
	"path"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/knownhosts"

	"github.com/mftflow/mftflow/pipeline"
	"github.com/mftflow/mftflow/testkit"
	"github.com/mftflow/mftflow/testkit/sshd"
)

// otherKey returns a host key the server does not have.
func otherKey(t *testing.T) ssh.PublicKey {
	pub, _, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	k, err := ssh.NewPublicKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func writeFile(t *testing.T, content string) string {
	p := filepath.Join(t.TempDir(), "known_hosts")
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// closedPort returns a port on 127.0.0.1 that nothing listens on.
func closedPort(t *testing.T) int {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	return port
}

// TestConnectErrors checks the messages of the connection problems users
// meet, and whether each is worth retrying.
func TestConnectErrors(t *testing.T) {
	srv := sshd.Start(t)
	dir := srv.FreshDir(t, "errors")
	hostFP := "ssh-ed25519 " + ssh.FingerprintSHA256(srv.HostKey)
	other := otherKey(t)
	unknownHosts := writeFile(t, knownhosts.Line([]string{"[127.0.0.1]:1"}, other)+"\n")
	mismatchHosts := writeFile(t, knownhosts.Line([]string{knownhosts.Normalize(srv.Addr)}, other)+"\n")
	refused := closedPort(t)

	tests := []struct {
		name      string
		change    func(c *ConnConfig)
		dir       string // remote directory; "" means dir
		want      string
		permanent bool
	}{
		{
			name: "wrong password",
			change: func(c *ConnConfig) {
				if srv.Password == "" {
					t.Skip("no password user: run ./scripts/sshd.sh as root")
				}
				c.PrivateKey, c.Password = "", "wrong"
			},
			want: fmt.Sprintf(`sftp: logging in to %s as %q: the server refused the password: check user, password and private_key, and that the key is authorised for this user on the server`,
				srv.Addr, srv.User),
			permanent: true,
		},
		{
			name:   "key not authorised",
			change: func(c *ConnConfig) { c.PrivateKey = writeKey(t) },
			want: fmt.Sprintf(`sftp: logging in to %s as %q: the server refused the private key %s: check user, password and private_key, and that the key is authorised for this user on the server`,
				srv.Addr, srv.User, "<KEY>"),
			permanent: true,
		},
		{
			name:   "unknown host key",
			change: func(c *ConnConfig) { c.KnownHosts = unknownHosts },
			want: fmt.Sprintf(`sftp: connecting to %s: the server's host key (%s) is not in known_hosts file %s: check the fingerprint with the server's administrator, then add the key (ssh-keyscan -p %d 127.0.0.1 >> %s)`,
				srv.Addr, hostFP, unknownHosts, srv.Port, unknownHosts),
			permanent: true,
		},
		{
			name:   "host key mismatch",
			change: func(c *ConnConfig) { c.KnownHosts = mismatchHosts },
			want: fmt.Sprintf(`sftp: connecting to %s: HOST KEY MISMATCH: the server presented %s, but known_hosts file %s (line 1) expects ssh-ed25519 %s: the server's key changed or someone is intercepting the connection; ask the server's administrator before updating known_hosts`,
				srv.Addr, hostFP, mismatchHosts, ssh.FingerprintSHA256(other)),
			permanent: true,
		},
		{
			name:   "connection refused",
			change: func(c *ConnConfig) { c.Port = refused },
			want: fmt.Sprintf(`sftp: connecting to 127.0.0.1:%d: connection refused: nothing listens on port %d of 127.0.0.1; is the SFTP server running and the port right?`,
				refused, refused),
			permanent: false, // the server may be restarting
		},
		{
			name: "missing remote directory",
			dir:  srv.Path("no/such/dir"),
			want: fmt.Sprintf(`sftp %s: the remote directory %q does not exist: create it on the server or fix directory`,
				srv.Addr, srv.Path("no/such/dir")),
			permanent: true,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := connConfig(srv)
			if tt.change != nil {
				tt.change(&c)
			}
			want := strings.ReplaceAll(tt.want, "<KEY>", c.PrivateKey)
			d := tt.dir
			if d == "" {
				d = srv.Path(dir)
			}
			s := newTestSink(t, SinkConfig{ConnConfig: c, Directory: d})
			_, err := s.Open(t.Context(), pipeline.File{ID: "e", Key: "e", Name: "e.txt", Size: 1}, nil)
			if err == nil || err.Error() != want {
				t.Fatalf("sink Open:\n got %v\nwant %s", err, want)
			}
			if got := pipeline.IsPermanent(err); got != tt.permanent {
				t.Errorf("IsPermanent = %v, want %v", got, tt.permanent)
			}
			src := newTestSource(t, SourceConfig{ConnConfig: c, Directory: d})
			_, err = src.Next(t.Context())
			if err == nil || err.Error() != want {
				t.Fatalf("source Next:\n got %v\nwant %s", err, want)
			}
		})
	}
}

// writeKey writes a private key the server does not know.
func writeKey(t *testing.T) string {
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	block, err := ssh.MarshalPrivateKey(priv, "")
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(t.TempDir(), "unknown_key")
	if err := os.WriteFile(p, pem.EncodeToMemory(block), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// TestConfigErrors checks the messages of settings refused before connecting.
func TestConfigErrors(t *testing.T) {
	srv := sshd.Start(t)
	missing := filepath.Join(t.TempDir(), "absent_known_hosts")
	tests := []struct {
		name   string
		change func(c *ConnConfig)
		want   string
	}{
		{
			name:   "known_hosts missing without the insecure flag",
			change: func(c *ConnConfig) { c.KnownHosts = "" },
			want: fmt.Sprintf(`sftp: field "known_hosts": required unless insecure_ignore_host_key is true: give a known_hosts file holding the server's host key (ssh-keyscan -p %d 127.0.0.1 > known_hosts, then check the fingerprint with the server's administrator)`,
				srv.Port),
		},
		{
			name:   "known_hosts file absent",
			change: func(c *ConnConfig) { c.KnownHosts = missing },
			want:   fmt.Sprintf(`sftp: field "known_hosts": reading %s: open %s: no such file or directory`, missing, missing),
		},
		{
			name:   "no password and no key",
			change: func(c *ConnConfig) { c.PrivateKey = "" },
			want:   `sftp: field "password": give password, private_key or both`,
		},
		{
			name:   "encrypted key without passphrase",
			change: func(c *ConnConfig) { c.PrivateKey = srv.EncryptedClientKey(t, "sesame") },
			want:   `sftp: field "private_key": <KEY> is encrypted: set private_key_passphrase`,
		},
		{
			name: "wrong passphrase",
			change: func(c *ConnConfig) {
				c.PrivateKey, c.PrivateKeyPassphrase = srv.EncryptedClientKey(t, "sesame"), "open"
			},
			want: `sftp: field "private_key_passphrase": does not decrypt <KEY>`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := connConfig(srv)
			tt.change(&c)
			want := strings.ReplaceAll(tt.want, "<KEY>", c.PrivateKey)
			_, err := NewSink(SinkConfig{ConnConfig: c, Directory: srv.Dir})
			if err == nil || err.Error() != want {
				t.Fatalf("NewSink:\n got %v\nwant %s", err, want)
			}
			_, err = NewSource(t.Context(), SourceConfig{ConnConfig: c, Directory: srv.Dir})
			if err == nil || err.Error() != want {
				t.Fatalf("NewSource:\n got %v\nwant %s", err, want)
			}
		})
	}
}

// TestInsecureIgnoreHostKey checks that the flag connects to a server whose
// key is nowhere, and says loudly that it is insecure.
func TestInsecureIgnoreHostKey(t *testing.T) {
	srv := sshd.Start(t)
	dir := srv.FreshDir(t, "insecure")
	var logs bytes.Buffer
	c := connConfig(srv)
	c.KnownHosts, c.InsecureIgnoreHostKey = "", true
	c.Logger = slog.New(slog.NewTextHandler(&logs, nil))
	s := newTestSink(t, SinkConfig{ConnConfig: c, Directory: srv.Path(dir)})
	if !strings.Contains(logs.String(), "level=WARN msg=\"sftp: insecure_ignore_host_key is set") {
		t.Errorf("no warning logged; the log:\n%s", logs.String())
	}
	if err := deliver(t, s, "x.txt", []byte("x")); err != nil {
		t.Fatal(err)
	}
}

// TestPermissionDenied writes into a directory the login user may not write.
func TestPermissionDenied(t *testing.T) {
	srv := sshd.Start(t)
	if !srv.Unprivileged() {
		t.Skip("the login user is root, which any permission lets through: run ./scripts/sshd.sh as root to get an unprivileged test user")
	}
	// Made by the test process, not handed to the login user, and read-only.
	ro := filepath.Join(srv.Dir, "read-only")
	if err := os.Mkdir(ro, 0o555); err != nil {
		t.Fatal(err)
	}
	if os.Geteuid() != 0 {
		t.Cleanup(func() { os.Chmod(ro, 0o755) })
	}
	s := newTestSink(t, SinkConfig{ConnConfig: connConfig(srv), Directory: ro})
	f := pipeline.File{ID: "perm", Key: "perm", Name: "x.txt", Size: 1}
	temp, err := s.cfg.TempPath(f, path.Join(ro, "x.txt"), false, s.now())
	if err != nil {
		t.Fatal(err)
	}
	want := fmt.Sprintf(`sftp %s: writing "x.txt": creating temporary file %s: permission denied: the server does not let user %q do this; ask its administrator for access`,
		srv.Addr, temp, srv.User)
	_, err = s.Open(t.Context(), f, nil)
	if err == nil || err.Error() != want {
		t.Fatalf("Open:\n got %v\nwant %s", err, want)
	}
	if !pipeline.IsPermanent(err) || !errors.Is(err, fs.ErrPermission) {
		t.Errorf("want a permanent error wrapping fs.ErrPermission, got %v", err)
	}
}

func deliver(t *testing.T, s pipeline.Sink, name string, content []byte) error {
	t.Helper()
	return deliverCtx(t.Context(), s, name, content)
}

func deliverCtx(ctx context.Context, s pipeline.Sink, name string, content []byte) error {
	f := pipeline.File{ID: "id-" + strings.ReplaceAll(name, "/", "_"), Key: name, Name: name}
	return testkit.Deliver(ctx, s, f, content)
}
