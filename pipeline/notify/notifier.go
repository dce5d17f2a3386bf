package notify

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"regexp"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/mftflow/mftflow/pipeline"
	"github.com/mftflow/mftflow/pipeline/bus"
)

// Options tune a Notifier. The zero value is ready for production.
type Options struct {
	// Logger receives sending failures, give-ups and recoveries; nil
	// discards them.
	Logger *slog.Logger
	// Registerer, when set, gets the notification metrics (the package
	// doc lists them).
	Registerer prometheus.Registerer
	// Replicas of the stream and KV bucket; 0 chooses as the flow's bus
	// does (bus.DetectReplicas), never fewer than an existing stream has.
	Replicas int
	// InitialBackoff is the wait after a target's first failed attempt
	// (default 1s); each failure in a row doubles it, up to MaxBackoff
	// (default 5m), with ±20% jitter. A receiver's Retry-After, when
	// longer, wins (up to an hour).
	InitialBackoff, MaxBackoff time.Duration
	// GiveUpAfter is how old a notification may be (from when it was put
	// on the bus) and still be tried again after a failed attempt; past
	// it a failure drops it (default 24h). See the package doc.
	GiveUpAfter time.Duration
	// AckWait is how long a notification handed to a sender stays its
	// own before the bus hands it to another (a crashed runner's);
	// default the target's timeout plus 30s.
	AckWait time.Duration
	// PublishTimeout bounds Emit's publish, and each state update on the
	// bus (default 5s).
	PublishTimeout time.Duration
	// DuplicateWindow is how long the stream remembers notification ids
	// to drop an event emitted again (default 2m).
	DuplicateWindow time.Duration
	// HTTPClient sends webhooks (default: a new http.Client). Redirects
	// are never followed, whatever its CheckRedirect says.
	HTTPClient *http.Client
	// TLSConfig is the base of the SMTP client's TLS settings (RootCAs
	// for a private CA or a test); ServerName is set per server.
	TLSConfig *tls.Config
	// RefreshEvery is how often the pending gauge is read from the bus
	// (default 10s).
	RefreshEvery time.Duration
}

// Defaults of Options.
const (
	DefaultInitialBackoff  = time.Second
	DefaultMaxBackoff      = 5 * time.Minute
	DefaultGiveUpAfter     = 24 * time.Hour
	DefaultPublishTimeout  = 5 * time.Second
	DefaultDuplicateWindow = 2 * time.Minute
	DefaultRefreshEvery    = 10 * time.Second
	// ackWaitMargin is added to a target's timeout for its AckWait.
	ackWaitMargin = 30 * time.Second
	// maxAckPending bounds the notifications of one target the bus hands
	// out at once; those waiting to be tried again count.
	maxAckPending = 10000
)

func (o Options) withDefaults() Options {
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	set := func(d *time.Duration, def time.Duration) {
		if *d <= 0 {
			*d = def
		}
	}
	set(&o.InitialBackoff, DefaultInitialBackoff)
	set(&o.MaxBackoff, DefaultMaxBackoff)
	set(&o.GiveUpAfter, DefaultGiveUpAfter)
	set(&o.PublishTimeout, DefaultPublishTimeout)
	set(&o.DuplicateWindow, DefaultDuplicateWindow)
	set(&o.RefreshEvery, DefaultRefreshEvery)
	o.MaxBackoff = max(o.MaxBackoff, o.InitialBackoff)
	return o
}

// Notifier turns a flow's events into notifications, keeps them on the bus
// until they are sent, and sends them. Its methods are safe for
// concurrent use.
type Notifier struct {
	flow    string
	names   bus.Names
	js      jetstream.JetStream
	opts    Options
	log     *slog.Logger
	metrics *metrics
	rules   []rule
	targets []*target
	store   stateStore
	// http sends every webhook of the flow.
	http *http.Client

	publishMu        sync.Mutex
	publishFailures  int64
	lastPublishError string
	lastPublishAt    time.Time

	cancel    context.CancelFunc
	done      sync.WaitGroup
	closeOnce sync.Once
}

var _ pipeline.EventSink = (*Notifier)(nil)

// flowName is the rule pipeline.Flow.Check applies.
var flowName = regexp.MustCompile(`^[A-Za-z0-9_-]{1,64}$`)

