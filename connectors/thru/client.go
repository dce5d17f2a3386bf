package thru

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"mime/multipart"
	"net/http"
	"net/http/httptrace"
	"net/textproto"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cenkalti/backoff/v5"

	"github.com/mftflow/mftflow/internal/discard"
	"github.com/mftflow/mftflow/pipeline"
)

// ClientConfig configures a Client. Only the fields of the calls used are
// required: BaseURL always; Cipher, SiteAccessKey, FlowSecretKey and
// FlowCode for the Connector API; APIKey or BearerToken for the Content API.
type ClientConfig struct {
	// BaseURL is the site's root, such as "https://example.thruinc.com".
	BaseURL string
	// SiteURL is the site URL inside the auth header; default: BaseURL's host.
	SiteURL       string
	SiteAccessKey string // secret
	FlowSecretKey string // secret
	// FlowCode is the flow (TRN…) the keys belong to.
	FlowCode string
	// Cipher encrypts the auth header (see CBCRandomIV, NewHeaderCipher).
	Cipher HeaderCipher
	// Logger hears of answers the documents do not lead to expect but that
	// do not fail the call; default slog.Default().
	Logger *slog.Logger
	// TargetSiteURL goes into drop-off chunk zero; default: SiteURL.
	TargetSiteURL string
	// APIKey or BearerToken authenticates the Content API. The key goes in
	// the Authorization header as given (the documents' form), or in
	// X-Api-Key when APIKeyIn says so.
	APIKey      string // secret
	APIKeyIn    string // APIKeyInAuthorization (default) or APIKeyInHeader
	BearerToken string // secret
	// HTTPClient defaults to a client without an overall timeout (bodies may
	// be large); requests are bounded by their context and ResponseTimeout.
	HTTPClient *http.Client
	// ResponseTimeout bounds the wait for an answer's headers once a request
	// is sent (a timeout is retried); 0 uses DefaultResponseTimeout. It
	// applies to the default HTTPClient only.
	ResponseTimeout time.Duration
	// Retry bounds the retries of one call; the zero value uses DefaultRetry.
	Retry RetryPolicy
	// Now returns the time put in auth headers; default time.Now.
	Now func() time.Time
}

// RetryPolicy says how often and how patiently a call is retried.
type RetryPolicy struct {
	// Attempts is the total number of tries; 1 disables retries.
	Attempts int
	// MinBackoff and MaxBackoff bound the jittered exponential wait.
	MinBackoff, MaxBackoff time.Duration
}

// DefaultResponseTimeout is the default ClientConfig.ResponseTimeout. It is
// long because a site assembles a whole file before answering EOF or Commit.
const DefaultResponseTimeout = 5 * time.Minute

// DefaultRetry is used when ClientConfig.Retry is zero.
var DefaultRetry = RetryPolicy{Attempts: 5, MinBackoff: 200 * time.Millisecond, MaxBackoff: 5 * time.Second}

// Client calls one Thru site. It is safe for concurrent use.
type Client struct {
	cfg  ClientConfig
	base *url.URL
	hc   *http.Client
	now  func() time.Time

	// stamps: the last header time given, when the cipher's tokens repeat.
	stampMu   sync.Mutex
	lastStamp time.Time
}

// repeats reports whether the header cipher gives the same token for the
// same plaintext (a fixed IV).
func (cl *Client) repeats() bool {
	r, ok := cl.cfg.Cipher.(interface{ Repeats() bool })
	return ok && r.Repeats()
}

// maxStampAhead is how far ahead of the clock a header's time may run to
// give each header a second of its own: a third of the documented 30 s
// window, which leaves the clocks room to differ.
const maxStampAhead = 10 * time.Second

// stamp returns the time for a new TransportMgrAuthHeader. With a cipher
// whose tokens repeat for the same plaintext (a fixed IV), no two headers
// of this client share a second: each takes the second after the last one
// given, running ahead of the clock by up to maxStampAhead, beyond which it
// waits for the clock.
func (cl *Client) stamp(ctx context.Context) (time.Time, error) {
	if !cl.repeats() {
		return cl.now(), nil
	}
	cl.stampMu.Lock()
	defer cl.stampMu.Unlock()
	now := cl.now().UTC().Truncate(time.Second)
	next := cl.lastStamp.Add(time.Second)
	if next.Before(now) {
		next = now
	}
	if ahead := next.Sub(now); ahead > maxStampAhead {
		t := time.NewTimer(ahead - maxStampAhead)
		defer t.Stop()
		select {
		case <-ctx.Done():
			return time.Time{}, ctx.Err()
		case <-t.C:
		}
	}
	cl.lastStamp = next
	return next, nil
}

