package notify

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
	"unicode"

	"github.com/mftflow/mftflow/internal/discard"
	"github.com/mftflow/mftflow/pipeline"
)

// The headers of a webhook request.
const (
	// HeaderSignature is "sha256=" and the hex HMAC-SHA256 of the body
	// under the rule's secret; absent when the rule has no secret.
	HeaderSignature = "X-Mftflow-Signature"
	// HeaderDelivery is the notification's id (Message.ID).
	HeaderDelivery = "X-Mftflow-Delivery"
	// HeaderEvent is the trigger (Message.Trigger): passed, failed, ...
	HeaderEvent = "X-Mftflow-Event"
)

// signaturePrefix starts a signature header's value.
const signaturePrefix = "sha256="

// Sign returns the X-Mftflow-Signature value of body under secret:
// "sha256=" and the hex HMAC-SHA256.
func Sign(secret string, body []byte) string {
	mac := hmac.New(sha256.New, []byte(secret))
	mac.Write(body)
	return signaturePrefix + hex.EncodeToString(mac.Sum(nil))
}

// VerifySignature reports whether header, a request's X-Mftflow-Signature,
// is the signature of body under secret. A receiver calls it on the body
// exactly as read, before parsing it; the comparison takes the same time
// whatever the header holds.
func VerifySignature(secret string, body []byte, header string) bool {
	got, ok := strings.CutPrefix(strings.TrimSpace(header), signaturePrefix)
	if !ok {
		return false
	}
	sum, err := hex.DecodeString(got)
	if err != nil {
		return false
	}
	mac := hmac.New(sha256.New, []byte(secret))
	mac.Write(body)
	return hmac.Equal(sum, mac.Sum(nil))
}

// Bounds of what a webhook answer may make the sender do.
const (
	// maxRetryAfter caps the wait a receiver may ask for.
	maxRetryAfter = time.Hour
	// maxAnswer is how much of an answer's body is read (and of it, the
	// start is quoted in errors).
	maxAnswer    = 64 << 10
	answerQuoted = 200
)

// userAgent is sent with every request.
const userAgent = "mftflow-notify/1"

// webhookSender posts notifications to one webhook target.
type webhookSender struct {
	cfg      pipeline.WebhookTarget
	endpoint string
	client   *http.Client
}

// newHTTPClient returns a copy of c (or a new client) that does not follow
// redirects: a POST redirected elsewhere would carry the rule's headers to
// a host nobody configured, and a configured URL that moved is a mistake
// to fix, not to follow.
func newHTTPClient(c *http.Client) *http.Client {
	var out http.Client
	if c != nil {
		out = *c
	}
	out.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	return &out
}

func (w *webhookSender) send(ctx context.Context, m *Message, body []byte) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, w.cfg.URL, bytes.NewReader(body))
	if err != nil {
		return w.fail("POST", 0, true, fmt.Errorf("building the request: %v", unwrapURLError(err)))
	}
	for name, value := range w.cfg.Headers {
		req.Header.Set(name, value)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", userAgent)
	req.Header.Set(HeaderEvent, m.Trigger)
	req.Header.Set(HeaderDelivery, m.ID)
	if w.cfg.Secret != "" {
		req.Header.Set(HeaderSignature, Sign(w.cfg.Secret, body))
	}
	resp, err := w.client.Do(req)
	if err != nil {
		return w.fail("POST", 0, false, unwrapURLError(err))
	}
	defer discard.Close(resp.Body)
	answer, _ := io.ReadAll(io.LimitReader(resp.Body, maxAnswer))
	return w.answer(resp, answer)
}

// answer turns the receiver's answer into nil (2xx) or a *SendError that
// says whether to try again.
func (w *webhookSender) answer(resp *http.Response, body []byte) error {
	code := resp.StatusCode
	if code >= 200 && code <= 299 {
		return nil
	}
	what := fmt.Sprintf("answered %s", resp.Status)
	if q := quote(body); q != "" {
		what += ": " + q
	}
	switch {
	case code >= 300 && code <= 399:
		where := "elsewhere"
		if loc, err := resp.Location(); err == nil {
			where = "to " + loc.Scheme + "://" + loc.Host
		}
		return w.fail("POST", code, true, fmt.Errorf("%s: the receiver redirects %s; set the rule's url to where it points", what, where))
	case code == http.StatusRequestTimeout, code == http.StatusTooEarly, code == http.StatusTooManyRequests,
		code == http.StatusUnauthorized, code == http.StatusForbidden:
		// Later, or with the credentials fixed, the same request passes.
	case code >= 400 && code <= 499:
		return w.fail("POST", code, true, errors.New(what))
	}
	e := w.fail("POST", code, false, errors.New(what)).(*SendError)
	if code == http.StatusTooManyRequests || code == http.StatusServiceUnavailable {
		e.RetryAfter = retryAfter(resp.Header.Get("Retry-After"), time.Now())
	}
	return e
}

func (w *webhookSender) fail(op string, code int, permanent bool, err error) error {
	return &SendError{Endpoint: w.endpoint, Op: op, Code: code, Permanent: permanent, Err: err}
}

// retryAfter reads a Retry-After value (seconds, or an HTTP date), capped
// at maxRetryAfter; 0 when absent or unreadable.
func retryAfter(v string, now time.Time) time.Duration {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0
	}
	var d time.Duration
	if secs, err := strconv.Atoi(v); err == nil {
		d = time.Duration(secs) * time.Second
	} else if t, err := http.ParseTime(v); err == nil {
		d = t.Sub(now)
	}
	return min(max(d, 0), maxRetryAfter)
}

// unwrapURLError drops the *url.Error around a client error: its message
// quotes the whole URL, whose path or query may hold a token.
func unwrapURLError(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		if ue.Timeout() {
			return fmt.Errorf("no answer in time (%v)", ue.Err)
		}
		return ue.Err
	}
	return err
}

// quote returns the start of an answer's body on one line, without
// control characters, for an error message.
func quote(body []byte) string {
	s := strings.Map(func(r rune) rune {
		if unicode.IsControl(r) {
			return ' '
		}
		return r
	}, string(bytes.ToValidUTF8(body, []byte("?"))))
	s = strings.Join(strings.Fields(s), " ")
	return truncate(s, answerQuoted)
}
