package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/mftflow/mftflow/pipeline"
	"github.com/mftflow/mftflow/pipeline/audit"
	"github.com/mftflow/mftflow/pipeline/bus"
	"github.com/mftflow/mftflow/pipeline/notify"
	"github.com/mftflow/mftflow/pipeline/sla"
)

// observers are what a run keeps beside its flows' files: each flow's
// audit trail, notifications and arrival SLAs, fed by the engine's events
// (Flow.Events).
type observers struct {
	js      jetstream.JetStream
	log     *slog.Logger
	metrics prometheus.Registerer
	runner  string
	closers []func(context.Context) error
	slas    map[string]*slaRelay // by flow
	wg      sync.WaitGroup
}

// openObservers opens, for each flow, what its flow file asks for and adds
// it to the flow's events. SLA watchers start once the flow's bucket
// exists (started); until then the relay keeps the flow's events.
func openObservers(ctx context.Context, js jetstream.JetStream, flows []*pipeline.Flow, replicas int, metrics prometheus.Registerer, log *slog.Logger) (*observers, error) {
	host, _ := os.Hostname()
	o := &observers{js: js, log: log, metrics: metrics, runner: fmt.Sprintf("%s/%d", host, os.Getpid()), slas: map[string]*slaRelay{}}
	for _, f := range flows {
		if err := o.open(ctx, f, replicas); err != nil {
			o.close()
			return nil, fmt.Errorf("flow %s: %w", f.Name, err)
		}
	}
	return o, nil
}

func (o *observers) open(ctx context.Context, f *pipeline.Flow, replicas int) error {
	var slaEvents []pipeline.EventSink // where the SLA watcher's events go
	if f.Audit != nil {
		t, err := audit.Open(ctx, o.js, f.Name, audit.Options{Runner: o.runner, Replicas: replicas,
			MaxAge: f.Audit.MaxAge, MaxBytes: f.Audit.MaxBytes, Logger: o.log})
		if err != nil {
			return err
		}
		o.closers = append(o.closers, t.Close)
		f.Events = append(f.Events, t)
		slaEvents = append(slaEvents, t)
	}
	if len(f.Notify) > 0 {
		n, err := notify.NewForFlow(ctx, o.js, *f, notify.Options{Logger: o.log, Registerer: o.metrics, Replicas: replicas})
		if err != nil {
			return err
		}
		o.closers = append(o.closers, func(context.Context) error { return n.Close() })
		f.Events = append(f.Events, n)
		slaEvents = append(slaEvents, n)
	}
	if len(f.Expectations) > 0 {
		r := &slaRelay{to: fanOut(slaEvents)}
		o.slas[f.Name] = r
		f.Events = append(f.Events, r)
	}
	return nil
}

// started starts the SLA watcher of flow f, whose run has made its bucket.
func (o *observers) started(ctx context.Context, f *pipeline.Flow) error {
	r := o.slas[f.Name]
	if r == nil {
		return nil
	}
	kv, err := o.js.KeyValue(ctx, bus.Names{Flow: f.Name}.Bucket())
	if err != nil {
		return fmt.Errorf("opening the state of its expectations: %w", err)
	}
	if err := sla.SaveExpectations(ctx, kv, f.Expectations); err != nil {
		return err
	}
	w, err := sla.New(f.Name, f.Expectations, sla.Options{Events: r.to, Store: sla.NewKVStore(kv), Metrics: o.metrics, Logger: o.log, Runner: o.runner})
	if err != nil {
		return err
	}
	o.wg.Go(func() {
		if err := w.Run(ctx); err != nil && !errors.Is(err, context.Canceled) && !errors.Is(err, sla.ErrClosed) {
			o.log.Error("arrival SLAs stopped", "flow", f.Name, "err", err)
		}
	})
	o.closers = append(o.closers, func(context.Context) error { return w.Close() })
	r.attach(w)
	return nil
}

// close stores what the trails hold and stops everything.
func (o *observers) close() {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for i := len(o.closers) - 1; i >= 0; i-- {
		if err := o.closers[i](ctx); err != nil {
			o.log.Error("closing", "err", err)
		}
	}
	o.wg.Wait()
}

// slaRelay hands a flow's events to its SLA watcher, keeping those that
// come before the watcher starts.
type slaRelay struct {
	to pipeline.EventSink

	mu     sync.Mutex
	w      *sla.Watcher
	before []pipeline.Event
}

func (r *slaRelay) Emit(ev pipeline.Event) {
	if ev.Kind != pipeline.EventDiscovered {
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.w == nil {
		r.before = append(r.before, ev)
		return
	}
	r.w.Emit(ev)
}

func (r *slaRelay) attach(w *sla.Watcher) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, ev := range r.before {
		w.Emit(ev)
	}
	r.w, r.before = w, nil
}

// fanOut returns a sink that hands each event to every one of sinks.
func fanOut(sinks []pipeline.EventSink) pipeline.EventSink {
	return pipeline.EventFunc(func(ev pipeline.Event) {
		for _, s := range sinks {
			s.Emit(ev)
		}
	})
}
