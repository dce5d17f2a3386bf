package ftps

import (
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/mftflow/mftflow/pipeline"
	"github.com/mftflow/mftflow/testkit/ftpd"
)

// What users get wrong gets an exact, permanent error saying what to do;
// a server that is not there gets a retryable one.
func TestErrorTable(t *testing.T) {
	srv := ftpd.Start(t, ftpd.Options{})
	addr := srv.Addr
	closedPort := func() int {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer l.Close()
		return l.Addr().(*net.TCPAddr).Port
	}()
	readOnly := srv.Path("read-only")
	if err := os.Mkdir(readOnly, 0o755); err != nil { // root's: the login user may not write
		t.Fatal(err)
	}
	missing := srv.Path("missing")
	for _, c := range []struct {
		name      string
		change    func(*ConnConfig)
		dir       string
		want      string
		permanent bool
	}{
		{
			name:      "wrong password",
			change:    func(c *ConnConfig) { c.Password = "wrong" },
			want:      fmt.Sprintf(`ftps %s: login as "mftflow-ftp" refused (530 Login incorrect.): check user and password`, addr),
			permanent: true,
		},
		{
			name:      "untrusted certificate",
			change:    func(c *ConnConfig) { c.CAFile = "" },
			want:      fmt.Sprintf(`ftps %s: the server's certificate is not trusted (tls: failed to verify certificate: x509: certificate signed by unknown authority): give the CA that issued it in ca_file`, addr),
			permanent: true,
		},
		{
			name:      "certificate for another name",
			change:    func(c *ConnConfig) { c.ServerName = "files.example.com" },
			want:      fmt.Sprintf(`ftps %s: the server's certificate is not for "files.example.com" (tls: failed to verify certificate: x509: certificate is valid for localhost, not files.example.com): fix host, or set server_name to a name the certificate holds`, addr),
			permanent: true,
		},
		{
			name:   "connection refused",
			change: func(c *ConnConfig) { c.Port = closedPort },
			want:   fmt.Sprintf(`ftps 127.0.0.1:%d: connection refused: is the FTP server running, and listening on port %d?`, closedPort, closedPort),
		},
		{
			name:      "missing directory",
			dir:       missing,
			want:      fmt.Sprintf(`ftps %s: the remote directory %q does not exist or may not be entered (550 Failed to change directory.): create it on the server, fix directory or ask for access`, addr, missing),
			permanent: true,
		},
		{
			name:      "permission denied",
			dir:       readOnly,
			want:      fmt.Sprintf(`ftps %s: writing "a.txt" into %s: refused (553 Could not create file.): check that the path exists and that user "mftflow-ftp" may do this there`, addr, readOnly),
			permanent: true,
		},
	} {
		t.Run(c.name, func(t *testing.T) {
			cc := connConfig(srv, TLSExplicit)
			cc.ConnectTimeout = 5 * time.Second
			if c.change != nil {
				c.change(&cc)
			}
			dir := c.dir
			if dir == "" {
				dir = srv.Path(srv.FreshDir(t, "errors"))
			}
			sink := newTestSink(t, SinkConfig{ConnConfig: cc, Directory: dir})
			_, err := sink.Open(t.Context(), pipeline.File{ID: "f1", Name: "a.txt", Size: 1}, nil)
			if err == nil || err.Error() != c.want {
				t.Fatalf("sink Open:\n got %v\nwant %s", err, c.want)
			}
			if pipeline.IsPermanent(err) != c.permanent {
				t.Errorf("permanent: %v, want %v", pipeline.IsPermanent(err), c.permanent)
			}
			if c.dir == readOnly {
				return // the source only reads
			}
			src := newTestSource(t, SourceConfig{ConnConfig: cc, Directory: dir})
			ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
			defer cancel()
			if _, err := src.Next(ctx); err == nil || err.Error() != c.want {
				t.Fatalf("source Next:\n got %v\nwant %s", err, c.want)
			}
		})
	}
}

// Bad settings are refused before anything connects, naming the field.
func TestConfigErrors(t *testing.T) {
	good := ConnConfig{Host: "127.0.0.1", User: "u", Password: "p"}
	noCA := filepath.Join(t.TempDir(), "none.pem")
	for _, c := range []struct {
		change func(*SinkConfig)
		want   string
	}{
		{func(c *SinkConfig) { c.TLS = "starttls" }, `ftps: field "tls": want explicit or implicit, got "starttls"`},
		{func(c *SinkConfig) { c.Host = "" }, `ftps: field "host": required field is missing`},
		{func(c *SinkConfig) { c.Port = 70000 }, `ftps: field "port": 70000 is not a TCP port (1-65535)`},
		{func(c *SinkConfig) { c.ClientCert = "c.pem" }, `ftps: field "client_cert": give client_cert and client_key together`},
		{func(c *SinkConfig) { c.CAFile = noCA }, `ftps: field "ca_file": reading the CA certificates: open ` + noCA + `: no such file or directory`},
		{func(c *SinkConfig) { c.Overwrite = "always" }, `ftps: field "overwrite": want one of replace, skip, fail, got "always"`},
		{func(c *SinkConfig) { c.TempName = "{base}" }, `ftps: field "temp_name": temporary name template "{base}" gives the final name "x.csv" itself`},
		{func(c *SinkConfig) { c.Directory = "" }, `ftps: field "directory": required field is missing`},
	} {
		cfg := SinkConfig{ConnConfig: good, Directory: "in"}
		c.change(&cfg)
		_, err := NewSink(cfg)
		if err == nil || err.Error() != c.want {
			t.Errorf("NewSink:\n got %v\nwant %s", err, c.want)
		}
	}
	if _, err := NewSource(t.Context(), SourceConfig{ConnConfig: good, Directory: "in", Polling: pipeline.Polling{After: pipeline.AfterMove, ArchiveDir: "in/"}}); err == nil ||
		err.Error() != `ftps: field "archive_dir": in/ is the source directory itself` {
		t.Errorf("NewSource with archive_dir = directory: %v", err)
	}
	if cfg := (ConnConfig{Host: "h", User: "u", TLS: TLSImplicit}); cfg.check() != nil || cfg.Port != 990 || cfg.addr() != "h:"+strconv.Itoa(990) {
		t.Errorf("implicit TLS default port: %+v", cfg)
	}
}
