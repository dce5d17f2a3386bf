package sftp

import (
	"net"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"

	"golang.org/x/crypto/ssh/knownhosts"

	"github.com/mftflow/mftflow/testkit/sshd"
)

// proxy forwards TCP connections to a server and can cut them, or freeze
// them (drop everything, as a network that lost its route does), to show
// how the connector lives through a connection that dies.
type proxy struct {
	l      net.Listener
	target string
	port   int

	mu    sync.Mutex
	pairs []*pair
}

type pair struct {
	a, b   net.Conn
	frozen atomic.Bool
}

func startProxy(t *testing.T, target string) *proxy {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &proxy{l: l, target: target, port: l.Addr().(*net.TCPAddr).Port}
	var wg sync.WaitGroup
	t.Cleanup(func() {
		l.Close()
		p.cut()
		wg.Wait()
	})
	wg.Go(func() {
		for {
			a, err := l.Accept()
			if err != nil {
				return
			}
			b, err := net.Dial("tcp", target)
			if err != nil {
				a.Close()
				continue
			}
			pr := &pair{a: a, b: b}
			p.mu.Lock()
			p.pairs = append(p.pairs, pr)
			p.mu.Unlock()
			wg.Go(func() { pr.pipe(a, b) })
			wg.Go(func() { pr.pipe(b, a) })
		}
	})
	return p
}

func (pr *pair) pipe(dst, src net.Conn) {
	buf := make([]byte, 32<<10)
	for {
		n, err := src.Read(buf)
		if n > 0 && !pr.frozen.Load() {
			if _, werr := dst.Write(buf[:n]); werr != nil {
				break
			}
		}
		if err != nil {
			break
		}
	}
	dst.Close()
	src.Close()
}

// cut closes every connection made so far.
func (p *proxy) cut() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, pr := range p.pairs {
		pr.a.Close()
		pr.b.Close()
	}
	p.pairs = nil
}

// freeze makes every connection made so far drop what it carries, while
// staying open. Later connections work.
func (p *proxy) freeze() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, pr := range p.pairs {
		pr.frozen.Store(true)
	}
}

// connConfig reaches srv through the proxy, trusting srv's host key there.
func (p *proxy) connConfig(t *testing.T, srv *sshd.Server) ConnConfig {
	c := connConfig(srv)
	c.Port = p.port
	kh := filepath.Join(t.TempDir(), "known_hosts")
	line := knownhosts.Line([]string{knownhosts.Normalize(net.JoinHostPort("127.0.0.1", strconv.Itoa(p.port)))}, srv.HostKey)
	if err := os.WriteFile(kh, []byte(line+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	c.KnownHosts = kh
	return c
}
