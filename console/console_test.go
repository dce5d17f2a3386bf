package console_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/mftflow/mftflow/console"
	"github.com/mftflow/mftflow/pipeline"
	"github.com/mftflow/mftflow/pipeline/bus"
	"github.com/mftflow/mftflow/pipeline/sla"
	"github.com/mftflow/mftflow/testkit"
)

// client is a browser-like HTTP client with a cookie jar that does not
// follow redirects.
type client struct {
	t    *testing.T
	base string
	c    *http.Client
}

func newClient(t *testing.T, base string) *client {
	jar, _ := cookiejar.New(nil)
	return &client{t: t, base: base, c: &http.Client{Jar: jar, Timeout: 30 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}}
}

func (c *client) do(method, path string, form url.Values, header map[string]string) (int, string, http.Header) {
	c.t.Helper()
	var body io.Reader
	if form != nil {
		body = strings.NewReader(form.Encode())
	}
	req, err := http.NewRequest(method, c.base+path, body)
	if err != nil {
		c.t.Fatal(err)
	}
	if form != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	req.Header.Set("Accept", "text/html")
	for k, v := range header {
		req.Header.Set(k, v)
	}
	resp, err := c.c.Do(req)
	if err != nil {
		c.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b), resp.Header
}

func (c *client) login(name, password string) {
	c.t.Helper()
	code, body, h := c.do("POST", "/console/login", url.Values{"name": {name}, "password": {password}, "next": {"/console/"}}, nil)
	if code != http.StatusSeeOther || h.Get("Location") != "/console/" {
		c.t.Fatalf("login as %s: %d %s\n%s", name, code, h.Get("Location"), body)
	}
}

var csrfField = regexp.MustCompile(`name="csrf" value="([^"]+)"`)

// csrf returns the CSRF token of the session, from a page's logout form.
func (c *client) csrf() string {
	c.t.Helper()
	_, body, _ := c.do("GET", "/console/", nil, nil)
	m := csrfField.FindStringSubmatch(body)
	if m == nil {
		c.t.Fatalf("no CSRF token in the page:\n%s", body)
	}
	return m[1]
}

func TestNewWantsAccessOrNoAuth(t *testing.T) {
	js := newJS(t)
	if _, err := console.New(console.Options{JS: js}); !errors.Is(err, console.ErrNoAccess) {
		t.Errorf("New without access: %v, want ErrNoAccess", err)
	}
	bad := &console.Access{Users: []console.User{{Name: "x", Password: "secret", Role: console.RoleOperator}}}
	if _, err := console.New(console.Options{JS: js, Access: bad}); err == nil || !strings.Contains(err.Error(), "users[0] (x): password is not a bcrypt hash") {
		t.Errorf("New with a clear-text password: %v", err)
	}
}

func TestLoadAccess(t *testing.T) {
	dir := t.TempDir()
	hash, err := console.HashPassword("correct horse")
	if err != nil {
		t.Fatal(err)
	}
	_, sum, _ := console.NewToken()
	good := "users:\n  - {name: alice, password: '" + hash + "', role: operator}\ntokens:\n  - {name: bot, sha256: " + sum + ", role: viewer}\n"
	for _, c := range []struct{ name, body, err string }{
		{"good", good, ""},
		{"typo", "user:\n  - {name: a}\n", "field user not found"},
		{"empty", "users: []\n", "no users and no tokens"},
		{"role", strings.Replace(good, "role: operator", "role: admin", 1), `users[0] (alice): role "admin": want viewer or operator`},
		{"twice", good + "  - {name: alice, sha256: " + sum + ", role: viewer}\n", `tokens[1]: name "alice" is also used by users[0]`},
		{"token", strings.Replace(good, sum, "abc", 1), "tokens[0] (bot): sha256 is not 64 hex digits"},
	} {
		p := filepath.Join(dir, c.name+".yaml")
		os.WriteFile(p, []byte(c.body), 0o600)
		a, err := console.LoadAccess(p)
		switch {
		case c.err == "" && err != nil:
			t.Errorf("%s: %v", c.name, err)
		case c.err == "" && (len(a.Users) != 1 || len(a.Tokens) != 1):
			t.Errorf("%s: %+v", c.name, a)
		case c.err != "" && (err == nil || !strings.Contains(err.Error(), c.err)):
			t.Errorf("%s: error %v, want one saying %q", c.name, err, c.err)
		}
	}
	if _, err := console.HashPassword("short"); err == nil {
		t.Error("HashPassword of a 5-character password: no error")
	}
}

