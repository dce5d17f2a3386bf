package thrusim

import (
	"bytes"
	crand "crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mftflow/mftflow/connectors/thru"
	"github.com/mftflow/mftflow/internal/discard"
)

// Kinds of calls, for the call log and fault injection.
const (
	KindPickup        = "pickup"
	KindReserve       = "reserve"
	KindChunkZero     = "chunk0"
	KindChunk         = "chunk"
	KindEOF           = "eof"
	KindDropOff       = "dropoff" // a drop-off POST whose part could not be read
	KindFileMetadata  = "metadata"
	KindOutcome       = "outcome"
	KindPreflight     = "preflight"
	KindSimpleUpload  = "simple"
	KindSessionCreate = "session-create"
	KindSessionPatch  = "session-patch"
	KindSessionPut    = "session-put"
	KindSessionGet    = "session-get"
	KindSessionCommit = "session-commit"
	KindSessionAbort  = "session-abort"
	KindUnknown       = "unknown"
)

// Call is one entry of the call log.
type Call struct {
	Seq    int       `json:"seq"`
	Time   time.Time `json:"time"`
	Method string    `json:"method"`
	Path   string    `json:"path"`
	Kind   string    `json:"kind"`
	// Chunk is the chunk number of a drop-off content chunk (from 1) or of
	// an upload session chunk (its sequence number), once the request got
	// that far; 0 otherwise.
	Chunk int `json:"chunk,omitempty"`
	// Status is the answer's HTTP status; 0 when the connection was cut.
	Status int `json:"status"`
	// Fault names the injected fault, if any: "status", "reset", "lost"
	// (the site did the call's work, then cut the connection before its
	// answer), "nth".
	Fault string `json:"fault,omitempty"`
	// Error is the site's error text for non-2xx answers.
	Error string `json:"error,omitempty"`
}

// Delivery is a file that arrived at the site through a drop-off EOF, a
// simple upload or a session Commit.
type Delivery struct {
	Via          string `json:"via"` // "dropoff" or "content"
	Flow         string `json:"flow"`
	FileCode     string `json:"fileCode"`
	EndpointPath string `json:"endpointPath,omitempty"`
	Name         string `json:"name"`
	// Path is the Content API's path attribute ("\\dir\\sub"), if any.
	Path   string    `json:"path,omitempty"`
	Size   int64     `json:"size"`
	SHA256 string    `json:"sha256"`
	Time   time.Time `json:"time"`
	// parts hold the content in the spool directory (see Open).
	parts []blob
}

// Faults injects failures into calls. The zero value injects none.
type Faults struct {
	// FailRate is the fraction (0 to 1) of calls answered with FailStatus
	// (default 503) before they are handled.
	FailRate   float64 `json:"failRate"`
	FailStatus int     `json:"failStatus"`
	// ResetRate is the fraction of calls whose connection is cut half-way
	// through the request body (uploads) or the answer's body (pickup).
	ResetRate float64 `json:"resetRate"`
	// LoseRate is the fraction of calls the site handles in full (it keeps
	// the chunk, assembles the file, commits the session...) and whose
	// answer it then loses: the connection is cut before the response, so
	// the client cannot tell the work was done.
	LoseRate float64 `json:"loseRate"`
	// Latency delays every call.
	Latency Duration `json:"latency"`
	// Kinds limits the faults to these kinds of calls; empty means all.
	Kinds []string `json:"kinds"`
}

type nthFault struct {
	n      int
	status int  // 0: cut the connection
	lose   bool // handle the call, then cut the connection before the answer
}

// Server is a simulated Thru site. It is an http.Handler; Start serves it on
// 127.0.0.1 for a test. It is safe for concurrent use.
type Server struct {
	// URL is the base URL once served by Start, such as "http://127.0.0.1:41234".
	URL string

	cfg      Config
	cipher   thru.HeaderCipher
	flows    map[string]*flow
	bySecret map[string]*flow
	hs       *httptest.Server
	spool    string // where content is kept (see Config.SpoolDir)
	ownSpool bool   // a temporary directory Close removes

	mu         sync.Mutex
	seen       map[string]time.Time // header tokens until they expire
	files      map[string]*fileRec
	dropoffs   map[string]*dropoff
	sessions   map[string]*session
	deliveries []Delivery
	calls      []Call
	outcomes   []thru.FlowOutcome
	faults     Faults
	nth        map[string]nthFault
	counts     map[string]int
	nextCode   int
}

