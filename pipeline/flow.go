package pipeline

import (
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"time"
)

// Flow is one source, zero or more stages and one or more sinks. Flow files
// (package pipeline/flowfile) and Go programs build the same value.
type Flow struct {
	// Name identifies the flow's state on the bus; it must stay the same across
	// restarts for a run to resume. Letters, digits, "-" and "_".
	Name   string
	Source Component
	Stages []Component
	Sinks  []SinkSpec
	Bus    BusSpec
	// Schedule, when set, says when the source is polled (see Schedule).
	Schedule *Schedule
	// Expectations are the flow's arrival SLAs (see Expectation), watched
	// by package pipeline/sla.
	Expectations []Expectation
	// Once takes the files the source holds now, delivers them and ends the
	// run, whatever the source's watch setting or the schedule say: the
	// source is built with watch: false. A source given as an Instance is
	// used as it is, and ends the run when its Next returns io.EOF.
	Once bool
	// Rate limits the bytes the flow writes to all its sinks together, on
	// top of each sink's own Rate. It counts what is written, as rclone's
	// --bwlimit counts what is transferred: a file delivered to three sinks
	// counts three times, since each copy crosses a line. Reading from the
	// source needs no limit of its own: it runs at most bus.window ahead of
	// the slowest sink. The limit is per runner: several runners sharing a
	// flow each have it.
	Rate Rate
	// Audit, when set, keeps the flow's audit trail (see AuditSpec).
	Audit *AuditSpec
	// Events receive every step of the flow's files as it happens (see
	// Event): the runner's audit trail and notifications, a Go program's
	// own code. Each Emit is called after the step took effect and before
	// the engine records it, so a runner killed in between emits it again
	// after its restart.
	Events []EventSink
	// Notify lists who is told of which files' outcomes and SLA events
	// (see NotifyRule; package pipeline/notify sends them).
	Notify []NotifyRule
	// Pos is where the flow was declared; zero for flows built in Go.
	Pos Pos
}

// Component is a source, stage or sink: either a registered connector (Type
// and Config) or, from Go, a ready value (Instance, a Source, Stage or Sink).
type Component struct {
	Type     string
	Config   map[string]any
	Instance any
	Pos      Pos
}

// SinkSpec is one sink of a flow with its delivery settings.
type SinkSpec struct {
	// Name is unique in the flow and names the sink's deliveries in status
	// output. It defaults to the connector type, then type-2, type-3...
	Name string
	Component
	Retry Retry
	// Parallelism is how many parts of one file are written at once, unless
	// the sink's part plan says otherwise. Default 4, at most MaxParallelism.
	Parallelism int
	// Files is how many files are delivered to this sink at once. Default 4,
	// at most MaxSinkFiles.
	Files int
	// Rate limits the bytes written to this sink, all its parts and files
	// together. The engine applies it to every sink, plugins included.
	Rate Rate
	// Checksum, when set ("sha256", "sha512" or "md5"), has the engine
	// write a checksum file beside each file once the file has committed:
	// the file's name plus ".sha256" (".sha512", ".md5"), holding
	// "HEX  BASE\n" as sha256sum prints it, through the same sink (its name
	// template applies to that name too).
	Checksum string
}

// Checksums are the values SinkSpec.Checksum takes.
var Checksums = []string{"sha256", "sha512", "md5"}

// Retry is a sink's retry budget with exponential backoff.
type Retry struct {
	// Attempts is how many times a delivery is tried before it is marked
	// failed. Default 5, at most MaxAttempts.
	Attempts int
	// Initial is the first backoff (default 1s); each retry doubles it up to
	// Max (default 1m). Both at most MaxBackoff.
	Initial, Max time.Duration
}