// New checks rules, creates (or binds) flow's notification stream, KV
// bucket and one durable consumer per target, and starts sending. ctx
// bounds the setup only; sending goes on until Close. Several runners of a
// flow may each have a Notifier: each notification is sent by one of them.
//
// With no rules New touches nothing on the bus, and Emit does nothing.
func New(ctx context.Context, js jetstream.JetStream, flow string, rules []pipeline.NotifyRule, opts Options) (*Notifier, error) {
	if !flowName.MatchString(flow) {
		return nil, fmt.Errorf("notify: flow name %q: use 1 to 64 letters, digits, '-' or '_'", flow)
	}
	if err := checkRules(rules); err != nil {
		return nil, err
	}
	opts = opts.withDefaults()
	m, err := newMetrics(opts.Registerer)
	if err != nil {
		return nil, err
	}
	n := &Notifier{flow: flow, names: bus.Names{Flow: flow}, js: js, opts: opts, log: opts.Logger.With("flow", flow), metrics: m,
		http: newHTTPClient(opts.HTTPClient)}
	n.rules, n.targets = n.buildTargets(rules)
	sctx, cancel := context.WithCancel(context.Background())
	n.cancel = cancel
	if len(rules) == 0 {
		return n, nil
	}
	consumers, err := n.setup(ctx)
	if err != nil {
		cancel()
		return nil, err
	}
	for i, t := range n.targets {
		s := newSender(n, t, consumers[i])
		n.done.Go(func() { s.run(sctx) })
	}
	n.done.Go(func() { n.refreshPending(sctx) })
	return n, nil
}

// NewForFlow is New for f's name and notify rules.
func NewForFlow(ctx context.Context, js jetstream.JetStream, f pipeline.Flow, opts Options) (*Notifier, error) {
	return New(ctx, js, f.Name, f.Notify, opts)
}

// checkRules reports every problem of rules, each with its place.
func checkRules(rules []pipeline.NotifyRule) error {
	var errs []error
	if len(rules) > pipeline.MaxNotifyRules {
		errs = append(errs, fmt.Errorf("notify: %d rules: at most %d", len(rules), pipeline.MaxNotifyRules))
	}
	for i, r := range rules {
		if err := r.Check(); err != nil {
			where := ""
			if p := r.Pos.String(); p != "" {
				where = p + ": "
			}
			errs = append(errs, fmt.Errorf("%snotify[%d]: %w", where, i, err))
		}
	}
	return errors.Join(errs...)
}

// buildTargets pairs each rule with its target; rules that send to the
// same place share one.
func (n *Notifier) buildTargets(rules []pipeline.NotifyRule) ([]rule, []*target) {
	byID := map[string]*target{}
	var out []rule
	var targets []*target
	for i, r := range rules {
		id := targetID(r)
		t := byID[id]
		if t == nil {
			t = n.newTarget(id, r)
			byID[id] = t
			targets = append(targets, t)
		}
		t.rules = append(t.rules, i)
		out = append(out, rule{NotifyRule: r, target: t})
	}
	return out, targets
}

func (n *Notifier) newTarget(id string, r pipeline.NotifyRule) *target {
	if r.Webhook != nil {
		w := &webhookSender{cfg: *r.Webhook, endpoint: r.Webhook.Endpoint(), client: n.http}
		return &target{id: id, channel: ChannelWebhook, endpoint: w.endpoint, send: w.send,
			timeout: orDefault(r.Webhook.Timeout, pipeline.DefaultWebhookTimeout)}
	}
	e := newEmailSender(*r.Email, n.opts.TLSConfig)
	return &target{id: id, channel: ChannelEmail, endpoint: e.endpoint, send: e.send,
		timeout: orDefault(r.Email.Timeout, pipeline.DefaultEmailTimeout)}
}

func orDefault(d, def time.Duration) time.Duration {
	if d <= 0 {
		return def
	}
	return d
}

