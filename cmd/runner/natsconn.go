package main

import (
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/mftflow/mftflow/internal/discard"
	"github.com/mftflow/mftflow/pipeline"
	"github.com/mftflow/mftflow/pipeline/bus"
)

// Files in the data directory.
const (
	lockFileName = "runner.lock" // flock held by the runner using the directory; holds its pid
	urlFileName  = "nats.url"    // client URL of that runner's embedded server
	storeDirName = "jetstream"   // the embedded server's JetStream store (see bus.StartEmbedded)
)

// natsOptions are the --nats-* flags.
type natsOptions struct {
	url, creds, tlsCA, tlsCert, tlsKey string
}

// check reports flag combinations that cannot work.
func (o natsOptions) check() error {
	if o.url == "" {
		for _, f := range []struct{ flag, value string }{
			{"--nats-creds", o.creds}, {"--nats-tls-ca", o.tlsCA},
			{"--nats-tls-cert", o.tlsCert}, {"--nats-tls-key", o.tlsKey},
		} {
			if f.value != "" {
				return fmt.Errorf("%s needs --nats-url: the embedded server takes no credentials or TLS", f.flag)
			}
		}
		return nil
	}
	for _, u := range strings.Split(o.url, ",") {
		if strings.TrimSpace(u) == "" {
			return fmt.Errorf("--nats-url %q: empty URL in the list", o.url)
		}
	}
	if o.tlsCert != "" && o.tlsKey == "" {
		return errors.New("--nats-tls-cert needs --nats-tls-key")
	}
	if o.tlsKey != "" && o.tlsCert == "" {
		return errors.New("--nats-tls-key needs --nats-tls-cert")
	}
	for _, f := range []struct{ flag, path string }{
		{"--nats-creds", o.creds}, {"--nats-tls-ca", o.tlsCA},
		{"--nats-tls-cert", o.tlsCert}, {"--nats-tls-key", o.tlsKey},
	} {
		if f.path == "" {
			continue
		}
		if _, err := os.Stat(f.path); err != nil {
			return fmt.Errorf("%s: %w", f.flag, err)
		}
	}
	return nil
}

// natsConn is the NATS connection a command works with, and whatever the
// command started or took to provide it.
type natsConn struct {
	nc *nats.Conn
	// where names the server for messages: a URL without credentials, or
	// "the embedded server in DIR".
	where    string
	embedded *bus.Embedded
	lock     *dataLock
	urlFile  string // written by this process; removed by Close
}

// Close closes the connection, stops the embedded server, removes nats.url
// and releases the data directory, as far as this process set them up.
func (c *natsConn) Close() {
	if c.nc != nil {
		c.nc.Close()
	}
	if c.urlFile != "" {
		_ = os.Remove(c.urlFile) // one left behind is stale, and the next runner finds it so (see connectForRun)
	}
	if c.embedded != nil {
		c.embedded.Shutdown()
	}
	if c.lock != nil {
		c.lock.release()
	}
}

// removeURLFile removes nats.url without waiting for anything; it is what a
// forced exit has time for.
func (c *natsConn) removeURLFile() {
	if c != nil && c.urlFile != "" {
		_ = os.Remove(c.urlFile) // as in Close
	}
}

// connectForRun connects to --nats-url, or else takes the data directory,
// starts the embedded server on it (with opts) and publishes its URL in
// nats.url.
func connectForRun(g *globalOptions, opts ...bus.EmbeddedOption) (*natsConn, error) {
	if g.nats.url != "" {
		return dialExternal(g, true)
	}
	lock, err := lockData(g.data, true)
	if err != nil {
		return nil, err
	}
	c := &natsConn{lock: lock, where: "the embedded server in " + g.data}
	if c.embedded, err = bus.StartEmbedded(g.data, opts...); err != nil {
		c.Close()
		return nil, err
	}
	urlFile := filepath.Join(g.data, urlFileName)
	if err := writeFileAtomic(urlFile, c.embedded.URL()+"\n"); err != nil {
		c.Close()
		return nil, fmt.Errorf("publishing the embedded server's address: %w", err)
	}
	c.urlFile = urlFile
	if err = c.dialEmbedded(g, true); err != nil {
		c.Close()
		return nil, fmt.Errorf("connecting to the embedded NATS server: %w", err)
	}
	g.logger.Debug("embedded NATS server started", "url", c.embedded.URL(), "data", g.data)
	return c, nil
}