// BusSpec tunes how files travel through JetStream.
type BusSpec struct {
	// ChunkSize is the size of one bus message's payload. Default 1 MiB; it may
	// not exceed the server's max_payload (less bus.HeaderRoom), nor
	// MaxChunkSize.
	ChunkSize int64
	// Compression of bus chunks: "s2" (default; chunks that do not shrink are
	// sent as they are), "zstd" or "none".
	Compression string
	// Files is how many files are read from the source at once. Default 4, at
	// most MaxBusFiles.
	Files int
	// Readers is how many chunks of one file are read at once when the source
	// supports range reads and no stage changes the content. Default 4, at
	// most MaxReaders.
	Readers int
	// Window bounds how far reading a file may run ahead of the slowest sink
	// that is writing it. Chunks every sink has written are removed from the
	// bus as delivery goes on, so memory and bus storage stay bounded by the
	// window whatever the file size. Default 32 MiB, at most MaxWindow.
	Window int64
	// Retention keeps a file's chunks this long after every sink committed it.
	// 0 (with RetentionSize 0) removes chunks as soon as every sink has them.
	Retention time.Duration
	// RetentionSize bounds the chunk bytes (counted as file sizes, before
	// compression) kept for finished files: above it, the chunks of the files
	// that finished first are removed first, those of files every sink
	// committed before those of files with a failed delivery. 0: no bound.
	//
	// With Retention or RetentionSize set, a file's chunks stay in full while
	// it is delivered, and the chunks of a file with a failed delivery stay
	// (within RetentionSize) so that the delivery can be replayed without
	// reading the source again. Without either, chunks are removed as the
	// sinks write them, and a failed delivery whose chunks are partly gone
	// cannot be replayed.
	RetentionSize int64
	// Payload is how files travel: PayloadBytes (default), PayloadReference
	// or PayloadAuto (see PayloadFor). Small files that travel in groups or
	// inline carry their bytes whatever it says: a reference would cost as
	// much.
	Payload string
	// OnChange says what happens to a file read by reference that changed at
	// its source during the transfer: ChangeFail (default) or ChangeReread.
	OnChange string
}

// Retains reports whether chunks are kept after delivery for replay.
func (b BusSpec) Retains() bool { return b.Retention > 0 || b.RetentionSize > 0 }

// Pos is a place in a flow file.
type Pos struct {
	File         string
	Line, Column int
}

func (p Pos) String() string {
	if p.File == "" && p.Line == 0 {
		return ""
	}
	return fmt.Sprintf("%s:%d:%d", p.File, p.Line, p.Column)
}

// Defaults used when a flow leaves a setting at zero.
const (
	DefaultChunkSize   = 1 << 20
	DefaultCompression = "s2"
	DefaultParallelism = 4
	DefaultFiles       = 4
	DefaultReaders     = 4
	DefaultWindow      = 32 << 20
	DefaultAttempts    = 5
	DefaultBackoff     = time.Second
	DefaultMaxBackoff  = time.Minute
)

// Compressions lists the accepted BusSpec.Compression values.
var Compressions = []string{"s2", "zstd", "none"}

// SourceOf wraps a ready Source for a Flow built in Go.
func SourceOf(s Source) Component { return Component{Type: fmt.Sprintf("%T", s), Instance: s} }

// StageOf wraps a ready Stage (a StageFunc, say) for a Flow built in Go.
func StageOf(s Stage) Component { return Component{Type: fmt.Sprintf("%T", s), Instance: s} }

// SinkOf wraps a ready Sink, under the given sink name, for a Flow built in Go.
func SinkOf(name string, s Sink) SinkSpec {
	return SinkSpec{Name: name, Component: Component{Type: fmt.Sprintf("%T", s), Instance: s}}
}

// Use names a registered connector and its config for a Flow built in Go.
func Use(connector string, config map[string]any) Component {
	return Component{Type: connector, Config: config}
}

var flowName = regexp.MustCompile(`^[A-Za-z0-9_-]{1,64}$`)