// NewClient checks cfg and returns a Client.
func NewClient(cfg ClientConfig) (*Client, error) {
	u, err := url.Parse(strings.TrimRight(cfg.BaseURL, "/"))
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("thru: base URL %q: want http(s)://host[:port]", pipeline.RedactURLs(cfg.BaseURL))
	}
	if cfg.SiteURL == "" {
		cfg.SiteURL = u.Host
	}
	if cfg.TargetSiteURL == "" {
		cfg.TargetSiteURL = cfg.SiteURL
	}
	if cfg.Retry.Attempts <= 0 {
		cfg.Retry = DefaultRetry
	}
	c := &Client{cfg: cfg, base: u, hc: cfg.HTTPClient, now: cfg.Now}
	if c.hc == nil {
		t := http.DefaultTransport.(*http.Transport).Clone()
		t.ResponseHeaderTimeout = cmp.Or(cfg.ResponseTimeout, DefaultResponseTimeout)
		t.MaxIdleConnsPerHost = 16 // parallel chunks to one site
		c.hc = &http.Client{Transport: t}
	}
	if c.now == nil {
		c.now = time.Now
	}
	if c.cfg.Logger == nil {
		c.cfg.Logger = slog.Default()
	}
	return c, nil
}

// FlowCode returns the flow code the client was configured with.
func (c *Client) FlowCode() string { return c.cfg.FlowCode }

// Sentinel errors wrapped by CallError. Compare with errors.Is.
var (
	// ErrNoFile: a pickup found nothing to pick up now (204).
	ErrNoFile = errors.New("thru: nothing to pick up")
	// ErrAccessDenied: the site refused the credentials (401, 403).
	ErrAccessDenied = errors.New("access denied")
	// ErrInvalidEndpointPath: the Content API refused the endpoint path (409).
	ErrInvalidEndpointPath = errors.New("invalid endpoint path")
	// ErrNotFound: the session or file does not exist (404).
	ErrNotFound = errors.New("not found")
	// ErrAnswerLost: a call that must not be repeated (a simple upload) went
	// out whole and no answer came; the site may have acted on it.
	ErrAnswerLost = errors.New("no answer after the whole request was sent")
)

// CallError is a failed call to a Thru site.
type CallError struct {
	Call   string // "FlowDropOffChunk chunk 3", "Upload_Sessions PUT chunk 2"...
	Flow   string // flow code or endpoint path, when known
	File   string // file name or File Code, when known
	Status int    // HTTP status; 0 when no answer arrived
	Body   string // the start of the answer's text, secrets removed
	Hint   string // what to do
	Err    error  // ErrAccessDenied, ErrInvalidEndpointPath, a network error...
}

func (e *CallError) Error() string {
	var b strings.Builder
	b.WriteString("thru: ")
	b.WriteString(e.Call)
	if e.File != "" {
		fmt.Fprintf(&b, " for file %q", e.File)
	}
	if e.Flow != "" {
		fmt.Fprintf(&b, " on %s", e.Flow)
	}
	if e.Status != 0 {
		fmt.Fprintf(&b, ": HTTP %d %s", e.Status, http.StatusText(e.Status))
	}
	if e.Err != nil && !(e.Status != 0 && isSentinel(e.Err)) {
		fmt.Fprintf(&b, ": %v", e.Err)
	}
	if e.Body != "" {
		fmt.Fprintf(&b, ": %q", e.Body)
	}
	if e.Hint != "" {
		b.WriteString("; ")
		b.WriteString(e.Hint)
	}
	return b.String()
}

func isSentinel(err error) bool {
	return err == ErrAccessDenied || err == ErrInvalidEndpointPath || err == ErrNotFound
}

func (e *CallError) Unwrap() error { return e.Err }

// Permanent reports whether retrying cannot help: any 4xx answer but 408
// (timeout) and 429 (too many requests). Network errors and 5xx are not
// permanent.
func (e *CallError) Permanent() bool {
	return e.Status >= 400 && e.Status < 500 && e.Status != http.StatusRequestTimeout && e.Status != http.StatusTooManyRequests
}

