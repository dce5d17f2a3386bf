package ftpd_test

import (
	"bytes"
	"crypto/tls"
	"io"
	"testing"
	"time"

	"github.com/jlaffaye/ftp"

	"github.com/mftflow/mftflow/testkit/ftpd"
)

// The server takes a TLS login, stores and serves a file, in both TLS
// modes, and refuses a client that does not trust its CA.
func TestServer(t *testing.T) {
	for _, implicit := range []bool{false, true} {
		srv := ftpd.Start(t, ftpd.Options{Implicit: implicit})
		tc := &tls.Config{RootCAs: srv.CAPool, ServerName: srv.Host, ClientSessionCache: tls.NewLRUClientSessionCache(4)}
		dial := ftp.DialWithExplicitTLS(tc)
		if implicit {
			dial = ftp.DialWithTLS(tc)
		}
		c, err := ftp.Dial(srv.Addr, dial, ftp.DialWithTimeout(5*time.Second))
		if err != nil {
			t.Fatalf("implicit %v: %v\n%s", implicit, err, srv.Log())
		}
		if err := c.Login(srv.User, srv.Password); err != nil {
			t.Fatal(err)
		}
		if err := c.Stor(srv.Path("a.txt"), bytes.NewReader([]byte("hello"))); err != nil {
			t.Fatal(err)
		}
		if b, ok := srv.ReadFile(t, "a.txt"); !ok || string(b) != "hello" {
			t.Fatalf("stored %q, %v", b, ok)
		}
		r, err := c.Retr(srv.Path("a.txt"))
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(r)
		r.Close()
		if string(b) != "hello" {
			t.Fatalf("read %q", b)
		}
		c.Quit()
		if implicit {
			continue
		}
		c, err = ftp.Dial(srv.Addr, ftp.DialWithExplicitTLS(&tls.Config{ServerName: srv.Host}), ftp.DialWithTimeout(5*time.Second))
		if err == nil {
			err = c.Login(srv.User, srv.Password) // the handshake happens here
		}
		if err == nil {
			t.Fatal("a client without the CA logged in")
		}
	}
}
