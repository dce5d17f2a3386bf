package pipeline

import (
	"errors"
	"fmt"
	"maps"
	"net"
	"net/mail"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
)

// The triggers a NotifyRule's On lists: a file's outcome (an EventAcked
// with that Outcome) or an SLA event.
const (
	NotifyPassed     = "passed"
	NotifyFailed     = "failed"
	NotifyMixed      = "mixed"
	NotifySLAWarning = "sla_warning"
	NotifySLAMissed  = "sla_missed"
	NotifySLAMet     = "sla_met"
)

// NotifyTriggers lists every accepted NotifyRule.On value.
var NotifyTriggers = []string{NotifyPassed, NotifyFailed, NotifyMixed, NotifySLAWarning, NotifySLAMissed, NotifySLAMet}

// How an EmailTarget reaches its server.
const (
	// EmailSTARTTLS connects in plain text and upgrades with STARTTLS
	// before anything else is sent; a server that does not offer it is an
	// error (the default; port 587).
	EmailSTARTTLS = "starttls"
	// EmailImplicitTLS speaks TLS from the first byte (port 465).
	EmailImplicitTLS = "tls"
	// EmailPlain sends in clear text (port 25): only to a server on this
	// machine, such as a local relay.
	EmailPlain = "none"
)

// EmailTLSModes lists every accepted EmailTarget.TLS value.
var EmailTLSModes = []string{EmailSTARTTLS, EmailImplicitTLS, EmailPlain}

// NotifyPlaceholders are the names an EmailTarget.Subject may hold in
// braces, such as "{flow}: {outcome} {name}". outcome is the rule's
// trigger (passed, failed, mixed, sla_missed...).
var NotifyPlaceholders = []string{"flow", "outcome", "name", "size", "sink", "file_id", "detail"}

// Bounds of a flow's notifications, and defaults of a target's settings.
const (
	// MaxNotifyRules is the most entries of a flow's notify list.
	MaxNotifyRules = 32
	// MaxNotifyTimeout bounds WebhookTarget.Timeout and EmailTarget.Timeout.
	MaxNotifyTimeout = 5 * time.Minute
	// MaxRecipients bounds EmailTarget.To.
	MaxRecipients = 100
	// MaxWebhookHeaders bounds WebhookTarget.Headers.
	MaxWebhookHeaders = 32
	// DefaultWebhookTimeout and DefaultEmailTimeout bound one attempt when
	// a target sets no Timeout.
	DefaultWebhookTimeout = 10 * time.Second
	DefaultEmailTimeout   = 30 * time.Second
	// DefaultEmailSubject is the subject of a target that sets none.
	DefaultEmailSubject = "{flow}: {outcome} {name}"
)

// NotifyRule is one entry of a flow's notify list: which events are told,
// and to whom. Package pipeline/notify sends them.
type NotifyRule struct {
	// On lists the triggers (NotifyTriggers); at least one.
	On []string
	// Sinks, when set, narrows file outcomes to those that concern these
	// sinks: for passed, the file committed at one of them; for failed and
	// mixed, its delivery to one of them failed. An SLA event that names a
	// sink must name one of them; one that names none is told.
	Sinks []string
	// Exactly one of Webhook and Email is set.
	Webhook *WebhookTarget
	Email   *EmailTarget
	// Pos is where the rule was declared; zero for rules built in Go.
	Pos Pos
}

// WebhookTarget posts each notification as JSON to URL.
type WebhookTarget struct {
	// URL is an http or https URL. It may carry a token in its path or
	// query, so only its scheme and host are ever shown (Endpoint).
	URL string
	// Secret, when set, signs each body: X-Mftflow-Signature is
	// "sha256=" and the hex HMAC-SHA256 of the body under Secret. Without
	// it no signature is sent and receivers cannot tell a forged
	// notification from a real one.
	Secret string
	// Headers are added to each request (an Authorization token, a team
	// name). Their values are treated as secrets.
	Headers map[string]string
	// Timeout bounds one attempt; 0 means DefaultWebhookTimeout.
	Timeout time.Duration
}