type flow struct {
	cfg       FlowConfig
	delay     time.Duration
	queue     []*fileRec
	nextAvail time.Time
}

type fileRec struct {
	code    string
	flow    string
	name    string
	size    int64
	origin  string // pickup, reserved, dropoff, content
	content blob   // pickup content until picked up
	picked  bool
}

// New checks cfg and returns a Server that is not yet listening; serve it
// with net/http or Start.
func New(cfg Config) (*Server, error) {
	if err := cfg.check(); err != nil {
		return nil, fmt.Errorf("thrusim: %w", err)
	}
	s := &Server{
		cfg: cfg, flows: map[string]*flow{}, bySecret: map[string]*flow{},
		seen: map[string]time.Time{}, files: map[string]*fileRec{}, dropoffs: map[string]*dropoff{},
		sessions: map[string]*session{}, nth: map[string]nthFault{}, counts: map[string]int{},
		nextCode: 5885807900,
	}
	if cfg.AESKey != "" {
		c, err := thru.NewHeaderCipher(cfg.CipherMode, cfg.AESKey, cfg.IV)
		if err != nil {
			return nil, fmt.Errorf("thrusim: %w", err)
		}
		s.cipher = c
	}
	for _, fc := range cfg.Flows {
		f := &flow{cfg: fc, delay: time.Duration(*cfg.PickupDelay)}
		if fc.PickupDelay != nil {
			f.delay = time.Duration(*fc.PickupDelay)
		}
		s.flows[fc.Code] = f
		s.bySecret[fc.SecretKey] = f
	}
	s.spool = cfg.SpoolDir
	if s.spool == "" {
		dir, err := os.MkdirTemp("", "thrusim-")
		if err != nil {
			return nil, fmt.Errorf("thrusim: spool directory: %w", err)
		}
		s.spool, s.ownSpool = dir, true
	} else if err := os.MkdirAll(s.spool, 0o700); err != nil {
		return nil, fmt.Errorf("thrusim: spool directory: %w", err)
	}
	return s, nil
}

// Start serves a new Server on 127.0.0.1 on a free port until the test ends.
func Start(t testing.TB, cfg Config) *Server {
	t.Helper()
	s, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	s.hs = httptest.NewServer(s)
	s.URL = s.hs.URL
	t.Cleanup(s.Close)
	return s
}

// Close stops a server started by Start and removes its spool directory
// if it made one. Deliveries can no longer be opened after it.
func (s *Server) Close() {
	if s.hs != nil {
		s.hs.CloseClientConnections()
		s.hs.Close()
	}
	if s.ownSpool {
		_ = os.RemoveAll(s.spool)
	}
}

// AddPickup queues a file for pickup on flow and returns its File Code.
func (s *Server) AddPickup(flowCode, name string, content []byte) (string, error) {
	return s.AddPickupFrom(flowCode, name, bytes.NewReader(content))
}

// AddPickupFrom queues a file read from r for pickup on flow and returns
// its File Code. The content goes to the spool directory as it is read, so
// a file of any size costs no memory.
func (s *Server) AddPickupFrom(flowCode, name string, r io.Reader) (string, error) {
	s.mu.Lock()
	_, ok := s.flows[flowCode]
	s.mu.Unlock()
	if !ok {
		return "", fmt.Errorf("thrusim: no flow %q", flowCode)
	}
	if name == "" || strings.ContainsAny(name, "\x00\\") {
		return "", fmt.Errorf("thrusim: pickup file name %q: want a name without NUL bytes or backslashes", name)
	}
	b, err := s.spoolFrom(r, math.MaxInt64-1)
	if err != nil {
		return "", fmt.Errorf("thrusim: pickup file %q: %w", name, err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	rec := &fileRec{code: s.newCodeLocked(), flow: flowCode, name: name, size: b.size, origin: "pickup", content: b}
	s.files[rec.code] = rec
	f := s.flows[flowCode]
	f.queue = append(f.queue, rec)
	return rec.code, nil
}

// PickupQueue returns how many files wait for pickup on flow.
func (s *Server) PickupQueue(flowCode string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	if f, ok := s.flows[flowCode]; ok {
		return len(f.queue)
	}
	return 0
}

// Deliveries returns the files delivered so far, in order.
func (s *Server) Deliveries() []Delivery {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.deliveries)
}

// Calls returns the call log.
func (s *Server) Calls() []Call {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.calls)
}

