package bench

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/mftflow/mftflow/pipeline"
)

// Config is a sweep to run.
type Config struct {
	// FlowFile gives the sinks (and, without Workload, the source); "" means
	// one local sink writing to a directory under WorkDir.
	FlowFile string
	// Workload, when set, is generated under WorkDir and replaces the
	// flow's source.
	Workload *Workload
	Sweep    Sweep
	// Warmup runs of each point are not counted; Runs are (at least 1).
	Warmup, Runs int
	// WorkDir holds the generated workload and the default sink's outputs.
	// The caller creates it and removes it.
	WorkDir string
	// NoCeiling skips measuring the bus alone.
	NoCeiling bool
	// NATS says where the bus is, for the report ("embedded" or a URL
	// without credentials).
	NATS string
}

// Event reports a run starting, going on or ending.
type Event struct {
	// Point is the index in Report.Points, or -1 for a bus ceiling run.
	Point int
	// Label names the point or the ceiling ("bus ceiling, chunk 1MiB").
	Label string
	// Run counts from 1 within the warm-up runs, then within the counted ones.
	Run, Runs int
	Warmup    bool
	// Total is the bytes the run is expected to move (0 when not known).
	Total    int64
	Progress Progress
	// Done is set once the run has ended well.
	Done *Measurement
}

// Report is the outcome of a sweep. Its JSON form is what "runner bench
// --json" prints.
type Report struct {
	Flow      string    `json:"flow,omitempty"`
	Workload  *Workload `json:"workload,omitempty"`
	Warmup    int       `json:"warmup"`
	Runs      int       `json:"runs"`
	NATS      string    `json:"nats"`
	RSSMethod string    `json:"rss_method"`
	Started   time.Time `json:"started"`
	// Swept lists the settings that the sweep varied.
	Swept    []string        `json:"swept"`
	Points   []PointResult   `json:"points"`
	Ceilings []CeilingResult `json:"ceilings,omitempty"`
	// Best is the index in Points of the point with the highest median MB/s.
	Best int `json:"best"`
	// Snippet is the flow-file text that selects the best point.
	Snippet string `json:"snippet"`
}

// Summary is the median and spread of one figure over the counted runs.
type Summary struct {
	Median float64 `json:"median"`
	Min    float64 `json:"min"`
	Max    float64 `json:"max"`
}

func summarize(runs []Measurement, f func(Measurement) float64) Summary {
	if len(runs) == 0 {
		return Summary{}
	}
	v := make([]float64, len(runs))
	for i, m := range runs {
		v[i] = f(m)
	}
	slices.Sort(v)
	med := v[len(v)/2]
	if len(v)%2 == 0 {
		med = (v[len(v)/2-1] + v[len(v)/2]) / 2
	}
	return Summary{Median: med, Min: v[0], Max: v[len(v)-1]}
}

// PointResult is one point's counted runs and their summary.
type PointResult struct {
	Point
	Runs        []Measurement `json:"runs"`
	MBps        Summary       `json:"mb_per_s"`
	FilesPerSec Summary       `json:"files_per_s"`
	// PeakRSS is the highest of the runs, in bytes; CPUSeconds the median.
	PeakRSS    int64   `json:"peak_rss"`
	CPUSeconds float64 `json:"cpu_seconds"`
	// Retries sums the counted runs' delivery retries.
	Retries int64 `json:"retries"`
	// CeilingMBps is the median bus ceiling at this chunk size (0: not measured).
	CeilingMBps float64 `json:"ceiling_mb_per_s,omitempty"`
	Best        bool    `json:"best,omitempty"`
}

// CeilingResult is the bus alone at one chunk size.
type CeilingResult struct {
	ChunkSize int64         `json:"chunk_size"`
	Runs      []Measurement `json:"runs"`
	MBps      Summary       `json:"mb_per_s"`
}