// EmailTarget mails each notification as plain text over SMTP.
type EmailTarget struct {
	// Server is "host:port", or "host" for the TLS mode's usual port
	// (starttls 587, tls 465, none 25).
	Server string
	// TLS is EmailSTARTTLS (default when empty), EmailImplicitTLS or
	// EmailPlain (only for a server on this machine).
	TLS string
	// User and Password, when set, log in with AUTH PLAIN (or LOGIN when
	// the server offers only that). Set both or neither.
	User, Password string
	From           string
	To             []string
	// Subject is a template with NotifyPlaceholders in braces; empty means
	// DefaultEmailSubject.
	Subject string
	// Timeout bounds one attempt (connection to QUIT); 0 means
	// DefaultEmailTimeout.
	Timeout time.Duration
}

// NotifyError is a problem in one NotifyRule: Field names the setting in
// flow-file terms ("on", "webhook.url", "email.to") and Index its item in a
// list (-1 for other settings). Messages never hold a secret, nor a
// webhook URL beyond its scheme and host.
type NotifyError struct {
	Field string
	Index int
	Err   error
}

func (e *NotifyError) Error() string {
	if e.Index < 0 {
		return fmt.Sprintf("%s: %v", e.Field, e.Err)
	}
	return fmt.Sprintf("%s[%d]: %v", e.Field, e.Index, e.Err)
}

func (e *NotifyError) Unwrap() error { return e.Err }

// Channel is "webhook" or "email", the kind of the rule's target ("" when
// it has none).
func (r NotifyRule) Channel() string {
	switch {
	case r.Webhook != nil:
		return "webhook"
	case r.Email != nil:
		return "email"
	}
	return ""
}

// Check reports every problem of the rule on its own, each a *NotifyError
// (joined with errors.Join). Whether Sinks name the flow's sinks is
// CheckSinks's part.
func (r NotifyRule) Check() error {
	var errs []error
	add := func(field string, index int, format string, args ...any) {
		errs = append(errs, &NotifyError{Field: field, Index: index, Err: fmt.Errorf(format, args...)})
	}
	if len(r.On) == 0 {
		add("on", -1, "say which events to tell: a list of %s", strings.Join(NotifyTriggers, ", "))
	}
	for i, on := range r.On {
		if !contains(NotifyTriggers, on) {
			add("on", i, "unknown event %q (known: %s)", on, strings.Join(NotifyTriggers, ", "))
		}
	}
	for i, s := range r.Sinks {
		if s == "" {
			add("sinks", i, "empty sink name: name one of the flow's sinks")
		}
	}
	switch {
	case r.Webhook == nil && r.Email == nil:
		add("webhook", -1, "the rule has no target: add webhook: {url: ...} or email: {server: ..., from: ..., to: [...]}")
	case r.Webhook != nil && r.Email != nil:
		add("email", -1, "the rule has both a webhook and an email target: give each its own rule, with the same on: list")
	case r.Webhook != nil:
		errs = append(errs, r.Webhook.check()...)
	default:
		errs = append(errs, r.Email.check()...)
	}
	return errors.Join(errs...)
}

// CheckSinks reports each of r.Sinks that is not among sinks (the flow's
// sink names, as Flow.WithDefaults fills them in), as a *NotifyError.
func (r NotifyRule) CheckSinks(sinks []string) error {
	var errs []error
	for i, s := range r.Sinks {
		if s != "" && !contains(sinks, s) {
			errs = append(errs, &NotifyError{Field: "sinks", Index: i,
				Err: fmt.Errorf("unknown sink %q (the flow's sinks: %s)", s, strings.Join(sinks, ", "))})
		}
	}
	return errors.Join(errs...)
}

func checkTimeout(field string, d time.Duration) error {
	if d < 0 || d > MaxNotifyTimeout {
		return &NotifyError{Field: field, Index: -1, Err: fmt.Errorf("%v is out of range: give a duration from 1s to %v, or leave it out", d, MaxNotifyTimeout)}
	}
	return nil
}

// reservedHeaders are set by the sender and may not be given in a rule.
var reservedHeaders = []string{"content-type", "content-length", "host", "transfer-encoding", "connection"}

// headerName is an HTTP field name (RFC 9110 token).
var headerName = regexp.MustCompile("^[!#$%&'*+.^_`|~0-9A-Za-z-]+$")

