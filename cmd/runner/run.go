package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"runtime/debug"
	"runtime/pprof"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/spf13/cobra"

	"github.com/mftflow/mftflow/internal/discard"
	"github.com/mftflow/mftflow/pipeline"
	"github.com/mftflow/mftflow/pipeline/bus"
	"github.com/mftflow/mftflow/pipeline/engine"
	"github.com/mftflow/mftflow/pipeline/flowfile"
)

type runOptions struct {
	progress    *choice
	stats       time.Duration
	grace       time.Duration
	memoryLimit string
	replicas    int
	http        string
	cpuProfile  string
	busFullWait time.Duration
	once        bool
	console     consoleFlags
}

func newRunCmd(g *globalOptions) *cobra.Command {
	o := &runOptions{progress: newChoice(progressAuto, progressAuto, progressBar, progressPlain, progressNone)}
	cmd := &cobra.Command{
		Use:   "run FLOW.yaml...",
		Short: "Run flows until their sources are exhausted, or until stopped",
		Long: `Run loads every flow file, then runs all the flows at once.

A flow whose source is finite ends when every file has reached every sink (or
failed to); a watching source runs until the runner is stopped, and a flow
with a schedule polls at its times until then. --once takes the files each
source holds now (a watching source or a Thru pickup included, a schedule
aside), delivers them and exits: for cron jobs and batch windows. SIGINT or
SIGTERM stops gracefully: no new files are taken, parts in flight are finished
or checkpointed within --grace, and the next run resumes the rest. A second
signal exits at once; nothing is lost, but more is redone.

Exit status: 0 when every file passed or was skipped, 3 when some deliveries
failed (see "runner status --failed"), 1 on any other error.`,
		Example: `  runner run examples/quickstart.yaml
  runner run --progress plain --stats 30s flows/*.yaml
  runner run --once flows/partner-pickup.yaml
  runner run --http 127.0.0.1:9090 flows/*.yaml
  runner run --http :9443 --console --console-access access.yaml --http-tls-cert c.crt --http-tls-key c.key flows/*.yaml
  runner run --nats-url nats://n1:4222,nats://n2:4222 --nats-creds ops.creds flows/orders.yaml`,
		Args: func(cmd *cobra.Command, args []string) error {
			if len(args) == 0 {
				return &exitError{exitErr, "run needs at least one flow file: runner run FLOW.yaml..."}
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			if o.stats < 0 {
				return &exitError{exitErr, fmt.Sprintf("--stats %s: must not be negative (0 turns the lines off)", o.stats)}
			}
			if o.grace <= 0 {
				return &exitError{exitErr, fmt.Sprintf("--grace %s: must be more than 0", o.grace)}
			}
			if o.busFullWait < 0 {
				return &exitError{exitErr, fmt.Sprintf("--bus-full-wait %s: must not be negative (0 fails a file at the first refusal)", o.busFullWait)}
			}
			if o.replicas < 0 || o.replicas > 5 {
				return &exitError{exitErr, fmt.Sprintf("--replicas %d: want 1 to 5 (JetStream's limit), or 0 to choose", o.replicas)}
			}
			if err := o.console.check(o.http); err != nil {
				return &exitError{exitErr, err.Error()}
			}
			if err := applyMemoryLimit(o.memoryLimit); err != nil {
				return &exitError{exitErr, err.Error()}
			}
			return runFlows(g, o, args)
		},
	}
	f := cmd.Flags()
	f.Var(o.progress, "progress", "progress display: auto (bar on a terminal, else plain), bar, plain or none")
	f.DurationVar(&o.stats, "stats", 10*time.Second, "interval between plain progress lines (0 for none)")
	f.DurationVar(&o.grace, "grace", 30*time.Second, "on SIGINT or SIGTERM, how long to let parts in flight finish")
	f.DurationVar(&o.busFullWait, "bus-full-wait", engine.DefaultBusFullWait, "when the bus store is full, how long writes wait for room before the file being read fails (0: at once)")
	f.IntVar(&o.replicas, "replicas", 0, "replicas of each flow's streams and KV bucket; 0 chooses 3 on a JetStream cluster of 3 or more servers, else 1 (an existing flow's count is then never lowered)")
	f.StringVar(&o.memoryLimit, "memory-limit", defaultMemoryLimit, "soft memory limit of the Go runtime (GOMEMLIMIT, which wins when set); 0 for none")
	f.StringVar(&o.cpuProfile, "cpu-profile", "", "write a pprof CPU profile of the whole run to this file (go tool pprof)")
	f.BoolVar(&o.once, "once", false, "take the files each source holds now, deliver them and exit (overrides watch and schedules)")
	f.StringVar(&o.http, "http", "", "serve /healthz, /readyz, /metrics and /status on this address, such as 127.0.0.1:9090 (empty: off)")
	o.console.register(f, true)
	return cmd
}

// loadResult is one flow file after loading.
type loadResult struct {
	path string
	flow *pipeline.Flow
	err  error
}

// loadFlows loads every flow file, and rejects two files declaring the same
// flow name: their state on the bus would be mixed up.
func loadFlows(g *globalOptions, reg *pipeline.Registry, paths []string) []loadResult {
	results := make([]loadResult, len(paths))
	byName := map[string]string{}
	opts := flowOptions(g)
	for i, p := range paths {
		f, err := flowfile.LoadWith(p, reg, opts)
		results[i] = loadResult{path: p, flow: f, err: withPluginHint(err)}
		if err != nil || f == nil {
			continue
		}
		if other, dup := byName[f.Name]; dup {
			where := f.Pos.String()
			if where == "" {
				where = p
			}
			results[i].err = fmt.Errorf("%s: flow name %q is also used by %s: give each flow its own name", where, f.Name, other)
			results[i].flow = nil
			continue
		}
		byName[f.Name] = p
	}
	return results
}

// shippedPlugins are the connectors that ship as plugins beside the runner.
var shippedPlugins = []string{"sftp", "ftps"}

// withPluginHint adds to err, when it names an unknown connector that ships
// as a plugin, how to get it.
func withPluginHint(err error) error {
	var unknown *pipeline.UnknownError
	if errors.As(err, &unknown) && slices.Contains(shippedPlugins, unknown.Name) {
		return fmt.Errorf("%w\n%s", err, `sftp and ftps ship as plugins: build them with "make plugins" (into bin/plugins.d beside bin/runner, where the runner finds them), or give their directory with --plugins-dir`)
	}
	return err
}

func runFlows(g *globalOptions, o *runOptions, paths []string) error {
	log := g.logger
	if o.cpuProfile != "" {
		stop, err := startCPUProfile(o.cpuProfile)
		if err != nil {
			return &exitError{exitErr, err.Error()}
		}
		defer func() {
			if err := stop(); err != nil {
				log.Warn("the CPU profile is incomplete", "path", o.cpuProfile, "err", err)
			}
		}()
	}
	reg, err := g.registry(context.Background())
	if err != nil {
		return &exitError{exitErr, err.Error()}
	}
	flows, err := validFlows(g, reg, paths)
	if err != nil {
		return err
	}
	sig := watchSignals(g, log)
	defer sig.close()

	c, err := connectForRun(g, embeddedOptions(g, reg, flows)...)
	if err != nil {
		return &exitError{exitErr, err.Error()}
	}
	sig.setConn(c)
	defer c.Close()

	set := &runSet{}
	runID := newRunID()
	metrics, stopOps, err := startOps(opsConfig{addr: o.http, console: &o.console, stats: set.stats, runID: runID}, c, flows, log, set.problems)
	if err != nil {
		return &exitError{exitErr, err.Error()}
	}
	defer stopOps()
	eng, err := newEngine(g, o, c, reg, metrics, runID)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	js, err := jetstream.New(c.nc)
	if err != nil {
		return &exitError{exitErr, err.Error()}
	}
	obs, err := openObservers(ctx, js, flows, o.replicas, metrics, log)
	if err != nil {
		return &exitError{exitErr, err.Error()}
	}
	defer obs.close()

	runs, err := startRuns(ctx, eng, obs, flows, set, sig.stopping, o, c.where, log)
	if err != nil {
		return err
	}
	statsers := make([]statser, len(runs))
	for i, r := range runs {
		statsers[i] = r
	}
	progress := startProgress(resolveProgressMode(o.progress.value, g.stdout), g.stdout, g.logOut, statsers, o.stats)
	defer progress.stop()
	fatal, err := awaitRuns(runs, sig.stopping, o.grace, log)
	progress.stop()
	if err != nil {
		return err
	}
	return summarize(g, c, runs, fatal, log)
}

// validFlows loads the flow files; any invalid one is printed and nothing
// is started.
func validFlows(g *globalOptions, reg *pipeline.Registry, paths []string) ([]*pipeline.Flow, error) {
	var flows []*pipeline.Flow
	bad := 0
	for _, r := range loadFlows(g, reg, paths) {
		if r.err != nil {
			warnf(g.stderr, "%s\n", strings.TrimRight(r.err.Error(), "\n"))
			bad++
			continue
		}
		flows = append(flows, r.flow)
	}
	if bad > 0 {
		what := "flow file is"
		if bad > 1 {
			what = "flow files are"
		}
		return nil, &exitError{exitErr, fmt.Sprintf("%d %s invalid; nothing was started", bad, what)}
	}
	return flows, nil
}

// signals handles SIGINT and SIGTERM: the first closes stopping (a graceful
// stop), a second one exits at once.
type signals struct {
	stopping chan struct{}
	finished chan struct{}
	sigs     chan os.Signal
	mu       sync.Mutex
	conn     *natsConn
}

func watchSignals(g *globalOptions, log *slog.Logger) *signals {
	s := &signals{stopping: make(chan struct{}), finished: make(chan struct{}), sigs: make(chan os.Signal, 2)}
	signal.Notify(s.sigs, syscall.SIGINT, syscall.SIGTERM)
	go s.watch(g, log)
	return s
}

func (s *signals) watch(g *globalOptions, log *slog.Logger) {
	select {
	case <-s.sigs:
	case <-s.finished:
		return
	}
	log.Info("stopping: finishing in-flight parts (press Ctrl-C again to force)")
	close(s.stopping)
	// A repeat within a moment of the first is the same request sent
	// twice (timeout(1) signals both the child and its process group),
	// not a person asking to force.
	first := time.Now()
	for {
		select {
		case <-s.sigs:
		case <-s.finished:
			return
		}
		if time.Since(first) >= time.Second {
			break
		}
	}
	s.mu.Lock()
	s.conn.removeURLFile()
	s.mu.Unlock()
	warnf(g.stderr, "runner: forced exit; files in flight resume on the next run\n")
	os.Exit(exitErr)
}

// setConn tells a forced exit which connection's URL file to remove.
func (s *signals) setConn(c *natsConn) {
	s.mu.Lock()
	s.conn = c
	s.mu.Unlock()
}

func (s *signals) close() {
	signal.Stop(s.sigs)
	close(s.finished)
}

// runSet holds the runs started so far, for /readyz (a full bus store) and
// the console's statistics, which ask while runs are still being started.
type runSet struct {
	mu   sync.Mutex
	runs []*engine.Run
}

func (s *runSet) add(r *engine.Run) {
	s.mu.Lock()
	s.runs = append(s.runs, r)
	s.mu.Unlock()
}

func (s *runSet) problems() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var p []string
	for _, r := range s.runs {
		p = append(p, r.Problems()...)
	}
	return p
}

