package ftps

import (
	"encoding/json"
	"testing"

	"github.com/mftflow/mftflow/testkit/ftpd"
)

// connConfig logs in to srv with its password, trusting its CA.
func connConfig(srv *ftpd.Server, tls string) ConnConfig {
	return ConnConfig{Host: srv.Host, Port: srv.Port, User: srv.User, Password: srv.Password, CAFile: srv.CAFile, TLS: tls, DisableTLS13: true}
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

func jsonUnmarshal(b []byte, v any) error { return json.Unmarshal(b, v) }