// WithDefaults returns a copy of f with every zero setting replaced by its
// default and sink names filled in.
func (f Flow) WithDefaults() Flow {
	b := &f.Bus
	if b.ChunkSize == 0 {
		b.ChunkSize = DefaultChunkSize
	}
	if b.Compression == "" {
		b.Compression = DefaultCompression
	}
	if b.Files == 0 {
		b.Files = DefaultFiles
	}
	if b.Readers == 0 {
		b.Readers = DefaultReaders
	}
	if b.Window == 0 {
		b.Window = DefaultWindow
	}
	sinks := make([]SinkSpec, len(f.Sinks))
	used := map[string]int{}
	for _, s := range f.Sinks {
		if s.Name != "" {
			used[s.Name]++
		}
	}
	for i, s := range f.Sinks {
		if s.Name == "" {
			base := s.Type
			s.Name = base
			for n := 2; used[s.Name] > 0; n++ {
				s.Name = fmt.Sprintf("%s-%d", base, n)
			}
			used[s.Name]++
		}
		if s.Parallelism == 0 {
			s.Parallelism = DefaultParallelism
		}
		if s.Files == 0 {
			s.Files = DefaultFiles
		}
		if s.Retry.Attempts == 0 {
			s.Retry.Attempts = DefaultAttempts
		}
		if s.Retry.Initial == 0 {
			s.Retry.Initial = DefaultBackoff
		}
		if s.Retry.Max == 0 {
			s.Retry.Max = DefaultMaxBackoff
		}
		sinks[i] = s
	}
	f.Sinks = sinks
	if f.Expectations != nil {
		exps := make([]Expectation, len(f.Expectations))
		for i, e := range f.Expectations {
			exps[i] = e.WithDefaults(f.ExpectZone())
		}
		f.Expectations = exps
	}
	return f
}

// ExpectZone is the zone of expectations that name none: the schedule's
// time_zone when it names one, else UTC. Not the runner's local zone, which
// the runners of one flow may not share.
func (f Flow) ExpectZone() string {
	if f.Schedule != nil && f.Schedule.TimeZone != "" && !strings.EqualFold(f.Schedule.TimeZone, "local") {
		return f.Schedule.TimeZone
	}
	return "UTC"
}

// Check validates the flow's own settings (not connector configs): names,
// sink count, bus settings, and every count and size against its upper
// bound (see Limits; those problems are *LimitError values). It reports
// every problem, each prefixed with its position when known.
func (f Flow) Check() error {
	var errs []error
	at := func(p Pos, format string, args ...any) {
		msg := fmt.Sprintf(format, args...)
		if s := p.String(); s != "" {
			msg = s + ": " + msg
		}
		errs = append(errs, errors.New(msg))
	}
	if !flowName.MatchString(f.Name) {
		at(f.Pos, "flow name %q: use 1 to 64 letters, digits, '-' or '_'", f.Name)
	}
	if f.Source.Type == "" && f.Source.Instance == nil {
		at(f.Pos, "flow %q has no source", f.Name)
	}
	if len(f.Sinks) == 0 {
		at(f.Pos, "flow %q has no sinks: add at least one under sinks", f.Name)
	}
	f.checkSinks(at)
	if err := f.Rate.Check(); err != nil {
		at(f.Pos, "flow %q: rate: %v", f.Name, err)
	}
	errs = append(errs, f.checkExpectations()...)
	f.checkNotify(at)
	errs = append(errs, f.limitErrors()...)
	f.Bus.check(f.Pos, at)
	return errors.Join(errs...)
}