func (s *runSet) stats() []engine.Stats {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []engine.Stats
	for _, r := range s.runs {
		out = append(out, r.Stats())
	}
	return out
}

// newEngine starts the engine on the runner's connection.
func newEngine(g *globalOptions, o *runOptions, c *natsConn, reg *pipeline.Registry, metrics prometheus.Registerer, runID string) (*engine.Engine, error) {
	wait := o.busFullWait
	if wait == 0 {
		wait = -1 // the engine's "at once"
	}
	store := bus.ServerStore
	if c.embedded != nil {
		store = bus.EmbeddedStoreHint(g.data, "--data")
	}
	eng, err := engine.New(c.nc, engine.Options{Registry: reg, Logger: g.logger, Grace: o.grace, Replicas: o.replicas, Metrics: metrics, RunID: runID,
		BusFullWait: wait, BusStore: store, SoleRunner: c.embedded != nil})
	if err != nil {
		return nil, &exitError{exitErr, fmt.Sprintf("starting the engine: %v", err)}
	}
	return eng, nil
}

// startRuns starts a run of each flow, until a stop is asked for; if one
// cannot start, those already started are stopped.
func startRuns(ctx context.Context, eng *engine.Engine, obs *observers, flows []*pipeline.Flow, set *runSet, stopping <-chan struct{}, o *runOptions, where string, log *slog.Logger) ([]*engine.Run, error) {
	var runs []*engine.Run
	for _, f := range flows {
		if closed(stopping) {
			break
		}
		f.Once = o.once
		r, err := eng.Start(ctx, *f)
		if err != nil {
			stopRuns(runs, make([]bool, len(runs)), o.grace, log)
			msg := err.Error()
			if !strings.HasPrefix(msg, "flow "+f.Name+": ") {
				msg = "flow " + f.Name + ": " + msg
			}
			return nil, &exitError{exitErr, "starting " + msg}
		}
		if err := obs.started(ctx, f); err != nil {
			stopRuns(append(runs, r), make([]bool, len(runs)+1), o.grace, log)
			return nil, &exitError{exitErr, fmt.Sprintf("starting flow %s: %v", f.Name, err)}
		}
		log.Info("flow started", "flow", f.Name, "nats", where)
		runs = append(runs, r)
		set.add(r)
	}
	return runs, nil
}

