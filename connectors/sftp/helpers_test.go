package sftp

import (
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
