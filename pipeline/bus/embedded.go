package bus

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/nats-io/nats-server/v2/server"
)

// EmbeddedMaxPayload is the max_payload of the embedded server: room for a
// 1 MiB chunk plus headers, and for operators who raise chunk_size.
const EmbeddedMaxPayload = 8 << 20

// Embedded is a nats-server with JetStream running inside this process.
type Embedded struct {
	srv *server.Server
	dir string
}

// StartEmbedded starts a nats-server with JetStream, its file store under
// dir/jetstream, listening on 127.0.0.1 on a free port. The caller must call
// Shutdown. Two processes must not share dir at the same time; the runner
// takes a lock file to prevent it.
func StartEmbedded(dir string) (*Embedded, error) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, fmt.Errorf("embedded nats: data directory %q: %w", dir, err)
	}
	if err := os.MkdirAll(abs, 0o755); err != nil {
		return nil, fmt.Errorf("embedded nats: creating data directory: %w", err)
	}
	opts := &server.Options{
		ServerName:         "mftflow-embedded",
		Host:               "127.0.0.1",
		Port:               server.RANDOM_PORT,
		JetStream:          true,
		StoreDir:           filepath.Join(abs, "jetstream"),
		JetStreamMaxMemory: 64 << 20,
		MaxPayload:         EmbeddedMaxPayload,
		MaxPending:         64 << 20,
		NoSigs:             true,
		NoLog:              true,
		// The runner only connects over loopback; no HTTP monitor, no cluster.
		HTTPPort: 0,
	}
	srv, err := server.NewServer(opts)
	if err != nil {
		return nil, fmt.Errorf("embedded nats: %w", err)
	}
	srv.Start()
	if !srv.ReadyForConnections(30 * time.Second) {
		srv.Shutdown()
		return nil, errors.New("embedded nats: server did not become ready within 30s")
	}
	return &Embedded{srv: srv, dir: abs}, nil
}

// URL is the client URL, nats://127.0.0.1:PORT.
func (e *Embedded) URL() string { return e.srv.ClientURL() }

// Shutdown stops the server and waits for it to finish flushing its store.
func (e *Embedded) Shutdown() {
	e.srv.Shutdown()
	e.srv.WaitForShutdown()
}
