package pipeline

import (
	"regexp"
	"strings"
)

// Redacted is what RedactURLs puts in place of a URL's password, as
// net/url's URL.Redacted does.
const Redacted = "xxxxx"

// urlUserinfo finds "scheme://userinfo@" in free text. The authority ends at
// the first "/", "?", "#", space or quote; inside it the userinfo runs to
// the last "@", as url.Parse reads it.
var urlUserinfo = regexp.MustCompile(`([A-Za-z][A-Za-z0-9+.-]*://)([^/?#\s"'<>` + "`" + `]*)@`)

// RedactURLs returns s with the user info of every URL in it hidden, so
// that text bound for logs, errors, status output or the KV store carries
// no credentials. It follows net/url's URL.Redacted: the password becomes
// "xxxxx" and the user name stays ("https://user:xxxxx@host/"). It goes
// one step further where there is no password: the user part alone is
// hidden ("nats://xxxxx@host"), since NATS and many HTTP services take a
// token there. It is idempotent and cheap on text without "@".
//
// Only URLs written the way url.Parse reads them are found: a password
// with an unescaped "/", "?" or "#" ends the authority early and is not
// recognised as user info.
func RedactURLs(s string) string {
	if !strings.Contains(s, "@") || !strings.Contains(s, "://") {
		return s
	}
	return urlUserinfo.ReplaceAllStringFunc(s, func(m string) string {
		sub := urlUserinfo.FindStringSubmatch(m)
		scheme, userinfo := sub[1], sub[2]
		if user, _, ok := strings.Cut(userinfo, ":"); ok {
			return scheme + user + ":" + Redacted + "@"
		}
		return scheme + Redacted + "@"
	})
}

// RedactErr returns err with RedactURLs applied to its message. The result
// wraps err, so errors.Is, errors.As and IsPermanent see what they saw
// before. An error with nothing to hide is returned as it is; nil stays nil.
func RedactErr(err error) error {
	if err == nil {
		return nil
	}
	msg := err.Error()
	if red := RedactURLs(msg); red != msg {
		return &redactedError{msg: red, err: err}
	}
	return err
}

// redactedError is an error whose message had credentials removed.
type redactedError struct {
	msg string
	err error
}

func (e *redactedError) Error() string { return e.msg }
func (e *redactedError) Unwrap() error { return e.err }
