package engine

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"time"

	"github.com/cenkalti/backoff/v5"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/sync/semaphore"

	"github.com/mftflow/mftflow/pipeline"
	"github.com/mftflow/mftflow/pipeline/bus"
)

// Options configure an Engine.
type Options struct {
	// Registry builds components given by connector name; it may be nil when
	// every component of a flow is a ready Instance.
	Registry *pipeline.Registry
	Logger   *slog.Logger
	// RunID identifies this runner in delivery records and outcomes; default random.
	RunID string
	// AckWait is how long a delivery task stays owned without a sign of life
	// from its owner; owners send in-progress acks at a third of it. Default 10s.
	AckWait time.Duration
	// Grace is how long Stop waits for in-flight parts before cancelling them.
	// Default 30s.
	Grace time.Duration
	// Replicas of the flow's streams, KV bucket and consumers. 0 chooses 3
	// on a JetStream cluster of three or more servers and 1 otherwise, and
	// never lowers the count of a flow's existing streams (bus.Setup).
	Replicas int
	// LeaseTTL is how long a run's claim on polling the flow's source lasts
	// without renewal: only the run holding it polls the source, and another
	// run takes over this long after the holder stops renewing it (it died
	// or lost NATS). Default DefaultLeaseTTL.
	LeaseTTL time.Duration
	// SoleRunner says no other runner can share this engine's flows: the
	// runner's own embedded server, on a data directory it has locked. A
	// source lease left by another run id is then a dead run's, taken over
	// at once.
	SoleRunner bool
	// Metrics receives the engine's Prometheus collectors (see the package
	// doc for the names); nil means no metrics. Engines in one process may
	// share a registry: their series carry the flow (and sink) name and the
	// collectors are registered once.
	Metrics prometheus.Registerer
	// BusFullWait bounds how long writes the bus refuses for want of room
	// (bus.StoreFullError: chunk and task publishes, record writes) wait
	// for it, trying again with backoff: once the store has refused writes
	// for this long, a file waiting for room fails (see the package doc).
	// Default DefaultBusFullWait; negative: a refused write fails at once.
	BusFullWait time.Duration
	// BusStore names the bus's store and says what to do when it is full,
	// in errors, logs and Run.Problems; zero: bus.ServerStore. A program
	// running the embedded server says where its store is
	// (bus.EmbeddedStoreHint).
	BusStore bus.StoreHint
}

// Engine runs flows over one NATS connection. It is safe for concurrent use.
type Engine struct {
	nc      *nats.Conn
	js      jetstream.JetStream
	opts    Options
	metrics *metrics
}

// publishAckTimeout bounds the wait for a chunk publish's ack.
const publishAckTimeout = 10 * time.Second

