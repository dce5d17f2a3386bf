package pipeline

import (
	"fmt"
	"time"
)

// Upper bounds of a flow's own settings. Flow.Check refuses a flow above any
// of them, and flow files get the same message at the offending value. Each
// is far above what a demanding flow uses; they exist so that a typo (an
// extra zero, a size where a count belongs) fails at validation instead of
// starting a billion goroutines or allocating a buffer per slot.
//
// They agree with the engine's own bounds: a runner holds at most 1024
// delivery tasks of one sink (its consumer's MaxAckPending) and 1024 files
// taken from the source and not yet final, so more than MaxSinkFiles workers
// per sink or MaxBusFiles readers would only wait on those.
const (
	// MaxSinks is the most sinks a flow may have. Each sink is a JetStream
	// consumer, a delivery record per file and its own workers; a wider
	// fan-out is better split into several flows.
	MaxSinks = 64
	// MaxStages is the most stages a flow may have.
	MaxStages = 64
	// MaxSinkFiles bounds SinkSpec.Files, the files delivered to one sink at
	// once: one worker goroutine each.
	MaxSinkFiles = 256
	// MaxParallelism bounds SinkSpec.Parallelism, the parts of one file
	// written at once: each part in flight is held in memory.
	MaxParallelism = 64
	// MaxAttempts bounds Retry.Attempts, the tries of one delivery.
	MaxAttempts = 1000
	// MaxBackoff bounds Retry.Initial and Retry.Max.
	MaxBackoff = 24 * time.Hour
	// MaxBusFiles bounds BusSpec.Files, the files read from the source at once.
	MaxBusFiles = 256
	// MaxReaders bounds BusSpec.Readers, the range reads of one file at once:
	// each holds a chunk in memory.
	MaxReaders = 64
	// MaxChunkSize bounds BusSpec.ChunkSize whatever the NATS server: a
	// message must fit the server's max_pending buffer (64 MiB by default),
	// and NATS discourages max_payload above 8 MiB. The runner's embedded
	// server carries at most 8 MiB less 1 KiB of headers (bus.EmbeddedMaxPayload
	// minus bus.HeaderRoom); "runner validate" and "runner run" without
	// --nats-url check that tighter limit too.
	MaxChunkSize = 64 << 20
	// MinChunkSize is the smallest BusSpec.ChunkSize.
	MinChunkSize = 4 << 10
	// MaxWindow bounds BusSpec.Window, how far reading may run ahead of the
	// slowest sink (bus storage, not memory).
	MaxWindow = 1 << 40
)

// LimitError is a setting above its upper bound. Its message names the
// setting, its value and the limit: "sinks[0].files: 1000000000 is above
// the limit of 256 files delivered at once per sink; lower it".
type LimitError struct {
	// Setting is the setting's path in a flow file: "sinks[0].files",
	// "bus.chunk_size".
	Setting string
	// Value and Limit are counts, or bytes when Size is set, or
	// nanoseconds when Duration is set.
	Value, Limit int64
	// What says what the limit counts, after the number: "files delivered
	// at once per sink".
	What string
	// Fix says what to do; "" means "lower it".
	Fix      string
	Size     bool
	Duration bool

	sinkIndex int // 1 + the index of the sink the setting belongs to; 0 for none
}

// sink returns the index of the sink the setting belongs to, if any.
func (e *LimitError) sink() (int, bool) { return e.sinkIndex - 1, e.sinkIndex > 0 }

func (e *LimitError) Error() string {
	v, l := fmt.Sprint(e.Value), fmt.Sprint(e.Limit)
	switch {
	case e.Size:
		v, l = ExactSize(e.Value), ExactSize(e.Limit)
	case e.Duration:
		v, l = time.Duration(e.Value).String(), time.Duration(e.Limit).String()
	}
	what, fix := "", e.Fix
	if e.What != "" {
		what = " " + e.What
	}
	if fix == "" {
		fix = "lower it"
	}
	return fmt.Sprintf("%s: %s is above the limit of %s%s; %s", e.Setting, v, l, what, fix)
}