// CallsOf returns the logged calls of one kind.
func (s *Server) CallsOf(kind string) []Call {
	var out []Call
	for _, c := range s.Calls() {
		if c.Kind == kind {
			out = append(out, c)
		}
	}
	return out
}

// Outcomes returns the flow outcomes received, in order.
func (s *Server) Outcomes() []thru.FlowOutcome {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.outcomes)
}

// SessionInfo is an upload session as the site sees it.
type SessionInfo struct {
	thru.SessionStatus
	Abort *thru.AbortRequest
}

// Session returns an upload session's state.
func (s *Server) Session(id string) (SessionInfo, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	ss, ok := s.sessions[id]
	if !ok {
		return SessionInfo{}, false
	}
	return SessionInfo{ss.statusLocked(), ss.abort}, true
}

// SetFaults replaces the injected faults.
func (s *Server) SetFaults(f Faults) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.faults = f
}

// FailNth makes the n-th call of kind (counted from the server's start, from
// 1) fail with status, or have its connection cut half-way when status is 0.
// It replaces an earlier FailNth or LoseAnswerNth of kind.
func (s *Server) FailNth(kind string, n, status int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.nth[kind] = nthFault{n: n, status: status}
}

// LoseAnswerNth makes the site handle the n-th call of kind (counted from
// the server's start, from 1) in full, then cut the connection before its
// answer, as when a network drops the response: a chunk is kept, a file
// delivered, a session committed, but the client hears nothing. It
// replaces an earlier FailNth or LoseAnswerNth of kind.
func (s *Server) LoseAnswerNth(kind string, n int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.nth[kind] = nthFault{n: n, lose: true}
}

func (s *Server) newCodeLocked() string {
	s.nextCode++
	return fmt.Sprintf("FL%010d", s.nextCode)
}

func newSessionID() string {
	var b [16]byte
	_, _ = crand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// recorder remembers the status of an answer, and lets handlers cut the
// connection.
type recorder struct {
	http.ResponseWriter
	status  int
	errText string
	cut     bool
	lose    bool // swallow the answer; ServeHTTP cuts the connection after the handler
}

func (w *recorder) WriteHeader(code int) {
	if w.status == 0 {
		w.status = code
	}
	if !w.lose {
		w.ResponseWriter.WriteHeader(code)
	}
}

func (w *recorder) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	if w.lose {
		return len(b), nil
	}
	return w.ResponseWriter.Write(b)
}

func (w *recorder) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// cutConnection drops the connection at once, with a TCP reset where possible.
func (w *recorder) cutConnection() {
	w.cut = true
	rc := http.NewResponseController(w.ResponseWriter)
	if w.status != 0 {
		_ = rc.Flush() // the status line and part of the body go out first
	}
	resetConn(rc)
}

// loseAnswer cuts the connection of a call the handler has answered into
// the void (lose): the work is done, the client hears nothing.
func (w *recorder) loseAnswer() {
	resetConn(http.NewResponseController(w.ResponseWriter))
}

func resetConn(rc *http.ResponseController) {
	conn, _, err := rc.Hijack()
	if err != nil {
		panic(http.ErrAbortHandler)
	}
	if tc, ok := conn.(*net.TCPConn); ok {
		_ = tc.SetLinger(0)
	}
	discard.Close(conn) // resetting it is the point
}

// fail answers a non-2xx status with text.
func (w *recorder) fail(status int, format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	w.errText = msg
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.WriteHeader(status)
	_, _ = fmt.Fprintln(w, msg) // the status is out; the client may be gone, as with io.Copy elsewhere here
}

