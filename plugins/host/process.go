package host

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/cenkalti/backoff/v5"
	plugin "github.com/hashicorp/go-plugin"
	"github.com/mftflow/mftflow/pipeline"
	pb "github.com/mftflow/mftflow/plugins/internal/pluginpb"
	"github.com/mftflow/mftflow/plugins/internal/wire"
	"google.golang.org/grpc"
)

// useShm says whether sinks get parts through shared memory where the
// system has it; tests turn it off to cover the gRPC path.
var useShm = true

// StartTimeout bounds how long a plugin may take to answer the handshake.
var StartTimeout = 15 * time.Second

// started is one running plugin process.
type started struct {
	client *plugin.Client
	conn   *grpc.ClientConn
	stderr *lineLogger
}

// start runs the plugin at path and connects to it. pin, when set, is the
// sha256 the binary must have.
func start(path string, pin []byte, shm *arena, log *slog.Logger) (*started, error) {
	name := filepath.Base(path)
	stderr := &lineLogger{}
	cmd := exec.Command(path)
	dieWithParent(cmd)
	if shm != nil {
		cmd.ExtraFiles = []*os.File{shm.file} // descriptor 3 in the plugin
		cmd.Env = []string{wire.ShmEnv + "=3"}
	}
	cfg := &plugin.ClientConfig{
		HandshakeConfig:  wire.Handshake,
		VersionedPlugins: map[int]plugin.PluginSet{wire.ProtocolVersion: {wire.PluginName: &wire.GRPCPlugin{}}},
		Cmd:              cmd,
		AllowedProtocols: []plugin.Protocol{plugin.ProtocolGRPC},
		AutoMTLS:         true,
		Managed:          true,
		StartTimeout:     StartTimeout,
		Logger:           hclogger(log, name),
		Stderr:           stderr,
		SyncStdout:       &lineLogger{log: log.With("plugin", name, "stream", "stdout"), level: slog.LevelInfo},
		SyncStderr:       &lineLogger{log: log.With("plugin", name, "stream", "stderr"), level: slog.LevelInfo},
		GRPCDialOptions: []grpc.DialOption{
			grpc.WithDefaultCallOptions(grpc.MaxCallRecvMsgSize(wire.MaxMessageSize), grpc.MaxCallSendMsgSize(wire.MaxMessageSize)),
			grpc.WithInitialWindowSize(wire.StreamWindow), grpc.WithInitialConnWindowSize(wire.ConnWindow),
			grpc.WithReadBufferSize(wire.SocketBuffer), grpc.WithWriteBufferSize(wire.SocketBuffer),
		},
	}
	if pin != nil {
		cfg.SecureConfig = &plugin.SecureConfig{Checksum: pin, Hash: sha256.New()}
	}
	client := plugin.NewClient(cfg)
	rpc, err := client.Client()
	if err == nil {
		var raw any
		if raw, err = rpc.Dispense(wire.PluginName); err == nil {
			return &started{client: client, conn: raw.(*grpc.ClientConn), stderr: stderr}, nil
		}
	}
	client.Kill()
	return nil, startError(path, err, stderr)
}

// startError explains why the plugin at path did not start.
func startError(path string, err error, stderr *lineLogger) error {
	msg := err.Error()
	switch {
	case errors.Is(err, plugin.ErrChecksumsDoNotMatch):
		return fmt.Errorf("plugin %s: the binary's sha256 does not match plugin_sha256 in the flow: rebuild or reinstall the plugin, or update the pin", path)
	case errors.Is(err, plugin.ErrProcessNotFound):
		return fmt.Errorf("plugin %s: %v", path, err)
	case strings.Contains(msg, "exec format error"), strings.Contains(msg, "permission denied"):
		return fmt.Errorf("plugin %s: cannot be executed (%v): plugins must be executables built with plugins/sdk", path, err)
	case strings.Contains(strings.ToLower(msg), "incompatible api version"), strings.Contains(msg, "Incompatible core API version"):
		return fmt.Errorf("plugin %s: speaks another version of the plugin protocol than this runner (%d): rebuild it with this version's plugins/sdk (%s)", path, wire.ProtocolVersion, firstLine(msg))
	case strings.Contains(msg, "Unrecognized remote plugin message") && unrecognized(msg) != "":
		return fmt.Errorf("plugin %s: not a mftflow plugin: the handshake failed (it printed %q); plugins must be built with plugins/sdk", path, unrecognized(msg))
	case strings.Contains(msg, "Unrecognized remote plugin message"), strings.Contains(msg, "exited before we could connect"):
		// It printed nothing to stdout: it died before the handshake.
		if tail := stderr.lastLines(); tail != "" {
			return fmt.Errorf("plugin %s: exited at start; its last output:\n%s", path, tail)
		}
		return fmt.Errorf("plugin %s: exited at start without output", path)
	case strings.Contains(msg, "timeout while waiting for plugin to start"):
		return fmt.Errorf("plugin %s: did not complete the handshake within %s: plugins must be built with plugins/sdk", path, StartTimeout)
	}
	return fmt.Errorf("plugin %s: %v", path, err)
}

func firstLine(s string) string {
	s, _, _ = strings.Cut(s, "\n")
	return s
}

// unrecognized extracts what a non-plugin printed from go-plugin's error.
func unrecognized(msg string) string {
	_, after, _ := strings.Cut(firstLine(msg), "Unrecognized remote plugin message: ")
	return after
}

