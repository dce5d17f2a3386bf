package notify

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"time"

	"github.com/cenkalti/backoff/v5"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// sender sends one target's notifications, one at a time, from its
// durable consumer. A notification is acked once the receiver took it,
// and otherwise handed back to the stream with a delay (NAK), so that
// what waits survives a crash and any runner of the flow may send it.
type sender struct {
	n      *Notifier
	t      *target
	cons   jetstream.Consumer
	health health
	log    *slog.Logger
}

// health is a target's standing in this process. While it fails, one
// notification at a time probes it, after a backoff that grows with each
// failure; the others are handed back until then without an attempt, so
// that a receiver that is down gets a request per backoff step, not one
// per waiting notification, and gets the backlog as soon as it answers.
type health struct {
	backoff *backoff.ExponentialBackOff
	retryAt time.Time
	failing bool
	since   time.Time
	lastErr string
}

// Pauses of the sender's loop.
const (
	// pollWait is how long one pull for the next notification waits.
	pollWait = 30 * time.Second
	// busPause is the wait after the bus failed to hand over a message
	// (a connection being re-established).
	busPause = time.Second
	// jitter spreads the return of notifications held back together.
	jitter = 0.1
)

func newSender(n *Notifier, t *target, cons jetstream.Consumer) *sender {
	return &sender{n: n, t: t, cons: cons,
		health: health{backoff: &backoff.ExponentialBackOff{
			InitialInterval:     n.opts.InitialBackoff,
			RandomizationFactor: 0.2,
			Multiplier:          2,
			MaxInterval:         n.opts.MaxBackoff,
		}},
		log: n.log.With("target", t.endpoint, "channel", t.channel),
	}
}

// run sends until ctx ends.
func (s *sender) run(ctx context.Context) {
	for ctx.Err() == nil {
		msg, err := s.next(ctx)
		switch {
		case err != nil:
			s.log.Debug("pulling the next notification", "err", err)
			sleep(ctx, busPause)
		case msg != nil:
			s.handle(ctx, msg)
		}
	}
}

// next waits for the target's next notification; nil when none came.
func (s *sender) next(ctx context.Context) (jetstream.Msg, error) {
	pctx, cancel := context.WithTimeout(ctx, pollWait)
	defer cancel()
	msg, err := s.cons.Next(jetstream.FetchContext(pctx))
	if err != nil && (ctx.Err() != nil || errors.Is(err, nats.ErrTimeout) || errors.Is(err, context.DeadlineExceeded)) {
		return nil, nil
	}
	return msg, err
}

// handle sends one notification, or hands it back for later, or gives it
// up.
func (s *sender) handle(ctx context.Context, msg jetstream.Msg) {
	m, stored, err := decode(msg)
	if err != nil {
		// A message nobody can read never becomes readable.
		s.log.Error("dropping an unreadable notification from the bus", "subject", msg.Subject(), "err", err)
		s.n.metrics.givenUp.WithLabelValues(s.n.flow, s.t.channel).Inc()
		_ = msg.Term()
		return
	}
	now := time.Now()
	deadline := stored.Add(s.n.opts.GiveUpAfter)
	if wait := s.health.retryAt.Sub(now); wait > 0 {
		if !now.Before(deadline) {
			s.giveUp(ctx, msg, &m, errors.New(s.health.lastErr))
			return
		}
		s.later(msg, wait, deadline, now)
		return
	}
	err = s.attempt(ctx, &m, msg.Data())
	switch {
	case err == nil:
		s.sent(ctx, msg)
	case ctx.Err() != nil:
		// Closing: whoever sends next has it at once. It may have
		// arrived; then it arrives twice, with the same id.
		_ = msg.Nak()
	default:
		s.failed(ctx, msg, &m, err, deadline)
	}
}

// decode reads a notification and when the bus stored it.
func decode(msg jetstream.Msg) (Message, time.Time, error) {
	var m Message
	meta, err := msg.Metadata()
	if err != nil {
		return m, time.Time{}, err
	}
	err = json.Unmarshal(msg.Data(), &m)
	return m, meta.Timestamp, err
}

// attempt sends m once, within the target's timeout.
func (s *sender) attempt(ctx context.Context, m *Message, body []byte) error {
	actx, cancel := context.WithTimeout(ctx, s.t.timeout)
	defer cancel()
	return s.t.send(actx, m, body)
}

