package sftp

import (
	"strings"
	"testing"
	"time"

	"github.com/mftflow/mftflow/pipeline"
	"github.com/mftflow/mftflow/testkit/sshd"
)

// TestKeepAliveReachesServer checks in the server's own log that an idle
// connection sends keepalive@openssh.com requests, and that the connection
// keeps working.
func TestKeepAliveReachesServer(t *testing.T) {
	srv := sshd.Start(t)
	dir := srv.FreshDir(t, "keepalive")
	c := connConfig(srv)
	c.KeepAlive = 20 * time.Millisecond
	s := newTestSink(t, SinkConfig{ConnConfig: c, Directory: srv.Path(dir)})
	answered := make(chan struct{}, 100)
	s.conn.onKeepAlive = func() {
		select {
		case answered <- struct{}{}:
		default:
		}
	}
	f := pipeline.File{ID: "ka", Key: "ka", Name: "before.txt", Size: 1}
	if _, err := s.Open(t.Context(), f, nil); err != nil {
		t.Fatal(err)
	}
	for range 3 {
		select {
		case <-answered:
		case <-time.After(30 * time.Second):
			t.Fatal("no keep-alive was answered within 30s")
		}
	}
	const want = "rtype keepalive@openssh.com want_reply 1"
	if log := srv.Log(); !strings.Contains(log, want) {
		t.Fatalf("the server's log does not show %q after three answered keep-alives:\n%s", want, log)
	}
}