// Run runs the sweep: every point Warmup plus Runs times, then the bus
// ceiling for each chunk size with as many bytes as a run moved. On error it
// returns what was measured so far with the error.
func Run(ctx context.Context, cfg Config, reg *pipeline.Registry, x Executor, observe func(Event)) (*Report, error) {
	if observe == nil {
		observe = func(Event) {}
	}
	if cfg.Runs < 1 {
		return nil, fmt.Errorf("--runs %d: must be at least 1", cfg.Runs)
	}
	if cfg.Warmup < 0 {
		return nil, fmt.Errorf("--warmup %d: must not be negative", cfg.Warmup)
	}
	if cfg.FlowFile == "" && cfg.Workload == nil {
		return nil, errors.New("nothing to run: give a flow file, a workload (--files, --size), or both")
	}
	flow, err := LoadFlow(cfg.FlowFile, filepath.Join(cfg.WorkDir, "out"), reg)
	if err != nil {
		return nil, err
	}
	if err := CheckFlow(flow, reg, cfg.Workload != nil, cfg.Sweep); err != nil {
		return nil, err
	}
	rep := &Report{
		Flow: cfg.FlowFile, Workload: cfg.Workload, Warmup: cfg.Warmup, Runs: cfg.Runs,
		NATS: cfg.NATS, Started: time.Now().UTC(), Swept: cfg.Sweep.swept(),
	}
	for _, p := range cfg.Sweep.Points(BasePoint(flow)) {
		rep.Points = append(rep.Points, PointResult{Point: p})
	}
	sw := &sweep{ctx: ctx, cfg: cfg, x: x, observe: observe, rep: rep, session: randomHex(4)}
	if w := cfg.Workload; w != nil {
		sw.input = filepath.Join(cfg.WorkDir, "input")
		if err := w.Generate(sw.input); err != nil {
			return nil, err
		}
		sw.total = w.Bytes()
	}
	err = sw.runPoints()
	if err == nil && !cfg.NoCeiling {
		err = sw.runCeilings()
	}
	rep.finish(flow)
	return rep, err
}

// sweep runs the jobs of one Run, in order, and reports each to observe.
type sweep struct {
	ctx     context.Context
	cfg     Config
	x       Executor
	observe func(Event)
	rep     *Report
	session string
	seq     int
	input   string // the generated workload, if any
	total   int64  // bytes a run moves, once known
}

// nextName names a run's flow (or stream) uniquely within the sweep.
func (sw *sweep) nextName() string {
	sw.seq++
	return fmt.Sprintf("bench-%s-%d", sw.session, sw.seq)
}

// event is the Event of run n (warm-up runs first) of a point (-1: a
// ceiling).
func (sw *sweep) event(point int, label string, n int) Event {
	warm := n < sw.cfg.Warmup
	ev := Event{Point: point, Label: label, Run: n + 1, Runs: sw.cfg.Warmup, Warmup: warm, Total: sw.total}
	if !warm {
		ev.Run, ev.Runs = n-sw.cfg.Warmup+1, sw.cfg.Runs
	}
	return ev
}

// run executes job, reporting its start, progress and end.
func (sw *sweep) run(ev Event, job Job) (Measurement, error) {
	sw.observe(ev)
	m, err := sw.x.Execute(sw.ctx, job, func(p Progress) {
		e := ev
		e.Progress = p
		sw.observe(e)
	})
	if err != nil {
		return m, err
	}
	if sw.rep.RSSMethod == "" {
		sw.rep.RSSMethod = m.RSSMethod
	}
	ev.Progress = Progress{Bytes: m.Bytes, Files: m.Files}
	ev.Done = &m
	sw.observe(ev)
	return m, nil
}

