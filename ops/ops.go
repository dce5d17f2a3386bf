package ops

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/mftflow/mftflow/internal/discard"
	"github.com/mftflow/mftflow/pipeline/bus"
	"github.com/mftflow/mftflow/pipeline/engine"
)

// Flow names a flow whose bus /readyz checks.
type Flow struct {
	Name string
	// Sinks whose task consumers must exist; none checks no consumer.
	Sinks []string
}

// Options configure the operations handler.
type Options struct {
	// Conn is the connection the runner works over; required.
	Conn *nats.Conn
	// Flows the runner runs. /readyz reports not ready until each one's
	// streams, consumers and KV bucket exist.
	Flows []Flow
	// Gatherer serves /metrics; nil means prometheus.DefaultGatherer.
	Gatherer prometheus.Gatherer
	// Timeout bounds the NATS calls of one /readyz probe; default 5s.
	// /status reads may take up to a minute.
	Timeout time.Duration
	Logger  *slog.Logger
	// Problems, if set, gives further reasons for /readyz to report not
	// ready, one line each, such as engine.Run.Problems (a bus store that
	// refuses writes for want of room). It is called on every probe and
	// must not block.
	Problems func() []string
	// Console, if set, is served under ConsolePath (package console), and
	// "/" leads there.
	Console http.Handler
}

// ConsolePath is where Options.Console is served.
const ConsolePath = "/console"

// statusTimeout bounds a /status read, as it does "runner status".
const statusTimeout = time.Minute

type handler struct {
	o  Options
	js jetstream.JetStream
}

// NewHandler returns the handler of /healthz, /readyz, /metrics and /status.
// It is safe for concurrent use.
func NewHandler(o Options) (http.Handler, error) {
	if o.Conn == nil {
		return nil, errors.New("ops: Options.Conn is nil: the handler needs the runner's NATS connection")
	}
	js, err := jetstream.New(o.Conn)
	if err != nil {
		return nil, fmt.Errorf("ops: %w", err)
	}
	if o.Gatherer == nil {
		o.Gatherer = prometheus.DefaultGatherer
	}
	if o.Timeout <= 0 {
		o.Timeout = 5 * time.Second
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	h := &handler{o: o, js: js}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		h.text(w, http.StatusOK, "ok\n")
	})
	mux.HandleFunc("GET /readyz", h.readyz)
	mux.HandleFunc("GET /status", h.status)
	mux.Handle("GET /metrics", promhttp.HandlerFor(o.Gatherer, promhttp.HandlerOpts{
		ErrorLog: slog.NewLogLogger(o.Logger.Handler(), slog.LevelWarn),
		// A collector that fails leaves its series out; the others are served.
		ErrorHandling: promhttp.ContinueOnError,
	}))
	if o.Console != nil {
		mux.Handle(ConsolePath+"/", o.Console)
		mux.Handle(ConsolePath, o.Console)
		mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, r *http.Request) {
			http.Redirect(w, r, ConsolePath+"/", http.StatusFound)
		})
	}
	return mux, nil
}

// text answers with a plain-text body. The status is out before the body,
// so a failed write (mostly a caller that went away) can only be logged.
func (h *handler) text(w http.ResponseWriter, code int, body string) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(code)
	if _, err := fmt.Fprint(w, body); err != nil {
		h.o.Logger.Debug("ops: writing an answer", "err", err)
	}
}

func (h *handler) readyz(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), h.o.Timeout)
	defer cancel()
	problems := h.check(ctx)
	if len(problems) == 0 {
		h.text(w, http.StatusOK, "ok\n")
		return
	}
	h.text(w, http.StatusServiceUnavailable, "not ready\n- "+strings.Join(problems, "\n- ")+"\n")
}

