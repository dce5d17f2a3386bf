package ftps

import (
	"encoding/json"
	"fmt"
	"sync/atomic"
	"testing"

	"github.com/mftflow/mftflow/testkit/ftpd"
)

// connConfig logs in to srv with its password, trusting its CA.
func connConfig(srv *ftpd.Server, tls string) ConnConfig {
	return ConnConfig{Host: srv.Host, Port: srv.Port, User: srv.User, Password: srv.Password, CAFile: srv.CAFile, TLS: tls, DisableTLS13: true}
}

var dirSeq atomic.Int64

// freshDir creates an empty directory below srv.Dir and returns its name
// relative to srv.Dir.
func freshDir(t *testing.T, srv *ftpd.Server, prefix string) string {
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

func jsonUnmarshal(b []byte, v any) error { return json.Unmarshal(b, v) }
