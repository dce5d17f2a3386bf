package notify

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/mftflow/mftflow/pipeline/metric"
)

// metrics are a Notifier's collectors (the package doc lists them).
// Notifiers given the same Registerer share one set, as engines do: the
// second Register is answered with AlreadyRegisteredError and the
// collector already there is used. Without a Registerer the collectors
// exist but nobody gathers them.
type metrics struct {
	sent, attemptFailures, givenUp *prometheus.CounterVec // flow, channel
	publishFailures                *prometheus.CounterVec // flow
	pending                        *prometheus.GaugeVec   // flow, channel
}

// register registers c, or returns the equal collector registered before.
func register[C prometheus.Collector](reg prometheus.Registerer, c C) (C, error) {
	return metric.Register(reg, c, "notification metrics")
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	labels := []string{"flow", "channel"}
	counter := func(name, help string, labels []string) *prometheus.CounterVec {
		return prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: "mftflow", Subsystem: "notify", Name: name, Help: help}, labels)
	}
	m := &metrics{
		sent:            counter("sent_total", "Notifications the receiver accepted (a webhook's 2xx, the mail server's answer to DATA).", labels),
		attemptFailures: counter("attempt_failures_total", "Attempts to send a notification that failed (it is tried again unless given up).", labels),
		givenUp:         counter("given_up_total", "Notifications dropped without being sent: refused for good by the receiver, or still failing at the give-up age.", labels),
		publishFailures: counter("publish_failures_total", "Events that matched a rule but whose notification could not be put on the bus: they are not sent.", []string{"flow"}),
		pending: prometheus.NewGaugeVec(prometheus.GaugeOpts{Namespace: "mftflow", Subsystem: "notify", Name: "pending",
			Help: "Notifications on the bus not sent yet, being sent or waiting to be tried again."}, labels),
	}
	if reg == nil {
		return m, nil
	}
	var err error
	for _, c := range []**prometheus.CounterVec{&m.sent, &m.attemptFailures, &m.givenUp, &m.publishFailures} {
		if *c, err = register(reg, *c); err != nil {
			return nil, err
		}
	}
	if m.pending, err = register(reg, m.pending); err != nil {
		return nil, err
	}
	return m, nil
}