// dialEmbedded connects to the embedded server inside this process, without
// a socket: the bytes of every chunk cross no kernel on their way.
func (c *natsConn) dialEmbedded(g *globalOptions, forever bool) (err error) {
	opts := append(g.nats.connectOptions(g.logger, forever), nats.InProcessServer(c.embedded))
	c.nc, err = nats.Connect(c.embedded.URL(), opts...)
	return err
}

// errNoState is returned by connectForStatus when there is nothing to read.
type errNoState struct{ data string }

func (e *errNoState) Error() string {
	return fmt.Sprintf("no runner state in %s (start a flow with \"runner run FLOW.yaml\")", e.data)
}

// connectJetStream is connectForStatus with JetStream opened on the
// connection, for the commands that read or change a flow's state; its
// errors are *exitError values. Close the connection when done.
func connectJetStream(g *globalOptions) (*natsConn, jetstream.JetStream, error) {
	c, err := connectForStatus(g)
	if err != nil {
		return nil, nil, &exitError{exitErr, err.Error()}
	}
	js, err := jetstream.New(c.nc)
	if err != nil {
		c.Close()
		return nil, nil, &exitError{exitErr, fmt.Sprintf("opening JetStream on %s: %v", c.where, err)}
	}
	return c, js, nil
}

// connectForStatus connects to --nats-url; else to the server of the runner
// holding the data directory; else starts an embedded server on the data
// directory's store just for reading (holding the lock meanwhile).
func connectForStatus(g *globalOptions) (*natsConn, error) {
	if g.nats.url != "" {
		return dialExternal(g, false)
	}
	if _, err := os.Stat(g.data); errors.Is(err, fs.ErrNotExist) {
		return nil, &errNoState{g.data}
	}
	urlFile := filepath.Join(g.data, urlFileName)
	lock, err := lockData(g.data, false)
	var inUse *inUseError
	if errors.As(err, &inUse) {
		b, rerr := os.ReadFile(urlFile)
		u := strings.TrimSpace(string(b))
		if rerr != nil || u == "" {
			return nil, fmt.Errorf("data directory %s is in use by a runner%s that has not published its NATS address in %s yet; try again in a moment", g.data, inUse.pidNote(), urlFile)
		}
		nc, err := nats.Connect(u, g.nats.connectOptions(g.logger, false)...)
		if err != nil {
			return nil, fmt.Errorf("connecting to the runner%s using %s at %s: %w", inUse.pidNote(), g.data, u, err)
		}
		return &natsConn{nc: nc, where: "the runner" + inUse.pidNote() + " using " + g.data}, nil
	}
	if err != nil {
		return nil, err
	}
	// Nobody holds the directory, so a nats.url left behind is stale.
	_ = os.Remove(urlFile) // else replaced when the server is up
	if _, err := os.Stat(filepath.Join(g.data, storeDirName)); err != nil {
		lock.release()
		return nil, &errNoState{g.data}
	}
	c := &natsConn{lock: lock, where: "the store in " + g.data}
	if c.embedded, err = bus.StartEmbedded(g.data, embeddedOptions(g, nil, nil)...); err != nil {
		c.Close()
		return nil, err
	}
	if err = c.dialEmbedded(g, false); err != nil {
		c.Close()
		return nil, fmt.Errorf("connecting to the embedded NATS server: %w", err)
	}
	return c, nil
}

// dialExternal connects to --nats-url. A runner reconnects for ever; status
// gives up with the default budget.
func dialExternal(g *globalOptions, forever bool) (*natsConn, error) {
	where := redactURLs(g.nats.url)
	nc, err := nats.Connect(g.nats.url, g.nats.connectOptions(g.logger, forever)...)
	if err != nil {
		return nil, fmt.Errorf("connecting to NATS at %s: %w", where, err)
	}
	return &natsConn{nc: nc, where: where}, nil
}