// setup creates or updates the stream, the KV bucket and the targets'
// consumers, and returns the consumers in the order of n.targets.
func (n *Notifier) setup(ctx context.Context) ([]jetstream.Consumer, error) {
	replicas, err := n.replicas(ctx)
	if err != nil {
		return nil, err
	}
	stream, err := js(ctx, "creating stream "+n.names.NotifyStream(), func(ctx context.Context) (jetstream.Stream, error) {
		return n.js.CreateOrUpdateStream(ctx, jetstream.StreamConfig{
			Name:        n.names.NotifyStream(),
			Description: "mftflow notifications of flow " + n.flow + " waiting to be sent",
			Subjects:    []string{n.names.NotifySubject("*")},
			Retention:   jetstream.WorkQueuePolicy,
			Storage:     jetstream.FileStorage,
			Replicas:    replicas,
			Duplicates:  n.opts.DuplicateWindow,
		})
	})
	if err != nil {
		return nil, err
	}
	kv, err := js(ctx, "creating KV bucket "+n.names.NotifyBucket(), func(ctx context.Context) (jetstream.KeyValue, error) {
		return n.js.CreateOrUpdateKeyValue(ctx, jetstream.KeyValueConfig{
			Bucket:      n.names.NotifyBucket(),
			Description: "mftflow notification targets of flow " + n.flow,
			Storage:     jetstream.FileStorage,
			Replicas:    replicas,
			History:     1,
		})
	})
	if err != nil {
		return nil, err
	}
	n.store = stateStore{kv: kv}
	consumers := make([]jetstream.Consumer, len(n.targets))
	for i, t := range n.targets {
		if consumers[i], err = n.consumer(ctx, stream, t, replicas); err != nil {
			return nil, err
		}
		if err := n.store.create(ctx, TargetState{Target: t.id, Channel: t.channel, Endpoint: t.endpoint}); err != nil {
			return nil, fmt.Errorf("notify: recording target %s in KV bucket %s: %w", t.endpoint, n.names.NotifyBucket(), err)
		}
	}
	return consumers, nil
}

func (n *Notifier) consumer(ctx context.Context, stream jetstream.Stream, t *target, replicas int) (jetstream.Consumer, error) {
	ackWait := n.opts.AckWait
	if ackWait <= 0 {
		ackWait = t.timeout + ackWaitMargin
	}
	return js(ctx, "creating the consumer of "+t.endpoint, func(ctx context.Context) (jetstream.Consumer, error) {
		return stream.CreateOrUpdateConsumer(ctx, jetstream.ConsumerConfig{
			Durable:       n.names.NotifyConsumer(t.id),
			Description:   "mftflow notifications to " + t.channel + " " + t.endpoint,
			FilterSubject: n.names.NotifySubject(t.id),
			AckPolicy:     jetstream.AckExplicitPolicy,
			AckWait:       ackWait,
			MaxDeliver:    -1,
			MaxAckPending: maxAckPending,
			Replicas:      replicas,
		})
	})
}

// replicas is Options.Replicas, or the count the flow's bus would choose,
// but never fewer than the stream has already.
func (n *Notifier) replicas(ctx context.Context) (int, error) {
	if n.opts.Replicas > 0 {
		return n.opts.Replicas, nil
	}
	r, err := bus.DetectReplicas(ctx, n.js)
	if err != nil {
		return 0, fmt.Errorf("notify: choosing the replica count of stream %s (set Options.Replicas to skip this): %w", n.names.NotifyStream(), err)
	}
	if st, err := n.js.Stream(ctx, n.names.NotifyStream()); err == nil {
		r = max(r, st.CachedInfo().Config.Replicas)
	}
	return r, nil
}

// js runs one setup call to JetStream, naming what it did when it fails.
func js[T any](ctx context.Context, what string, call func(context.Context) (T, error)) (T, error) {
	v, err := call(ctx)
	if err != nil {
		return v, fmt.Errorf("notify: %s: %w", what, err)
	}
	return v, nil
}

// Emit turns ev into a notification for each target of a rule that asks
// for it, and puts each on the bus before it returns; sending happens
// later, in the background. An event no rule asks for costs nothing. A
// notification that cannot be put on the bus within
// Options.PublishTimeout is logged, counted (publish_failures_total and
// Status) and not sent. Emit works after Close too: another runner, or
// the next run, sends what it publishes.
func (n *Notifier) Emit(ev pipeline.Event) {
	if triggerOf(ev) == "" || len(n.rules) == 0 {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), n.opts.PublishTimeout)
	defer cancel()
	if err := n.Publish(ctx, ev); err != nil {
		n.log.Error("a notification is lost: it could not be put on the bus", "err", err)
	}
}