// call describes one API call for requests and errors.
type call struct {
	name    string
	flow    string
	file    string
	content bool // Content API auth instead of TransportMgrAuthHeader
	method  string
	path    string
	// body returns a fresh body for each attempt, its length (-1 unknown)
	// and content type. nil: no body. When rewind is false the body can be
	// sent only once.
	body   func() (io.Reader, int64, string, error)
	rewind bool
	// sendOnce marks a call that acts twice if sent twice (a simple upload
	// delivers a second file): once its whole request went out, a lost
	// answer fails it for good (ErrAnswerLost) instead of retrying it.
	sendOnce bool
}

// do sends c, retrying what may be retried, and returns a 2xx response whose
// body the caller must close. It tries at most Retry.Attempts times; when it
// gives up, or ctx ends, it returns the last try's error.
func (cl *Client) do(ctx context.Context, c call) (*http.Response, error) {
	var last error
	tries := 0
	refusedOnce := false
	canResend := c.body == nil || c.rewind
	send := func() (*http.Response, error) {
		for {
			tries++
			resp, err := cl.once(ctx, c)
			if err == nil {
				return resp, nil
			}
			last = err
			var ce *CallError
			if errors.As(err, &ce) && ce.Status == http.StatusForbidden && !c.content && cl.repeats() && !refusedOnce && canResend && ctx.Err() == nil {
				// With tokens that repeat, the refusal may be of a header the
				// site saw before (another client with the same keys in the
				// same second): once more, at once, with a header of its own,
				// before taking it as final.
				refusedOnce = true
				continue
			}
			// Retry only what the site or the network failed (a CallError
			// that is not permanent), and only with a body that can be
			// sent again.
			retryable := errors.As(err, &ce) && !pipeline.IsPermanent(err)
			if !retryable || ctx.Err() != nil || tries >= cl.cfg.Retry.Attempts || !canResend {
				return nil, backoff.Permanent(err)
			}
			return nil, err
		}
	}
	resp, err := backoff.Retry(ctx, send, backoff.WithBackOff(cl.cfg.Retry.backOff()), backoff.WithMaxElapsedTime(0))
	if err != nil {
		return nil, last // not ctx's error: the call's says which call failed
	}
	return resp, nil
}

// backOff returns p's waits: from MinBackoff (MaxBackoff when zero or
// larger), doubling up to MaxBackoff, each a random time between half of
// that and all of it.
func (p RetryPolicy) backOff() backoff.BackOff {
	initial := min(cmp.Or(p.MinBackoff, p.MaxBackoff), p.MaxBackoff)
	return &halfJitter{backoff.ExponentialBackOff{InitialInterval: initial, Multiplier: 2, MaxInterval: p.MaxBackoff}}
}

// halfJitter spreads each wait of its backoff between half and all of it,
// so that clients failed together do not try again together.
type halfJitter struct{ backoff.ExponentialBackOff }

func (j *halfJitter) NextBackOff() time.Duration {
	d := j.ExponentialBackOff.NextBackOff()
	return d/2 + rand.N(d/2+1)
}

func (cl *Client) once(ctx context.Context, c call) (*http.Response, error) {
	var body io.Reader
	length := int64(0)
	ctype := ""
	if c.body != nil {
		var err error
		if body, length, ctype, err = c.body(); err != nil {
			return nil, err
		}
	}
	req, err := http.NewRequestWithContext(ctx, c.method, cl.base.String()+c.path, body)
	if err != nil {
		return nil, fmt.Errorf("thru: %s: %v", c.name, pipeline.RedactErr(err))
	}
	if body != nil {
		req.ContentLength = length
		if length == 0 {
			req.Body = http.NoBody
		}
		req.Header.Set("Content-Type", ctype)
	}
	if err := cl.authorize(req, c.content); err != nil {
		return nil, err
	}
	var wrote atomic.Bool
	if c.sendOnce {
		req = req.WithContext(httptrace.WithClientTrace(ctx, &httptrace.ClientTrace{
			WroteRequest: func(i httptrace.WroteRequestInfo) { wrote.Store(i.Err == nil) },
		}))
	}
	resp, err := cl.hc.Do(req)
	if err != nil {
		if ctx.Err() != nil {
			return nil, fmt.Errorf("thru: %s: %w", c.name, ctx.Err())
		}
		if wrote.Load() {
			return nil, cl.answerLost(c, err)
		}
		return nil, cl.callError(c, 0, "", cl.scrubErr(err))
	}
	if resp.StatusCode/100 == 2 {
		return resp, nil
	}
	defer discard.Close(resp.Body)
	text, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
	return nil, cl.callError(c, resp.StatusCode, string(text), nil)
}