func (o natsOptions) connectOptions(log *slog.Logger, forever bool) []nats.Option {
	opts := []nats.Option{
		nats.Name("mftflow-runner"),
		nats.Timeout(5 * time.Second),
		nats.DisconnectErrHandler(func(_ *nats.Conn, err error) {
			if err != nil {
				log.Warn("NATS connection lost", "err", err)
			}
		}),
		nats.ReconnectHandler(func(nc *nats.Conn) {
			log.Info("NATS connection restored", "url", nc.ConnectedUrlRedacted())
		}),
		nats.ErrorHandler(func(_ *nats.Conn, sub *nats.Subscription, err error) {
			if sub != nil {
				log.Warn("NATS error", "subject", sub.Subject, "err", err)
				return
			}
			log.Warn("NATS error", "err", err)
		}),
	}
	if forever {
		opts = append(opts, nats.MaxReconnects(-1))
	}
	if o.creds != "" {
		opts = append(opts, nats.UserCredentials(o.creds))
	}
	if o.tlsCA != "" {
		opts = append(opts, nats.RootCAs(o.tlsCA))
	}
	if o.tlsCert != "" {
		opts = append(opts, nats.ClientCert(o.tlsCert, o.tlsKey))
	}
	return opts
}

// redactURLs hides passwords and tokens in a comma-separated URL list, as
// pipeline.RedactURLs does.
func redactURLs(list string) string {
	parts := strings.Split(list, ",")
	for i, p := range parts {
		parts[i] = pipeline.RedactURLs(strings.TrimSpace(p))
	}
	return strings.Join(parts, ",")
}

// dataLock is the exclusive flock on DATA/runner.lock. The kernel drops it
// when the process ends, however it ends, so it is never stale.
type dataLock struct{ f *os.File }

// inUseError is returned when another process holds the data directory.
type inUseError struct {
	dir string
	pid int // 0 if unknown
}

func (e *inUseError) pidNote() string {
	if e.pid > 0 {
		return fmt.Sprintf(" (pid %d)", e.pid)
	}
	return ""
}

func (e *inUseError) Error() string {
	return fmt.Sprintf("data directory %s is in use by another runner%s; stop it or use --data", e.dir, e.pidNote())
}

// lockData takes the data directory dir, creating it if create is set.
func lockData(dir string, create bool) (*dataLock, error) {
	if create {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return nil, fmt.Errorf("creating data directory: %w", err)
		}
	}
	path := filepath.Join(dir, lockFileName)
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return nil, fmt.Errorf("locking data directory: %w", err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		defer discard.Close(f)
		if errors.Is(err, syscall.EWOULDBLOCK) {
			b, _ := os.ReadFile(path)
			pid, _ := strconv.Atoi(strings.TrimSpace(string(b)))
			return nil, &inUseError{dir: dir, pid: pid}
		}
		return nil, fmt.Errorf("locking data directory: %s: %w", path, err)
	}
	// The pid is only informative: it lets the next runner say who holds it.
	if err := f.Truncate(0); err == nil {
		_, _ = f.WriteAt([]byte(strconv.Itoa(os.Getpid())+"\n"), 0)
	}
	return &dataLock{f: f}, nil
}

// release drops the lock. The file stays: removing it would let a process
// that opened it just before lock a file nobody else can see.
func (l *dataLock) release() {
	_ = l.f.Truncate(0) // the pid, only informative
	discard.Close(l.f)  // closing releases the lock; nothing was written that matters
}

// writeFileAtomic writes name so that readers see either the old content or
// the whole new one.
func writeFileAtomic(name, content string) error {
	tmp := name + ".tmp"
	if err := os.WriteFile(tmp, []byte(content), 0o644); err != nil {
		return err
	}
	return os.Rename(tmp, name)
}
