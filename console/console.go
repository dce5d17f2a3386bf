package console

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/mftflow/mftflow/pipeline/engine"
)

// Options configure a Console.
type Options struct {
	// JS reaches the flows' state; required.
	JS jetstream.JetStream
	// Access says who may log in. Nil requires NoAuth.
	Access *Access
	// NoAuth serves the console without logging in, every visitor an
	// operator named "anonymous", and only to visitors on the loopback
	// interface (others get 403). It must be asked for explicitly.
	NoAuth bool
	// Secure marks the session cookie HTTPS-only: set it when the console
	// is served over TLS.
	Secure bool
	// Prefix is the path the console is mounted at; default "/console".
	Prefix string
	// Stats, if set, returns the counters of the runs in this process
	// (engine.Run.Stats), sampled every second for live bytes and rates;
	// nil for a console that only reads the bus (runner console).
	Stats func() []engine.Stats
	// RunID is this process's engine run id (engine.Options.RunID), to
	// mark it among a flow's runners; empty when it runs none.
	RunID string
	// UpdateInterval is the least time between two updates that one event
	// stream sends (a change after a quiet spell goes out at once); default
	// 500ms.
	UpdateInterval time.Duration
	// SessionTTL is how long a login lasts; default 12h.
	SessionTTL time.Duration
	Logger     *slog.Logger
	// Now is the clock; default time.Now.
	Now func() time.Time
}

// Console serves the operator console. It is an http.Handler, safe for
// concurrent use; Close stops following the flows.
type Console struct {
	o         Options
	base      string
	sessions  *sessions
	state     *state
	live      *live
	pages     *pages
	mux       *http.ServeMux
	stop      context.CancelFunc
	closing   chan struct{} // closed by Close: event streams end
	closeOnce sync.Once
	done      chan struct{}
}

// ErrNoAccess is returned by New for a console without access control that
// was not asked to go without (Options.NoAuth).
var ErrNoAccess = errors.New("console: no access file: give users and tokens (Options.Access), or ask for no login (Options.NoAuth, loopback only)")