// Logins, roles and CSRF tokens, as an HTTP client sees them.
func TestAccessControl(t *testing.T) {
	s := startSite(t, "off", map[string][]byte{"report.csv": []byte("a,b\n1,2\n")}, map[string][]byte{"report.csv": []byte("in the way")})
	id, _ := s.failedDelivery(t, "partner")
	replay := "/console/flows/demo/replay"
	form := func(csrf string) url.Values {
		v := url.Values{"file": {id}, "sink": {"partner"}}
		if csrf != "" {
			v.Set("csrf", csrf)
		}
		return v
	}

	anon := newClient(t, s.url)
	if code, _, h := anon.do("GET", "/console/flows/demo", nil, nil); code != http.StatusSeeOther || !strings.HasPrefix(h.Get("Location"), "/console/login?next=") {
		t.Errorf("a page without login: %d to %q, want 303 to the login page", code, h.Get("Location"))
	}
	if code, _, _ := anon.do("GET", "/console/events?view=overview", nil, map[string]string{"Accept": "text/event-stream"}); code != http.StatusUnauthorized {
		t.Errorf("events without login: %d, want 401", code)
	}
	if code, body, _ := anon.do("POST", "/console/login", url.Values{"name": {operatorName}, "password": {"wrong"}}, nil); code != http.StatusUnauthorized || !strings.Contains(body, "not right") {
		t.Errorf("a wrong password: %d\n%s", code, body)
	}
	if code, _, _ := anon.do("POST", replay, form(""), nil); code != http.StatusUnauthorized {
		t.Errorf("a replay without login: %d, want 401", code)
	}

	viewer := newClient(t, s.url)
	viewer.login(viewerName, viewerPassword)
	if code, body, _ := viewer.do("GET", "/console/flows/demo/failures", nil, nil); code != http.StatusOK || strings.Contains(body, `class="replay"`) || !strings.Contains(body, "Replay needs the operator role") {
		t.Errorf("the failures page for a viewer: %d, want no Replay button\n%s", code, body)
	}
	if code, body, _ := viewer.do("POST", replay, form(viewer.csrf()), nil); code != http.StatusForbidden || !strings.Contains(body, "bob is a viewer") {
		t.Errorf("a replay by a viewer with the CSRF token: %d %q, want 403", code, body)
	}

	op := newClient(t, s.url)
	op.login(operatorName, operatorPassword)
	for _, c := range []struct {
		name   string
		form   url.Values
		header map[string]string
	}{
		{"no token", form(""), nil},
		{"another session's token", form(viewer.csrf()), nil},
		{"a token from another site", form(op.csrf()), map[string]string{"Origin": "https://evil.example", "Sec-Fetch-Site": "cross-site"}},
	} {
		if code, _, _ := op.do("POST", replay, c.form, c.header); code != http.StatusForbidden {
			t.Errorf("a replay by an operator with %s: %d, want 403", c.name, code)
		}
	}
	if got := s.replayEvents(t); len(got) != 0 {
		t.Errorf("refused replays are in the audit trail: %q", got)
	}

	// Bearer tokens: the role holds; no CSRF token is needed.
	bot := newClient(t, s.url)
	if code, _, _ := bot.do("POST", replay, form(""), map[string]string{"Authorization": "Bearer " + s.viewerToken}); code != http.StatusForbidden {
		t.Errorf("a replay with a viewer's token: %d, want 403", code)
	}
	if code, _, _ := bot.do("GET", "/console/flows/demo", nil, map[string]string{"Authorization": "Bearer nope"}); code != http.StatusUnauthorized {
		t.Errorf("a wrong token: %d, want 401", code)
	}
	os.Remove(filepath.Join(s.dir, "partner", "report.csv"))
	code, body, _ := bot.do("POST", replay, form(""), map[string]string{"Authorization": "Bearer " + s.operatorToken})
	if code != http.StatusOK || !strings.Contains(body, "Queued again by deploy-bot (console)") {
		t.Errorf("a replay with an operator's token: %d\n%s", code, body)
	}
	waitFor(t, time.Minute, "the replayed delivery", func() bool {
		return fileSum(filepath.Join(s.dir, "partner", "report.csv")) == fileSum(filepath.Join(s.dir, "in", "report.csv"))
	})
	if got := s.replayEvents(t); len(got) != 1 || !contains(got, id+" partner by deploy-bot (console)") {
		t.Errorf("replay events in the audit trail: %q, want one by deploy-bot (console)", got)
	}

	// Logging out ends the session.
	op.do("POST", "/console/logout", url.Values{"csrf": {op.csrf()}}, nil)
	if code, _, _ := op.do("GET", "/console/", nil, nil); code != http.StatusSeeOther {
		t.Errorf("a page after logging out: %d, want 303 to the login page", code)
	}
}

// Without access control the console answers on loopback only.
func TestNoAuthIsLoopbackOnly(t *testing.T) {
	js := newJS(t)
	c, err := console.New(console.Options{JS: js, NoAuth: true})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	for addr, want := range map[string]int{"127.0.0.1:5000": http.StatusOK, "[::1]:5000": http.StatusOK, "192.0.2.7:5000": http.StatusForbidden} {
		req := httptest.NewRequest("GET", "/console/", nil)
		req.RemoteAddr = addr
		w := httptest.NewRecorder()
		c.ServeHTTP(w, req)
		if w.Code != want {
			t.Errorf("from %s: %d, want %d", addr, w.Code, want)
		}
	}
}

