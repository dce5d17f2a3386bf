package testkit

import (
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/mftflow/mftflow/pipeline/bus"
)

// StartNATS starts an embedded nats-server with JetStream for the test, its
// store in a temporary directory, listening on 127.0.0.1, and returns its
// client URL. The server shuts down when the test ends.
func StartNATS(t testing.TB) (url string) {
	t.Helper()
	e, err := bus.StartEmbedded(t.TempDir())
	if err != nil {
		t.Fatalf("starting nats: %v", err)
	}
	// Registered after TempDir's cleanup, so it runs first: the server
	// stops before its store is removed.
	t.Cleanup(e.Shutdown)
	return e.URL()
}

// ConnectNATS connects to the server at url for the test. When the test ends
// the connection is drained (pending messages flushed, subscriptions
// finished) and closed.
func ConnectNATS(t testing.TB, url string) *nats.Conn {
	t.Helper()
	closed := make(chan struct{})
	var once sync.Once
	nc, err := nats.Connect(url,
		nats.Name("testkit "+t.Name()),
		nats.ClosedHandler(func(*nats.Conn) { once.Do(func() { close(closed) }) }),
	)
	if err != nil {
		t.Fatalf("connecting to nats at %s: %v", url, err)
	}
	t.Cleanup(func() {
		if err := nc.Drain(); err != nil {
			nc.Close()
		}
		select {
		case <-closed:
		case <-time.After(5 * time.Second):
			nc.Close()
		}
	})
	return nc
}