func (w *WebhookTarget) check() []error {
	var errs []error
	add := func(field string, format string, args ...any) {
		errs = append(errs, &NotifyError{Field: field, Index: -1, Err: fmt.Errorf(format, args...)})
	}
	if err := checkWebhookURL(w.URL); err != nil {
		add("webhook.url", "%v", err)
	}
	if len(w.Headers) > MaxWebhookHeaders {
		add("webhook.headers", "%d headers: at most %d", len(w.Headers), MaxWebhookHeaders)
	}
	for _, name := range slices.Sorted(maps.Keys(w.Headers)) {
		lower := strings.ToLower(name)
		switch {
		case !headerName.MatchString(name):
			add("webhook.headers", "%q is not a valid header name: use letters, digits and '-'", name)
		case contains(reservedHeaders, lower) || strings.HasPrefix(lower, "x-mftflow-"):
			add("webhook.headers", "header %q is set by mftflow itself: leave it out", name)
		case strings.ContainsAny(w.Headers[name], "\r\n\x00"):
			add("webhook.headers", "the value of header %q holds a line break or NUL: give it on one line", name)
		}
	}
	if err := checkTimeout("webhook.timeout", w.Timeout); err != nil {
		errs = append(errs, err)
	}
	return errs
}

// checkWebhookURL checks an http(s) URL without quoting it: its path or
// query may hold a token.
func checkWebhookURL(raw string) error {
	if raw == "" {
		return errors.New(`missing: give the receiver's address, such as "https://hooks.example.com/mftflow"`)
	}
	u, err := url.Parse(raw)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return fmt.Errorf("not a valid URL (%v): write it as https://host/path", err)
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		if u.Scheme == "" {
			return errors.New("the URL has no scheme: write it as https://host/path")
		}
		return fmt.Errorf("scheme %q is not supported: use https (or http)", u.Scheme)
	}
	if u.Host == "" || u.Hostname() == "" {
		return errors.New("the URL has no host: write it as https://host/path")
	}
	if p := u.Port(); p != "" {
		if n, err := strconv.Atoi(p); err != nil || n < 1 || n > 65535 {
			return fmt.Errorf("port %q is not a number from 1 to 65535", p)
		}
	}
	return nil
}

// Endpoint names the receiver for logs, errors and status: the URL's
// scheme and host only, since its path or query may hold a token.
func (w WebhookTarget) Endpoint() string {
	u, err := url.Parse(w.URL)
	if err != nil || u.Host == "" {
		return "(invalid webhook URL)"
	}
	return u.Scheme + "://" + u.Host
}

// String names the target without its secrets.
func (w WebhookTarget) String() string { return "webhook " + w.Endpoint() }

// GoString is String, so that %#v shows no secret either.
func (w WebhookTarget) GoString() string { return w.String() }

func (e *EmailTarget) check() []error {
	var errs []error
	add := func(field string, index int, format string, args ...any) {
		errs = append(errs, &NotifyError{Field: field, Index: index, Err: fmt.Errorf(format, args...)})
	}
	if e.TLS != "" && !contains(EmailTLSModes, e.TLS) {
		add("email.tls", -1, "want one of %s, got %q", strings.Join(EmailTLSModes, ", "), e.TLS)
	}
	host, _, err := splitServer(e.Server, e.TLS)
	switch {
	case err != nil:
		add("email.server", -1, "%v", err)
	case e.TLS == EmailPlain && !isLoopback(host):
		add("email.tls", -1, "none sends the mail (and any password) in clear text: it is allowed only for a server on this machine (localhost, 127.0.0.1, ::1); use starttls or tls")
	}
	switch {
	case e.User != "" && e.Password == "":
		add("email.password", -1, "user %q is set but the password is empty: set both, or neither to send without logging in", e.User)
	case e.User == "" && e.Password != "":
		add("email.user", -1, "a password is set but no user: set both, or neither to send without logging in")
	}
	if e.From == "" {
		add("email.from", -1, `missing: give the sender's address, such as "mftflow@example.com"`)
	} else if _, err := mail.ParseAddress(e.From); err != nil {
		add("email.from", -1, "%q is not a mail address (%v)", e.From, err)
	}
	if len(e.To) == 0 {
		add("email.to", -1, "no recipients: list at least one address")
	}
	if len(e.To) > MaxRecipients {
		add("email.to", -1, "%d recipients: at most %d (use a mailing list)", len(e.To), MaxRecipients)
	}
	for i, to := range e.To {
		if _, err := mail.ParseAddress(to); err != nil {
			add("email.to", i, "%q is not a mail address (%v)", to, err)
		}
	}
	if err := checkSubject(e.Subject); err != nil {
		add("email.subject", -1, "%v", err)
	}
	if err := checkTimeout("email.timeout", e.Timeout); err != nil {
		errs = append(errs, err)
	}
	return errs
}

