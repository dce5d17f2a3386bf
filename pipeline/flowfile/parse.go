package flowfile

import (
	"fmt"
	"io"
	"os"
	"sort"
	"strings"

	"go.yaml.in/yaml/v3"

	"github.com/mftflow/mftflow/internal/discard"
	"github.com/mftflow/mftflow/pipeline"
)

// Limits that keep hostile input from costing much.
const (
	// MaxFileSize is the largest flow file Parse accepts.
	MaxFileSize = 8 << 20
	// MaxNodes is the most YAML nodes a flow file may hold, and also the most
	// extra nodes its aliases may expand to.
	MaxNodes = 100_000
)

// Error is one problem in a flow file.
type Error struct {
	Pos pipeline.Pos
	Msg string
	// Err is the underlying error when there is one to branch on: a
	// *pipeline.UnknownError for an unknown connector, a *pipeline.FieldError
	// for a connector config field. It is nil otherwise.
	Err error
}

// Error returns "FILE:LINE:COLUMN: message".
func (e *Error) Error() string {
	if e.Pos.File == "" {
		return fmt.Sprintf("%d:%d: %s", e.Pos.Line, e.Pos.Column, e.Msg)
	}
	return fmt.Sprintf("%s:%d:%d: %s", e.Pos.File, e.Pos.Line, e.Pos.Column, e.Msg)
}

func (e *Error) Unwrap() error { return e.Err }

// Errors is every problem found in a flow file, sorted by position. Parse and
// Load return a non-empty Errors as their error: its Error method prints one
// problem per line, like errors.Join, and errors.As finds each *Error.
type Errors []*Error

func (es Errors) Error() string {
	lines := make([]string, len(es))
	for i, e := range es {
		lines[i] = e.Error()
	}
	return strings.Join(lines, "\n")
}

// Unwrap returns each *Error, for errors.Is and errors.As.
func (es Errors) Unwrap() []error {
	errs := make([]error, len(es))
	for i, e := range es {
		errs[i] = e
	}
	return errs
}

// Load reads the flow file at path, substitutes ${VAR} references from the
// environment (os.LookupEnv) and parses it with Parse. A file that cannot be
// read gives the error from os; problems in the file give Errors.
func Load(path string, reg *pipeline.Registry) (*pipeline.Flow, error) {
	return LoadWith(path, reg, Options{})
}

// Options add to what Parse and Load check.
type Options struct {
	// Lookup resolves ${VAR} references; nil means os.LookupEnv.
	Lookup func(string) (string, bool)
	// Chunk, when its Max is above 0, bounds bus.chunk_size below
	// pipeline.MaxChunkSize: the runner sets it to what its embedded NATS
	// server carries.
	Chunk ChunkLimit
}

// ChunkLimit is the largest bus.chunk_size the NATS server a flow will run
// on carries. A larger chunk_size is reported as
// "bus.chunk_size: 16MiB is above the limit of 8191KiB WHY; FIX".
type ChunkLimit struct {
	Max      int64
	Why, Fix string
}

// LoadWith is Load with options.
func LoadWith(path string, reg *pipeline.Registry, o Options) (*pipeline.Flow, error) {
	data, err := readFile(path)
	if err != nil {
		return nil, fmt.Errorf("reading flow file: %w", err)
	}
	return ParseWith(path, data, reg, o)
}

func readFile(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer discard.Close(f)
	// Read one byte past the limit so Parse sees that the file is too large
	// without this reading a huge file whole.
	return io.ReadAll(io.LimitReader(f, MaxFileSize+1))
}

// Parse parses a flow file held in data against the connectors of reg, which
// must not be nil. filename is used in error positions only. lookup resolves
// ${VAR} references; nil means os.LookupEnv.
//
// The flow is returned as the file says: settings left out stay zero (see
// pipeline.Flow.WithDefaults) and each component's Config holds only the
// fields the file sets, converted to their Go types. On any problem Parse
// returns a nil flow and Errors listing every problem found.
//
// Beyond the file's syntax and each connector's field types, Parse runs
// each connector's pipeline.Spec.Check, bounds the flow's own settings
// (pipeline.Flow.Limits) and refuses sinks that would overwrite each other's
// files or feed the source (pipeline.Registry.CheckPlaces).
func Parse(filename string, data []byte, reg *pipeline.Registry, lookup func(string) (string, bool)) (*pipeline.Flow, error) {
	return ParseWith(filename, data, reg, Options{Lookup: lookup})
}

// ParseWith is Parse with options.
func ParseWith(filename string, data []byte, reg *pipeline.Registry, o Options) (*pipeline.Flow, error) {
	lookup := o.Lookup
	if lookup == nil {
		lookup = os.LookupEnv
	}
	p := &parser{file: filename, reg: reg, lookup: lookup, chunk: o.Chunk, active: map[*yaml.Node]bool{}}
	f := p.parse(data)
	if len(p.errs) > 0 {
		return nil, p.sorted()
	}
	return f, nil
}