// The assets are the vendored files, served from the binary, and no page
// refers to another host.
func TestAssetsAreEmbedded(t *testing.T) {
	s := startSite(t, "off", map[string][]byte{"a.txt": []byte("a")}, nil)
	readme, err := os.ReadFile("assets/README.md")
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"htmx.min.js", "htmx-ext-sse.min.js"} {
		resp, err := http.Get(s.url + "/console/assets/" + name)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		sum := sha256.Sum256(b)
		if resp.StatusCode != http.StatusOK || !strings.Contains(string(readme), hex.EncodeToString(sum[:])) {
			t.Errorf("%s: %d, sha256 %x not the one in assets/README.md", name, resp.StatusCode, sum)
		}
	}
	c := newClient(t, s.url)
	c.login(operatorName, operatorPassword)
	for _, p := range []string{"/console/", "/console/flows/demo", "/console/flows/demo/failures", "/console/search?q=a"} {
		code, body, h := c.do("GET", p, nil, nil)
		if code != http.StatusOK {
			t.Errorf("%s: %d\n%s", p, code, body)
		}
		if regexp.MustCompile(`(src|href|action|sse-connect)="(https?:)?//`).MatchString(body) {
			t.Errorf("%s refers to another host:\n%s", p, body)
		}
		if csp := h.Get("Content-Security-Policy"); !strings.Contains(csp, "script-src 'self'") {
			t.Errorf("%s: Content-Security-Policy %q", p, csp)
		}
	}
}

func newJS(t *testing.T) jetstream.JetStream {
	js, err := jetstream.New(testkit.ConnectNATS(t, testkit.StartNATS(t)))
	if err != nil {
		t.Fatal(err)
	}
	return js
}

// Close ends open event streams, so that a server shuts down at once.
func TestCloseEndsEventStreams(t *testing.T) {
	c, err := console.New(console.Options{JS: newJS(t), NoAuth: true})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(c)
	defer srv.Close()
	resp, err := http.Get(srv.URL + "/console/events?view=overview")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != "text/event-stream" {
		t.Fatalf("events: %d %s", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	ended := make(chan error, 1)
	go func() {
		_, err := io.Copy(io.Discard, resp.Body)
		ended <- err
	}()
	c.Close()
	select {
	case err := <-ended:
		if err != nil {
			t.Errorf("the stream ended with %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Error("the event stream is still open 5s after Close")
	}
}

// Served over TLS, the session cookie is HTTPS-only, HttpOnly and
// SameSite=Strict.
func TestSecureSessionCookie(t *testing.T) {
	access, _, _ := accessForTests(t)
	c, err := console.New(console.Options{JS: newJS(t), Access: access, Secure: true})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	req := httptest.NewRequest("POST", "/console/login", strings.NewReader(url.Values{"name": {operatorName}, "password": {operatorPassword}}.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	w := httptest.NewRecorder()
	c.ServeHTTP(w, req)
	cookies := w.Result().Cookies()
	if w.Code != http.StatusSeeOther || len(cookies) != 1 {
		t.Fatalf("login: %d, cookies %v", w.Code, cookies)
	}
	if k := cookies[0]; !k.Secure || !k.HttpOnly || k.SameSite != http.SameSiteStrictMode || k.Path != "/console/" {
		t.Errorf("session cookie %+v: want Secure, HttpOnly, SameSite=Strict, Path=/console/", k)
	}
}

// A flow's page shows its arrival SLAs as its runner saved them.
func TestFlowPageShowsSLAs(t *testing.T) {
	s := startSite(t, "off", map[string][]byte{"a.txt": []byte("a")}, nil)
	ctx := context.Background()
	kv, err := s.js.KeyValue(ctx, bus.Names{Flow: "demo"}.Bucket())
	if err != nil {
		t.Fatal(err)
	}
	exps := []pipeline.Expectation{{Name: "daily-orders", Files: "orders-*.csv", By: "daily 06:00", Count: 2}}
	if err := sla.SaveExpectations(ctx, kv, exps); err != nil {
		t.Fatal(err)
	}
	c := newClient(t, s.url)
	c.login(viewerName, viewerPassword)
	code, body, _ := c.do("GET", "/console/flows/demo", nil, nil)
	if code != http.StatusOK || !strings.Contains(body, "daily-orders") || !strings.Contains(body, "orders-*.csv") || !strings.Contains(body, "0 of 2") {
		t.Errorf("flow page: %d, without the expectation daily-orders (0 of 2):\n%s", code, body)
	}
}