// runPoints runs the flow at each point of the sweep.
func (sw *sweep) runPoints() error {
	for i := range sw.rep.Points {
		pr := &sw.rep.Points[i]
		label := pr.Point.String()
		for n := range sw.cfg.Warmup + sw.cfg.Runs {
			ev := sw.event(i, label, n)
			name := sw.nextName()
			job := Job{Kind: JobFlow, FlowFile: sw.cfg.FlowFile, Point: pr.Point, Name: name, Input: sw.input}
			if sw.cfg.FlowFile == "" {
				job.Output = filepath.Join(sw.cfg.WorkDir, "out-"+name)
			}
			m, err := sw.run(ev, job)
			if err != nil {
				what := "run"
				if ev.Warmup {
					what = "warm-up run"
				}
				return fmt.Errorf("%s, %s %d of %d: %w", label, what, ev.Run, ev.Runs, err)
			}
			if sw.total == 0 {
				sw.total = m.Bytes // the flow's source: as much as it gave
			}
			if !ev.Warmup {
				pr.Runs = append(pr.Runs, m)
			}
		}
	}
	return nil
}

// runCeilings measures the bus ceiling at each chunk size the points use.
func (sw *sweep) runCeilings() error {
	var chunks []int64
	for _, p := range sw.rep.Points {
		if !slices.Contains(chunks, p.ChunkSize) {
			chunks = append(chunks, p.ChunkSize)
		}
	}
	for _, c := range chunks {
		cr := CeilingResult{ChunkSize: c}
		label := "bus ceiling, chunk " + pipeline.ExactSize(c)
		for n := range sw.cfg.Warmup + sw.cfg.Runs {
			ev := sw.event(-1, label, n)
			m, err := sw.run(ev, Job{Kind: JobCeiling, Point: Point{ChunkSize: c}, Name: sw.nextName(), Bytes: sw.total})
			if err != nil {
				return fmt.Errorf("%s, run %d of %d: %w", label, ev.Run, ev.Runs, err)
			}
			if !ev.Warmup {
				cr.Runs = append(cr.Runs, m)
			}
		}
		cr.MBps = summarize(cr.Runs, Measurement.MBps)
		sw.rep.Ceilings = append(sw.rep.Ceilings, cr)
	}
	return nil
}

// swept lists the settings the sweep varies, in flow-file terms.
func (s Sweep) swept() []string {
	var out []string
	if len(s.ChunkSizes) > 0 {
		out = append(out, "chunk_size")
	}
	if len(s.PartSizes) > 0 {
		out = append(out, "part_size")
	}
	if len(s.Parallelisms) > 0 {
		out = append(out, "parallelism")
	}
	if len(s.Compressions) > 0 {
		out = append(out, "compression")
	}
	if len(s.Payloads) > 0 {
		out = append(out, "payload")
	}
	return out
}

// finish summarizes the points measured so far and picks the best.
func (r *Report) finish(flow pipeline.Flow) {
	r.Best = -1
	bestMBps := 0.0
	for i := range r.Points {
		p := &r.Points[i]
		p.Best = false
		if len(p.Runs) == 0 {
			continue
		}
		p.MBps = summarize(p.Runs, Measurement.MBps)
		p.FilesPerSec = summarize(p.Runs, Measurement.FilesPerSec)
		p.CPUSeconds = summarize(p.Runs, func(m Measurement) float64 { return m.CPUSeconds }).Median
		p.PeakRSS, p.Retries = 0, 0
		for _, m := range p.Runs {
			p.PeakRSS = max(p.PeakRSS, m.PeakRSS)
			p.Retries += m.Retries
		}
		for _, c := range r.Ceilings {
			if c.ChunkSize == p.ChunkSize {
				p.CeilingMBps = c.MBps.Median
			}
		}
		if r.Best < 0 || p.MBps.Median > bestMBps {
			r.Best, bestMBps = i, p.MBps.Median
		}
	}
	if r.Best >= 0 {
		r.Points[r.Best].Best = true
		r.Snippet = Snippet(flow, r.Points[r.Best].Point, r.Flow)
	}
}