type parser struct {
	file   string
	reg    *pipeline.Registry
	lookup func(string) (string, bool)
	chunk  ChunkLimit
	errs   Errors

	// visits counts nodes reached while converting the tree; aliases can
	// make it exceed the number of nodes in the file, so it is capped at
	// nodes+MaxNodes.
	nodes, visits int
	// active holds the anchors whose content is being converted, to catch an
	// alias inside its own anchor.
	active map[*yaml.Node]bool
	// stop is set once a node budget is spent; conversion then unwinds and
	// only this error is reported.
	stop *Error
	// payloadAt is bus.payload's value, where its refusal is reported.
	payloadAt *yaml.Node
}

func (p *parser) pos(n *yaml.Node) pipeline.Pos {
	line, col := n.Line, n.Column
	if line < 1 {
		line = 1
	}
	if col < 1 {
		col = 1
	}
	return pipeline.Pos{File: p.file, Line: line, Column: col}
}

func (p *parser) add(pos pipeline.Pos, err error, format string, args ...any) {
	p.errs = append(p.errs, &Error{Pos: pos, Msg: fmt.Sprintf(format, args...), Err: err})
}

// errorf reports a problem at node n.
func (p *parser) errorf(n *yaml.Node, format string, args ...any) {
	p.add(p.pos(n), nil, format, args...)
}

// sorted returns the errors by position, without repeats (an anchor used
// twice can yield the same error twice).
func (p *parser) sorted() Errors {
	if p.stop != nil {
		// Other errors may be artefacts of the cut-short conversion.
		return Errors{p.stop}
	}
	sort.SliceStable(p.errs, func(i, j int) bool {
		a, b := p.errs[i].Pos, p.errs[j].Pos
		if a.Line != b.Line {
			return a.Line < b.Line
		}
		return a.Column < b.Column
	})
	type key struct {
		pos pipeline.Pos
		msg string
	}
	seen := map[key]bool{}
	var out Errors
	for _, e := range p.errs {
		if k := (key{e.Pos, e.Msg}); !seen[k] {
			seen[k] = true
			out = append(out, e)
		}
	}
	return out
}

// halt reports that a node budget is spent and stops the conversion.
func (p *parser) halt(n *yaml.Node, format string, args ...any) {
	p.errorf(n, format, args...)
	p.stop = p.errs[len(p.errs)-1]
}

func (p *parser) parse(data []byte) *pipeline.Flow {
	if len(data) > MaxFileSize {
		p.add(pipeline.Pos{File: p.file, Line: 1, Column: 1}, nil, "the file is larger than %d MiB: a flow file this large is refused", MaxFileSize>>20)
		return nil
	}
	if pos, msg, ok := checkText(data); !ok {
		p.add(pipeline.Pos{File: p.file, Line: pos.Line, Column: pos.Column}, nil, "%s", msg)
		return nil
	}
	doc, ok := p.decode(data)
	if !ok {
		return nil
	}
	if doc == nil || len(doc.Content) == 0 || isNull(doc.Content[0]) {
		p.add(pipeline.Pos{File: p.file, Line: 1, Column: 1}, nil, "the file is empty: a flow needs name, source and sinks")
		return nil
	}
	p.count(doc)
	if p.stop != nil {
		return nil
	}
	f := p.flow(doc.Content[0])
	if f != nil && p.stop == nil {
		p.report(f, p.reg.CheckPlaces(*f))
		if err := p.reg.CheckPayload(*f); err != nil {
			p.add(p.pos(p.payloadAt), err, "%v", err)
		}
	}
	if len(p.errs) == 0 && f != nil {
		p.check(f)
	}
	return f
}

// limit reports a setting above its bound at its value n, or at fallback
// when the value node is not known.
func (p *parser) limit(l *pipeline.LimitError, n, fallback *yaml.Node) {
	if n == nil {
		n = fallback
	}
	p.add(p.pos(n), l, "%v", l)
}

// check runs pipeline.Flow.Check, which should find nothing the parser has
// not reported already, and reports what it finds at the position it names.
func (p *parser) check(f *pipeline.Flow) {
	p.report(f, f.Check())
}

// report adds the problems in err, which pipeline.Flow.Check or
// pipeline.Registry.CheckPlaces found in f, at the position each names.
func (p *parser) report(f *pipeline.Flow, err error) {
	if err == nil {
		return
	}
	errs := []error{err}
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		errs = j.Unwrap()
	}
	places := []pipeline.Pos{f.Pos}
	for _, s := range f.Sinks {
		places = append(places, s.Pos)
	}
	for _, x := range f.Expectations {
		places = append(places, x.Pos)
	}
	for _, r := range f.Notify {
		places = append(places, r.Pos)
	}
	for _, e := range errs {
		msg, pos := e.Error(), f.Pos
		for _, at := range places {
			if rest, ok := strings.CutPrefix(msg, at.String()+": "); ok && at.String() != "" {
				msg, pos = rest, at
				break
			}
		}
		p.add(pos, e, "%s", msg)
	}
}