// later hands msg back to come again after wait (spread a little), or at
// its give-up deadline if that is sooner.
func (s *sender) later(msg jetstream.Msg, wait time.Duration, deadline, now time.Time) {
	wait += time.Duration(rand.Float64() * jitter * float64(wait))
	if left := deadline.Sub(now); left < wait {
		wait = max(left, 0)
	}
	if err := msg.NakWithDelay(wait); err != nil {
		s.log.Debug("handing a notification back to the bus", "err", err)
	}
}

func (s *sender) sent(ctx context.Context, msg jetstream.Msg) {
	if err := msg.Ack(); err != nil {
		// The receiver has it; the bus will hand it over again, and the
		// receiver gets it twice, with the same id.
		s.log.Warn("acknowledging a sent notification on the bus", "err", err)
	}
	s.n.metrics.sent.WithLabelValues(s.n.flow, s.t.channel).Inc()
	s.health.backoff.Reset()
	s.health.retryAt = time.Time{}
	if !s.health.failing {
		return
	}
	since := s.health.since
	s.health.failing = false
	s.log.Info("notifications are sent again", "failing_since", since)
	s.record(ctx, func(st *TargetState) {
		st.Failing, st.Since, st.Failures = false, time.Time{}, 0
		st.LastAttempt = time.Now()
	})
}

// failed handles a failed attempt: give up when the receiver refused it
// for good or the notification is past its give-up age, else hand it
// back until the target's next try.
func (s *sender) failed(ctx context.Context, msg jetstream.Msg, m *Message, err error, deadline time.Time) {
	now := time.Now()
	s.n.metrics.attemptFailures.WithLabelValues(s.n.flow, s.t.channel).Inc()
	first := !s.health.failing
	if first {
		s.health.failing, s.health.since = true, now
	}
	s.health.lastErr = err.Error()
	var wait time.Duration
	if !IsPermanent(err) {
		wait = s.health.backoff.NextBackOff()
		var se *SendError
		if errors.As(err, &se) && se.RetryAfter > wait {
			wait = se.RetryAfter
		}
		s.health.retryAt = now.Add(wait)
	}
	s.record(ctx, func(st *TargetState) {
		if !st.Failing {
			st.Failing, st.Since, st.Failures = true, now, 0
		}
		st.Failures++
		st.LastError, st.LastAttempt = err.Error(), now
	})
	if IsPermanent(err) || !now.Before(deadline) {
		s.giveUp(ctx, msg, m, err)
		return
	}
	log := s.log.Debug
	if first {
		log = s.log.Warn
	}
	log("a notification could not be sent; it is tried again", "id", m.ID, "event", m.Trigger, "retry_in", wait.Round(time.Millisecond), "err", err)
	s.later(msg, wait, deadline, now)
}

// giveUp drops msg unsent, loudly: an error log, the given-up metric and
// the target's state on the bus.
func (s *sender) giveUp(ctx context.Context, msg jetstream.Msg, m *Message, err error) {
	reason := "the receiver refused it"
	if !IsPermanent(err) {
		reason = fmt.Sprintf("still failing %v after it was emitted", s.n.opts.GiveUpAfter)
	}
	s.log.Error("notification given up, not sent: "+reason, "id", m.ID, "event", m.Trigger, "file", m.Name, "err", err)
	s.n.metrics.givenUp.WithLabelValues(s.n.flow, s.t.channel).Inc()
	if termErr := msg.TermWithReason("given up: " + reason); termErr != nil {
		s.log.Warn("removing a given-up notification from the bus", "id", m.ID, "err", termErr)
	}
	now := time.Now()
	s.record(ctx, func(st *TargetState) {
		st.GivenUp++
		st.LastGivenUp = &GivenUp{ID: m.ID, Trigger: m.Trigger, Name: m.Name, At: now, Error: err.Error()}
	})
}

// record changes the target's state on the bus. A failure to do so is
// logged: it must not stop sending.
func (s *sender) record(ctx context.Context, change func(*TargetState)) {
	rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), s.n.opts.PublishTimeout)
	defer cancel()
	err := s.n.store.update(rctx, s.t.id, func(st *TargetState) {
		st.Channel, st.Endpoint = s.t.channel, s.t.endpoint
		change(st)
	})
	if err != nil {
		s.log.Warn("recording the target's state on the bus", "err", err)
	}
}

// sleep waits for d or until ctx ends.
func sleep(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
}
