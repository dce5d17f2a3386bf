package notify

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"maps"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/mftflow/mftflow/pipeline"
)

// Channels of targets, the channel label of the metrics.
const (
	ChannelWebhook = "webhook"
	ChannelEmail   = "email"
)

// target is one place notifications go: a webhook or a mail server with
// its recipients. Rules that send to the same place share one target, and
// with it one subject on the stream, one consumer and one message per
// event.
type target struct {
	id       string
	channel  string
	endpoint string
	// rules are the indices of the rules that send here.
	rules []int
	// timeout bounds one attempt.
	timeout time.Duration
	send    func(ctx context.Context, m *Message, body []byte) error
}

// rule is one of the flow's rules with the target it sends to.
type rule struct {
	pipeline.NotifyRule
	target *target
}

// targetID fingerprints where a rule sends: everything that decides the
// recipient and the form of the notification, and nothing secret, so
// that a new secret or password keeps a target's pending messages, while
// a new URL or recipient list makes a new target. (The URL is hashed, so
// a token in it is not shown.)
func targetID(r pipeline.NotifyRule) string {
	var parts []string
	switch {
	case r.Webhook != nil:
		w := r.Webhook
		parts = []string{ChannelWebhook, w.URL, strings.Join(slices.Sorted(maps.Keys(w.Headers)), ","), w.Timeout.String()}
	case r.Email != nil:
		e := r.Email
		tls := e.TLS
		if tls == "" {
			tls = pipeline.EmailSTARTTLS
		}
		parts = []string{ChannelEmail, e.Addr(), tls, e.User, e.From, strings.Join(e.To, ","), e.Subject, e.Timeout.String()}
	}
	h := sha256.New()
	for _, p := range parts {
		h.Write([]byte(strconv.Itoa(len(p)) + ":" + p))
	}
	return hex.EncodeToString(h.Sum(nil)[:6])
}

// matches reports whether the rule asks to be told of ev, which is
// trigger.
func (r rule) matches(trigger string, ev pipeline.Event) bool {
	if !slices.Contains(r.On, trigger) {
		return false
	}
	if len(r.Sinks) == 0 {
		return true
	}
	switch trigger {
	case pipeline.NotifyPassed:
		return r.anySink(ev, func(committed bool) bool { return committed })
	case pipeline.NotifyFailed, pipeline.NotifyMixed:
		return r.anySink(ev, func(committed bool) bool { return !committed })
	}
	// An SLA event concerns one sink, or the whole flow.
	return ev.Sink == "" || slices.Contains(r.Sinks, ev.Sink)
}

// anySink reports whether want holds for the result of one of the rule's
// sinks. A result the event does not give is known from the outcome when
// it is passed (every sink committed) or failed (none did); for a mixed
// outcome without results the rule is told, since a missed notification
// costs more than an extra one.
func (r rule) anySink(ev pipeline.Event, want func(committed bool) bool) bool {
	for _, s := range r.Sinks {
		res, ok := ev.Sinks[s]
		switch {
		case ok:
			if want(res.Committed) {
				return true
			}
		case ev.Outcome == pipeline.NotifyPassed:
			if want(true) {
				return true
			}
		case ev.Outcome == pipeline.NotifyFailed:
			if want(false) {
				return true
			}
		default:
			return true
		}
	}
	return false
}
