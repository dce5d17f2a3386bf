package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/spf13/cobra"
	"github.com/vbauerster/mpb/v8"
	"github.com/vbauerster/mpb/v8/decor"

	"github.com/mftflow/mftflow/bench"
	"github.com/mftflow/mftflow/pipeline"
	"github.com/mftflow/mftflow/pipeline/bus"
)

type benchOptions struct {
	files       int
	size        string
	data        *choice
	chunkSizes  string
	partSizes   string
	parallelism string
	compression string
	payload     string
	warmup      int
	runs        int
	asJSON      bool
	out         string
	progress    *choice
	memoryLimit string
	noCeiling   bool
	child       bool
}

func newBenchCmd(g *globalOptions) *cobra.Command {
	o := &benchOptions{
		data:     newChoice(bench.DataRandom, bench.DataRandom, bench.DataText),
		progress: newChoice(progressAuto, progressAuto, progressBar, progressPlain, progressNone),
	}
	cmd := &cobra.Command{
		Use:   "bench [FLOW.yaml]",
		Short: "Measure throughput over a sweep of chunk size, part size, parallelism, compression and payload",
		Long: `Bench runs a flow repeatedly over a sweep of settings and reports, for each
combination, MB/s and files/s (median and min–max over the counted runs), peak
RSS, CPU seconds and retries, next to the bus's own ceiling: the same bytes
published to JetStream and read back in messages of the same chunk size on the
same server, with nothing else. It marks the best combination and prints the
flow-file settings that select it.

What runs: with FLOW.yaml alone, the flow's own source and sinks. With --files
or --size (or without FLOW.yaml), a generated workload of that many files of
that size, random or text-like (--content), sent to FLOW.yaml's sinks, or to a
local directory the bench creates and removes. Bench writes nowhere else: the
flow's source is read once per run, so it must leave its files ("after:
leave") and be able to stop watching; a source that hands each file out only
once is refused.

Sweep flags take comma-separated lists; each combination is one point, run
--warmup times uncounted, then --runs times. Settings not swept keep the
flow's values. --parallelism and --part-size apply to every sink.

Every run is a process of its own with a fresh flow name (so nothing is found
already delivered): peak RSS is that process's ru_maxrss and CPU seconds its
user plus system time, the embedded NATS server included, as for "runner
run". Without --nats-url each run starts an embedded server in a temporary
directory; with it, runs share that server. After each
run its streams, KV bucket and outputs are removed: local sinks of FLOW.yaml
write each run under a subdirectory "mftflow-bench-<run>" of their path;
other sinks keep what they received, as in a real run.

Runs log to stderr; only warnings and errors unless --log-level is given.
--json prints the results as JSON instead of the table. --out DIR writes
results.json and chart.svg (MB/s against parallelism, one line per chunk size)
into DIR.`,
		Example: `  runner bench --files 100 --size 10MiB --content random --parallelism 1,4,8 --chunk-size 256KiB,1MiB
  runner bench --compression none,s2,zstd --content text --out results/
  runner bench --runs 5 --warmup 1 --part-size 8MiB,16MiB flows/to-s3.yaml
  runner bench --files 20 --size 100MiB --json flows/to-thru.yaml > bench.json`,
		Args: func(cmd *cobra.Command, args []string) error {
			if len(args) > 1 {
				return &exitError{exitErr, fmt.Sprintf("bench takes at most one flow file, got %d: runner bench [FLOW.yaml]", len(args))}
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			if o.child {
				return benchChild(g, o)
			}
			return runBench(cmd, g, o, args)
		},
	}
	f := cmd.Flags()
	f.IntVar(&o.files, "files", 100, "generated workload: number of files")
	f.StringVar(&o.size, "size", "10MiB", "generated workload: size of each file")
	f.Var(o.data, "content", "generated workload: random (incompressible) or text (compressible)")
	f.StringVar(&o.chunkSizes, "chunk-size", "", "bus chunk sizes to try, such as 256KiB,1MiB,4MiB (default: the flow's)")
	f.StringVar(&o.partSizes, "part-size", "", "sink part sizes to try, such as 8MiB,16MiB (default: each sink's)")
	f.StringVar(&o.parallelism, "parallelism", "", "sink parallelism to try, such as 1,4,8 (default: the flow's)")
	f.StringVar(&o.compression, "compression", "", "bus compressions to try: none, s2, zstd (default: the flow's)")
	f.StringVar(&o.payload, "payload", "", "bus payloads to try: bytes, reference (default: the flow's)")
	f.IntVar(&o.warmup, "warmup", 1, "uncounted runs of each point before the counted ones")
	f.IntVar(&o.runs, "runs", 3, "counted runs of each point")
	f.BoolVar(&o.asJSON, "json", false, "print the results as JSON instead of a table")
	f.StringVar(&o.out, "out", "", "write results.json and chart.svg into this directory (created if missing)")
	f.Var(o.progress, "progress", "progress display: auto (bar on a terminal, else plain), bar, plain or none")
	f.StringVar(&o.memoryLimit, "memory-limit", defaultMemoryLimit, "soft memory limit of each run's process, as for \"runner run\"")
	f.BoolVar(&o.noCeiling, "no-ceiling", false, "do not measure the bus ceiling")
	f.BoolVar(&o.child, "child", false, "run one job read as JSON from stdin (used by bench itself)")
	_ = f.MarkHidden("child") // fails only for a flag not defined above
	return cmd
}

// planBench checks the flags and turns them into a bench.Config. It has no
// side effects, so that bad values are reported before anything starts.
func planBench(cmd *cobra.Command, o *benchOptions, args []string) (bench.Config, error) {
	cfg := bench.Config{Warmup: o.warmup, Runs: o.runs, NoCeiling: o.noCeiling}
	var errs []error
	var err error
	if cfg.Sweep.ChunkSizes, err = optionalSizes(o.chunkSizes, "--chunk-size", 4096, "256KiB, 1MiB"); err != nil {
		errs = append(errs, err)
	}
	if cfg.Sweep.PartSizes, err = optionalSizes(o.partSizes, "--part-size", 1, "8MiB, 16MiB"); err != nil {
		errs = append(errs, err)
	}
	if o.parallelism != "" {
		if cfg.Sweep.Parallelisms, err = bench.ParseCounts("--parallelism", o.parallelism); err != nil {
			errs = append(errs, err)
		}
	}
	if o.compression != "" {
		if cfg.Sweep.Compressions, err = bench.ParseCompressions("--compression", o.compression); err != nil {
			errs = append(errs, err)
		}
	}
	if o.payload != "" {
		if cfg.Sweep.Payloads, err = bench.ParsePayloads("--payload", o.payload); err != nil {
			errs = append(errs, err)
		}
	}
	if o.runs < 1 {
		errs = append(errs, fmt.Errorf("--runs %d: must be at least 1", o.runs))
	}
	if o.warmup < 0 {
		errs = append(errs, fmt.Errorf("--warmup %d: must not be negative", o.warmup))
	}
	fl := cmd.Flags()
	if len(args) == 0 || fl.Changed("files") || fl.Changed("size") || fl.Changed("content") {
		size, err := pipeline.ParseSize(o.size)
		if err != nil {
			errs = append(errs, fmt.Errorf("--size: %q is not a size (examples: 4KiB, 10MiB)", o.size))
		} else {
			w := bench.Workload{Files: o.files, Size: size, Data: o.data.value}
			if err := w.Check(); err != nil {
				errs = append(errs, err)
			}
			cfg.Workload = &w
		}
	}
	if len(args) == 1 {
		abs, err := filepath.Abs(args[0])
		if err != nil {
			errs = append(errs, fmt.Errorf("flow file %s: %w", args[0], err))
		}
		cfg.FlowFile = abs
	}
	return cfg, errors.Join(errs...)
}

func optionalSizes(s, flag string, min int64, examples string) ([]int64, error) {
	if s == "" {
		return nil, nil
	}
	return bench.ParseSizes(flag, s, min, examples)
}

// checkChunkSizes refuses chunk sizes that the server would refuse.
func checkChunkSizes(sizes []int64, maxPayload int64, where string) error {
	for _, c := range sizes {
		if c+bus.HeaderRoom > maxPayload {
			limit := (maxPayload - bus.HeaderRoom) / 1024 * 1024
			return fmt.Errorf("--chunk-size: %s (%d bytes) plus %d bytes of headers exceeds the max_payload of %d bytes of %s: use at most %s, or raise max_payload on the server",
				pipeline.ExactSize(c), c, bus.HeaderRoom, maxPayload, where, pipeline.ExactSize(limit))
		}
	}
	return nil
}

func runBench(cmd *cobra.Command, g *globalOptions, o *benchOptions, args []string) error {
	cfg, err := planBench(cmd, o, args)
	if err != nil {
		return &exitError{exitErr, err.Error()}
	}
	if _, err := pipeline.ParseSize(o.memoryLimit); err != nil {
		return &exitError{exitErr, fmt.Sprintf("--memory-limit %q: want a size such as 192MiB or 1GiB, or 0 for none", o.memoryLimit)}
	}
	reg, err := g.registry(context.Background())
	if err != nil {
		return &exitError{exitErr, err.Error()}
	}
	if err := checkBenchChunks(g, &cfg, reg); err != nil {
		return &exitError{exitErr, err.Error()}
	}
	self, err := os.Executable()
	if err != nil {
		return &exitError{exitErr, fmt.Sprintf("finding the runner executable to run each measurement in: %v", err)}
	}
	work, err := os.MkdirTemp("", "mftflow-bench-")
	if err != nil {
		return &exitError{exitErr, fmt.Sprintf("creating a work directory: %v", err)}
	}
	defer func() {
		if err := os.RemoveAll(work); err != nil {
			g.logger.Warn("removing the benchmark's work directory", "dir", work, "err", err) // it may hold gigabytes
		}
	}()
	cfg.WorkDir = work

	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()

	// A run logs every file at info; unless asked, show only its warnings.
	logLevel := "warn"
	if fl := cmd.Flag("log-level"); fl != nil && fl.Changed {
		logLevel = g.logLevel.value
	}
	x := &childExecutor{bin: self, g: g, memoryLimit: o.memoryLimit, logLevel: logLevel, work: work, stderr: g.logOut}
	mode, progressOut := o.progress.value, g.stdout
	if o.asJSON {
		// stdout is for the JSON: progress, if asked for, goes to stderr.
		progressOut = g.stderr
		if !cmd.Flags().Changed("progress") {
			mode = progressNone
		}
	}
	view := startBenchProgress(resolveProgressMode(mode, progressOut), progressOut, g.logOut)
	rep, runErr := bench.Run(ctx, cfg, reg, x, view.observe)
	view.stop()

	if rep != nil && rep.Best >= 0 {
		if err := writeBenchReport(g, o, rep); err != nil {
			return &exitError{exitErr, err.Error()}
		}
	}
	switch {
	case runErr == nil:
		return nil
	case ctx.Err() == nil:
		return &exitError{exitErr, runErr.Error()}
	case rep != nil && rep.Best >= 0:
		return &exitError{exitErr, "stopped before the sweep was done; the results above cover the points measured until then"}
	}
	return &exitError{exitErr, "stopped before any point was measured"}
}

// checkBenchChunks checks that the chunk sizes swept, or the flow's own,
// fit the NATS server's max_payload, and notes which server cfg runs on.
func checkBenchChunks(g *globalOptions, cfg *bench.Config, reg *pipeline.Registry) error {
	maxPayload, where := int64(bus.EmbeddedMaxPayload), "the embedded NATS server"
	cfg.NATS = "embedded, a fresh server for every run"
	if g.nats.url != "" {
		c, err := dialExternal(g, false)
		if err != nil {
			return err
		}
		maxPayload, where = c.nc.MaxPayload(), "the NATS server at "+c.where
		cfg.NATS = c.where
		c.Close()
	}
	if err := checkChunkSizes(cfg.Sweep.ChunkSizes, maxPayload, where); err != nil {
		return err
	}
	if cfg.FlowFile != "" && len(cfg.Sweep.ChunkSizes) == 0 {
		// The flow's own chunk size must fit too.
		if f, err := bench.LoadFlow(cfg.FlowFile, "", reg); err == nil && f.Bus.ChunkSize > 0 {
			if err := checkChunkSizes([]int64{f.Bus.ChunkSize}, maxPayload, where); err != nil {
				return fmt.Errorf("%s: bus chunk_size: %v", cfg.FlowFile, strings.TrimPrefix(err.Error(), "--chunk-size: "))
			}
		}
	}
	return nil
}

// writeBenchReport prints the report (a table, or JSON with --json) and
// writes its files with --out.
func writeBenchReport(g *globalOptions, o *benchOptions, rep *bench.Report) error {
	if o.asJSON {
		enc := json.NewEncoder(g.stdout)
		enc.SetIndent("", "  ")
		if err := enc.Encode(rep); err != nil {
			return err
		}
	} else if err := rep.WriteTable(g.stdout); err != nil {
		return err
	}
	if o.out == "" {
		return nil
	}
	if err := writeBenchFiles(rep, o.out); err != nil {
		return err
	}
	if !o.asJSON {
		_, err := fmt.Fprintf(g.stdout, "\nwrote %s and %s\n", filepath.Join(o.out, "results.json"), filepath.Join(o.out, "chart.svg"))
		return err
	}
	return nil
}

// writeBenchFiles writes results.json and chart.svg into dir.
func writeBenchFiles(rep *bench.Report, dir string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("--out: %w", err)
	}
	js, err := json.MarshalIndent(rep, "", "  ")
	if err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(dir, "results.json"), append(js, '\n'), 0o644); err != nil {
		return fmt.Errorf("--out: %w", err)
	}
	var svg bytes.Buffer
	if err := rep.WriteChart(&svg); err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(dir, "chart.svg"), svg.Bytes(), 0o644); err != nil {
		return fmt.Errorf("--out: %w", err)
	}
	return nil
}

