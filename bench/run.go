package bench

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strconv"
	"sync"
	"syscall"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/mftflow/mftflow/pipeline"
	"github.com/mftflow/mftflow/pipeline/bus"
	"github.com/mftflow/mftflow/pipeline/engine"
)

// How a Measurement's peak RSS was taken.
const (
	RSSRusage  = "rusage"  // ru_maxrss of a process that ran only this job
	RSSSampled = "sampled" // highest VmRSS sampled during the job (a lower bound)
)

// Measurement is what one run measured.
type Measurement struct {
	Seconds float64 `json:"seconds"` // wall time from starting the flow to its end
	Bytes   int64   `json:"bytes"`   // bytes put on the bus (after stages)
	Files   int64   `json:"files"`   // files every sink received
	Skipped int64   `json:"skipped,omitempty"`
	Retries int64   `json:"retries"` // delivery attempts tried again, over every sink
	// CPUSeconds is user plus system time; PeakRSS is in bytes.
	CPUSeconds float64 `json:"cpu_seconds"`
	PeakRSS    int64   `json:"peak_rss"`
	RSSMethod  string  `json:"rss_method,omitempty"`
}

// MBps is the run's throughput in megabytes (10^6) per second.
func (m Measurement) MBps() float64 {
	if m.Seconds <= 0 {
		return 0
	}
	return float64(m.Bytes) / 1e6 / m.Seconds
}

// FilesPerSec is how many files per second reached every sink.
func (m Measurement) FilesPerSec() float64 {
	if m.Seconds <= 0 {
		return 0
	}
	return float64(m.Files) / m.Seconds
}

// Progress is a running job's counters.
type Progress struct {
	Bytes int64 `json:"bytes"`
	Files int64 `json:"files"`
}

// Executor runs one job and measures it, calling progress (which may be
// nil) from time to time while it runs.
type Executor interface {
	Execute(ctx context.Context, job Job, progress func(Progress)) (Measurement, error)
}

// Env is what running a job needs: a NATS connection to a server with
// JetStream and the registry that builds the flow's connectors.
type Env struct {
	NC       *nats.Conn
	Registry *pipeline.Registry
	Logger   *slog.Logger // nil: discard
}

// Run runs job once and measures its wall time, bytes, files and retries
// (not CPU or memory: see Executor), then removes what the run left: its
// streams and KV bucket, and the output directories it created.
func (e Env) Run(ctx context.Context, job Job, progress func(Progress)) (Measurement, error) {
	if progress == nil {
		progress = func(Progress) {}
	}
	switch job.Kind {
	case JobCeiling:
		return Ceiling(ctx, e.NC, job.Name, job.Point.ChunkSize, job.Bytes, progress)
	case JobFlow:
	default:
		return Measurement{}, fmt.Errorf("bench: unknown job kind %q", job.Kind)
	}
	log := e.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	f, created, err := job.Prepare(e.Registry)
	if err != nil {
		return Measurement{}, err
	}
	defer func() {
		for _, dir := range created {
			if err := os.RemoveAll(dir); err != nil {
				log.Warn("removing a run's output", "dir", dir, "err", err)
			}
		}
	}()
	defer removeFlowState(e.NC, job.Name, log)

	eng, err := engine.New(e.NC, engine.Options{Registry: e.Registry, Logger: log})
	if err != nil {
		return Measurement{}, err
	}
	start := time.Now()
	r, err := eng.Start(ctx, f)
	if err != nil {
		return Measurement{}, err
	}
	done := make(chan struct{})
	var watched sync.WaitGroup
	watched.Add(1)
	go func() {
		defer watched.Done()
		t := time.NewTicker(200 * time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-ctx.Done():
				_ = r.Stop(context.Background()) // Wait returns the same error
				return
			case <-t.C:
				s := r.Stats()
				progress(Progress{Bytes: s.BytesRead, Files: s.FilesPassed})
			}
		}
	}()
	werr := r.Wait()
	elapsed := time.Since(start)
	close(done)
	watched.Wait()
	if err := ctx.Err(); err != nil {
		return Measurement{}, err
	}
	if werr != nil {
		return Measurement{}, werr
	}
	s := r.Stats()
	progress(Progress{Bytes: s.BytesRead, Files: s.FilesPassed})
	m := Measurement{Seconds: elapsed.Seconds(), Bytes: s.BytesRead, Files: s.FilesPassed, Skipped: s.FilesSkipped}
	for _, k := range s.Sinks {
		m.Retries += k.Retries
	}
	switch {
	case s.FilesFailed+s.FilesMixed > 0:
		return m, fmt.Errorf("%d of %d files did not reach every sink (the log says why); a run with failed deliveries measures nothing useful", s.FilesFailed+s.FilesMixed, s.FilesSeen)
	case s.FilesSeen == 0:
		return m, errors.New("the source offered no files: nothing to measure")
	case s.FilesPassed == 0:
		return m, fmt.Errorf("every file was skipped (%d): a stage dropped them or a sink declined them (overwrite: skip?)", s.FilesSkipped)
	}
	return m, nil
}