func (cl *Client) authorize(req *http.Request, content bool) error {
	if content {
		switch {
		case cl.cfg.BearerToken != "":
			req.Header.Set("Authorization", "Bearer "+cl.cfg.BearerToken)
		case cl.cfg.APIKey != "" && cl.cfg.APIKeyIn == APIKeyInHeader:
			req.Header.Set(APIKeyHeader, cl.cfg.APIKey)
		case cl.cfg.APIKey != "":
			req.Header.Set("Authorization", cl.cfg.APIKey)
		default:
			return errors.New("thru: the Content API needs an API key or a bearer token; set one")
		}
		return nil
	}
	if cl.cfg.Cipher == nil {
		return errors.New("thru: the Connector API needs the AES key that encrypts TransportMgrAuthHeader; set it")
	}
	at, err := cl.stamp(req.Context())
	if err != nil {
		return err
	}
	h, err := EncodeAuthHeader(cl.cfg.Cipher, HeaderClaims{
		SiteURL: cl.cfg.SiteURL, SiteAccessKey: cl.cfg.SiteAccessKey,
		FlowSecretKey: cl.cfg.FlowSecretKey, Time: at,
	})
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", h)
	return nil
}

// scrub removes secrets from text that came from elsewhere, and the user
// info of URLs (net/http hides a base URL's password, not a token).
func (cl *Client) scrub(s string) string {
	s = pipeline.RedactURLs(s)
	for _, sec := range []string{cl.cfg.SiteAccessKey, cl.cfg.FlowSecretKey, cl.cfg.APIKey, cl.cfg.BearerToken} {
		if len(sec) >= 4 {
			s = strings.ReplaceAll(s, sec, "***")
		}
	}
	return s
}

type scrubbedError struct {
	msg string
	err error
}

func (e *scrubbedError) Error() string { return e.msg }
func (e *scrubbedError) Unwrap() error { return e.err }

func (cl *Client) scrubErr(err error) error {
	if s := cl.scrub(err.Error()); s != err.Error() {
		return &scrubbedError{s, err}
	}
	return err
}

func (cl *Client) callError(c call, status int, body string, err error) *CallError {
	e := &CallError{Call: c.name, Flow: c.flow, File: c.file, Status: status, Err: err,
		Body: strings.TrimSpace(cl.scrub(strings.ToValidUTF8(body, "?")))}
	switch {
	case status == 0:
		e.Hint = "no answer arrived (connection reset, timeout); retry, and check the network and the site if it persists"
	case status == http.StatusForbidden && !c.content:
		e.Err = ErrAccessDenied
		e.Hint = fmt.Sprintf("the site refused the TransportMgrAuthHeader for flow %s: check the site URL, site access key, "+
			"flow secret key and AES key, that this machine's clock is within the site's window of UTC, and that "+
			"the flow code matches the flow the keys belong to", cl.cfg.FlowCode)
	case status == http.StatusUnauthorized || status == http.StatusForbidden:
		e.Err = ErrAccessDenied
		e.Hint = "the Content API refused the credentials: check the API key or bearer token and that it may upload to this endpoint"
	case status == http.StatusConflict:
		e.Err = ErrInvalidEndpointPath
		e.Hint = "the endpoint path is malformed or names no endpoint of the site: check flow code, endpoint code and flow endpoint id"
	case status == http.StatusNotFound:
		e.Err = ErrNotFound
		e.Hint = "the site does not know it; for an upload session, start a new one"
	case status == http.StatusRequestEntityTooLarge:
		e.Hint = "a chunk is larger than the site accepts; lower the chunk size to the preflight's maxChunkSize"
	case status == http.StatusTooManyRequests || status >= 500:
		e.Hint = "the site failed or is busy; retry later, and see the site's message if it persists"
	default:
		e.Hint = "the site refused the request; its message above says why"
	}
	return e
}

func (cl *Client) connector(name, path, file string) call {
	return call{name: name, flow: "flow " + cl.cfg.FlowCode, file: file, path: path}
}