// Publish is Emit with its errors returned: one per notification that
// could not be put on the bus, joined. ctx bounds it.
func (n *Notifier) Publish(ctx context.Context, ev pipeline.Event) error {
	trigger := triggerOf(ev)
	if trigger == "" {
		return nil
	}
	if ev.Flow == "" {
		ev.Flow = n.flow
	}
	done := map[*target]bool{}
	var errs []error
	for _, r := range n.rules {
		if done[r.target] || !r.matches(trigger, ev) {
			continue
		}
		done[r.target] = true
		if err := n.publish(ctx, newMessage(ev, trigger, r.target.id), r.target); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// publishAttempts bounds the tries of one publish within its context
// (JetStream without a leader answers "no responders" for a moment).
const publishAttempts = 20

func (n *Notifier) publish(ctx context.Context, m Message, t *target) error {
	body, err := json.Marshal(m)
	if err == nil {
		msg := &nats.Msg{Subject: n.names.NotifySubject(t.id), Data: body}
		_, err = n.js.PublishMsg(ctx, msg, jetstream.WithMsgID(m.ID), jetstream.WithExpectStream(n.names.NotifyStream()),
			jetstream.WithRetryAttempts(publishAttempts))
	}
	if err == nil {
		return nil
	}
	err = fmt.Errorf("notify: putting the %s notification %s (file %q) for %s on stream %s: %w", m.Trigger, m.ID, m.Name, t.endpoint, n.names.NotifyStream(), err)
	n.metrics.publishFailures.WithLabelValues(n.flow).Inc()
	n.publishMu.Lock()
	n.publishFailures++
	n.lastPublishError, n.lastPublishAt = err.Error(), time.Now()
	n.publishMu.Unlock()
	return err
}

// Status reads the flow's notification state from the bus (see Inspect)
// and adds this Notifier's view: which rules send to each target, and the
// events it could not publish.
func (n *Notifier) Status(ctx context.Context) (Status, error) {
	found, err := Inspect(ctx, n.js, n.flow)
	if err != nil {
		return Status{}, err
	}
	st := Status{Flow: n.flow}
	byID := map[string]TargetStatus{}
	for _, t := range found {
		byID[t.Target] = t
	}
	for _, t := range n.targets {
		ts, ok := byID[t.id]
		if !ok {
			ts.TargetState = TargetState{Target: t.id}
		}
		ts.Channel, ts.Endpoint, ts.Rules = t.channel, t.endpoint, t.rules
		st.Targets = append(st.Targets, ts)
		delete(byID, t.id)
	}
	for _, t := range found {
		if _, orphan := byID[t.Target]; orphan && (t.Pending > 0 || t.Failing || t.GivenUp > 0) {
			st.Targets = append(st.Targets, t)
		}
	}
	n.publishMu.Lock()
	st.PublishFailures, st.LastPublishError, st.LastPublishAt = n.publishFailures, n.lastPublishError, n.lastPublishAt
	n.publishMu.Unlock()
	return st, nil
}

// refreshPending sets the pending gauge from the consumers, every
// Options.RefreshEvery until ctx ends.
func (n *Notifier) refreshPending(ctx context.Context) {
	t := time.NewTicker(n.opts.RefreshEvery)
	defer t.Stop()
	for {
		n.readPending(ctx)
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

func (n *Notifier) readPending(ctx context.Context) {
	rctx, cancel := context.WithTimeout(ctx, n.opts.PublishTimeout)
	defer cancel()
	found, err := Inspect(rctx, n.js, n.flow)
	if err != nil {
		n.log.Debug("reading pending notifications", "err", err)
		return
	}
	channel := map[string]string{}
	for _, t := range n.targets {
		channel[t.id] = t.channel
	}
	sums := map[string]float64{ChannelWebhook: 0, ChannelEmail: 0}
	for _, t := range found {
		if c := channel[t.Target]; c != "" {
			sums[c] += float64(t.Pending)
		} else if t.Channel != "" {
			sums[t.Channel] += float64(t.Pending)
		}
	}
	for c, v := range sums {
		n.metrics.pending.WithLabelValues(n.flow, c).Set(v)
	}
}

// Close stops sending and waits for the senders: a notification being
// sent is handed back to the bus, to be sent by another runner or the
// next run (perhaps a second time, with the same id). It does not close
// the NATS connection. Close is idempotent and returns nil.
func (n *Notifier) Close() error {
	n.closeOnce.Do(func() {
		n.cancel()
		n.done.Wait()
		n.http.CloseIdleConnections()
	})
	return nil
}