// childLine is one line a child writes on stdout: progress while it runs,
// then its result or its error.
type childLine struct {
	Progress *bench.Progress    `json:"progress,omitempty"`
	Result   *bench.Measurement `json:"result,omitempty"`
	Error    string             `json:"error,omitempty"`
}

// childExecutor runs every job in a process of its own ("runner bench
// --child"), so that its peak RSS and CPU time are the kernel's figures
// for that run alone.
type childExecutor struct {
	bin         string
	g           *globalOptions
	memoryLimit string
	logLevel    string
	work        string
	stderr      io.Writer
}

func (x *childExecutor) Execute(ctx context.Context, job bench.Job, progress func(bench.Progress)) (bench.Measurement, error) {
	in, err := json.Marshal(job)
	if err != nil {
		return bench.Measurement{}, err
	}
	g := x.g
	args := []string{"bench", "--child", "--memory-limit", x.memoryLimit,
		"--log-level", x.logLevel, "--log-format", g.logFormat.value, "--plugins-dir", g.pluginsDir}
	if g.nats.url != "" {
		args = append(args, "--nats-url", g.nats.url)
		for _, f := range []struct{ flag, v string }{
			{"--nats-creds", g.nats.creds}, {"--nats-tls-ca", g.nats.tlsCA},
			{"--nats-tls-cert", g.nats.tlsCert}, {"--nats-tls-key", g.nats.tlsKey},
		} {
			if f.v != "" {
				args = append(args, f.flag, f.v)
			}
		}
	} else {
		data := filepath.Join(x.work, "nats-"+job.Name)
		defer func() { _ = os.RemoveAll(data) }() // inside the work directory, removed (or reported) at the end
		args = append(args, "--data", data, "--bus-sync", g.busSync.String())
	}
	cmd := exec.CommandContext(ctx, x.bin, args...)
	cmd.Cancel = func() error { return cmd.Process.Signal(syscall.SIGTERM) }
	cmd.WaitDelay = time.Minute
	cmd.Stdin = bytes.NewReader(in)
	cmd.Stderr = x.stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		return bench.Measurement{}, err
	}
	if err := cmd.Start(); err != nil {
		return bench.Measurement{}, fmt.Errorf("starting %s: %w", x.bin, err)
	}
	var result *bench.Measurement
	var childErr string
	sc := bufio.NewScanner(out)
	for sc.Scan() {
		var line childLine
		if err := json.Unmarshal(sc.Bytes(), &line); err != nil {
			continue // not ours
		}
		switch {
		case line.Progress != nil:
			progress(*line.Progress)
		case line.Result != nil:
			result = line.Result
		case line.Error != "":
			childErr = line.Error
		}
	}
	werr := cmd.Wait()
	if ctx.Err() != nil {
		return bench.Measurement{}, ctx.Err()
	}
	if childErr != "" {
		return bench.Measurement{}, errors.New(childErr)
	}
	if werr != nil || result == nil {
		return bench.Measurement{}, fmt.Errorf("the run's process (%s bench --child) ended without a result: %v", x.bin, werr)
	}
	m := *result
	if ru, ok := cmd.ProcessState.SysUsage().(*syscall.Rusage); ok {
		m.CPUSeconds, m.PeakRSS = bench.RusageOf(ru)
		m.RSSMethod = bench.RSSRusage
	}
	return m, nil
}

