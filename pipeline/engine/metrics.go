package engine

import (
	"context"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/mftflow/mftflow/pipeline/metric"
)

// The package doc lists the metrics and what each counts.
const (
	metricNamespace = "mftflow"
	// busInfoTimeout bounds the JetStream calls of one scrape of the bus gauges.
	busInfoTimeout = 2 * time.Second
)

// metrics holds an engine's collectors. Engines given the same Registerer
// share one set: Register answers the second with AlreadyRegisteredError and
// the collector already there is used, so the series of every engine in the
// process add up. Without a Registerer the collectors exist but nobody
// gathers them, which keeps the hot path free of nil checks.
type metrics struct {
	readBytes, readFiles                       *prometheus.CounterVec // flow
	referenceFiles, changed                    *prometheus.CounterVec // flow
	publish                                    *prometheus.HistogramVec
	delivBytes, delivFiles                     *prometheus.CounterVec // flow, sink
	partRetries, deliveryRetries, deliveryFail *prometheus.CounterVec
	partWrite                                  *prometheus.HistogramVec
	inFlight                                   *prometheus.GaugeVec
	refused                                    *prometheus.CounterVec // flow
	bus                                        *busCollector          // nil without a Registerer
}

// register registers c, or returns the equal collector registered before.
func register[C prometheus.Collector](reg prometheus.Registerer, c C) (C, error) {
	return metric.Register(reg, c, "engine metrics")
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	flow, flowSink := []string{"flow"}, []string{"flow", "sink"}
	counter := func(name, help string, labels []string) *prometheus.CounterVec {
		return prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: metricNamespace, Name: name, Help: help}, labels)
	}
	m := &metrics{
		readBytes:      counter("read_bytes_total", "Bytes read from the flow's source (after its stages) and put on the bus.", flow),
		readFiles:      counter("read_files_total", "Files read completely onto the bus.", flow),
		referenceFiles: counter("read_reference_files_total", "Files read completely whose chunks carry where their bytes are in the source, not the bytes (bus.payload reference); read_files_total counts them too.", flow),
		changed:        counter("source_changed_total", "Files read by reference that a delivery found changed at their source before every sink had them (bus.on_change).", flow),
		publish: prometheus.NewHistogramVec(prometheus.HistogramOpts{Namespace: metricNamespace, Name: "chunk_publish_seconds",
			Help:    "Time from publishing a chunk to JetStream to seeing its acknowledgement.",
			Buckets: prometheus.ExponentialBuckets(0.0005, 2, 14)}, flow),
		delivBytes:      counter("delivered_bytes_total", "Bytes of parts written to the sink, each part once per time it was written; parts an earlier attempt wrote are not counted again.", flowSink),
		delivFiles:      counter("delivered_files_total", "Files whose delivery to the sink committed.", flowSink),
		partRetries:     counter("part_retries_total", "Part writes that failed and were tried again within a delivery attempt.", flowSink),
		deliveryRetries: counter("delivery_retries_total", "Delivery attempts that failed and were scheduled again after a backoff.", flowSink),
		deliveryFail:    counter("delivery_failures_total", "Deliveries that failed for good (retry budget spent or a permanent error).", flowSink),
		partWrite: prometheus.NewHistogramVec(prometheus.HistogramOpts{Namespace: metricNamespace, Name: "part_write_seconds",
			Help:    "Time the sink took to accept one part (the successful write call).",
			Buckets: prometheus.ExponentialBuckets(0.001, 2, 18)}, flowSink),
		inFlight: prometheus.NewGaugeVec(prometheus.GaugeOpts{Namespace: metricNamespace, Name: "deliveries_in_flight",
			Help: "Deliveries this process is working on."}, flowSink),
		refused: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: metricNamespace, Subsystem: "bus", Name: "writes_refused_total",
			Help: "Writes to the bus (chunk and task publishes, record writes) refused for want of room in its store; a write counts once however often it is tried again."}, flow),
	}
	if reg == nil {
		return m, nil
	}
	var err error
	for _, c := range []**prometheus.CounterVec{&m.readBytes, &m.readFiles, &m.referenceFiles, &m.changed, &m.delivBytes, &m.delivFiles, &m.partRetries, &m.deliveryRetries, &m.deliveryFail, &m.refused} {
		if *c, err = register(reg, *c); err != nil {
			return nil, err
		}
	}
	if m.publish, err = register(reg, m.publish); err != nil {
		return nil, err
	}
	if m.partWrite, err = register(reg, m.partWrite); err != nil {
		return nil, err
	}
	if m.inFlight, err = register(reg, m.inFlight); err != nil {
		return nil, err
	}
	if m.bus, err = register(reg, newBusCollector()); err != nil {
		return nil, err
	}
	return m, nil
}

// runMetrics are a run's flow-level series, resolved once per run so that
// the per-chunk path does no label lookups.
type runMetrics struct {
	readBytes, readFiles    prometheus.Counter
	referenceFiles, changed prometheus.Counter
	publish                 prometheus.Observer
}

// sinkMetrics are one sink's series in a run.
type sinkMetrics struct {
	bytes, files, partRetries, retries, failures prometheus.Counter
	partWrite                                    prometheus.Observer
	inFlight                                     prometheus.Gauge
}