// subjectPlaceholder finds "{name}" in a subject template.
var subjectPlaceholder = regexp.MustCompile(`\{([^{}]*)\}`)

func checkSubject(s string) error {
	if strings.ContainsAny(s, "\r\n\x00") {
		return errors.New("the subject holds a line break or NUL: write it on one line")
	}
	for _, m := range subjectPlaceholder.FindAllStringSubmatch(s, -1) {
		if !contains(NotifyPlaceholders, m[1]) {
			return fmt.Errorf("unknown placeholder {%s} (known: {%s})", m[1], strings.Join(NotifyPlaceholders, "}, {"))
		}
	}
	return nil
}

// DefaultEmailPort is a TLS mode's usual port.
func DefaultEmailPort(tls string) string {
	switch tls {
	case EmailImplicitTLS:
		return "465"
	case EmailPlain:
		return "25"
	}
	return "587"
}

// Addr is the server's "host:port", with the TLS mode's usual port when
// Server has none.
func (e EmailTarget) Addr() string {
	host, port, err := splitServer(e.Server, e.TLS)
	if err != nil {
		return e.Server
	}
	return net.JoinHostPort(host, port)
}

// Endpoint names the server for logs, errors and status.
func (e EmailTarget) Endpoint() string { return "smtp://" + e.Addr() }

// String names the target without its password.
func (e EmailTarget) String() string { return "email via " + e.Addr() }

// GoString is String, so that %#v shows no password either.
func (e EmailTarget) GoString() string { return e.String() }

// splitServer splits "host:port" or "host" (which gets tls's usual port).
func splitServer(server, tls string) (host, port string, err error) {
	if server == "" {
		return "", "", errors.New(`missing: give the SMTP server as "host:port", such as "smtp.example.com:587"`)
	}
	host, port, err = net.SplitHostPort(server)
	if err != nil {
		if strings.Contains(server, ":") && !strings.HasPrefix(server, "[") && strings.Count(server, ":") == 1 {
			return "", "", fmt.Errorf(`%q is not "host:port": the port must be a number from 1 to 65535`, server)
		}
		host, port = strings.Trim(server, "[]"), DefaultEmailPort(tls)
	}
	if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
		return "", "", fmt.Errorf(`%q is not "host:port": the port must be a number from 1 to 65535`, server)
	}
	if host == "" || strings.ContainsAny(host, " /\\@?#\t") {
		return "", "", fmt.Errorf(`%q is not "host:port": give a host name or IP address, such as "smtp.example.com:587"`, server)
	}
	return host, port, nil
}

// isLoopback reports whether host names this machine.
func isLoopback(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// checkNotify checks f's notify list: its length, each rule, and the sinks
// the rules name. Each problem is reported with the rule's position.
func (f Flow) checkNotify(at func(Pos, string, ...any)) {
	if len(f.Notify) > MaxNotifyRules {
		at(f.Pos, "notify: %d rules: at most %d (send to a list or a hook that fans out)", len(f.Notify), MaxNotifyRules)
	}
	sinks := f.WithDefaults().sinkNames()
	for i, r := range f.Notify {
		for _, err := range []error{r.Check(), r.CheckSinks(sinks)} {
			for _, e := range joined(err) {
				at(r.Pos, "notify[%d].%v", i, e)
			}
		}
	}
}

func (f Flow) sinkNames() []string {
	names := make([]string, len(f.Sinks))
	for i, s := range f.Sinks {
		names[i] = s.Name
	}
	return names
}

// joined returns the errors joined in err, or err itself; nil gives none.
func joined(err error) []error {
	if err == nil {
		return nil
	}
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		return j.Unwrap()
	}
	return []error{err}
}
