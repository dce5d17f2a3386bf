package sla

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/mftflow/mftflow/pipeline"
	"github.com/mftflow/mftflow/pipeline/metric"
)

// metrics are a watcher's collectors. Without a Registerer they exist but
// nobody gathers them, which spares the callers nil checks.
type metrics struct {
	state, arrived, deadline *prometheus.GaugeVec
	warnings, misses, met    *prometheus.CounterVec
}

// register registers c, or returns the equal collector registered before.
func register[C prometheus.Collector](reg prometheus.Registerer, c C) (C, error) {
	return metric.Register(reg, c, "sla metrics")
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	labels := []string{"flow", "expectation"}
	gauge := func(name, help string) *prometheus.GaugeVec {
		return prometheus.NewGaugeVec(prometheus.GaugeOpts{Namespace: "mftflow", Subsystem: "sla", Name: name, Help: help}, labels)
	}
	counter := func(name, help string) *prometheus.CounterVec {
		return prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: "mftflow", Subsystem: "sla", Name: name, Help: help}, labels)
	}
	m := &metrics{
		state:    gauge("state", "The expectation's state as this runner last read or wrote it: 0 ok, 1 warning (its warning time passed short of files), 2 missed (a deadline passed short of files, not made up yet)."),
		arrived:  gauge("arrived_files", "Files counted for the expectation's current period."),
		deadline: gauge("next_deadline_timestamp_seconds", "The expectation's next deadline, in seconds since the Unix epoch."),
		warnings: counter("warnings_total", "sla_warning events this process raised."),
		misses:   counter("misses_total", "sla_missed events this process raised."),
		met:      counter("met_total", "sla_met events this process raised: a miss or a warning cleared by arriving files."),
	}
	if reg == nil {
		return m, nil
	}
	var err error
	for _, g := range []**prometheus.GaugeVec{&m.state, &m.arrived, &m.deadline} {
		if *g, err = register(reg, *g); err != nil {
			return nil, err
		}
	}
	for _, c := range []**prometheus.CounterVec{&m.warnings, &m.misses, &m.met} {
		if *c, err = register(reg, *c); err != nil {
			return nil, err
		}
	}
	return m, nil
}

// count counts a raised event.
func (m *metrics) count(flow, name string, kind pipeline.EventKind) {
	switch kind {
	case pipeline.EventSLAWarning:
		m.warnings.WithLabelValues(flow, name).Inc()
	case pipeline.EventSLAMissed:
		m.misses.WithLabelValues(flow, name).Inc()
	case pipeline.EventSLAMet:
		m.met.WithLabelValues(flow, name).Inc()
	}
}

// show sets the gauges from x's record.
func (m *metrics) show(flow string, x *expectation, r *Record) {
	m.state.WithLabelValues(flow, x.Name).Set(x.state(r).gauge())
	m.arrived.WithLabelValues(flow, x.Name).Set(float64(r.Current.Arrived()))
	if !r.Current.Deadline.IsZero() {
		m.deadline.WithLabelValues(flow, x.Name).Set(float64(r.Current.Deadline.Unix()))
	}
}

// forget removes the gauges of a watcher that stopped, so that they do not
// show a state nobody follows any more. Counters stay.
func (m *metrics) forget(flow string, exps []*watched) {
	for _, x := range exps {
		for _, g := range []*prometheus.GaugeVec{m.state, m.arrived, m.deadline} {
			g.DeleteLabelValues(flow, x.Name)
		}
	}
}