// check returns why the runner is not ready, one reason each.
func (h *handler) check(ctx context.Context) []string {
	var extra []string
	if h.o.Problems != nil {
		extra = h.o.Problems()
	}
	if st := h.o.Conn.Status(); st != nats.CONNECTED {
		return append([]string{fmt.Sprintf("NATS: not connected (%s)", st)}, extra...)
	}
	if _, err := h.js.AccountInfo(ctx); err != nil {
		return append([]string{fmt.Sprintf("JetStream: %v", err)}, extra...)
	}
	var problems []string
	for _, f := range h.o.Flows {
		n := bus.Names{Flow: f.Name}
		missing := func(what string, err error) {
			problems = append(problems, fmt.Sprintf("flow %s: %s: %v", f.Name, what, err))
		}
		if _, err := h.js.Stream(ctx, n.ChunkStream()); errors.Is(err, jetstream.ErrStreamNotFound) {
			missing("stream "+n.ChunkStream(), errNotYet)
		} else if err != nil {
			missing("stream "+n.ChunkStream(), err)
		}
		tasks, err := h.js.Stream(ctx, n.TaskStream())
		if errors.Is(err, jetstream.ErrStreamNotFound) {
			missing("stream "+n.TaskStream(), errNotYet)
		} else if err != nil {
			missing("stream "+n.TaskStream(), err)
		} else {
			for _, s := range f.Sinks {
				if _, err := tasks.Consumer(ctx, n.Consumer(s)); errors.Is(err, jetstream.ErrConsumerNotFound) {
					missing(fmt.Sprintf("consumer %s of sink %s", n.Consumer(s), s), errNotYet)
				} else if err != nil {
					missing(fmt.Sprintf("consumer %s of sink %s", n.Consumer(s), s), err)
				}
			}
		}
		if _, err := h.js.KeyValue(ctx, n.Bucket()); errors.Is(err, jetstream.ErrBucketNotFound) {
			missing("KV bucket "+n.Bucket(), errNotYet)
		} else if err != nil {
			missing("KV bucket "+n.Bucket(), err)
		}
	}
	return append(problems, extra...)
}

var errNotYet = errors.New("does not exist yet")

func (h *handler) status(w http.ResponseWriter, r *http.Request) {
	var flows []string
	for _, v := range r.URL.Query()["flow"] {
		for _, f := range strings.Split(v, ",") {
			if f = strings.TrimSpace(f); f != "" {
				flows = append(flows, f)
			}
		}
	}
	if st := h.o.Conn.Status(); st != nats.CONNECTED {
		h.text(w, http.StatusServiceUnavailable, fmt.Sprintf("reading status: NATS is not connected (%s)\n", st))
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), statusTimeout)
	defer cancel()
	for _, f := range flows {
		_, err := h.js.KeyValue(ctx, bus.Names{Flow: f}.Bucket())
		if errors.Is(err, jetstream.ErrBucketNotFound) || errors.Is(err, jetstream.ErrInvalidBucketName) {
			h.text(w, http.StatusNotFound, fmt.Sprintf("no state for flow %q on this server\n", f))
			return
		}
		if err != nil {
			h.o.Logger.Warn("ops: reading status", "flow", f, "err", err)
			h.text(w, http.StatusInternalServerError, fmt.Sprintf("reading the state of flow %q: %v\n", f, err))
			return
		}
	}
	st, err := engine.ReadStatus(ctx, h.js, flows...)
	if err != nil {
		h.o.Logger.Warn("ops: reading status", "err", err)
		h.text(w, http.StatusInternalServerError, fmt.Sprintf("reading status: %v\n", err))
		return
	}
	if st == nil {
		st = []engine.FlowStatus{}
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	if err := enc.Encode(st); err != nil {
		h.o.Logger.Debug("ops: writing status", "err", err) // the status 200 is out
	}
}

// Server serves a handler on its own TCP address.
type Server struct {
	srv  *http.Server
	ln   net.Listener
	done chan struct{}
}

// Listen listens on addr (host:port; port 0 takes a free one) and serves h
// until Shutdown. It returns once the address is bound, so an address in use
// is reported here.
func Listen(addr string, h http.Handler, log *slog.Logger) (*Server, error) {
	return ListenTLS(addr, h, nil, log)
}

// ListenTLS is Listen serving HTTPS with cfg; a nil cfg serves plain HTTP.
// LoadTLS makes cfg from certificate and key files.
func ListenTLS(addr string, h http.Handler, cfg *tls.Config, log *slog.Logger) (*Server, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("operations endpoints: %w", err)
	}
	if cfg != nil {
		ln = tls.NewListener(ln, cfg)
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	s := &Server{
		srv: &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second,
			ErrorLog: slog.NewLogLogger(log.Handler(), slog.LevelWarn)},
		ln:   ln,
		done: make(chan struct{}),
	}
	go func() {
		defer close(s.done)
		if err := s.srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Error("operations endpoints stopped", "err", err)
		}
	}()
	return s, nil
}

// LoadTLS reads a PEM certificate (chain) and key for ListenTLS. TLS 1.2 is
// the least it accepts.
func LoadTLS(certFile, keyFile string) (*tls.Config, error) {
	cert, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		return nil, fmt.Errorf("loading the HTTPS certificate %s and key %s: %w", certFile, keyFile, err)
	}
	return &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}, nil
}

// Addr is the address the server listens on, such as 127.0.0.1:9090.
func (s *Server) Addr() string { return s.ln.Addr().String() }

// Shutdown stops taking requests and waits, until ctx ends, for those under
// way; then it closes what is left.
func (s *Server) Shutdown(ctx context.Context) error {
	err := s.srv.Shutdown(ctx)
	if err != nil {
		discard.Close(s.srv) // err says already why requests were cut
	}
	<-s.done
	return err
}