// PickedUp is a file received from a pickup. Body streams its content and
// must be closed.
type PickedUp struct {
	FileCode string
	Name     string // without the File Code prefix
	Size     int64  // -1 when the site did not say
	Body     io.ReadCloser
}

// Pickup takes the next file of the flow's pickup queue
// (GET FlowPickup/<FlowCode>). It returns ErrNoFile when there is nothing to
// pick up now (204). The body is not read: the caller streams it.
func (cl *Client) Pickup(ctx context.Context) (*PickedUp, error) {
	c := cl.connector("FlowPickup", PathPickup+url.PathEscape(cl.cfg.FlowCode), "")
	c.method = http.MethodGet
	resp, err := cl.do(ctx, c)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode == http.StatusNoContent {
		discard.Close(resp.Body)
		return nil, ErrNoFile
	}
	code, name, err := ParsePickupDisposition(resp.Header.Get("Content-Disposition"))
	if err != nil {
		discard.Close(resp.Body)
		return nil, protocolError(cl.callError(c, resp.StatusCode, "", err))
	}
	return &PickedUp{FileCode: code, Name: name, Size: resp.ContentLength, Body: resp.Body}, nil
}

// answerLost is the permanent error of a sendOnce call whose request went
// out whole without an answer: the site may have acted on it, and sending it
// again could act twice.
func (cl *Client) answerLost(c call, err error) error {
	e := cl.callError(c, 0, "", fmt.Errorf("%w (%v)", ErrAnswerLost, cl.scrubErr(err)))
	e.Hint = "the site may hold the file, and the Content API cannot be asked whether it does, so it is not sent again " +
		"(that could deliver it twice): look for it at the endpoint and replay it to this sink only if it is not there; " +
		"simple_threshold: 0 sends every file in an upload session, which recovers from a lost answer by itself"
	return &permanentCallError{e}
}

// protocolError marks a CallError for a 2xx answer that does not follow the
// protocol as permanent: asking again gets the same answer.
func protocolError(e *CallError) error {
	e.Hint = "the site's answer does not follow the protocol; report it with the site's version"
	return &permanentCallError{e}
}

type permanentCallError struct{ *CallError }

func (e *permanentCallError) Permanent() bool { return true }
func (e *permanentCallError) Unwrap() error   { return e.CallError }

// ReserveFileCode reserves a new File Code for a drop-off
// (GET FlowDropOffChunk/<FlowCode>).
func (cl *Client) ReserveFileCode(ctx context.Context) (string, error) {
	c := cl.connector("FlowDropOffChunk reserve File Code", PathDropOff+url.PathEscape(cl.cfg.FlowCode), "")
	c.method = http.MethodGet
	resp, err := cl.do(ctx, c)
	if err != nil {
		return "", err
	}
	defer discard.Close(resp.Body)
	b, err := io.ReadAll(io.LimitReader(resp.Body, 256))
	if err != nil {
		return "", cl.callError(c, 0, "", err)
	}
	code := strings.Trim(strings.TrimSpace(string(b)), `"`)
	if !ValidFileCode(code) {
		return "", protocolError(cl.callError(c, resp.StatusCode, code, errors.New("the answer is not a File Code")))
	}
	return code, nil
}

// SendChunkZero sends drop-off chunk zero: the file's size and name.
func (cl *Client) SendChunkZero(ctx context.Context, fileCode, name string, size int64) error {
	meta, err := json.Marshal(ChunkZero{FileSize: size, FileName: PrefixedName(fileCode, name), TargetSiteURL: cl.cfg.TargetSiteURL})
	if err != nil {
		return err
	}
	return cl.dropOffPart(ctx, "FlowDropOffChunk chunk zero", name, ChunkZeroName(fileCode), int64(len(meta)), bytes.NewReader(meta))
}

// SendChunk sends drop-off content chunk n (from 1) of size bytes read from
// r. Chunks may be sent in any order and concurrently. The call is retried
// only when r is an io.ReaderAt and io.Seeker (positioned at the chunk's start).
func (cl *Client) SendChunk(ctx context.Context, fileCode string, n int, size int64, r io.Reader) error {
	if n < 1 || n > MaxDropOffChunkNumber {
		return fmt.Errorf("thru: drop-off chunk number %d: want 1 to %d", n, MaxDropOffChunkNumber)
	}
	return cl.dropOffPart(ctx, fmt.Sprintf("FlowDropOffChunk chunk %d", n), fileCode, ChunkName(fileCode, n), size, r)
}