// benchChild runs the one job on stdin and reports on stdout in childLines.
func benchChild(g *globalOptions, o *benchOptions) error {
	enc := json.NewEncoder(g.stdout)
	var (
		mu   sync.Mutex
		werr error // the first failed write: the parent did not get the report
	)
	emit := func(l childLine) {
		mu.Lock()
		defer mu.Unlock()
		if werr == nil {
			werr = enc.Encode(l)
		}
	}
	fail := func(err error) error {
		emit(childLine{Error: err.Error()})
		return &exitError{exitErr, ""}
	}
	var job bench.Job
	if err := json.NewDecoder(os.Stdin).Decode(&job); err != nil {
		return fail(fmt.Errorf("reading the job: %w", err))
	}
	if err := applyMemoryLimit(o.memoryLimit); err != nil {
		return fail(err)
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	reg, err := g.registry(ctx)
	if err != nil {
		return fail(err)
	}
	c, err := connectForRun(g)
	if err != nil {
		return fail(err)
	}
	defer c.Close()
	env := bench.Env{NC: c.nc, Registry: reg, Logger: g.logger}
	m, err := env.Run(ctx, job, func(p bench.Progress) { emit(childLine{Progress: &p}) })
	if err != nil {
		return fail(err)
	}
	emit(childLine{Result: &m})
	mu.Lock()
	defer mu.Unlock()
	return werr
}

// benchProgress shows the runs of a sweep as they go.
type benchProgress struct {
	observe func(bench.Event)
	stop    func()
}

// startBenchProgress shows progress on out: a bar per run on a terminal,
// a line per finished run in plain mode, nothing in none.
func startBenchProgress(mode string, out io.Writer, logOut *switchWriter) *benchProgress {
	switch mode {
	case progressPlain:
		return &benchProgress{
			observe: func(ev bench.Event) {
				if ev.Done != nil {
					_, _ = fmt.Fprintln(out, formatBenchRun(ev)) // progress: a lost line changes nothing
				}
			},
			stop: func() {},
		}
	case progressBar:
	default:
		return &benchProgress{observe: func(bench.Event) {}, stop: func() {}}
	}
	p := mpb.New(mpb.WithOutput(out), mpb.WithWidth(32), mpb.WithRefreshRate(200*time.Millisecond))
	prevLog := logOut.set(p)
	var (
		mu  sync.Mutex
		bar *mpb.Bar
	)
	observe := func(ev bench.Event) {
		mu.Lock()
		defer mu.Unlock()
		if bar == nil {
			bar = p.AddBar(max(ev.Total, 0),
				mpb.BarRemoveOnComplete(),
				mpb.PrependDecorators(
					decor.Name(runLabel(ev), decor.WCSyncSpaceR),
					decor.CountersKibiByte("% .1f / % .1f", decor.WCSyncSpace),
				),
				mpb.AppendDecorators(decor.AverageSpeed(decor.SizeB1024(0), "% .1f", decor.WCSyncSpace)),
			)
		}
		bar.SetTotal(max(ev.Total, ev.Progress.Bytes), false)
		bar.SetCurrent(ev.Progress.Bytes)
		if ev.Done != nil {
			bar.SetTotal(-1, true)
			bar.Wait()
			bar = nil
			_, _ = fmt.Fprintln(p, formatBenchRun(ev)) // progress, as above
		}
	}
	return &benchProgress{observe: observe, stop: func() {
		mu.Lock()
		if bar != nil {
			bar.Abort(true)
		}
		mu.Unlock()
		p.Wait()
		logOut.set(prevLog)
	}}
}

// runLabel is "chunk 1MiB, parallelism 4, s2: run 2/3".
func runLabel(ev bench.Event) string {
	what := "run"
	if ev.Warmup {
		what = "warm-up"
	}
	return fmt.Sprintf("%s: %s %d/%d", ev.Label, what, ev.Run, ev.Runs)
}

// formatBenchRun is the line for a finished run.
func formatBenchRun(ev bench.Event) string {
	m := ev.Done
	line := fmt.Sprintf("%s: %.1f MB/s", runLabel(ev), m.MBps())
	if ev.Point >= 0 {
		line += fmt.Sprintf(", %.1f files/s", m.FilesPerSec())
	}
	if m.PeakRSS > 0 {
		line += ", peak RSS " + pipeline.FormatSize(m.PeakRSS)
	}
	return line + fmt.Sprintf(", %.2f CPU s", m.CPUSeconds)
}
