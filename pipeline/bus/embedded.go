package bus

import (
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"time"

	"github.com/nats-io/nats-server/v2/server"
)

// EmbeddedMaxPayload is the max_payload of the embedded server: room for a
// 1 MiB chunk plus headers, and for operators who raise chunk_size.
const EmbeddedMaxPayload = 8 << 20

// DefaultSyncInterval is how often nats-server flushes its JetStream store
// to stable storage unless told otherwise.
const DefaultSyncInterval = 2 * time.Minute

// Sync is when the embedded server flushes its JetStream store (chunks,
// manifests, delivery records, task queues) to stable storage. Every write
// reaches the operating system at once, so a killed process loses nothing;
// what is not flushed yet is lost only when the machine loses power or
// crashes.
type Sync struct {
	// Always flushes every write before it is acknowledged: a power cut
	// loses nothing acknowledged, at the cost of an fsync per write.
	Always bool
	// Interval flushes in the background this often when Always is false;
	// 0 means DefaultSyncInterval. A power cut may lose up to this much of
	// the store's latest writes.
	Interval time.Duration
}

// String returns "always" or the interval, as the runner's --bus-sync takes
// them.
func (s Sync) String() string {
	if s.Always {
		return "always"
	}
	if s.Interval == 0 {
		return DefaultSyncInterval.String()
	}
	return s.Interval.String()
}

// EmbeddedOption tunes StartEmbedded.
type EmbeddedOption func(*server.Options)

// WithSync sets when the server flushes its store; see Sync. Without it, the
// server flushes every DefaultSyncInterval.
func WithSync(s Sync) EmbeddedOption {
	return func(o *server.Options) {
		o.SyncAlways = s.Always
		o.SyncInterval = s.Interval
		if o.SyncInterval <= 0 {
			o.SyncInterval = DefaultSyncInterval
		}
	}
}

// Embedded is a nats-server with JetStream running inside this process.
type Embedded struct {
	srv *server.Server
	dir string
}

// StartEmbedded starts a nats-server with JetStream, its file store under
// dir/jetstream, listening on 127.0.0.1 on a free port. The caller must call
// Shutdown. Two processes must not share dir at the same time; the runner
// takes a lock file to prevent it. opts tune the server (WithSync).
func StartEmbedded(dir string, opts ...EmbeddedOption) (*Embedded, error) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, fmt.Errorf("embedded nats: data directory %q: %w", dir, err)
	}
	if err := os.MkdirAll(abs, 0o755); err != nil {
		return nil, fmt.Errorf("embedded nats: creating data directory: %w", err)
	}
	so := &server.Options{
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
	for _, o := range opts {
		o(so)
	}
	srv, err := server.NewServer(so)
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

// Sync returns when the running server flushes its store, as its JetStream
// configuration says.
func (e *Embedded) Sync() Sync {
	c := e.srv.JetStreamConfig()
	if c == nil {
		return Sync{}
	}
	return Sync{Always: c.SyncAlways, Interval: c.SyncInterval}
}

// URL is the client URL, nats://127.0.0.1:PORT.
func (e *Embedded) URL() string { return e.srv.ClientURL() }

// Shutdown stops the server and waits for it to finish flushing its store.
func (e *Embedded) Shutdown() {
	e.srv.Shutdown()
	e.srv.WaitForShutdown()
}

// InProcessConn connects to the server without a socket, so that messages
// between this process and its server cross no kernel: pass e to
// nats.InProcessServer. Measured on 1 GiB local → local, it saves about a
// fifth of the run's time.
func (e *Embedded) InProcessConn() (net.Conn, error) { return e.srv.InProcessConn() }