// SendEOF ends a drop-off; the site then assembles the file.
func (cl *Client) SendEOF(ctx context.Context, fileCode string) error {
	return cl.dropOffPart(ctx, "FlowDropOffChunk EOF", fileCode, EOFName(fileCode), 0, bytes.NewReader(nil))
}

func (cl *Client) dropOffPart(ctx context.Context, name, file, partName string, size int64, r io.Reader) error {
	c := cl.connector(name, PathDropOff+url.PathEscape(cl.cfg.FlowCode), file)
	c.method = http.MethodPost
	hdr := textproto.MIMEHeader{}
	hdr.Set("Content-Disposition", DropOffDisposition(partName, size))
	hdr.Set("Content-Type", "application/octet-stream")
	c.body, c.rewind = multipartBody(nil, hdr, size, r)
	resp, err := cl.do(ctx, c)
	if err != nil {
		return err
	}
	drain(resp)
	return nil
}

// FileMetadata returns what the site knows about a file (GET FileMetadata/<FileCode>).
func (cl *Client) FileMetadata(ctx context.Context, fileCode string) (*FileInfo, error) {
	c := cl.connector("FileMetadata", PathFileMetadata+url.PathEscape(fileCode), fileCode)
	c.method = http.MethodGet
	var info FileInfo
	raw, err := cl.doJSON(ctx, c, &info)
	if err != nil {
		return nil, err
	}
	info.Raw = raw
	return &info, nil
}

// ReportOutcome tells the site how a picked-up file was processed (POST FlowOutcome).
func (cl *Client) ReportOutcome(ctx context.Context, o FlowOutcome) error {
	c := cl.connector("FlowOutcome", PathFlowOutcome, o.FileCode)
	c.method = http.MethodPost
	c.body, c.rewind = jsonBody(o)
	_, err := cl.doJSON(ctx, c, nil)
	return err
}

// Content API.

func (cl *Client) content(name, method, path string, meta *FileMetadata) call {
	c := call{name: name, content: true, method: method, path: path}
	if meta != nil {
		c.file = meta.Attributes.FileName
		c.flow = "endpoint " + meta.EndpointPath
	}
	return c
}

// Preflight asks whether the site accepts meta's file and for its upload
// settings (OPTIONS Content). A refusal by an endpoint rule is
// Preflight.Accepted false, not an error.
func (cl *Client) Preflight(ctx context.Context, meta FileMetadata) (*Preflight, error) {
	c := cl.content("Content preflight", http.MethodOptions, PathContent, &meta)
	c.body, c.rewind = jsonBody(meta)
	var p Preflight
	if err := cl.doLenient(ctx, c, &p); err != nil {
		return nil, err
	}
	return &p, nil
}

// UploadSimple uploads a whole file of size bytes in one request
// (POST Content). It is retried only when r is an io.ReaderAt and io.Seeker,
// and never once its whole request went out: each upload the site takes is
// a file of its own, so a lost answer then is a permanent error wrapping
// ErrAnswerLost (the site may hold the file). A crash or a cancelled ctx at
// that moment leaves the same doubt; only an upload session is free of it.
func (cl *Client) UploadSimple(ctx context.Context, meta FileMetadata, size int64, r io.Reader) (*UploadResult, error) {
	c := cl.content("Content simple upload", http.MethodPost, PathContent, &meta)
	mj, err := json.Marshal(meta)
	if err != nil {
		return nil, err
	}
	c.body, c.rewind = multipartBody(mj, contentPartHeader(meta.Attributes.FileName), size, r)
	// Each simple upload the site takes is a file of its own: an upload
	// whose answer is lost once the whole file went out is not sent again.
	c.sendOnce = true
	var res UploadResult
	if err := cl.doLenient(ctx, c, &res); err != nil {
		return nil, err
	}
	return &res, nil
}