// Limits returns a LimitError for each of f's settings above its bound:
// the number of sinks, each sink's settings, the number of stages, then the
// bus settings. Settings left at zero take defaults, which are within bounds.
func (f Flow) Limits() []*LimitError {
	var out []*LimitError
	if n := len(f.Sinks); n > MaxSinks {
		out = append(out, &LimitError{Setting: "sinks", Value: int64(n), Limit: MaxSinks, What: "sinks per flow", Fix: "split the fan-out into several flows"})
	}
	for i, s := range f.Sinks {
		for _, l := range s.Limits(i) {
			l.sinkIndex = i + 1
			out = append(out, l)
		}
	}
	if n := len(f.Stages); n > MaxStages {
		out = append(out, &LimitError{Setting: "stages", Value: int64(n), Limit: MaxStages, What: "stages per flow", Fix: "combine stages or split the flow"})
	}
	out = append(out, f.Bus.Limits()...)
	return out
}

// Limits returns a LimitError for each of the sink's settings above its
// bound; i is the sink's index in the flow, for the setting's path.
func (s SinkSpec) Limits(i int) []*LimitError {
	var out []*LimitError
	at := func(name string) string { return fmt.Sprintf("sinks[%d].%s", i, name) }
	if s.Parallelism > MaxParallelism {
		out = append(out, &LimitError{Setting: at("parallelism"), Value: int64(s.Parallelism), Limit: MaxParallelism, What: "parts of one file written at once"})
	}
	if s.Files > MaxSinkFiles {
		out = append(out, &LimitError{Setting: at("files"), Value: int64(s.Files), Limit: MaxSinkFiles, What: "files delivered at once per sink"})
	}
	if s.Retry.Attempts > MaxAttempts {
		out = append(out, &LimitError{Setting: at("retry.attempts"), Value: int64(s.Retry.Attempts), Limit: MaxAttempts, What: "attempts per delivery"})
	}
	if s.Retry.Initial > MaxBackoff {
		out = append(out, &LimitError{Setting: at("retry.initial"), Value: int64(s.Retry.Initial), Limit: int64(MaxBackoff), Duration: true})
	}
	if s.Retry.Max > MaxBackoff {
		out = append(out, &LimitError{Setting: at("retry.max"), Value: int64(s.Retry.Max), Limit: int64(MaxBackoff), Duration: true})
	}
	return out
}

// Limits returns a LimitError for each bus setting above its bound.
func (b BusSpec) Limits() []*LimitError {
	var out []*LimitError
	if b.ChunkSize > MaxChunkSize {
		out = append(out, &LimitError{Setting: "bus.chunk_size", Value: b.ChunkSize, Limit: MaxChunkSize, What: "per bus message", Size: true})
	}
	if b.Files > MaxBusFiles {
		out = append(out, &LimitError{Setting: "bus.files", Value: int64(b.Files), Limit: MaxBusFiles, What: "files read from the source at once"})
	}
	if b.Readers > MaxReaders {
		out = append(out, &LimitError{Setting: "bus.readers", Value: int64(b.Readers), Limit: MaxReaders, What: "range reads of one file at once"})
	}
	if b.Window > MaxWindow {
		out = append(out, &LimitError{Setting: "bus.window", Value: b.Window, Limit: MaxWindow, What: "of reading ahead of the slowest sink", Size: true})
	}
	return out
}

// ExactSize prints n bytes in flow-file syntax, exactly: with the largest
// binary unit that divides it ("64MiB", "8191KiB"), else as a number of
// bytes ("1000").
func ExactSize(n int64) string {
	if n <= 0 {
		return fmt.Sprint(n)
	}
	for _, u := range []struct {
		name string
		size int64
	}{{"TiB", 1 << 40}, {"GiB", 1 << 30}, {"MiB", 1 << 20}, {"KiB", 1 << 10}} {
		if n%u.size == 0 {
			return fmt.Sprintf("%d%s", n/u.size, u.name)
		}
	}
	return fmt.Sprint(n)
}
