package pipeline

import "time"

// File describes one file moving through a flow.
type File struct {
	// ID is assigned by the engine: a stable hash of the flow name and Key.
	// Sources leave it empty.
	ID string
	// Key identifies this version of the file at its source (for example path,
	// size and modification time). The same Key offered again after a restart
	// is recognised as the same file, so it is not read or delivered twice.
	Key string
	// Name is the slash-separated path relative to the source root. The engine
	// rejects names that are absolute, contain "..", NUL bytes or backslashes;
	// see CleanName.
	Name string
	// Size is the content size in bytes, or -1 when unknown (for example after
	// a compressing stage, until the engine has read the whole file).
	Size int64
	// SHA256 is the hex sha256 of the content, or "" until known.
	SHA256  string
	ModTime time.Time
	// Attrs are free-form attributes (a Thru File Code, an S3 ETag...) that
	// stages and name templates may use.
	Attrs map[string]string
}

// Attr returns the attribute named key, or "".
func (f File) Attr(key string) string { return f.Attrs[key] }

// WithAttr returns a copy of f with attribute key set to value; f is unchanged.
func (f File) WithAttr(key, value string) File {
	attrs := make(map[string]string, len(f.Attrs)+1)
	for k, v := range f.Attrs {
		attrs[k] = v
	}
	attrs[key] = value
	f.Attrs = attrs
	return f
}

// Status is the overall result for one file, reported to the source.
// The numeric values match Thru's flow outcome (1 passed, 2 failed, 3 mixed).
type Status int

const (
	Passed  Status = 1 // every sink committed the file
	Failed  Status = 2 // no sink committed the file
	Mixed   Status = 3 // some sinks committed, others failed
	Skipped Status = 4 // a stage dropped the file (ErrSkip); no sink received it
)

func (s Status) String() string {
	switch s {
	case Passed:
		return "passed"
	case Failed:
		return "failed"
	case Mixed:
		return "mixed"
	case Skipped:
		return "skipped"
	}
	return "unknown"
}

// Outcome is what Item.Ack receives once every sink is done with a file.
type Outcome struct {
	Status Status
	// Message explains a failure or a skip; empty when Status is Passed.
	Message string
	// Sinks holds each sink's result, keyed by sink name; empty for Skipped.
	Sinks map[string]SinkResult
	// RunID identifies the runner process that finished the file.
	RunID string
	// Attrs are the file's attributes as the flow left them: after the
	// stages when they ran to the end (kept with the file's manifest, so a
	// later run that finishes or acks the file again has them too), else
	// as the source gave them. A source reads them to report what the
	// stages found (the Thru source: batch counts, recipients); it must
	// not change the map.
	Attrs map[string]string
}

// SinkResult is one sink's part of an Outcome.
type SinkResult struct {
	Committed bool   `json:"committed"`
	Error     string `json:"error,omitempty"` // why the delivery failed; empty when Committed
}