// CreateSession opens an upload session (POST Upload_Sessions) and returns
// its id. meta may be nil and set later with UpdateSession.
func (cl *Client) CreateSession(ctx context.Context, meta *FileMetadata) (string, error) {
	c := cl.content("Upload_Sessions create", http.MethodPost, PathUploadSessions, meta)
	if meta != nil {
		c.body, c.rewind = jsonBody(meta)
	}
	resp, err := cl.do(ctx, c)
	if err != nil {
		return "", err
	}
	drain(resp)
	id := resp.Header.Get(TransferIDHeader)
	if id == "" {
		return "", protocolError(cl.callError(c, resp.StatusCode, "", fmt.Errorf("the answer has no %s header", TransferIDHeader)))
	}
	return id, nil
}

func sessionPath(id string, suffix string) string {
	return PathUploadSessions + "/" + url.PathEscape(id) + suffix
}

// UpdateSession sets or replaces a session's metadata before Commit (PATCH).
func (cl *Client) UpdateSession(ctx context.Context, id string, meta FileMetadata) error {
	c := cl.content("Upload_Sessions "+id+" metadata", http.MethodPatch, sessionPath(id, ""), &meta)
	c.body, c.rewind = jsonBody(meta)
	_, err := cl.doJSON(ctx, c, nil)
	return err
}

// PutChunk sends chunk seq (from 1) of size bytes to a session (PUT).
// Chunks may be sent in any order and concurrently. It is retried only
// when r is an io.ReaderAt and io.Seeker.
func (cl *Client) PutChunk(ctx context.Context, id string, seq int, size int64, r io.Reader) error {
	if seq < 1 {
		return fmt.Errorf("thru: upload session chunk number %d: chunks are numbered from 1", seq)
	}
	c := cl.content(fmt.Sprintf("Upload_Sessions %s chunk %d", id, seq), http.MethodPut, sessionPath(id, ""), nil)
	mj, err := json.Marshal(ChunkMeta{SequenceNumber: seq, Size: size})
	if err != nil {
		return err
	}
	c.body, c.rewind = multipartBody(mj, contentPartHeader(fmt.Sprintf("chunk%06d", seq)), size, r)
	_, err = cl.doJSON(ctx, c, nil)
	return err
}

// SessionStatus returns a session's state, including the chunks the site
// holds (GET). A missing session is an error wrapping ErrNotFound.
func (cl *Client) SessionStatus(ctx context.Context, id string) (*SessionStatus, error) {
	c := cl.content("Upload_Sessions "+id+" status", http.MethodGet, sessionPath(id, ""), nil)
	var st SessionStatus
	if _, err := cl.doJSON(ctx, c, &st); err != nil {
		return nil, err
	}
	return &st, nil
}

// CommitSession ends a session once every chunk is sent; the site assembles
// the file (POST Commit).
func (cl *Client) CommitSession(ctx context.Context, id string) (*UploadResult, error) {
	c := cl.content("Upload_Sessions "+id+" commit", http.MethodPost, sessionPath(id, "/Commit"), nil)
	var res UploadResult
	if err := cl.doLenient(ctx, c, &res); err != nil {
		return nil, err
	}
	return &res, nil
}

// AbortSession abandons a session (POST Abort) with status AbortError or
// AbortCancelled and a message.
func (cl *Client) AbortSession(ctx context.Context, id string, status int, message string) error {
	c := cl.content("Upload_Sessions "+id+" abort", http.MethodPost, sessionPath(id, "/Abort"), nil)
	c.body, c.rewind = jsonBody(AbortRequest{Status: status, Message: message})
	_, err := cl.doJSON(ctx, c, nil)
	return err
}

// doJSON sends c and decodes a JSON answer into v (if not nil and the answer
// is not empty). It returns the raw answer, at most 1 MiB.
func (cl *Client) doJSON(ctx context.Context, c call, v any) ([]byte, error) {
	return cl.doAnswer(ctx, c, v, false)
}

// doLenient is doJSON for calls whose success the status says, and whose
// answer only adds to it (preflight, upload, commit): an answer that is not
// the JSON expected is logged and the call taken as done with v as it is,
// never turned into a failure.
func (cl *Client) doLenient(ctx context.Context, c call, v any) error {
	_, err := cl.doAnswer(ctx, c, v, true)
	return err
}