func (w *recorder) json(status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

// request is one call being handled.
type request struct {
	*recorder
	r     *http.Request
	kind  string
	reset bool // cut the connection half-way through the body
	call  *Call
}

// ServeHTTP serves the site's API (and /_admin/ when Config.Admin is set).
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if s.cfg.Admin && strings.HasPrefix(r.URL.Path, "/_admin/") {
		s.serveAdmin(w, r)
		return
	}
	rec := &recorder{ResponseWriter: w}
	req := &request{recorder: rec, r: r}
	call := Call{Time: s.cfg.Now(), Method: r.Method, Path: r.URL.Path}
	logged := false
	logCall := func() {
		if logged {
			return
		}
		logged = true
		call.Kind, call.Error = req.kind, rec.errText
		call.Status = rec.status
		if rec.cut {
			call.Status = 0
		}
		s.mu.Lock()
		call.Seq = len(s.calls) + 1
		s.calls = append(s.calls, call)
		s.mu.Unlock()
	}
	defer logCall()
	req.call = &call
	h := s.route(req)
	if h == nil {
		rec.fail(http.StatusNotFound, "No route for %s %s", r.Method, r.URL.Path)
		return
	}
	if s.injectFault(req) {
		return
	}
	h()
	if rec.lose && !rec.cut {
		// Logged before the cut, so that a client hearing of the cut
		// finds the call in the log.
		rec.cut = true
		logCall()
		rec.loseAnswer()
	}
}

// injectFault applies the configured faults to req; it returns true when the
// call was answered (or cut) by a fault.
func (s *Server) injectFault(req *request) bool {
	s.mu.Lock()
	s.counts[req.kind]++
	n := s.counts[req.kind]
	f := s.faults
	nf, hasNth := s.nth[req.kind]
	s.mu.Unlock()
	if hasNth && nf.n == n {
		req.call.Fault = "nth"
		if nf.lose {
			req.lose = true
			return false
		}
		if nf.status == 0 {
			req.reset = true
			return false
		}
		req.fail(nf.status, "Injected failure of %s call %d", req.kind, n)
		return true
	}
	if len(f.Kinds) > 0 && !slices.Contains(f.Kinds, req.kind) {
		return false
	}
	if f.Latency > 0 {
		select {
		case <-time.After(time.Duration(f.Latency)):
		case <-req.r.Context().Done():
		}
	}
	if f.FailRate > 0 && rand.Float64() < f.FailRate {
		st := f.FailStatus
		if st == 0 {
			st = http.StatusServiceUnavailable
		}
		req.call.Fault = "status"
		req.fail(st, "Injected failure: service unavailable")
		return true
	}
	switch {
	case f.LoseRate > 0 && rand.Float64() < f.LoseRate:
		req.call.Fault = "lost"
		req.lose = true
	case f.ResetRate > 0 && rand.Float64() < f.ResetRate:
		req.call.Fault = "reset"
		req.reset = true
	}
	return false
}

// route classifies req and returns its handler, or nil.
func (s *Server) route(req *request) func() {
	r := req.r
	p := r.URL.Path
	switch {
	case strings.HasPrefix(p, thru.PathPickup) && r.Method == http.MethodGet:
		req.kind = KindPickup
		return func() { s.pickup(req, strings.TrimPrefix(p, thru.PathPickup)) }
	case strings.HasPrefix(p, thru.PathDropOff) && r.Method == http.MethodGet:
		req.kind = KindReserve
		return func() { s.reserve(req, strings.TrimPrefix(p, thru.PathDropOff)) }
	case strings.HasPrefix(p, thru.PathDropOff) && r.Method == http.MethodPost:
		return s.routeDropOff(req, strings.TrimPrefix(p, thru.PathDropOff))
	case strings.HasPrefix(p, thru.PathFileMetadata) && r.Method == http.MethodGet:
		req.kind = KindFileMetadata
		return func() { s.fileMetadata(req, strings.TrimPrefix(p, thru.PathFileMetadata)) }
	case p == thru.PathFlowOutcome && r.Method == http.MethodPost:
		req.kind = KindOutcome
		return func() { s.flowOutcome(req) }
	case p == thru.PathContent && r.Method == http.MethodOptions:
		req.kind = KindPreflight
		return func() { s.preflight(req) }
	case p == thru.PathContent && r.Method == http.MethodPost:
		req.kind = KindSimpleUpload
		return func() { s.simpleUpload(req) }
	case p == thru.PathUploadSessions && r.Method == http.MethodPost:
		req.kind = KindSessionCreate
		return func() { s.createSession(req) }
	case strings.HasPrefix(p, thru.PathUploadSessions+"/"):
		rest := strings.TrimPrefix(p, thru.PathUploadSessions+"/")
		id, action, _ := strings.Cut(rest, "/")
		switch {
		case action == "" && r.Method == http.MethodPatch:
			req.kind = KindSessionPatch
			return func() { s.patchSession(req, id) }
		case action == "" && r.Method == http.MethodPut:
			req.kind = KindSessionPut
			return func() { s.putChunk(req, id) }
		case action == "" && r.Method == http.MethodGet:
			req.kind = KindSessionGet
			return func() { s.getSession(req, id) }
		case action == "Commit" && r.Method == http.MethodPost:
			req.kind = KindSessionCommit
			return func() { s.commitSession(req, id) }
		case action == "Abort" && r.Method == http.MethodPost:
			req.kind = KindSessionAbort
			return func() { s.abortSession(req, id) }
		}
	}
	req.kind = KindUnknown
	return nil
}