// awaitRuns waits for every run to end. A stop asked for, or a run that
// cannot continue, stops the others; those not stopped within 10 s past
// their grace make it an error. It returns the runs' fatal errors.
func awaitRuns(runs []*engine.Run, stopping <-chan struct{}, grace time.Duration, log *slog.Logger) ([]string, error) {
	type waitResult struct {
		i   int
		err error
	}
	results := make(chan waitResult, len(runs))
	for i, r := range runs {
		go func() { results <- waitResult{i, r.Wait()} }()
	}
	ended := make([]bool, len(runs))
	var fatal []string
	stopCh := stopping
	var stopDeadline <-chan time.Time
	stop := func() {
		stopCh = nil
		stopRuns(runs, ended, grace, log)
		stopDeadline = time.After(10 * time.Second)
	}
	for remaining := len(runs); remaining > 0; {
		select {
		case <-stopCh:
			stop()
		case res := <-results:
			remaining--
			ended[res.i] = true
			if res.err != nil {
				name := runs[res.i].Flow().Name
				log.Error("flow could not continue", "flow", name, "err", res.err)
				fatal = append(fatal, fmt.Sprintf("flow %s: %v", name, res.err))
				if stopCh != nil {
					stop()
				}
			}
		case <-stopDeadline:
			return nil, &exitError{exitErr, fmt.Sprintf("%d of %d flows did not stop within --grace %s", remaining, len(runs), grace)}
		}
	}
	return fatal, nil
}

