package main

import (
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/vbauerster/mpb/v8"
	"github.com/vbauerster/mpb/v8/decor"
	"golang.org/x/term"

	"github.com/mftflow/mftflow/pipeline"
	"github.com/mftflow/mftflow/pipeline/engine"
)

// Progress modes (--progress).
const (
	progressAuto  = "auto"  // bar on a terminal, else plain
	progressBar   = "bar"   // one progress bar per flow
	progressPlain = "plain" // a line per flow every --stats interval
	progressNone  = "none"
)

// statser is what progress reporting needs of a run.
type statser interface{ Stats() engine.Stats }

// bytesDone is how many bytes every sink has written: the slowest sink's
// count, or the bytes put on the bus for a flow without sink statistics.
func bytesDone(s engine.Stats) int64 {
	if len(s.Sinks) == 0 {
		return s.BytesRead
	}
	low := s.Sinks[0].BytesWritten
	for _, k := range s.Sinks[1:] {
		low = min(low, k.BytesWritten)
	}
	return low
}

// filesDone counts the files that reached a final outcome.
func filesDone(s engine.Stats) int64 {
	return s.FilesPassed + s.FilesFailed + s.FilesMixed + s.FilesSkipped
}

// filesFailed counts the files at least one sink failed to receive.
func filesFailed(s engine.Stats) int64 { return s.FilesFailed + s.FilesMixed }

// formatProgress formats one plain progress line for a Stats snapshot and
// the current rate in bytes per second, in the manner of rclone's stats:
//
//	quickstart: 3/10 files, 120.0 MiB / 1.0 GiB, 45.2 MiB/s, ETA 20s, 0 failed
//
// The total is the sum of the sizes known so far; it grows as the source
// offers more files. It is left out when unknown, and the ETA is "-" when it
// cannot be estimated.
func formatProgress(s engine.Stats, rate float64) string {
	done := bytesDone(s)
	var b strings.Builder
	fmt.Fprintf(&b, "%s: %d/%d files, %s", s.Flow, filesDone(s), s.FilesSeen, pipeline.FormatSize(done))
	eta := "-"
	if s.BytesKnown > 0 && s.BytesKnown >= done {
		fmt.Fprintf(&b, " / %s", pipeline.FormatSize(s.BytesKnown))
		eta = formatETA(s.BytesKnown-done, rate)
	}
	fmt.Fprintf(&b, ", %s%s, ETA %s, %d failed", formatRate(rate), formatLimits(s), eta, filesFailed(s))
	return b.String()
}

// formatLimits prints the bandwidth limits in force, if any, after the
// rate: " (limit 10.0 MiB/s)" for the flow's, " (limit archive 1.0 MiB/s)"
// for a sink's.
func formatLimits(s engine.Stats) string {
	var limits []string
	if s.Limit > 0 {
		limits = append(limits, formatRate(float64(s.Limit)))
	}
	for _, k := range s.Sinks {
		if k.Limit > 0 {
			limits = append(limits, k.Name+" "+formatRate(float64(k.Limit)))
		}
	}
	if len(limits) == 0 {
		return ""
	}
	return " (limit " + strings.Join(limits, ", ") + ")"
}

// formatRate prints bytes per second as "45.2 MiB/s".
func formatRate(rate float64) string {
	if rate < 0 {
		rate = 0
	}
	return pipeline.FormatSize(int64(rate)) + "/s"
}

// formatETA returns the time to move remaining bytes at rate, rounded to
// the second ("1m30s"), or "-" when the rate is zero.
func formatETA(remaining int64, rate float64) string {
	if remaining <= 0 {
		return "0s"
	}
	if rate <= 0 {
		return "-"
	}
	secs := float64(remaining) / rate
	if secs > 100*24*3600 {
		return "-"
	}
	return (time.Duration(secs * float64(time.Second))).Round(time.Second).String()
}

// formatSummary is the line printed for a flow when its run ends:
//
//	quickstart: 8 passed, 1 failed, 0 skipped; 1.0 GiB in 22.4s, 45.7 MiB/s
//
// "partly failed" (some sinks committed, others failed) appears only when
// it happened.
func formatSummary(s engine.Stats, elapsed time.Duration) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s: %d passed, %d failed, ", s.Flow, s.FilesPassed, s.FilesFailed)
	if s.FilesMixed > 0 {
		fmt.Fprintf(&b, "%d partly failed, ", s.FilesMixed)
	}
	fmt.Fprintf(&b, "%d skipped", s.FilesSkipped)
	if s.FilesEarlier > 0 {
		fmt.Fprintf(&b, ", %d already done (not sent again)", s.FilesEarlier)
	}
	if s.FilesInFlight > 0 {
		fmt.Fprintf(&b, ", %d unfinished", s.FilesInFlight)
	}
	done := bytesDone(s)
	rate := 0.0
	if elapsed > 0 {
		rate = float64(done) / elapsed.Seconds()
	}
	fmt.Fprintf(&b, "; %s in %s, %s", pipeline.FormatSize(done), formatElapsed(elapsed), formatRate(rate))
	return b.String()
}