// authConnector checks the TransportMgrAuthHeader and, when urlFlow is not
// empty, that it is the header's flow. It answers 403 itself.
func (s *Server) authConnector(req *request, urlFlow string) (*flow, bool) {
	deny := func(why string) (*flow, bool) {
		req.fail(http.StatusForbidden, "Access denied: %s", why)
		return nil, false
	}
	if s.cipher == nil {
		return deny("the site has no AES key configured")
	}
	v := req.r.Header.Get("Authorization")
	if v == "" {
		return deny("no TransportMgrAuthHeader in the Authorization header")
	}
	claims, tok, err := thru.DecodeAuthHeader(s.cipher, v)
	if err != nil {
		return deny("invalid authorization header")
	}
	if (s.cfg.SiteURL != "" && claims.SiteURL != s.cfg.SiteURL) || claims.SiteAccessKey != s.cfg.SiteAccessKey {
		return deny("unknown site URL or site access key")
	}
	f, ok := s.bySecret[claims.FlowSecretKey]
	if !ok {
		return deny("unknown flow secret key")
	}
	now := s.cfg.Now()
	window := time.Duration(s.cfg.TimestampWindow)
	if d := now.Sub(claims.Time); d > window || d < -window {
		return deny(fmt.Sprintf("authorization header expired (its time is %s away from the site's clock; the window is %s)", d.Truncate(time.Second), window))
	}
	s.mu.Lock()
	_, replay := s.seen[tok]
	if !replay {
		s.seen[tok] = claims.Time.Add(window)
		if len(s.seen) > 4096 {
			for k, exp := range s.seen {
				if exp.Add(window).Before(now) {
					delete(s.seen, k)
				}
			}
		}
	}
	s.mu.Unlock()
	if replay {
		return deny("authorization header already used")
	}
	if urlFlow != "" && urlFlow != f.cfg.Code {
		return deny(fmt.Sprintf("flow code %s in the URL does not match the authorization header", urlFlow))
	}
	return f, true
}

// authContent checks a Bearer token or an X-Api-Key; it answers 401 itself.
func (s *Server) authContent(req *request) bool {
	if key := req.r.Header.Get(thru.APIKeyHeader); key != "" && slices.Contains(s.cfg.APIKeys, key) {
		return true
	}
	auth := req.r.Header.Get("Authorization")
	if tok, ok := strings.CutPrefix(auth, "Bearer "); ok && slices.Contains(s.cfg.BearerTokens, tok) {
		return true
	}
	if auth != "" && slices.Contains(s.cfg.APIKeys, auth) {
		return true // an API key in the Authorization header, as the documents say
	}
	req.fail(http.StatusUnauthorized, "Authentication failed: a valid bearer token or API key is required in the Authorization header (or the key in %s)", thru.APIKeyHeader)
	return false
}

// endpoint checks an endpoint path; it answers 409 itself.
func (s *Server) endpoint(req *request, path string) (*EndpointConfig, bool) {
	p, err := thru.ParseEndpointPath(path)
	if err != nil {
		req.fail(http.StatusConflict, "Invalid endpoint path %q: want flow:{FlowCode}/endpoint:{EndpointCode}/flowendpoint:{Id}", path)
		return nil, false
	}
	if f, ok := s.flows[p.FlowCode]; ok {
		for i, e := range f.cfg.Endpoints {
			if e.Code == p.EndpointCode && e.ID == p.ID {
				return &f.cfg.Endpoints[i], true
			}
		}
	}
	req.fail(http.StatusConflict, "Invalid endpoint path %q: no such flow endpoint", path)
	return nil, false
}
