package sftp

import (
	"fmt"
	"sync/atomic"
	"testing"

	"github.com/mftflow/mftflow/testkit/sshd"
)

// connConfig logs in to srv with its client key, checking its host key.
func connConfig(srv *sshd.Server) ConnConfig {
	return ConnConfig{
		Host:       srv.Host,
		Port:       srv.Port,
		User:       srv.User,
		PrivateKey: srv.ClientKey,
		KnownHosts: srv.KnownHostsFile,
	}
}

var dirSeq atomic.Int64

// freshDir creates an empty directory below srv.Dir and returns its name
// relative to srv.Dir.
func freshDir(t *testing.T, srv *sshd.Server, prefix string) string {
	name := fmt.Sprintf("%s-%d", prefix, dirSeq.Add(1))
	srv.Mkdir(t, name)
	return name
}

func newTestSink(t *testing.T, c SinkConfig) *Sink {
	t.Helper()
	s, err := NewSink(c)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func newTestSource(t *testing.T, c SourceConfig) *Source {
	t.Helper()
	s, err := NewSource(t.Context(), c)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}