// removeFlowState deletes a run's streams and KV bucket.
func removeFlowState(nc *nats.Conn, flow string, log *slog.Logger) {
	js, err := jetstream.New(nc)
	if err != nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	n := bus.Names{Flow: flow}
	for _, s := range []string{n.ChunkStream(), n.TaskStream()} {
		if err := js.DeleteStream(ctx, s); err != nil && !errors.Is(err, jetstream.ErrStreamNotFound) {
			log.Warn("removing a run's stream", "stream", s, "err", err)
		}
	}
	if err := js.DeleteKeyValue(ctx, n.Bucket()); err != nil && !errors.Is(err, jetstream.ErrBucketNotFound) {
		log.Warn("removing a run's KV bucket", "bucket", n.Bucket(), "err", err)
	}
}

// InProcess runs jobs in this process. CPU seconds are this process's
// getrusage difference; peak RSS is sampled (see the package doc), so run
// one job at a time.
type InProcess struct{ Env Env }

// Execute implements Executor.
func (x InProcess) Execute(ctx context.Context, job Job, progress func(Progress)) (Measurement, error) {
	cpu0 := CPUSeconds()
	peak := sampleRSS(20 * time.Millisecond)
	m, err := x.Env.Run(ctx, job, progress)
	m.PeakRSS = peak()
	m.CPUSeconds = CPUSeconds() - cpu0
	m.RSSMethod = RSSSampled
	return m, err
}

// CPUSeconds is this process's user plus system time so far.
func CPUSeconds() float64 {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return tvSeconds(ru.Utime) + tvSeconds(ru.Stime)
}

func tvSeconds(tv syscall.Timeval) float64 {
	return float64(tv.Sec) + float64(tv.Usec)/1e6
}

// RusageOf returns the CPU seconds and peak RSS (bytes) of a finished child
// process from its rusage (Linux reports ru_maxrss in KiB).
func RusageOf(ru *syscall.Rusage) (cpu float64, peakRSS int64) {
	if ru == nil {
		return 0, 0
	}
	return tvSeconds(ru.Utime) + tvSeconds(ru.Stime), ru.Maxrss * 1024
}

// sampleRSS samples this process's VmRSS every interval until the returned
// function is called, which returns the highest value seen (0 where
// /proc/self/status cannot be read).
func sampleRSS(interval time.Duration) func() int64 {
	var (
		mu   sync.Mutex
		peak = currentRSS()
	)
	done := make(chan struct{})
	finished := make(chan struct{})
	go func() {
		defer close(finished)
		t := time.NewTicker(interval)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-t.C:
				v := currentRSS()
				mu.Lock()
				peak = max(peak, v)
				mu.Unlock()
			}
		}
	}()
	return func() int64 {
		close(done)
		<-finished
		v := currentRSS()
		mu.Lock()
		defer mu.Unlock()
		return max(peak, v)
	}
}

// currentRSS reads VmRSS from /proc/self/status, in bytes.
func currentRSS() int64 {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		line := sc.Bytes()
		if v, ok := bytes.CutPrefix(line, []byte("VmRSS:")); ok {
			f := bytes.Fields(v)
			if len(f) == 0 {
				return 0
			}
			kb, _ := strconv.ParseInt(string(f[0]), 10, 64)
			return kb * 1024
		}
	}
	return 0
}