// New starts following every flow's state on o.JS and returns the console.
func New(o Options) (*Console, error) {
	if o.JS == nil {
		return nil, errors.New("console: Options.JS is nil: the console reads the flows' state over JetStream")
	}
	if o.Access == nil && !o.NoAuth {
		return nil, ErrNoAccess
	}
	if o.Access != nil {
		if err := o.Access.Check(); err != nil {
			return nil, fmt.Errorf("console: %w", err)
		}
	}
	if o.Prefix == "" {
		o.Prefix = "/console"
	}
	o.Prefix = "/" + strings.Trim(o.Prefix, "/")
	if o.UpdateInterval <= 0 {
		o.UpdateInterval = 500 * time.Millisecond
	}
	if o.SessionTTL <= 0 {
		o.SessionTTL = 12 * time.Hour
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	s, err := newSessions(o.SessionTTL, o.Secure, o.Prefix+"/", o.Now)
	if err != nil {
		return nil, fmt.Errorf("console: making the session key: %w", err)
	}
	pg, err := parsePages()
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(context.Background())
	c := &Console{o: o, base: o.Prefix, sessions: s, state: newState(ctx, o.JS, o.Logger, o.Now),
		live: newLive(o.Stats, time.Second, o.Now), pages: pg, stop: cancel, closing: make(chan struct{}), done: make(chan struct{})}
	c.routes()
	go func() {
		defer close(c.done)
		go c.live.run(ctx)
		c.state.run(ctx)
	}()
	return c, nil
}

// Close stops following the flows and ends the event streams still open,
// so that a server's Shutdown need not wait for them. It may be called
// more than once.
func (c *Console) Close() error {
	c.closeOnce.Do(func() { close(c.closing) })
	c.stop()
	<-c.done
	return nil
}

// Prefix is the path the console is mounted at, such as "/console".
func (c *Console) Prefix() string { return c.base }

func (c *Console) routes() {
	m := http.NewServeMux()
	p := c.base
	m.Handle("GET "+p+"/assets/", http.StripPrefix(p+"/assets/", assetHandler()))
	m.HandleFunc("GET "+p+"/login", c.loginPage)
	m.HandleFunc("POST "+p+"/login", c.login)
	m.Handle("POST "+p+"/logout", c.action(c.logout, false))
	m.Handle("GET "+p+"/{$}", c.page(c.overview))
	m.Handle("GET "+p+"/flows/{flow}", c.page(c.flowPage))
	m.Handle("GET "+p+"/flows/{flow}/failures", c.page(c.failuresPage))
	m.Handle("GET "+p+"/flows/{flow}/files/{id}", c.page(c.filePage))
	m.Handle("GET "+p+"/search", c.page(c.searchPage))
	m.Handle("GET "+p+"/events", c.page(c.events))
	m.Handle("POST "+p+"/flows/{flow}/replay", c.action(c.replay, true))
	m.HandleFunc(p, func(w http.ResponseWriter, r *http.Request) { http.Redirect(w, r, p+"/", http.StatusFound) })
	c.mux = m
}

// ServeHTTP serves the console's pages under its prefix.
func (c *Console) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	h.Set("Content-Security-Policy", "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "same-origin")
	h.Set("X-Frame-Options", "DENY")
	if c.o.NoAuth && !loopback(r.RemoteAddr) {
		http.Error(w, "this console runs without login (--console-insecure-no-auth) and answers only on this machine (loopback)", http.StatusForbidden)
		return
	}
	c.mux.ServeHTTP(w, r)
}

// loopback reports whether a remote address is on the loopback interface.
func loopback(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		host = addr
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// who returns the identity of r: its bearer token, its session, or with
// NoAuth an anonymous operator (who gets a session for the CSRF token).
func (c *Console) who(w http.ResponseWriter, r *http.Request) (identity, bool) {
	if t := bearer(r.Header.Get("Authorization")); t != "" && c.o.Access != nil {
		k, ok := c.o.Access.token(t)
		return identity{Name: k.Name, Role: k.Role, Via: "token"}, ok
	}
	if id, ok := c.sessions.read(r); ok {
		return id, true
	}
	if c.o.NoAuth && w != nil {
		return c.sessions.issue(w, identity{Name: "anonymous", Role: RoleOperator, Via: "open"}), true
	}
	return identity{}, false
}

type pageFunc func(w http.ResponseWriter, r *http.Request, id identity)

// page lets in those with a session or token; others go to the login page
// (or get 401 when they are not a browser asking for a page).
func (c *Console) page(fn pageFunc) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id, ok := c.who(w, r)
		if !ok {
			if r.Header.Get("Authorization") != "" || !strings.Contains(r.Header.Get("Accept"), "text/html") {
				w.Header().Set("WWW-Authenticate", `Bearer realm="mftflow console"`)
				http.Error(w, "log in first: a session cookie from "+c.base+"/login, or Authorization: Bearer TOKEN", http.StatusUnauthorized)
				return
			}
			http.Redirect(w, r, c.base+"/login?next="+url.QueryEscape(r.URL.RequestURI()), http.StatusSeeOther)
			return
		}
		w.Header().Set("Cache-Control", "no-store")
		fn(w, r, id)
	})
}

// action is page for a POST: it also wants the session's CSRF token and,
// with operatorOnly, the operator role.
func (c *Console) action(fn pageFunc, operatorOnly bool) http.Handler {
	cop := http.NewCrossOriginProtection()
	return cop.Handler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id, ok := c.who(nil, r)
		switch {
		case !ok:
			http.Error(w, "log in first: a session cookie from "+c.base+"/login, or Authorization: Bearer TOKEN", http.StatusUnauthorized)
		case !c.sessions.csrfOK(r, id):
			c.o.Logger.Warn("console: a request without its CSRF token was refused", "path", r.URL.Path, "user", id.Name, "remote", r.RemoteAddr)
			http.Error(w, "refused: the request does not carry this session's CSRF token (reload the page and try again)", http.StatusForbidden)
		case operatorOnly && !id.operator():
			c.o.Logger.Warn("console: an action needing the operator role was refused", "path", r.URL.Path, "user", id.Name, "role", id.Role)
			http.Error(w, fmt.Sprintf("refused: %s is a %s; only operators may do this", id.Name, id.Role), http.StatusForbidden)
		default:
			w.Header().Set("Cache-Control", "no-store")
			fn(w, r, id)
		}
	}))
}