// process is the plugin process behind one connector instance. It is
// started again, with backoff, after it dies; each start is a new
// generation, and what a dead generation handed out (items, uploads) is gone.
type process struct {
	path   string
	pin    []byte
	log    *slog.Logger
	kind   pipeline.Kind
	name   string
	config map[string]*pb.Value
	// shm is shared with every process started for this connector; nil
	// where shared memory is not available.
	shm *arena

	mu      sync.Mutex
	cur     *started
	gen     uint64
	upSince time.Time
	// restarts paces the starts after failures: nil until the first,
	// and again once a process ran stableAfter.
	restarts *backoff.ExponentialBackOff
	wait     time.Duration // before the next start
	closed   bool
}

const (
	minBackoff = 100 * time.Millisecond
	maxBackoff = 10 * time.Second
	// stableAfter resets the backoff: a process that ran this long before
	// dying did not die of its start.
	stableAfter = 30 * time.Second
)

// errClosed is returned by calls after the connector was closed.
var errClosed = errors.New("plugin connector is closed")

// conn returns a connection to a configured process, starting one if there
// is none, and its generation.
func (p *process) conn(ctx context.Context) (*grpc.ClientConn, uint64, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return nil, 0, errClosed
	}
	if p.cur != nil && !p.cur.client.Exited() {
		return p.cur.conn, p.gen, nil
	}
	if p.cur != nil {
		p.died()
	}
	if p.wait > 0 {
		t := time.NewTimer(p.wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil, 0, ctx.Err()
		case <-t.C:
		}
	}
	if p.shm == nil && p.kind == pipeline.KindSink && useShm {
		var aerr error
		if p.shm, aerr = newArena(); aerr != nil {
			p.log.Debug("parts go to the plugin through gRPC", "plugin", p.path, "err", aerr)
		}
	}
	s, err := start(p.path, p.pin, p.shm, p.log)
	if err == nil {
		_, err = pb.NewPluginClient(s.conn).Configure(ctx, &pb.ConfigureRequest{Kind: string(p.kind), Name: p.name, Config: p.config})
		if err != nil {
			s.client.Kill()
			err = fmt.Errorf("plugin %s: %s %q: %w", p.path, p.kind, p.name, wire.ErrorFromStatus(err))
		}
	}
	if err != nil {
		p.failed()
		return nil, 0, err
	}
	p.cur, p.upSince = s, time.Now()
	p.gen++
	return s.conn, p.gen, nil
}

// died forgets the current process, which has exited. Called with mu held.
func (p *process) died() {
	if time.Since(p.upSince) > stableAfter {
		p.restarts = nil
	}
	p.failed()
	p.log.Warn("plugin process exited; it is started again on the next call",
		"plugin", p.path, "connector", p.name, "output", p.cur.stderr.lastLines())
	p.cur.client.Kill()
	p.cur = nil
}

// failed sets the wait before the next start after a failed start or a
// death: minBackoff, doubling up to maxBackoff, without jitter. Called
// with mu held.
func (p *process) failed() {
	if p.restarts == nil {
		p.restarts = &backoff.ExponentialBackOff{InitialInterval: minBackoff, Multiplier: 2, MaxInterval: maxBackoff}
	}
	p.wait = p.restarts.NextBackOff()
}

// current reports whether gen is still the running generation.
func (p *process) current(gen uint64) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.cur != nil && p.gen == gen && !p.cur.client.Exited()
}

// callError turns the error of a call made in generation gen into what the
// engine should see: the caller's own cancellation as such; a dead process
// as a retryable error saying so; anything else as the plugin meant it.
func (p *process) callError(ctx context.Context, gen uint64, err error) error {
	if err == nil {
		return nil
	}
	if ctx.Err() != nil {
		return ctx.Err()
	}
	if !p.current(gen) {
		return fmt.Errorf("plugin %s (%s %q) exited during the call; it is started again and the work resumes: %w", p.path, p.kind, p.name, errProcessGone)
	}
	return wire.ErrorFromStatus(err)
}

// errProcessGone marks calls lost to a process that exited. It is retryable.
var errProcessGone = errors.New("plugin process exited")

// stale returns the error for using something a dead generation handed out.
func (p *process) stale(what string) error {
	return fmt.Errorf("plugin %s (%s %q) was restarted since this %s was opened; it resumes from its saved state: %w", p.path, p.kind, p.name, what, errProcessGone)
}

// close asks the process to release the connector, then stops it.
func (p *process) close() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return nil
	}
	p.closed = true
	if p.shm != nil {
		defer p.shm.close() // after the process is gone
	}
	if p.cur == nil {
		return nil
	}
	var err error
	if !p.cur.client.Exited() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		_, err = pb.NewPluginClient(p.cur.conn).Close(ctx, &pb.CloseRequest{})
		cancel()
		err = wire.ErrorFromStatus(err)
	}
	p.cur.client.Kill()
	p.cur = nil
	if err != nil {
		return fmt.Errorf("plugin %s: closing %s %q: %w", p.path, p.kind, p.name, err)
	}
	return nil
}

// Shutdown kills every plugin process still running. Call it before the
// runner exits (deferred in main), after connectors were closed.
func Shutdown() { plugin.CleanupClients() }