// formatElapsed rounds to a tenth of a second under a minute, else to the second.
func formatElapsed(d time.Duration) string {
	if d < time.Minute {
		return d.Round(100 * time.Millisecond).String()
	}
	return d.Round(time.Second).String()
}

// rateMeter turns successive byte counts into a rate.
type rateMeter struct {
	last int64
	at   time.Time
}

// update returns the rate in bytes per second since the previous update
// (or since start, for the first).
func (m *rateMeter) update(n int64, now time.Time) float64 {
	d := now.Sub(m.at).Seconds()
	rate := 0.0
	if d > 0 {
		rate = float64(n-m.last) / d
	}
	m.last, m.at = n, now
	return rate
}

// resolveProgressMode turns "auto" into bar or plain depending on whether
// out is a terminal.
func resolveProgressMode(mode string, out io.Writer) string {
	if mode != progressAuto {
		return mode
	}
	if f, ok := out.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
		return progressBar
	}
	return progressPlain
}

// progressReporter draws the progress of runs until stop is called.
type progressReporter struct {
	stop func()
}

// startProgress starts reporting the runs' progress on out in mode (bar,
// plain or none). Plain lines come every interval (none if 0). In bar mode
// log records are routed above the bars through logOut until stop.
func startProgress(mode string, out io.Writer, logOut *switchWriter, runs []statser, interval time.Duration) *progressReporter {
	switch mode {
	case progressBar:
		return startBars(out, logOut, runs)
	case progressPlain:
		if interval > 0 {
			return startPlain(out, runs, interval)
		}
	}
	return &progressReporter{stop: func() {}}
}

func startPlain(out io.Writer, runs []statser, interval time.Duration) *progressReporter {
	done := make(chan struct{})
	finished := make(chan struct{})
	go func() {
		defer close(finished)
		meters := make([]rateMeter, len(runs))
		for i, r := range runs {
			meters[i].at = r.Stats().Started
		}
		t := time.NewTicker(interval)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case now := <-t.C:
				for i, r := range runs {
					s := r.Stats()
					_, _ = fmt.Fprintln(out, formatProgress(s, meters[i].update(bytesDone(s), now))) // progress: a lost line changes nothing
				}
			}
		}
	}()
	var once sync.Once
	return &progressReporter{stop: func() {
		once.Do(func() {
			close(done)
			<-finished
		})
	}}
}

func startBars(out io.Writer, logOut *switchWriter, runs []statser) *progressReporter {
	p := mpb.New(mpb.WithOutput(out), mpb.WithWidth(32), mpb.WithRefreshRate(200*time.Millisecond))
	width := 0
	for _, r := range runs {
		width = max(width, len(r.Stats().Flow))
	}
	type barState struct {
		bar   *mpb.Bar
		files string
		mu    sync.Mutex
		at    time.Time
	}
	bars := make([]*barState, len(runs))
	for i, r := range runs {
		st := &barState{at: time.Now()}
		st.files = " 0/0 files"
		bars[i] = st
		st.bar = p.AddBar(0,
			mpb.PrependDecorators(
				decor.Name(fmt.Sprintf("%-*s", width, r.Stats().Flow), decor.WCSyncSpaceR),
				decor.CountersKibiByte("% .1f / % .1f", decor.WCSyncSpace),
			),
			mpb.AppendDecorators(
				decor.EwmaSpeed(decor.SizeB1024(0), "% .1f", 30, decor.WCSyncSpace),
				decor.Name(" ETA "),
				decor.EwmaETA(decor.ET_STYLE_GO, 30),
				decor.Any(func(decor.Statistics) string {
					st.mu.Lock()
					defer st.mu.Unlock()
					return st.files
				}),
			),
		)
	}
	prevLog := logOut.set(p)
	done := make(chan struct{})
	finished := make(chan struct{})
	update := func() {
		for i, r := range runs {
			s := r.Stats()
			st := bars[i]
			n := bytesDone(s)
			st.bar.SetTotal(max(s.BytesKnown, n), false)
			now := time.Now()
			st.bar.EwmaSetCurrent(n, now.Sub(st.at))
			st.at = now
			st.mu.Lock()
			st.files = fmt.Sprintf(" %d/%d files, %d failed%s", filesDone(s), s.FilesSeen, filesFailed(s), formatLimits(s))
			st.mu.Unlock()
		}
	}
	go func() {
		defer close(finished)
		t := time.NewTicker(500 * time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-done:
				update()
				for _, st := range bars {
					st.bar.SetTotal(-1, true)
				}
				return
			case <-t.C:
				update()
			}
		}
	}()
	var once sync.Once
	return &progressReporter{stop: func() {
		once.Do(func() {
			close(done)
			<-finished
			logOut.set(prevLog)
			p.Wait()
		})
	}}
}