// New returns an engine that uses nc, which must stay open while runs are going.
func New(nc *nats.Conn, o Options) (*Engine, error) {
	if nc == nil {
		return nil, errors.New("engine: nil NATS connection")
	}
	// An async publish whose ack was lost (its stream's leader stopped)
	// fails after this instead of waiting for ever; it is then sent again.
	js, err := jetstream.New(nc, jetstream.WithPublishAsyncTimeout(publishAckTimeout))
	if err != nil {
		return nil, fmt.Errorf("engine: %w", err)
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.RunID == "" {
		b := make([]byte, 6)
		rand.Read(b)
		o.RunID = hex.EncodeToString(b)
	}
	if o.AckWait <= 0 {
		o.AckWait = 10 * time.Second
	}
	if o.Grace <= 0 {
		o.Grace = 30 * time.Second
	}
	if o.LeaseTTL <= 0 {
		o.LeaseTTL = DefaultLeaseTTL
	}
	switch {
	case o.BusFullWait == 0:
		o.BusFullWait = DefaultBusFullWait
	case o.BusFullWait < 0:
		o.BusFullWait = 0
	}
	m, err := newMetrics(o.Metrics)
	if err != nil {
		return nil, err
	}
	return &Engine{nc: nc, js: js, opts: o, metrics: m}, nil
}

// Run is one flow being run by an Engine.
type Run struct {
	e     *Engine
	flow  pipeline.Flow
	fb    *bus.FlowBus
	codec *bus.Codec
	log   *slog.Logger

	source pipeline.Source
	// timetable is the flow's compiled schedule, or nil; sessionSource
	// builds a source that offers the files there now, then io.EOF.
	timetable     *pipeline.Timetable
	sessionSource func(context.Context) (pipeline.Source, error)
	stages        []pipeline.Stage
	sinks         []*sinkRun
	// throttle holds what the flow writes to all its sinks to its rate
	// (nil: no limit).
	throttle *pipeline.Throttle
	// byReference is set when files travel by reference (bus.payload).
	byReference bool

	// stopping ends when Stop is called: take no new files or parts.
	stopping context.Context
	stop     context.CancelFunc
	// hard ends when in-flight work must be abandoned (grace expired).
	hard context.Context
	kill context.CancelFunc
	// idle ends when the delivery workers should stop fetching tasks.
	idle    context.Context
	setIdle context.CancelFunc

	// ingestSlots bounds the files being read onto the bus (bus.files).
	ingestSlots *semaphore.Weighted
	// openFiles bounds the files taken from the source and not yet final.
	openFiles *semaphore.Weighted
	chunks    chunkPool
	// parts recycles the part-sized buffers that files read by reference
	// are read into: apart from chunks, so that a chunk read never holds
	// a part's buffer.
	parts     chunkPool
	files     sync.WaitGroup
	workers   sync.WaitGroup
	finisher  *finisher
	grouper   *grouper       // gathers small files into groups
	lease     *sourceLease   // only its holder polls the source
	retention *retention     // nil unless the flow keeps chunks after delivery
	space     *bus.SpaceWait // writes refused for want of room wait here
	lost      sync.Map       // file ids a sink lost the upload of (pipeline.Lost)

	done    chan struct{}
	errOnce sync.Once
	err     error

	stats   stats
	metrics runMetrics
}

type sinkRun struct {
	spec     pipeline.SinkSpec
	sink     pipeline.Sink
	consumer jetstream.Consumer
	stats    *sinkStats
	metrics  sinkMetrics
	// throttle and flowThrottle pace every byte written to the sink: one
	// each for all its parts and files, so that parallel writes share the
	// sink's rate and the flow's (nil: no limit).
	throttle, flowThrottle *pipeline.Throttle
	// emit reports a step of a delivery (Run.emit); nil for none.
	emit func(...pipeline.Event)
}

// paced returns a part's reader paced by the sink's and the flow's rates.
func (s *sinkRun) paced(ctx context.Context, r io.Reader) io.Reader {
	return pipeline.Paced(ctx, r, s.throttle, s.flowThrottle)
}

// wait blocks until n bytes may be written to the sink, for writes that
// hand the sink bytes instead of a reader (pipeline.WholeWriter).
func (s *sinkRun) wait(ctx context.Context, n int64) error {
	if err := s.throttle.Wait(ctx, n); err != nil {
		return err
	}
	return s.flowThrottle.Wait(ctx, n)
}

// waitsForFile reports whether s needs the whole of f on the bus before Open.
func (s *sinkRun) waitsForFile(f pipeline.File) bool {
	mf, ok := s.sink.(pipeline.ManifestFirst)
	return ok && mf.ManifestFirst(f)
}

// Start checks f, builds its components, creates its streams and starts it.
// ctx bounds only the start; use Stop to end the run.
func (e *Engine) Start(ctx context.Context, f pipeline.Flow) (*Run, error) {
	chunkSet := f.Bus.ChunkSize != 0
	f = f.WithDefaults()
	if err := f.Check(); err != nil {
		return nil, err
	}
	maxPayload := e.nc.MaxPayload()
	if f.Bus.ChunkSize+bus.HeaderRoom > maxPayload {
		if chunkSet {
			return nil, fmt.Errorf("flow %s: bus chunk_size %s (%d bytes) plus %d bytes of headers exceeds the NATS server's max_payload of %d bytes: lower bus.chunk_size or raise max_payload on the server",
				f.Name, pipeline.FormatSize(f.Bus.ChunkSize), f.Bus.ChunkSize, bus.HeaderRoom, maxPayload)
		}
		f.Bus.ChunkSize = (maxPayload - bus.HeaderRoom) / 4096 * 4096
		e.opts.Logger.Info("bus chunk size lowered to fit the server's max_payload", "flow", f.Name, "chunk_size", f.Bus.ChunkSize, "max_payload", maxPayload)
	}
	codec, err := bus.NewCodec(f.Bus.Compression)
	if err != nil {
		return nil, err
	}
	r := &Run{e: e, flow: f, codec: codec, log: e.opts.Logger.With("flow", f.Name), done: make(chan struct{})}
	r.stopping, r.stop = context.WithCancel(context.Background())
	r.hard, r.kill = context.WithCancel(context.Background())
	r.idle, r.setIdle = context.WithCancel(r.stopping)
	r.ingestSlots = semaphore.NewWeighted(int64(f.Bus.Files))
	r.openFiles = semaphore.NewWeighted(maxOpenFiles)
	r.stats.started = time.Now()

	if f.Schedule != nil {
		if r.timetable, err = f.Schedule.Compile(); err != nil {
			return nil, fmt.Errorf("flow %s: %w", f.Name, err)
		}
	}
	if err := r.build(ctx); err != nil {
		r.closeComponents()
		return nil, err
	}
	if err := r.choosePayload(); err != nil {
		r.closeComponents()
		return nil, err
	}
	names := r.sinkNames()
	r.fb, err = bus.Ensure(ctx, e.js, bus.Setup{
		Flow: f.Name, Sinks: names, Replicas: e.opts.Replicas,
		AckWait: e.opts.AckWait, MaxAckPending: maxAckPending,
	})
	if err != nil {
		r.closeComponents()
		return nil, fmt.Errorf("flow %s: %w", f.Name, err)
	}
	for _, s := range r.sinks {
		s.consumer = r.fb.Consumers[s.spec.Name]
	}
	r.space = r.newSpace(e.metrics.refused.WithLabelValues(f.Name))
	r.fb.Store.Space = r.space
	r.grouper = &grouper{r: r, settled: map[string][]bus.GroupDelivery{}}
	r.finisher, err = newFinisher(r)
	if err != nil {
		r.closeComponents()
		return nil, fmt.Errorf("flow %s: watching deliveries: %w", f.Name, err)
	}
	r.metrics = e.metrics.start(r)
	if f.Bus.Retains() {
		r.startJanitor()
	}
	for _, s := range r.sinks {
		for range s.spec.Files {
			r.workers.Add(1)
			go r.deliveryWorker(s)
		}
	}
	r.lease = (&sourceLease{kv: r.fb.Store.KV, nc: e.nc, holder: e.opts.RunID, ttl: e.opts.LeaseTTL, log: r.log,
		space: r.space, sole: e.opts.SoleRunner}).start(r.fb.AliveSubject(e.opts.RunID))
	go r.intake()
	go r.watchSpace()
	return r, nil
}

// maxAckPending bounds a sink's tasks held at once, across every runner of
// the flow; tasks waiting out a retry delay count too, so it is generous:
// each runner's own workers bound what it takes.
const maxAckPending = 1024

// maxOpenFiles bounds the files a run has taken from its source and not yet
// finished (read, or waiting for their deliveries): beyond it the source
// waits, so a slow sink does not make a runner hold every file of a backlog.
const maxOpenFiles = 1024

func (r *Run) build(ctx context.Context) error {
	r.throttle = pipeline.NewThrottle(r.flow.Rate)
	if err := r.buildSource(ctx); err != nil {
		return err
	}
	if err := r.buildStages(ctx); err != nil {
		return err
	}
	return r.buildSinks(ctx)
}

// needs says what is missing when component c is to be built from the
// registry and there is none.
func (r *Run) needs(c pipeline.Component) error {
	if c.Instance == nil && r.e.opts.Registry == nil {
		return fmt.Errorf("flow %s: component %q needs a registry (engine.Options.Registry)", r.flow.Name, c.Type)
	}
	return nil
}

// where names component c, a kind, in errors: by its place in the flow
// file when known.
func (r *Run) where(c pipeline.Component, kind string) string {
	if p := c.Pos.String(); p != "" {
		return fmt.Sprintf("%s: %s %q", p, kind, c.Type)
	}
	return fmt.Sprintf("flow %s: %s %q", r.flow.Name, kind, c.Type)
}

// buildSource builds the flow's source, or takes its instance.
func (r *Run) buildSource(ctx context.Context) error {
	src := r.flow.Source
	if err := r.needs(src); err != nil {
		return err
	}
	if s, ok := src.Instance.(pipeline.Source); ok {
		r.source = s
	} else if src.Instance != nil {
		return fmt.Errorf("%s: instance %T is not a pipeline.Source", r.where(src, "source"), src.Instance)
	} else {
		newSource, err := r.sourceBuilder(r.e.opts.Registry, src)
		if err != nil {
			return fmt.Errorf("%s: %w", r.where(src, "source"), err)
		}
		if r.source, err = newSource(ctx); err != nil {
			return fmt.Errorf("%s: %w", r.where(src, "source"), err)
		}
		r.sessionSource = newSource
	}
	if r.timetable != nil && r.timetable.Cron() && r.sessionSource == nil {
		return fmt.Errorf("%s: a schedule with cron builds a source per poll: give the source as a connector type and config, not an instance", r.where(src, "source"))
	}
	return nil
}

// buildStages builds the flow's stages, or takes their instances.
func (r *Run) buildStages(ctx context.Context) error {
	for _, c := range r.flow.Stages {
		if err := r.needs(c); err != nil {
			return err
		}
		if st, ok := c.Instance.(pipeline.Stage); ok {
			r.stages = append(r.stages, st)
			continue
		} else if c.Instance != nil {
			return fmt.Errorf("%s: instance %T is not a pipeline.Stage", r.where(c, "stage"), c.Instance)
		}
		st, err := r.e.opts.Registry.NewStage(ctx, c.Type, c.Config)
		if err != nil {
			return fmt.Errorf("%s: %w", r.where(c, "stage"), err)
		}
		r.stages = append(r.stages, st)
	}
	return nil
}

// buildSinks builds the flow's sinks, or takes their instances.
func (r *Run) buildSinks(ctx context.Context) error {
	for _, spec := range r.flow.Sinks {
		if err := r.needs(spec.Component); err != nil {
			return err
		}
		sk, ok := spec.Instance.(pipeline.Sink)
		if !ok && spec.Instance != nil {
			return fmt.Errorf("%s: instance %T is not a pipeline.Sink", r.where(spec.Component, "sink"), spec.Instance)
		}
		if !ok {
			var err error
			if sk, err = r.e.opts.Registry.NewSink(ctx, spec.Type, spec.Config); err != nil {
				return fmt.Errorf("%s: %w", r.where(spec.Component, "sink"), err)
			}
		}
		r.sinks = append(r.sinks, &sinkRun{spec: spec, sink: sk, stats: r.stats.sink(spec.Name),
			throttle: pipeline.NewThrottle(spec.Rate), flowThrottle: r.throttle, emit: r.emit})
	}
	return nil
}

func (r *Run) closeComponents() {
	if r.source != nil {
		if err := r.source.Close(); err != nil {
			r.log.Warn("closing source", "err", err)
		}
	}
	for _, s := range r.sinks {
		if err := s.sink.Close(); err != nil {
			r.log.Warn("closing sink", "sink", s.spec.Name, "err", err)
		}
	}
	// Stages need no Close, but one that holds resources (a plugin
	// process) may have it.
	for _, st := range r.stages {
		if c, ok := st.(io.Closer); ok {
			if err := c.Close(); err != nil {
				r.log.Warn("closing stage", "err", err)
			}
		}
	}
}

// Flow returns the flow with its defaults applied.
func (r *Run) Flow() pipeline.Flow { return r.flow }

// Wait blocks until the run ends: a finite source is exhausted and every
// file it offered is final, or Stop has finished. It returns nil unless the
// run could not go on (the source failed for good).
func (r *Run) Wait() error {
	<-r.done
	return r.err
}

// Stop ends the run gracefully: no new files are taken, reads in progress stop
// at a chunk boundary and record a checkpoint, deliveries finish the parts
// they are writing and record them; everything else resumes on the next run.
// If ctx ends first (or the engine's Grace passes), in-flight work is
// cancelled. Stop returns when the run has ended.
func (r *Run) Stop(ctx context.Context) error {
	r.stop()
	grace := time.NewTimer(r.e.opts.Grace)
	defer grace.Stop()
	select {
	case <-r.done:
		return r.err
	case <-ctx.Done():
	case <-grace.C:
	}
	r.log.Warn("grace period over: cancelling in-flight work")
	r.kill()
	<-r.done
	return r.err
}

func (r *Run) fail(err error) {
	r.errOnce.Do(func() { r.err = err })
}

// intake takes files from the source until it is exhausted or the run stops
// (or, on a schedule, session after session), then waits for them and ends
// the run.
func (r *Run) intake() {
	defer func() {
		r.files.Wait()
		r.lease.release() // after the files taken from the source are settled
		r.settleBeforeEnd()
		r.setIdle()
		r.workers.Wait()
		r.finisher.close()
		r.closeComponents()
		r.kill()
		close(r.done)
	}()
	if r.timetable == nil && !r.flow.Once {
		r.drain(time.Time{})
		return
	}
	r.sessions()
}

// drain takes files from the source until it is exhausted, until passes
// (when set) or the run must end, which it reports.
func (r *Run) drain(until time.Time) (end bool) {
	b := newBackoff(time.Second, 30*time.Second)
	for {
		if r.openFiles.Acquire(r.stopping, 1) != nil {
			return true
		}
		if r.ingestSlots.Acquire(r.stopping, 1) != nil {
			r.openFiles.Release(1)
			return true
		}
		poll, endPoll := r.lease.wait(r.stopping)
		if !until.IsZero() {
			var endWindow context.CancelFunc
			poll, endWindow = context.WithDeadline(poll, until)
			endPoll = chain(endWindow, endPoll)
		}
		if r.stopping.Err() != nil {
			endPoll()
			r.releaseSlots()
			return true
		}
		item, err := r.source.Next(poll)
		closed := !until.IsZero() && !time.Now().Before(until)
		leaseLost := poll.Err() != nil && r.stopping.Err() == nil && !closed
		endPoll()
		switch {
		case err == nil:
			b.Reset()
			r.files.Add(1)
			go func() {
				defer r.openFiles.Release(1)
				r.handleFile(item)
			}()
			continue
		case r.stopping.Err() != nil:
			end = true
		case closed:
			r.log.Info("schedule window closed", "until", until)
		case leaseLost: // another runner polls now; wait to take over
			r.releaseSlots()
			continue
		case errors.Is(err, io.EOF):
			r.log.Debug("source exhausted")
		case pipeline.IsPermanent(err):
			r.log.Error("source failed", "err", err)
			r.fail(fmt.Errorf("flow %s: source: %w", r.flow.Name, err))
			end = true
		default:
			r.releaseSlots()
			d := b.NextBackOff()
			r.log.Warn("source error; retrying", "err", err, "in", d)
			select {
			case <-time.After(d):
				continue
			case <-r.stopping.Done():
				return true // the slot is already free
			}
		}
		r.releaseSlots()
		return end
	}
}

// releaseSlots gives back what drain took for a file it did not get.
func (r *Run) releaseSlots() {
	r.ingestSlots.Release(1)
	r.openFiles.Release(1)
}

func chain(fs ...context.CancelFunc) context.CancelFunc {
	return func() {
		for _, f := range fs {
			f()
		}
	}
}

// newBackoff returns delays that double from initial up to max, without
// jitter: the engine's retries wait the same on every run.
func newBackoff(initial, max time.Duration) *backoff.ExponentialBackOff {
	return &backoff.ExponentialBackOff{InitialInterval: initial, MaxInterval: max, Multiplier: 2}
}

// retryDelay is the backoff before attempt n+1 (n ≥ 1) under policy p.
func retryDelay(p pipeline.Retry, n int) time.Duration {
	d := p.Initial
	for i := 1; i < n && d < p.Max; i++ {
		d *= 2
	}
	return min(d, p.Max)
}