// Snippet is the flow-file text that selects point p in flow f: the bus
// settings and, for each sink, its parallelism and part size (when set).
// Only these keys are given; whatever else the flow file says stays.
func Snippet(f pipeline.Flow, p Point, file string) string {
	var b strings.Builder
	if file != "" {
		fmt.Fprintf(&b, "# in %s (other settings unchanged)\n", file)
	}
	fmt.Fprintf(&b, "bus:\n  chunk_size: %s\n  compression: %s\n", pipeline.ExactSize(p.ChunkSize), p.Compression)
	if p.Payload != "" && p.Payload != pipeline.PayloadBytes {
		fmt.Fprintf(&b, "  payload: %s\n", p.Payload)
	}
	b.WriteString("sinks:\n")
	for _, k := range f.WithDefaults().Sinks {
		fmt.Fprintf(&b, "  - name: %s\n    parallelism: %d\n", k.Name, p.Parallelism)
		if p.PartSize > 0 {
			fmt.Fprintf(&b, "    %s:\n      part_size: %s\n", k.Type, pipeline.ExactSize(p.PartSize))
		}
	}
	return b.String()
}

// WriteTable prints the report as a table, the best point marked with "*",
// followed by the snippet that selects it.
func (r *Report) WriteTable(w io.Writer) error {
	var b strings.Builder
	what := r.Flow
	if r.Workload != nil {
		what = fmt.Sprintf("%s (%s)", r.Workload, pipeline.FormatSize(r.Workload.Bytes()))
		if r.Flow != "" {
			what += " into the sinks of " + r.Flow
		}
	}
	fmt.Fprintf(&b, "%s; %s after %s; NATS: %s; peak RSS: %s\n\n", what,
		plural(r.Runs, "counted run", "counted runs"), plural(r.Warmup, "warm-up", "warm-ups"), r.NATS, rssNote(r.RSSMethod))
	tw := tabwriter.NewWriter(&b, 0, 0, 2, ' ', 0)
	// Into memory (b): none of these writes can fail.
	_, _ = fmt.Fprintln(tw, "\tCHUNK\tPART\tPAR\tCOMP\tPAYLOAD\tMB/s\tSPREAD\tFILES/s\tPEAK RSS\tCPU s\tRETRIES\tBUS CEILING\tOF CEILING")
	for _, p := range r.Points {
		if len(p.Runs) == 0 {
			continue
		}
		mark := ""
		if p.Best {
			mark = "*"
		}
		part := "sink's"
		if p.PartSize > 0 {
			part = pipeline.ExactSize(p.PartSize)
		}
		ceil, of := "-", "-"
		if p.CeilingMBps > 0 {
			ceil = fmt.Sprintf("%.1f", p.CeilingMBps)
			of = fmt.Sprintf("%.0f%%", 100*p.MBps.Median/p.CeilingMBps)
		}
		payload := p.Payload
		if payload == "" {
			payload = pipeline.PayloadBytes
		}
		_, _ = fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%s\t%s\t%.1f\t%.1f–%.1f\t%.1f\t%s\t%.2f\t%d\t%s\t%s\n",
			mark, pipeline.ExactSize(p.ChunkSize), part, p.Parallelism, p.Compression, payload,
			p.MBps.Median, p.MBps.Min, p.MBps.Max, p.FilesPerSec.Median,
			pipeline.FormatSize(p.PeakRSS), p.CPUSeconds, p.Retries, ceil, of)
	}
	_ = tw.Flush()
	if r.Best >= 0 {
		best := r.Points[r.Best]
		fmt.Fprintf(&b, "\nbest: %s at %.1f MB/s (median of %d). To use it:\n\n", best.Point, best.MBps.Median, len(best.Runs))
		for _, line := range strings.Split(strings.TrimRight(r.Snippet, "\n"), "\n") {
			fmt.Fprintf(&b, "  %s\n", line)
		}
	}
	_, err := io.WriteString(w, b.String())
	return err
}

func rssNote(method string) string {
	switch method {
	case RSSRusage:
		return "ru_maxrss of each run's own process"
	case RSSSampled:
		return "VmRSS sampled every 20ms (a lower bound)"
	}
	return "not measured"
}

func plural(n int, one, many string) string {
	if n == 1 {
		return "1 " + one
	}
	return fmt.Sprintf("%d %s", n, many)
}

func randomHex(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return hex.EncodeToString(b)
}
