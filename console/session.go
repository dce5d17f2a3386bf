package console

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"net/http"
	"strings"
	"time"
)

// cookieName is the session cookie's name.
const cookieName = "mftflow_console"

// identity is who makes a request.
type identity struct {
	Name string `json:"u"`
	Role Role   `json:"r"`
	// Via says how they got in: "password", "token" or "open" (no access
	// control); a token needs no CSRF token (no browser sends it by itself).
	Via string `json:"v"`
	// Nonce is the session's random id, of which the CSRF token is made.
	Nonce   string `json:"n,omitempty"`
	Expires int64  `json:"e,omitempty"` // Unix seconds
}

func (id identity) operator() bool { return id.Role == RoleOperator }

// sessions issues and checks signed session cookies. Nothing is kept on
// the server: a session is valid until it expires or the process ends (the
// key is made afresh at start), logging out removes the cookie.
type sessions struct {
	key    []byte
	ttl    time.Duration
	secure bool // HTTPS only
	path   string
	now    func() time.Time
}

func newSessions(ttl time.Duration, secure bool, path string, now func() time.Time) (*sessions, error) {
	key := make([]byte, 32)
	if _, err := rand.Read(key); err != nil {
		return nil, err
	}
	return &sessions{key: key, ttl: ttl, secure: secure, path: path, now: now}, nil
}

func (s *sessions) sign(payload string) string {
	m := hmac.New(sha256.New, s.key)
	m.Write([]byte("session|" + payload))
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}

// issue starts a session for id and sets its cookie.
func (s *sessions) issue(w http.ResponseWriter, id identity) identity {
	nonce := make([]byte, 16)
	rand.Read(nonce)
	id.Nonce = hex.EncodeToString(nonce)
	id.Expires = s.now().Add(s.ttl).Unix()
	b, _ := json.Marshal(id)
	payload := base64.RawURLEncoding.EncodeToString(b)
	http.SetCookie(w, &http.Cookie{Name: cookieName, Value: payload + "." + s.sign(payload), Path: s.path,
		MaxAge: int(s.ttl.Seconds()), HttpOnly: true, Secure: s.secure, SameSite: http.SameSiteStrictMode})
	return id
}

// read returns the identity of r's session cookie, if it is signed by this
// process and not expired.
func (s *sessions) read(r *http.Request) (identity, bool) {
	c, err := r.Cookie(cookieName)
	if err != nil {
		return identity{}, false
	}
	payload, sig, ok := strings.Cut(c.Value, ".")
	if !ok || !hmac.Equal([]byte(sig), []byte(s.sign(payload))) {
		return identity{}, false
	}
	b, err := base64.RawURLEncoding.DecodeString(payload)
	var id identity
	if err != nil || json.Unmarshal(b, &id) != nil || id.Nonce == "" || s.now().Unix() >= id.Expires {
		return identity{}, false
	}
	return id, true
}

// end removes the session cookie.
func (s *sessions) end(w http.ResponseWriter) {
	http.SetCookie(w, &http.Cookie{Name: cookieName, Value: "", Path: s.path, MaxAge: -1,
		HttpOnly: true, Secure: s.secure, SameSite: http.SameSiteStrictMode})
}

// csrf returns the CSRF token of a session: forms carry it in the field
// "csrf", htmx requests in the header X-CSRF-Token.
func (s *sessions) csrf(id identity) string {
	if id.Nonce == "" {
		return ""
	}
	m := hmac.New(sha256.New, s.key)
	m.Write([]byte("csrf|" + id.Nonce))
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}

// csrfOK reports whether r carries id's CSRF token. Requests with a bearer
// token need none.
func (s *sessions) csrfOK(r *http.Request, id identity) bool {
	if id.Via == "token" {
		return true
	}
	want := s.csrf(id)
	got := r.Header.Get("X-CSRF-Token")
	if got == "" {
		got = r.PostFormValue("csrf")
	}
	return want != "" && hmac.Equal([]byte(got), []byte(want))
}