// start resolves r's series and, with a registry, lets the bus gauges follow
// r until it ends. It is called once r can no longer fail to start.
func (m *metrics) start(r *Run) runMetrics {
	flow := r.flow.Name
	for _, s := range r.sinks {
		l := prometheus.Labels{"flow": flow, "sink": s.spec.Name}
		s.metrics = sinkMetrics{
			bytes: m.delivBytes.With(l), files: m.delivFiles.With(l),
			partRetries: m.partRetries.With(l), retries: m.deliveryRetries.With(l), failures: m.deliveryFail.With(l),
			partWrite: m.partWrite.With(l), inFlight: m.inFlight.With(l),
		}
	}
	if m.bus != nil {
		m.bus.add(r)
		go func() {
			<-r.done
			m.bus.remove(r)
		}()
	}
	return runMetrics{
		readBytes:      m.readBytes.WithLabelValues(flow),
		readFiles:      m.readFiles.WithLabelValues(flow),
		referenceFiles: m.referenceFiles.WithLabelValues(flow),
		changed:        m.changed.WithLabelValues(flow),
		publish:        m.publish.WithLabelValues(flow),
	}
}

// busCollector reads, at scrape time, how much work waits on the bus of each
// flow being run: delivery tasks not yet taken or not yet acknowledged per
// sink, and the chunks stored. Several runs of one flow in a process see the
// same streams, so each flow is read once.
type busCollector struct {
	tasksPending, tasksAckPending, chunks, chunkBytes *prometheus.Desc
	storeFull                                         *prometheus.Desc
	errors                                            prometheus.Counter

	mu   sync.Mutex
	runs []*Run // in start order; the first run of a flow speaks for it
}

func newBusCollector() *busCollector {
	desc := func(name, help string, labels ...string) *prometheus.Desc {
		return prometheus.NewDesc(prometheus.BuildFQName(metricNamespace, "bus", name), help, labels, nil)
	}
	return &busCollector{
		tasksPending:    desc("tasks_pending", "Delivery tasks on the bus that no runner has taken yet.", "flow", "sink"),
		tasksAckPending: desc("tasks_ack_pending", "Delivery tasks taken by a runner and not yet acknowledged (in progress or waiting for a retry).", "flow", "sink"),
		chunks:          desc("chunks_stored", "Chunk messages stored in the flow's chunk stream.", "flow"),
		chunkBytes:      desc("chunk_bytes_stored", "Bytes stored in the flow's chunk stream.", "flow"),
		storeFull:       desc("store_full", "1 while the bus store refuses the flow's writes for want of room (from the first refusal to the next write that goes through), else 0.", "flow"),
		errors: prometheus.NewCounter(prometheus.CounterOpts{Namespace: metricNamespace, Subsystem: "bus", Name: "info_errors_total",
			Help: "Scrapes of the bus gauges that could not read a stream or consumer from JetStream (its series are left out of that scrape)."}),
	}
}

func (b *busCollector) add(r *Run) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.runs = append(b.runs, r)
}

func (b *busCollector) remove(r *Run) {
	b.mu.Lock()
	defer b.mu.Unlock()
	for i, x := range b.runs {
		if x == r {
			b.runs = append(b.runs[:i:i], b.runs[i+1:]...)
			return
		}
	}
}

func (b *busCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- b.tasksPending
	ch <- b.tasksAckPending
	ch <- b.chunks
	ch <- b.chunkBytes
	ch <- b.storeFull
	b.errors.Describe(ch)
}

func (b *busCollector) Collect(ch chan<- prometheus.Metric) {
	b.mu.Lock()
	seen := map[string]bool{}
	var runs []*Run
	for _, r := range b.runs {
		select {
		case <-r.done:
			continue // ended; remove is on its way
		default:
		}
		if !seen[r.flow.Name] {
			seen[r.flow.Name] = true
			runs = append(runs, r)
		}
	}
	b.mu.Unlock()

	ctx, cancel := context.WithTimeout(context.Background(), busInfoTimeout)
	defer cancel()
	for _, r := range runs {
		flow := r.flow.Name
		full := 0.0
		if _, _, ok := r.space.Full(); ok {
			full = 1
		}
		ch <- prometheus.MustNewConstMetric(b.storeFull, prometheus.GaugeValue, full, flow)
		if info, err := r.fb.Chunks.Info(ctx); err != nil {
			b.errors.Inc()
			r.log.Debug("reading the chunk stream for metrics", "err", err)
		} else {
			ch <- prometheus.MustNewConstMetric(b.chunks, prometheus.GaugeValue, float64(info.State.Msgs), flow)
			ch <- prometheus.MustNewConstMetric(b.chunkBytes, prometheus.GaugeValue, float64(info.State.Bytes), flow)
		}
		for _, s := range r.sinks {
			info, err := s.consumer.Info(ctx)
			if err != nil {
				b.errors.Inc()
				r.log.Debug("reading a task consumer for metrics", "sink", s.spec.Name, "err", err)
				continue
			}
			ch <- prometheus.MustNewConstMetric(b.tasksPending, prometheus.GaugeValue, float64(info.NumPending), flow, s.spec.Name)
			ch <- prometheus.MustNewConstMetric(b.tasksAckPending, prometheus.GaugeValue, float64(info.NumAckPending), flow, s.spec.Name)
		}
	}
	b.errors.Collect(ch)
}