// checkSinks checks each sink's settings and that their names are unique.
func (f Flow) checkSinks(at func(p Pos, format string, args ...any)) {
	seen := map[string]bool{}
	for i, s := range f.Sinks {
		label := fmt.Sprintf("%q", s.Name)
		if s.Name == "" {
			label = fmt.Sprintf("#%d", i+1)
		}
		if s.Type == "" && s.Instance == nil {
			at(s.Pos, "sink %s has no connector", label)
		}
		if s.Parallelism < 0 || s.Files < 0 || s.Retry.Attempts < 0 || s.Retry.Initial < 0 || s.Retry.Max < 0 {
			at(s.Pos, "sink %s: parallelism, files and retry settings must not be negative", label)
		}
		if err := s.Rate.Check(); err != nil {
			at(s.Pos, "sink %s: rate: %v", label, err)
		}
		if s.Checksum != "" && !slices.Contains(Checksums, s.Checksum) {
			at(s.Pos, "sink %s: checksum %q: want %s", label, s.Checksum, strings.Join(Checksums, " or "))
		}
		if s.Name == "" {
			continue
		}
		if !flowName.MatchString(s.Name) {
			at(s.Pos, "sink name %q: use 1 to 64 letters, digits, '-' or '_'", s.Name)
		}
		if seen[s.Name] {
			at(s.Pos, "sink name %q is used twice: give each sink its own name", s.Name)
		}
		seen[s.Name] = true
	}
}

// limitErrors are the flow's settings above their limits (Limits), each
// at its sink's position, or the flow's.
func (f Flow) limitErrors() []error {
	var errs []error
	for _, l := range f.Limits() {
		pos := f.Pos
		if i, ok := l.sink(); ok {
			pos = f.Sinks[i].Pos
		}
		if s := pos.String(); s != "" {
			errs = append(errs, fmt.Errorf("%s: %w", s, l))
		} else {
			errs = append(errs, l)
		}
	}
	return errs
}

// check checks the bus settings of the flow at pos.
func (b BusSpec) check(pos Pos, at func(p Pos, format string, args ...any)) {
	if b.ChunkSize < 0 || (b.ChunkSize > 0 && b.ChunkSize < MinChunkSize) {
		at(pos, "bus chunk_size %d: must be at least 4KiB", b.ChunkSize)
	}
	if b.Compression != "" && !contains(Compressions, b.Compression) {
		at(pos, "bus compression %q: want one of s2, zstd, none", b.Compression)
	}
	if b.Payload != "" && !contains(Payloads, b.Payload) {
		at(pos, "bus payload %q: want one of bytes, reference, auto", b.Payload)
	}
	if b.OnChange != "" && !contains(Changes, b.OnChange) {
		at(pos, "bus on_change %q: want fail or reread", b.OnChange)
	}
	if b.Files < 0 || b.Readers < 0 || b.Retention < 0 || b.Window < 0 || b.RetentionSize < 0 {
		at(pos, "bus files, readers, window, retention and retention_size must not be negative")
	}
}

// AuditSpec turns on a flow's audit trail (package pipeline/audit): every
// step of every file, on the bus, chained by hash. The runner keeps it;
// a Go program opens it with audit.Open and adds it to Flow.Events.
type AuditSpec struct {
	// MaxAge and MaxBytes bound the trail, independently of the chunks'
	// retention; 0 keeps every record.
	MaxAge   time.Duration
	MaxBytes int64
}

// checkExpectations checks each expectation and that their names, given or
// derived from the glob, differ.
func (f Flow) checkExpectations() []error {
	var errs []error
	if n := len(f.Expectations); n > MaxExpectations {
		errs = append(errs, fmt.Errorf("%sflow %q has %d expectations, above the limit of %d: split the flow", prefix(f.Pos), f.Name, n, MaxExpectations))
	}
	first := map[string]int{}
	for i, e := range f.Expectations {
		e = e.WithDefaults(f.ExpectZone())
		for _, err := range unjoinErrs(e.Check()) {
			if err != nil {
				errs = append(errs, fmt.Errorf("%sexpectation %q: %w", prefix(e.Pos), e.Name, err))
			}
		}
		if j, dup := first[e.Name]; dup {
			errs = append(errs, fmt.Errorf("%sexpectation name %q is used twice (expectations %d and %d): give each its own name", prefix(e.Pos), e.Name, j+1, i+1))
			continue
		}
		first[e.Name] = i
	}
	return errs
}

// prefix is "POS: ", or "" for an unknown position.
func prefix(p Pos) string {
	if s := p.String(); s != "" {
		return s + ": "
	}
	return ""
}