// summarize prints each run's summary and returns the run's outcome as an
// exit error, if any.
func summarize(g *globalOptions, c *natsConn, runs []*engine.Run, fatal []string, log *slog.Logger) error {
	var failed int64
	for _, r := range runs {
		s := r.Stats()
		if _, err := fmt.Fprintln(g.stdout, formatSummary(s, time.Since(s.Started))); err != nil {
			// The exit code tells how the files went; a lost summary is worth a log line.
			log.Warn("writing the run's summary", "err", err)
		}
		failed += filesFailed(s)
	}
	// What the run cost the bus: the messages of every JetStream request,
	// publish and record write, which bound how many files a second go through.
	st := c.nc.Stats()
	log.Info("bus traffic", "messages_out", st.OutMsgs, "messages_in", st.InMsgs, "bytes_out", st.OutBytes, "bytes_in", st.InBytes)
	switch {
	case len(fatal) == 1:
		return &exitError{exitErr, fatal[0]}
	case len(fatal) > 1:
		return &exitError{exitErr, fmt.Sprintf("%d flows could not continue: %s", len(fatal), strings.Join(fatal, "; "))}
	case failed > 0:
		return &exitError{exitFailed, fmt.Sprintf("%s failed or partly failed; see %q", plural(failed, "file", "files"), statusCommand(g, "--failed"))}
	}
	return nil
}

// stopRuns stops every run that has not ended, at once, and waits at most
// grace for them. Parts still in flight then are checkpointed by the engine
// and resume on the next run.
func stopRuns(runs []*engine.Run, ended []bool, grace time.Duration, log *slog.Logger) {
	ctx, cancel := context.WithTimeout(context.Background(), grace)
	defer cancel()
	var wg sync.WaitGroup
	for i, r := range runs {
		if ended[i] {
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := r.Stop(ctx); err != nil {
				log.Warn("flow did not stop cleanly; the next run resumes it", "flow", r.Flow().Name, "err", err)
			}
		}()
	}
	wg.Wait()
}

// closed reports whether ch is closed.
func closed(ch <-chan struct{}) bool {
	select {
	case <-ch:
		return true
	default:
		return false
	}
}

// statusCommand is the status command line that reads the state this runner
// wrote, for hints.
func statusCommand(g *globalOptions, args ...string) string {
	cmd := append([]string{"runner", "status"}, args...)
	switch {
	case g.nats.url != "":
		cmd = append(cmd, "--nats-url", redactURLs(g.nats.url))
	case g.data != defaultData:
		cmd = append(cmd, "--data", g.data)
	}
	return strings.Join(cmd, " ")
}

// defaultMemoryLimit keeps the garbage collector from letting the heap double
// while files stream through: live memory is bounded by the bus window and
// part buffers, so a soft limit a little above it holds peak RSS there.
const defaultMemoryLimit = "160MiB"

func applyMemoryLimit(limit string) error {
	if os.Getenv("GOMEMLIMIT") != "" {
		return nil
	}
	n, err := pipeline.ParseSize(limit)
	if err != nil {
		return fmt.Errorf("--memory-limit %q: want a size such as 192MiB or 1GiB, or 0 for none", limit)
	}
	if n > 0 {
		debug.SetMemoryLimit(n)
	}
	return nil
}

// startCPUProfile profiles the process into path until stop is called;
// stop's error says the profile is incomplete.
func startCPUProfile(path string) (stop func() error, err error) {
	f, err := os.Create(path)
	if err != nil {
		return nil, fmt.Errorf("--cpu-profile: %w", err)
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		discard.Close(f) // empty
		return nil, fmt.Errorf("--cpu-profile: %w", err)
	}
	return func() error {
		pprof.StopCPUProfile()
		return f.Close()
	}, nil
}