// doAnswer sends c and decodes a 2xx answer's JSON into v (when both are
// there); lenient takes an answer it cannot read or decode as done.
func (cl *Client) doAnswer(ctx context.Context, c call, v any, lenient bool) ([]byte, error) {
	resp, err := cl.do(ctx, c)
	if err != nil {
		return nil, err
	}
	defer discard.Close(resp.Body)
	raw, readErr := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	var decodeErr error
	if readErr == nil && v != nil && len(bytes.TrimSpace(raw)) > 0 {
		decodeErr = json.Unmarshal(raw, v)
	}
	switch err := errors.Join(readErr, decodeErr); {
	case err == nil:
		return raw, nil
	case lenient:
		body := cl.scrub(strings.ToValidUTF8(string(raw[:min(len(raw), 200)]), "?"))
		cl.cfg.Logger.Warn("thru: an answer the documents do not lead to expect; the call succeeded (HTTP "+strconv.Itoa(resp.StatusCode)+"), so it is taken as done",
			"call", c.name, "flow", c.flow, "file", c.file, "answer", body, "err", err)
		return raw, nil
	case readErr != nil:
		return nil, cl.callError(c, 0, "", readErr)
	default:
		return nil, protocolError(cl.callError(c, resp.StatusCode, "", fmt.Errorf("decoding the answer: %v", decodeErr)))
	}
}

func drain(resp *http.Response) {
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	discard.Close(resp.Body)
}

func jsonBody(v any) (func() (io.Reader, int64, string, error), bool) {
	b, err := json.Marshal(v)
	return func() (io.Reader, int64, string, error) {
		return bytes.NewReader(b), int64(len(b)), "application/json", err
	}, true
}

func contentPartHeader(filename string) textproto.MIMEHeader {
	h := textproto.MIMEHeader{}
	h.Set("Content-Disposition", fmt.Sprintf(`form-data; name=%q; filename=%q`, ContentFormName, filename))
	h.Set("Content-Type", "application/octet-stream")
	return h
}

// multipartBody streams a multipart/form-data body: an optional JSON part
// (meta) then one part of exactly size bytes read from r. The envelope is
// built in memory (it is small), so the body has a known Content-Length and
// the content streams straight from r without a copy. The body can be
// rebuilt for a retry when r is an io.ReaderAt and an io.Seeker.
func multipartBody(meta []byte, hdr textproto.MIMEHeader, size int64, r io.Reader) (func() (io.Reader, int64, string, error), bool) {
	var head bytes.Buffer
	mw := multipart.NewWriter(&head)
	var err error
	if meta != nil {
		mh := textproto.MIMEHeader{}
		mh.Set("Content-Disposition", fmt.Sprintf(`form-data; name=%q`, MetadataFormName))
		mh.Set("Content-Type", "application/json")
		var w io.Writer
		if w, err = mw.CreatePart(mh); err == nil {
			_, err = w.Write(meta)
		}
	}
	if err == nil {
		_, err = mw.CreatePart(hdr)
	}
	prefix := bytes.Clone(head.Bytes())
	head.Reset()
	if err == nil {
		err = mw.Close()
	}
	suffix := head.Bytes()
	ctype := mw.FormDataContentType()
	// Each attempt reads its own section of r, as the transport may still
	// be reading the last attempt's body after its answer came; r itself
	// moves past the size bytes at once.
	ra, canRetry := r.(io.ReaderAt)
	seeker, isSeeker := r.(io.Seeker)
	canRetry = canRetry && isSeeker
	start := int64(0)
	if canRetry {
		if start, err = seeker.Seek(0, io.SeekCurrent); err == nil {
			_, err = seeker.Seek(size, io.SeekCurrent)
		}
	}
	return func() (io.Reader, int64, string, error) {
		if err != nil {
			return nil, 0, "", err
		}
		content := r
		if canRetry {
			content = io.NewSectionReader(ra, start, size)
		}
		body := io.MultiReader(bytes.NewReader(prefix), &exactReader{r: content, left: size}, bytes.NewReader(suffix))
		return body, int64(len(prefix)) + size + int64(len(suffix)), ctype, nil
	}, canRetry
}

// exactReader yields exactly left bytes from r, failing if r has fewer.
type exactReader struct {
	r    io.Reader
	left int64
}

var errShortContent = errors.New("thru: the content reader ended before the announced size")

func (e *exactReader) Read(p []byte) (int, error) {
	if e.left <= 0 {
		return 0, io.EOF
	}
	if int64(len(p)) > e.left {
		p = p[:e.left]
	}
	n, err := e.r.Read(p)
	e.left -= int64(n)
	if err == io.EOF {
		if e.left > 0 {
			return n, errShortContent
		}
		err = nil
	}
	return n, err
}
