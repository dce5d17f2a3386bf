package notify

import (
	"errors"
	"fmt"
	"time"
)

// Errors of sending.
var (
	// ErrRefused marks an attempt the receiver refused for good: a webhook
	// answered 3xx, or 4xx other than 401, 403, 408, 425 and 429; a mail
	// server answered 5xx other than about the login (530, 534, 535,
	// 538). The notification is given up at once: the same request would
	// be refused again. Refused credentials are tried again: once they
	// are fixed, the waiting notifications pass.
	ErrRefused = errors.New("refused by the receiver")
)

// SendError is one failed attempt to send a notification. Permanent
// (ErrRefused) ones are given up at once; others are tried again after a
// backoff, and after RetryAfter when the receiver asked for it. Messages
// name the target by its Endpoint only, never its URL path, secret or
// password.
type SendError struct {
	// Endpoint is the target's scheme and host ("https://hooks.example.com",
	// "smtp://smtp.example.com:587").
	Endpoint string
	// Op is the step that failed: "POST", "connect", "STARTTLS", "AUTH",
	// "MAIL FROM", "RCPT TO", "DATA".
	Op string
	// Code is the HTTP status or SMTP reply code; 0 when there was none.
	Code int
	// Permanent says the receiver refused the notification for good.
	Permanent bool
	// RetryAfter is what the receiver asked to wait (HTTP Retry-After); 0
	// when it said nothing.
	RetryAfter time.Duration
	Err        error
}

func (e *SendError) Error() string {
	msg := fmt.Sprintf("%s: %s: %v", e.Endpoint, e.Op, e.Err)
	if e.Permanent {
		return msg + "; given up: the receiver would refuse it again"
	}
	return msg
}

func (e *SendError) Unwrap() error {
	if e.Permanent {
		return errors.Join(ErrRefused, e.Err)
	}
	return e.Err
}

// IsPermanent reports whether err is an attempt the receiver refused for
// good.
func IsPermanent(err error) bool { return errors.Is(err, ErrRefused) }
