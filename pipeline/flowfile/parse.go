package flowfile

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"go.yaml.in/yaml/v3"

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
	defer f.Close()
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

// decode parses data as YAML and returns its first document. Later
// documents are an error unless they are empty.
func (p *parser) decode(data []byte) (doc *yaml.Node, ok bool) {
	defer func() {
		// The YAML parser reports errors with panics it recovers itself; any
		// other panic is a bug in it, and must not take the caller down.
		if r := recover(); r != nil {
			p.add(pipeline.Pos{File: p.file, Line: 1, Column: 1}, nil, "the YAML parser failed on this file: %v", r)
			doc, ok = nil, false
		}
	}()
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var first yaml.Node
	if err := dec.Decode(&first); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, true
		}
		p.syntaxError(data, err)
		return nil, false
	}
	for {
		var next yaml.Node
		err := dec.Decode(&next)
		if errors.Is(err, io.EOF) {
			return &first, true
		}
		if err != nil {
			p.syntaxError(data, err)
			return nil, false
		}
		if len(next.Content) > 0 && !isNull(next.Content[0]) {
			p.errorf(next.Content[0], `a flow file holds one flow: this second YAML document (after "---") is not allowed; put each flow in its own file`)
			return nil, false
		}
	}
}

var (
	yamlLine      = regexp.MustCompile(`^line (\d+): `)
	unknownAnchor = regexp.MustCompile(`^unknown anchor '(.*)' referenced$`)
)

// parserProblems are the messages of the YAML parser (as opposed to its
// scanner). For these the parser reports a 0-based line number, so the line
// in the message is one less than the line of the text it means.
var parserProblems = map[string]bool{
	"did not find expected <stream-start>":   true,
	"did not find expected <document start>": true,
	"found undefined tag handle":             true,
	"did not find expected node content":     true,
	"did not find expected '-' indicator":    true,
	"did not find expected key":              true,
	"did not find expected ',' or ']'":       true,
	"did not find expected ',' or '}'":       true,
	"found duplicate %YAML directive":        true,
	"found incompatible YAML document":       true,
	"found duplicate %TAG directive":         true,
}

// syntaxError reports an error from the YAML parser. Its messages carry a
// line ("yaml: line 3: ...") but no column; without a line the problem is
// on the first line.
func (p *parser) syntaxError(data []byte, err error) {
	msg := strings.TrimPrefix(err.Error(), "yaml: ")
	line := 1
	if m := yamlLine.FindStringSubmatch(msg); m != nil {
		msg = msg[len(m[0]):]
		if n, err := strconv.Atoi(m[1]); err == nil && n > 0 {
			line = n
			if parserProblems[msg] {
				line++
			}
		}
	}
	col := 1
	if blockProblems[msg] && len(data) <= refineLimit {
		if l, c, ok := findProblemLine(data, msg, line); ok {
			line, col = l, c
			msg += ": check the indentation of this line"
		}
	}
	if m := unknownAnchor.FindStringSubmatch(msg); m != nil {
		line, col = findAlias(data, m[1])
		msg = fmt.Sprintf("alias *%s refers to an anchor that is not defined before it (define it with &%s first)", m[1], m[1])
	}
	p.add(pipeline.Pos{File: p.file, Line: line, Column: col}, nil, "%s", msg)
}

// blockProblems are the parser errors about block collections. The parser
// reports them at the line where the mapping or list starts, which is often
// far above the line that broke it.
var blockProblems = map[string]bool{
	"did not find expected key":           true,
	"did not find expected '-' indicator": true,
}

// refineLimit bounds the size of a file findProblemLine searches.
const refineLimit = 1 << 20

// findProblemLine finds the line that breaks a block collection: the first
// line, from line from on, such that the text up to it gives the same
// problem. Block-style YAML cut after any line is usually valid, so a
// binary search over the number of lines finds it. It returns the line and
// the column of its first character.
func findProblemLine(data []byte, problem string, from int) (line, col int, ok bool) {
	ends := []int{} // ends[i] is the offset just past line i+1
	for i, b := range data {
		if b == '\n' {
			ends = append(ends, i+1)
		}
	}
	if len(ends) == 0 || ends[len(ends)-1] != len(data) {
		ends = append(ends, len(data))
	}
	fails := func(lines int) bool {
		return yamlProblem(data[:ends[lines-1]]) == problem
	}
	lo, hi := max(from, 1), len(ends)
	if lo > hi || !fails(hi) {
		return 0, 0, false
	}
	for lo < hi {
		mid := lo + (hi-lo)/2
		if fails(mid) {
			hi = mid
		} else {
			lo = mid + 1
		}
	}
	start := 0
	if hi > 1 {
		start = ends[hi-2]
	}
	text := string(data[start:ends[hi-1]])
	indent := len(text) - len(strings.TrimLeft(text, " \t"))
	return hi, 1 + utf8.RuneCountInString(text[:indent]), true
}

// yamlProblem returns the problem the YAML parser finds in data, without
// its "yaml: line N: " prefix, or "".
func yamlProblem(data []byte) (problem string) {
	defer func() {
		if recover() != nil {
			problem = "panic"
		}
	}()
	dec := yaml.NewDecoder(bytes.NewReader(data))
	for {
		var n yaml.Node
		err := dec.Decode(&n)
		if errors.Is(err, io.EOF) {
			return ""
		}
		if err != nil {
			msg := strings.TrimPrefix(err.Error(), "yaml: ")
			if m := yamlLine.FindStringSubmatch(msg); m != nil {
				msg = msg[len(m[0]):]
			}
			return msg
		}
	}
}

// findAlias returns the position of the first "*name" in data that is a
// whole alias, or 1:1.
func findAlias(data []byte, name string) (line, col int) {
	s := string(data)
	needle := "*" + name
	for off := 0; ; {
		i := strings.Index(s[off:], needle)
		if i < 0 {
			return 1, 1
		}
		i += off
		end := i + len(needle)
		if end == len(s) || strings.ContainsRune(" \t\r\n,[]{}", rune(s[end])) {
			return lineCol(s, i)
		}
		off = i + 1
	}
}

// lineCol returns the 1-based line and column (in characters) of byte
// offset off in s.
func lineCol(s string, off int) (line, col int) {
	before := s[:off]
	line = 1 + strings.Count(before, "\n")
	if i := strings.LastIndexByte(before, '\n'); i >= 0 {
		before = before[i+1:]
	}
	return line, 1 + utf8.RuneCountInString(before)
}

// checkText finds text the YAML parser refuses without saying where:
// invalid UTF-8 and control characters.
func checkText(data []byte) (pipeline.Pos, string, bool) {
	for off := 0; off < len(data); {
		r, size := utf8.DecodeRune(data[off:])
		var msg string
		switch {
		case r == utf8.RuneError && size <= 1:
			msg = fmt.Sprintf("invalid UTF-8 (byte 0x%02x): a flow file must be UTF-8 text", data[off])
		case r == '\t' || r == '\n' || r == '\r' || (r >= 0x20 && r <= 0x7e) || r == 0x85,
			r >= 0xa0 && r <= 0xd7ff, r >= 0xe000 && r <= 0xfffd, r >= 0x10000 && r <= 0x10ffff:
		default:
			msg = fmt.Sprintf("control character %U is not allowed in a flow file", r)
		}
		if msg != "" {
			line, col := lineCol(string(data), off)
			return pipeline.Pos{Line: line, Column: col}, msg, false
		}
		off += size
	}
	return pipeline.Pos{}, "", true
}

// count walks the tree as written (not following aliases), counting nodes
// and reporting duplicate keys.
func (p *parser) count(n *yaml.Node) {
	if p.stop != nil || n == nil {
		return
	}
	p.nodes++
	if p.nodes > MaxNodes {
		p.halt(n, "the file has more than %d YAML nodes: a flow file this large is refused", MaxNodes)
		return
	}
	if n.Kind == yaml.MappingNode {
		seen := map[string]*yaml.Node{}
		for i := 0; i+1 < len(n.Content); i += 2 {
			k := n.Content[i]
			if k.Kind == yaml.ScalarNode {
				if first, dup := seen[k.Value]; dup {
					p.errorf(k, "duplicate key %q (first at %d:%d)", k.Value, first.Line, first.Column)
				} else {
					seen[k.Value] = k
				}
			}
		}
	}
	if n.Kind == yaml.AliasNode {
		return
	}
	for _, c := range n.Content {
		p.count(c)
	}
}

// visit counts one node reached during conversion; it reports false once
// the budget is spent.
func (p *parser) visit(n *yaml.Node) bool {
	if p.stop != nil {
		return false
	}
	p.visits++
	if p.visits > p.nodes+MaxNodes {
		p.halt(n, "aliases expand the file by more than %d YAML nodes: a flow file this large is refused", MaxNodes)
		return false
	}
	return true
}

// deref returns n, or the node an alias n refers to.
func (p *parser) deref(n *yaml.Node) (*yaml.Node, bool) {
	if !p.visit(n) {
		return nil, false
	}
	if n.Kind == yaml.AliasNode {
		if n.Alias == nil {
			p.errorf(n, "alias *%s refers to no anchor", n.Value)
			return nil, false
		}
		return n.Alias, p.visit(n.Alias)
	}
	return n, true
}

func isNull(n *yaml.Node) bool {
	return n.Kind == yaml.ScalarNode && n.ShortTag() == "!!null"
}

// describe names the kind of node n for "got ..." in messages.
func describe(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	case yaml.AliasNode:
		if n.Alias != nil {
			return describe(n.Alias)
		}
		return "an alias"
	case yaml.ScalarNode:
		switch n.ShortTag() {
		case "!!null":
			return "an empty value"
		case "!!bool":
			return "true or false"
		case "!!int", "!!float":
			return "a number"
		}
		return "a string"
	}
	return "nothing"
}

// pair is one key and value of a mapping.
type pair struct {
	key  string
	k, v *yaml.Node
}

// pairs returns the entries of mapping m in order, with merge keys ("<<")
// expanded: keys written in m win over merged ones, and among merged
// mappings the earlier wins. Repeated keys keep the first (count reports
// them).
func (p *parser) pairs(m *yaml.Node) []pair {
	// While its entries are read, m is active: a merge of m inside m is
	// then caught at the alias that makes it.
	if !p.active[m] {
		p.active[m] = true
		defer delete(p.active, m)
	}
	var own, merged []pair
	for i := 0; i+1 < len(m.Content); i += 2 {
		k, v := m.Content[i], m.Content[i+1]
		kn, ok := p.deref(k)
		if !ok {
			return nil
		}
		if kn.Kind != yaml.ScalarNode {
			p.errorf(k, "a key must be a string, got %s", describe(kn))
			continue
		}
		if kn.ShortTag() == "!!merge" {
			merged = append(merged, p.merge(v)...)
			continue
		}
		own = append(own, pair{kn.Value, k, v})
	}
	seen := map[string]bool{}
	out := own[:0:0]
	for _, e := range append(own, merged...) {
		if !seen[e.key] {
			seen[e.key] = true
			out = append(out, e)
		}
	}
	return out
}

// merge returns the entries a merge key's value v brings in.
func (p *parser) merge(v *yaml.Node) []pair {
	t, ok := p.deref(v)
	if !ok {
		return nil
	}
	switch t.Kind {
	case yaml.MappingNode:
		return p.mergeMapping(v, t)
	case yaml.SequenceNode:
		var out []pair
		for _, item := range t.Content {
			m, ok := p.deref(item)
			if !ok {
				return nil
			}
			if m.Kind != yaml.MappingNode {
				p.errorf(item, `merge key "<<": want a mapping or a list of mappings, got a list with %s`, describe(m))
				continue
			}
			out = append(out, p.mergeMapping(item, m)...)
		}
		return out
	}
	p.errorf(v, `merge key "<<": want a mapping or a list of mappings, got %s`, describe(t))
	return nil
}

// mergeMapping returns the entries of mapping m, which node n (m itself or
// an alias of it) merges in.
func (p *parser) mergeMapping(n, m *yaml.Node) []pair {
	if p.active[m] {
		p.cycle(n)
		return nil
	}
	p.active[m] = true
	defer delete(p.active, m)
	return p.pairs(m)
}

// cycle reports node n, which is inside the node it stands for.
func (p *parser) cycle(n *yaml.Node) {
	if n.Kind == yaml.AliasNode {
		p.errorf(n, "alias *%s is used inside its own anchor", n.Value)
		return
	}
	p.errorf(n, `merge key "<<": the mapping merges itself`)
}

// value converts node n to a Go value: nil, bool, int, float64, string,
// []any or map[string]any. Strings have ${VAR} references substituted. It
// reports problems itself and then returns false.
func (p *parser) value(n *yaml.Node, secret bool) (any, bool) {
	if !p.visit(n) {
		return nil, false
	}
	switch n.Kind {
	case yaml.AliasNode:
		t := n.Alias
		if t == nil {
			p.errorf(n, "alias *%s refers to no anchor", n.Value)
			return nil, false
		}
		if p.active[t] {
			p.cycle(n)
			return nil, false
		}
		p.active[t] = true
		defer delete(p.active, t)
		return p.value(t, secret)
	case yaml.ScalarNode:
		return p.scalar(n, secret)
	case yaml.SequenceNode:
		list := make([]any, 0, len(n.Content))
		good := true
		for _, item := range n.Content {
			v, ok := p.value(item, secret)
			good = good && ok
			list = append(list, v)
		}
		return list, good
	case yaml.MappingNode:
		m := make(map[string]any, len(n.Content)/2)
		good := true
		for _, e := range p.pairs(n) {
			v, ok := p.value(e.v, secret)
			good = good && ok
			m[e.key] = v
		}
		return m, good && p.stop == nil
	}
	p.errorf(n, "unexpected YAML node")
	return nil, false
}

// scalar converts a scalar node by its resolved tag; anything that is not
// null, a bool or a number is a string, with ${VAR} substituted.
func (p *parser) scalar(n *yaml.Node, secret bool) (any, bool) {
	switch n.ShortTag() {
	case "!!null":
		return nil, true
	case "!!bool":
		var b bool
		if n.Decode(&b) == nil {
			return b, true
		}
	case "!!int":
		var i int
		if n.Decode(&i) == nil {
			return i, true
		}
		var f float64
		if n.Decode(&f) == nil {
			return f, true
		}
	case "!!float":
		var f float64
		if n.Decode(&f) == nil {
			return f, true
		}
	}
	s, err := expand(n.Value, p.lookup, secret)
	if err != nil {
		p.errorf(n, "%v", err)
		return nil, false
	}
	return s, true
}

// The flow's own keys and settings. Settings are parsed with
// pipeline.Field, like connector fields, so their messages match.
var (
	topKeys      = []string{"name", "source", "stages", "sinks", "bus", "schedule", "rate", "audit", "expect", "notify"}
	auditKeys    = []string{"max_age", "max_bytes"}
	scheduleKeys = []string{"cron", "time_zone", "windows", "holidays"}
	expectKeys   = []string{"name", "files", "by", "time_zone", "count", "warn_before", "holidays"}
	// expectFields are the expectation settings that are not strings.
	expectFields = map[string]pipeline.Field{"count": countField, "warn_before": durationField, "holidays": stringsField}
	sinkKeys     = []string{"name", "parallelism", "files", "retry", "rate", "checksum"}
	retryKeys    = []string{"attempts", "initial", "max"}
	busKeys      = []string{"chunk_size", "compression", "files", "readers", "window", "retention", "retention_size", "payload", "on_change"}

	nameField     = pipeline.Field{Type: pipeline.TypeString}
	countField    = pipeline.Field{Type: pipeline.TypeInt}
	durationField = pipeline.Field{Type: pipeline.TypeDuration}
	sizeField     = pipeline.Field{Type: pipeline.TypeSize}
	stringsField  = pipeline.Field{Type: pipeline.TypeStrings}
	compressField = pipeline.Field{Type: pipeline.TypeString, Enum: pipeline.Compressions}
	payloadField  = pipeline.Field{Type: pipeline.TypeString, Enum: pipeline.Payloads}
	changeField   = pipeline.Field{Type: pipeline.TypeString, Enum: pipeline.Changes}
	checksumField = pipeline.Field{Type: pipeline.TypeString, Enum: pipeline.Checksums}

	// flowName is the rule pipeline.Flow.Check applies to flow and sink names.
	flowName = regexp.MustCompile(`^[A-Za-z0-9_-]{1,64}$`)

	kindLabel = map[pipeline.Kind]string{
		pipeline.KindSource: "source connector",
		pipeline.KindStage:  "stage",
		pipeline.KindSink:   "sink connector",
	}
	// scalarTypeWant says what a scalar field wants, in Field.Parse's words.
	scalarTypeWant = map[pipeline.FieldType]string{
		pipeline.TypeString:   "a string",
		pipeline.TypeInt:      "an integer",
		pipeline.TypeBool:     "true or false",
		pipeline.TypeDuration: "a duration such as 500ms, 10s or 1m30s",
		pipeline.TypeSize:     "a size such as 1048576, 512KiB, 8MiB or 1GB",
	}
)

const (
	nameRule = "use 1 to 64 letters, digits, '-' or '_'"
)

func (p *parser) known(k pipeline.Kind) string {
	names := p.reg.Names(k)
	if len(names) == 0 {
		return "none"
	}
	return strings.Join(names, ", ")
}

func (p *parser) flow(root *yaml.Node) *pipeline.Flow {
	top, ok := p.deref(root)
	if !ok {
		return nil
	}
	if top.Kind != yaml.MappingNode {
		p.errorf(top, "want a mapping with name, source and sinks at the top of the file, got %s", describe(top))
		return nil
	}
	f := &pipeline.Flow{Pos: p.pos(top)}
	var haveName, haveSource, haveSinks, sinksClean bool
	var expect *pair
	var rules []*parsedRule
	for _, e := range p.pairs(top) {
		switch e.key {
		case "name":
			haveName = true
			f.Name = p.flowName(e)
		case "source":
			haveSource = true
			f.Source = p.source(e)
		case "stages":
			f.Stages = p.stages(e)
		case "sinks":
			haveSinks = true
			before := len(p.errs)
			f.Sinks = p.sinks(e)
			sinksClean = len(p.errs) == before
		case "bus":
			f.Bus = p.bus(e)
		case "schedule":
			f.Schedule = p.schedule(e)
		case "rate":
			f.Rate = p.rate(e, "rate")
		case "audit":
			f.Audit = p.audit(e)
		case "expect":
			expect = &e // after the schedule, whose zone is the default
		case "notify":
			rules = p.notify(e)
			f.Notify = notifyRules(rules)
		default:
			p.errorf(e.k, "unknown key %q (known: %s)", e.key, strings.Join(topKeys, ", "))
		}
	}
	if expect != nil {
		f.Expectations = p.expectations(*expect, expectZone(f))
	}
	if !haveName {
		p.errorf(top, `missing name: add "name: my-flow" (1 to 64 letters, digits, '-' or '_')`)
	}
	if !haveSource {
		p.errorf(top, `missing source: add "source:" with one connector (known: %s)`, p.known(pipeline.KindSource))
	}
	if !haveSinks {
		p.errorf(top, `missing sinks: add "sinks:" with at least one sink (known: %s)`, p.known(pipeline.KindSink))
	}
	if sinksClean && p.stop == nil {
		p.notifySinks(f, rules)
	}
	return f
}

func (p *parser) flowName(e pair) string {
	v, n, ok := p.setting(e, "name", nameField)
	if !ok {
		return ""
	}
	if v == nil {
		p.errorf(e.k, "flow name is empty: %s", nameRule)
		return ""
	}
	name := v.(string)
	if !flowName.MatchString(name) {
		p.errorf(n, "flow name %q: %s", name, nameRule)
	}
	return name
}

// setting converts the value of e for one of the flow's own settings. It
// returns nil (and true) for an empty value, and the value node for
// positions.
func (p *parser) setting(e pair, path string, f pipeline.Field) (any, *yaml.Node, bool) {
	n, ok := p.deref(e.v)
	if !ok {
		return nil, nil, false
	}
	if isNull(n) {
		return nil, n, true
	}
	v, ok := p.convert(n, f, path, nil)
	return v, n, ok
}

// convert checks node n (not an alias) against field f and returns its Go
// value. Problems are reported as "prefix: message"; wrap, when not nil,
// gives the Err of the reported *Error.
func (p *parser) convert(n *yaml.Node, f pipeline.Field, prefix string, wrap func(error) error) (any, bool) {
	fail := func(at *yaml.Node, err error) (any, bool) {
		var under error
		if wrap != nil {
			under = wrap(err)
		}
		p.add(p.pos(at), under, "%s: %v", prefix, err)
		return nil, false
	}
	want := scalarTypeWant[f.Type]
	if f.Type == pipeline.TypeString && len(f.Enum) > 0 {
		want = "one of " + strings.Join(f.Enum, ", ")
	}
	switch f.Type {
	case pipeline.TypeStrings:
		switch n.Kind {
		case yaml.MappingNode:
			return fail(n, fmt.Errorf("want a list of strings, got a mapping"))
		case yaml.SequenceNode:
			for i, item := range n.Content {
				t, ok := p.deref(item)
				if !ok {
					return nil, false
				}
				if t.Kind != yaml.ScalarNode || isNull(t) {
					return fail(item, fmt.Errorf("want a list of strings, item %d is %s", i+1, describe(t)))
				}
			}
		}
	case pipeline.TypeStringMap:
		if n.Kind != yaml.MappingNode {
			return fail(n, fmt.Errorf("want a map of strings, got %s", describe(n)))
		}
		for _, e := range p.pairs(n) {
			t, ok := p.deref(e.v)
			if !ok {
				return nil, false
			}
			if t.Kind != yaml.ScalarNode || isNull(t) {
				return fail(e.v, fmt.Errorf("want a map of strings, key %q is %s", e.key, describe(t)))
			}
		}
	default:
		if n.Kind != yaml.ScalarNode {
			return fail(n, fmt.Errorf("want %s, got %s", want, describe(n)))
		}
	}
	raw, ok := p.value(n, f.Secret)
	if !ok {
		return nil, false
	}
	v, err := f.Parse(raw)
	if err != nil {
		if s, isString := raw.(string); f.Secret && isString && s != "" {
			// Field.Parse hides secret values except in some messages
			// (an enum mismatch quotes the value): hide it here too.
			err = errors.New(strings.ReplaceAll(err.Error(), strconv.Quote(s), "a secret value"))
		}
		return fail(n, err)
	}
	return v, true
}

// source parses "source: {CONNECTOR: CONFIG}".
func (p *parser) source(e pair) pipeline.Component {
	n, ok := p.deref(e.v)
	if !ok {
		return pipeline.Component{}
	}
	if isNull(n) {
		p.errorf(e.k, "source needs exactly one connector key, found none (known: %s)", p.known(pipeline.KindSource))
		return pipeline.Component{}
	}
	if n.Kind != yaml.MappingNode {
		p.errorf(n, "source: want a mapping with one connector key, got %s", describe(n))
		return pipeline.Component{}
	}
	c, _ := p.oneComponent(pipeline.KindSource, n, p.pairs(n), "source needs exactly one connector key, found none",
		`source has two connectors %q and %q: a flow has exactly one source`,
		func(e pair) { p.unknown(pipeline.KindSource, e) })
	return c
}

// oneComponent picks the component among candidate keys cand of mapping m:
// the first registered connector, else the first key. Other keys are
// reported: as a misplaced field of the picked connector, as a second
// connector (twoMsg, with both names in file order) or, when they name no
// connector, by unknown.
func (p *parser) oneComponent(kind pipeline.Kind, m *yaml.Node, cand []pair, noneMsg, twoMsg string, unknown func(pair)) (pipeline.Component, bool) {
	if len(cand) == 0 {
		p.errorf(m, "%s (known: %s)", noneMsg, p.known(kind))
		return pipeline.Component{}, false
	}
	pick := 0
	for i, e := range cand {
		if _, ok := p.reg.Lookup(kind, e.key); ok {
			pick = i
			break
		}
	}
	chosen := cand[pick]
	spec, known := p.reg.Lookup(kind, chosen.key)
	for i, e := range cand {
		if i == pick {
			continue
		}
		if _, isField := spec.Field(e.key); known && isField {
			p.errorf(e.k, "%q is a field of the %s %s: indent it under %q", e.key, chosen.key, kind, chosen.key+":")
			continue
		}
		if _, isConnector := p.reg.Lookup(kind, e.key); isConnector {
			first, second := chosen, e
			if e.k.Line < chosen.k.Line || (e.k.Line == chosen.k.Line && e.k.Column < chosen.k.Column) {
				first, second = e, chosen
			}
			p.errorf(second.k, twoMsg, first.key, second.key)
			continue
		}
		unknown(e)
	}
	return p.component(kind, chosen)
}

// unknown reports e as an unknown connector of kind k.
func (p *parser) unknown(k pipeline.Kind, e pair) {
	err := &pipeline.UnknownError{Kind: k, Name: e.key, Known: p.reg.Names(k)}
	p.add(p.pos(e.k), err, "unknown %s %q (known: %s)", kindLabel[k], e.key, p.known(k))
}

// component parses one "CONNECTOR: CONFIG" entry.
func (p *parser) component(kind pipeline.Kind, e pair) (pipeline.Component, bool) {
	spec, ok := p.reg.Lookup(kind, e.key)
	if !ok {
		p.unknown(kind, e)
		return pipeline.Component{}, false
	}
	cfg, ok := p.config(spec, e)
	return pipeline.Component{Type: e.key, Config: cfg, Pos: p.pos(e.k)}, ok
}

// config converts a connector's config mapping with its spec.
func (p *parser) config(spec pipeline.Spec, e pair) (map[string]any, bool) {
	label := spec.Name + " " + string(spec.Kind)
	cfg := map[string]any{}
	n, ok := p.deref(e.v)
	if !ok {
		return nil, false
	}
	var entries []pair
	at := n
	switch {
	case isNull(n):
		at = e.k
	case n.Kind == yaml.MappingNode:
		entries = p.pairs(n)
	default:
		p.errorf(n, "%s: want a mapping of config fields, got %s", label, describe(n))
		return nil, false
	}
	good := true
	given := map[string]*yaml.Node{}  // field name -> key node, for each field written
	values := map[string]*yaml.Node{} // field name -> value node, for each field with a value
	empty := map[string]bool{}
	for _, fe := range entries {
		f, ok := spec.Field(fe.key)
		if !ok {
			known := "none"
			if names := fieldNames(spec); len(names) > 0 {
				known = strings.Join(names, ", ")
			}
			err := &pipeline.FieldError{Connector: spec.Name, Field: fe.key, Err: errors.New("unknown field")}
			p.add(p.pos(fe.k), err, "%s: unknown field %q (known: %s)", label, fe.key, known)
			good = false
			continue
		}
		given[f.Name] = fe.k
		v, ok := p.deref(fe.v)
		if !ok {
			return nil, false
		}
		if isNull(v) {
			empty[f.Name] = true
			continue
		}
		wrap := func(err error) error {
			return &pipeline.FieldError{Connector: spec.Name, Field: f.Name, Err: err}
		}
		pv, ok := p.convert(v, f, fmt.Sprintf("%s: field %q", label, f.Name), wrap)
		if !ok {
			good = false
			continue
		}
		values[f.Name] = v
		if f.Required && pv == "" {
			// "path: ${X:}" with X unset: a required field that the
			// flow file does give, but as nothing.
			msg := fmt.Sprintf("%s: required field %q is empty", label, f.Name)
			if note := varNote(v.Value, p.lookup); note != "" && !f.Secret {
				msg += ": " + note + `; set the variable, or give a default that is not empty ("${VAR:value}")`
			}
			err := &pipeline.FieldError{Connector: spec.Name, Field: f.Name, Err: errors.New("required field is empty")}
			p.add(p.pos(v), err, "%s", msg)
			good = false
			continue
		}
		cfg[f.Name] = pv
	}
	for _, f := range spec.Fields {
		if _, ok := cfg[f.Name]; ok || !f.Required {
			continue
		}
		good = false
		switch k, written := given[f.Name]; {
		case empty[f.Name]:
			err := &pipeline.FieldError{Connector: spec.Name, Field: f.Name, Err: errors.New("required field is empty")}
			p.add(p.pos(k), err, "%s: required field %q is empty", label, f.Name)
		case !written:
			err := &pipeline.FieldError{Connector: spec.Name, Field: f.Name, Err: errors.New("required field is missing")}
			p.add(p.pos(at), err, "%s: missing required field %q", label, f.Name)
		}
		// Otherwise its value was wrong, and that is reported already.
	}
	if good && spec.Check != nil {
		good = p.checkConfig(spec, label, cfg, e.k, values)
	}
	return cfg, good
}

// checkConfig runs the spec's own Check on a config that has the right
// fields and types, and reports what it finds: at the value of the field
// a *pipeline.FieldError names, else at the connector's key (at).
func (p *parser) checkConfig(spec pipeline.Spec, label string, cfg map[string]any, at *yaml.Node, values map[string]*yaml.Node) bool {
	c, err := pipeline.ParseConfig(spec, cfg)
	if err == nil {
		err = spec.Check(c)
	}
	if err == nil {
		return true
	}
	for _, e := range unjoin(err) {
		var fe *pipeline.FieldError
		if !errors.As(e, &fe) {
			p.add(p.pos(at), e, "%s: %v", label, e)
			continue
		}
		n, ok := values[fe.Field]
		if !ok {
			n = at
		}
		msg := fmt.Sprintf("%s: field %q: %v", label, fe.Field, fe.Err)
		if f, known := spec.Field(fe.Field); ok && known && !f.Secret {
			if note := varNote(n.Value, p.lookup); note != "" {
				msg += " (" + note + ")"
			}
		}
		p.add(p.pos(n), e, "%s", msg)
	}
	return false
}

// unjoin returns the errors joined in err (errors.Join), or err itself.
func unjoin(err error) []error {
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		var out []error
		for _, e := range j.Unwrap() {
			out = append(out, unjoin(e)...)
		}
		return out
	}
	return []error{err}
}

func fieldNames(s pipeline.Spec) []string {
	names := make([]string, len(s.Fields))
	for i, f := range s.Fields {
		names[i] = f.Name
	}
	return names
}

// stages parses "stages: [{STAGE: CONFIG}, ...]".
func (p *parser) stages(e pair) []pipeline.Component {
	n, ok := p.deref(e.v)
	if !ok || isNull(n) {
		return nil
	}
	if n.Kind != yaml.SequenceNode {
		p.errorf(n, "stages: want a list of stages, got %s", describe(n))
		return nil
	}
	if len(n.Content) > pipeline.MaxStages {
		p.limit(pipeline.Flow{Stages: make([]pipeline.Component, len(n.Content))}.Limits()[0], n, n)
	}
	var out []pipeline.Component
	for i, item := range n.Content {
		m, ok := p.deref(item)
		if !ok {
			return nil
		}
		if m.Kind != yaml.MappingNode {
			hint := ""
			if _, known := p.reg.Lookup(pipeline.KindStage, m.Value); known && m.Kind == yaml.ScalarNode {
				hint = fmt.Sprintf(` (write "%s: {}" for a stage without settings)`, m.Value)
			}
			p.errorf(item, "stage %d: want a mapping with the stage name as its key, got %s%s", i+1, describe(m), hint)
			continue
		}
		c, ok := p.oneComponent(pipeline.KindStage, m, p.pairs(m), "stage needs exactly one key, the stage name, found none",
			`stage has two names %q and %q: put each stage in its own list item`,
			func(e pair) { p.unknown(pipeline.KindStage, e) })
		if ok {
			out = append(out, c)
		}
	}
	return out
}

// sinks parses "sinks: [{name: N, CONNECTOR: CONFIG, ...}, ...]".
func (p *parser) sinks(e pair) []pipeline.SinkSpec {
	n, ok := p.deref(e.v)
	if !ok {
		return nil
	}
	if isNull(n) {
		p.errorf(e.k, "sinks is empty: add at least one sink (known: %s)", p.known(pipeline.KindSink))
		return nil
	}
	if n.Kind != yaml.SequenceNode {
		p.errorf(n, "sinks: want a list of sinks, got %s", describe(n))
		return nil
	}
	if len(n.Content) == 0 {
		p.errorf(n, "sinks is empty: add at least one sink (known: %s)", p.known(pipeline.KindSink))
		return nil
	}
	if len(n.Content) > pipeline.MaxSinks {
		p.limit(pipeline.Flow{Sinks: make([]pipeline.SinkSpec, len(n.Content))}.Limits()[0], n, n)
	}
	var out []pipeline.SinkSpec
	names := map[string]*yaml.Node{}
	for i, item := range n.Content {
		s, ok := p.sink(i, item, names)
		if ok {
			out = append(out, s)
		}
	}
	return out
}

func (p *parser) sink(i int, item *yaml.Node, names map[string]*yaml.Node) (pipeline.SinkSpec, bool) {
	m, ok := p.deref(item)
	if !ok {
		return pipeline.SinkSpec{}, false
	}
	if m.Kind != yaml.MappingNode {
		p.errorf(item, "sink %d: want a mapping with a connector key, got %s", i+1, describe(m))
		return pipeline.SinkSpec{}, false
	}
	var s pipeline.SinkSpec
	var cand []pair
	path := fmt.Sprintf("sinks[%d].", i)
	nodes := map[string]*yaml.Node{} // setting path -> value node, for limits
	for _, e := range p.pairs(m) {
		switch e.key {
		case "name":
			v, n, ok := p.setting(e, "name", nameField)
			if !ok || v == nil {
				continue
			}
			s.Name = v.(string)
			if !flowName.MatchString(s.Name) {
				p.errorf(n, "sink name %q: %s", s.Name, nameRule)
			} else if first, dup := names[s.Name]; dup {
				p.errorf(n, "sink name %q is used twice (first at %d:%d): give each sink its own name", s.Name, first.Line, first.Column)
			} else {
				names[s.Name] = n
			}
		case "parallelism":
			s.Parallelism = p.count0(e, path+"parallelism")
			nodes[path+"parallelism"] = e.v
		case "files":
			s.Files = p.count0(e, path+"files")
			nodes[path+"files"] = e.v
		case "retry":
			s.Retry = p.retry(e, path+"retry.", nodes)
		case "rate":
			s.Rate = p.rate(e, path+"rate")
		case "checksum":
			if v, _, ok := p.setting(e, path+"checksum", checksumField); ok && v != nil {
				s.Checksum = v.(string)
			}
		default:
			cand = append(cand, e)
		}
	}
	for _, l := range s.Limits(i) {
		p.limit(l, nodes[l.Setting], m)
	}
	unknownKey := func(e pair) {
		p.errorf(e.k, "unknown key %q (known: %s and one sink connector: %s)", e.key, strings.Join(sinkKeys, ", "), p.known(pipeline.KindSink))
	}
	c, ok := p.oneComponent(pipeline.KindSink, m, cand, "sink needs exactly one connector key, found none",
		`sink has two connectors %q and %q: give each its own item under sinks`, unknownKey)
	s.Component = c
	s.Pos = p.pos(m)
	return s, ok
}

// count0 parses a count that may not be negative; 0 means the default.
func (p *parser) count0(e pair, path string) int {
	v, n, ok := p.setting(e, path, countField)
	if !ok || v == nil {
		return 0
	}
	i := v.(int)
	if i < 0 {
		p.errorf(n, "%s: must not be negative, got %d", path, i)
		return 0
	}
	return i
}

func (p *parser) duration(e pair, path string) time.Duration {
	v, _, ok := p.setting(e, path, durationField)
	if !ok || v == nil {
		return 0
	}
	return v.(time.Duration)
}

// rate parses a bandwidth limit (pipeline.ParseRate); path names it in
// messages. A number is bytes per second. A problem in one entry of a
// timetable is reported at that entry when the value is written on one line
// as it reads.
func (p *parser) rate(e pair, path string) pipeline.Rate {
	n, ok := p.deref(e.v)
	if !ok || isNull(n) {
		return pipeline.Rate{}
	}
	if n.Kind != yaml.ScalarNode {
		p.errorf(n, "%s: want a size or a timetable, got %s: %s", path, describe(n), rateHint)
		return pipeline.Rate{}
	}
	v, ok := p.value(n, false)
	if !ok {
		return pipeline.Rate{}
	}
	text := fmt.Sprint(v)
	r, err := pipeline.ParseRate(text)
	if err == nil {
		return r
	}
	pos := p.pos(n)
	var re *pipeline.RateError
	if errors.As(err, &re) && text == n.Value && !strings.ContainsAny(text, "\\\n'") {
		switch n.Style {
		case 0:
			pos.Column += utf8.RuneCountInString(text[:re.Offset])
		case yaml.DoubleQuotedStyle, yaml.SingleQuotedStyle:
			pos.Column += 1 + utf8.RuneCountInString(text[:re.Offset])
		}
	}
	p.add(pos, err, "%s: %v", path, err)
	return pipeline.Rate{}
}

// rateHint says what a rate looks like.
const rateHint = `write 10MB, 512KiB, off, or "08:00,10M 18:00,off"`

// block returns the entries of a settings mapping such as retry or bus.
func (p *parser) block(e pair, what string) []pair {
	n, ok := p.deref(e.v)
	if !ok || isNull(n) {
		return nil
	}
	if n.Kind != yaml.MappingNode {
		p.errorf(n, "%s: want a mapping with %s, got %s", e.key, what, describe(n))
		return nil
	}
	return p.pairs(n)
}

// retry parses a sink's retry block; path is the settings' prefix
// ("sinks[0].retry.") and nodes receives their value nodes.
func (p *parser) retry(e pair, path string, nodes map[string]*yaml.Node) pipeline.Retry {
	var r pipeline.Retry
	var initialAt *yaml.Node
	for _, re := range p.block(e, "attempts, initial and max") {
		nodes[path+re.key] = re.v
		switch re.key {
		case "attempts":
			r.Attempts = p.count0(re, path+"attempts")
		case "initial":
			r.Initial = p.duration(re, path+"initial")
			initialAt = re.v
		case "max":
			r.Max = p.duration(re, path+"max")
		default:
			p.errorf(re.k, "unknown key %q (known: %s)", re.key, strings.Join(retryKeys, ", "))
		}
	}
	if r.Initial > 0 && r.Max > 0 && r.Initial > r.Max {
		p.errorf(initialAt, "%sinitial %v is longer than retry.max %v", path, r.Initial, r.Max)
	}
	return r
}

// audit parses the audit block: present (even empty), it turns the trail on.
func (p *parser) audit(e pair) *pipeline.AuditSpec {
	a := &pipeline.AuditSpec{}
	for _, ae := range p.block(e, strings.Join(auditKeys, ", ")) {
		switch ae.key {
		case "max_age":
			a.MaxAge = p.duration(ae, "audit.max_age")
		case "max_bytes":
			if v, _, ok := p.setting(ae, "audit.max_bytes", sizeField); ok && v != nil {
				a.MaxBytes = v.(int64)
			}
		default:
			p.errorf(ae.k, "unknown key %q (known: %s)", ae.key, strings.Join(auditKeys, ", "))
		}
	}
	return a
}

func (p *parser) bus(e pair) pipeline.BusSpec {
	var b pipeline.BusSpec
	nodes := map[string]*yaml.Node{} // setting path -> value node, for limits
	for _, be := range p.block(e, strings.Join(busKeys, ", ")) {
		nodes["bus."+be.key] = be.v
		switch be.key {
		case "chunk_size":
			v, n, ok := p.setting(be, "bus.chunk_size", sizeField)
			if !ok || v == nil {
				continue
			}
			size := v.(int64)
			if size > 0 && size < pipeline.MinChunkSize {
				p.errorf(n, "bus.chunk_size: %d bytes is too small: use at least 4KiB", size)
				continue
			}
			if c := p.chunk; c.Max > 0 && size > c.Max && size <= pipeline.MaxChunkSize {
				p.limit(&pipeline.LimitError{Setting: "bus.chunk_size", Value: size, Limit: c.Max, Size: true, What: c.Why, Fix: c.Fix}, n, n)
			}
			b.ChunkSize = size
		case "compression":
			v, _, ok := p.setting(be, "bus.compression", compressField)
			if ok && v != nil {
				b.Compression = v.(string)
			}
		case "payload":
			if v, n, ok := p.setting(be, "bus.payload", payloadField); ok && v != nil {
				b.Payload, p.payloadAt = v.(string), n
			}
		case "on_change":
			if v, _, ok := p.setting(be, "bus.on_change", changeField); ok && v != nil {
				b.OnChange = v.(string)
			}
		case "files":
			b.Files = p.count0(be, "bus.files")
		case "readers":
			b.Readers = p.count0(be, "bus.readers")
		case "window":
			if v, _, ok := p.setting(be, "bus.window", sizeField); ok && v != nil {
				b.Window = v.(int64)
			}
		case "retention":
			b.Retention = p.duration(be, "bus.retention")
		case "retention_size":
			if v, _, ok := p.setting(be, "bus.retention_size", sizeField); ok && v != nil {
				b.RetentionSize = v.(int64)
			}
		default:
			p.errorf(be.k, "unknown key %q (known: %s)", be.key, strings.Join(busKeys, ", "))
		}
	}
	for _, l := range b.Limits() {
		p.limit(l, nodes[l.Setting], e.k)
	}
	return b
}

// schedule parses the schedule block and checks it, reporting a bad entry
// at its own position.
func (p *parser) schedule(e pair) *pipeline.Schedule {
	var s pipeline.Schedule
	single := map[string]*yaml.Node{}
	lists := map[string][]*yaml.Node{}
	for _, se := range p.block(e, strings.Join(scheduleKeys, ", ")) {
		path := "schedule." + se.key
		switch se.key {
		case "cron", "time_zone":
			v, n, ok := p.setting(se, path, nameField)
			if !ok || v == nil {
				continue
			}
			single[se.key] = n
			if se.key == "cron" {
				s.Cron = v.(string)
			} else {
				s.TimeZone = v.(string)
			}
		case "windows", "holidays":
			v, n, ok := p.setting(se, path, stringsField)
			if !ok || v == nil {
				continue
			}
			single[se.key] = n
			if n.Kind == yaml.SequenceNode {
				lists[se.key] = n.Content
			}
			if se.key == "windows" {
				s.Windows = v.([]string)
			} else {
				s.Holidays = v.([]string)
			}
		default:
			p.errorf(se.k, "unknown key %q (known: %s)", se.key, strings.Join(scheduleKeys, ", "))
		}
	}
	if _, err := s.Compile(); err != nil {
		var se *pipeline.ScheduleError
		at := e.k
		if errors.As(err, &se) {
			if n := single[se.Field]; n != nil {
				at = n
			}
			if l := lists[se.Field]; se.Index >= 0 && se.Index < len(l) {
				at = l[se.Index]
			}
		}
		p.errorf(at, "%v", err)
	}
	return &s
}

// expectZone is the zone of f's expectations that name none; UTC when the
// schedule's zone is unknown, which is reported there.
func expectZone(f *pipeline.Flow) string {
	zone := f.ExpectZone()
	if _, err := time.LoadLocation(zone); err != nil {
		return "UTC"
	}
	return zone
}

// expectations parses "expect: [{files: GLOB, by: WHEN, ...}, ...]"; zone
// is the default time zone.
func (p *parser) expectations(e pair, zone string) []pipeline.Expectation {
	n, ok := p.deref(e.v)
	if !ok || isNull(n) {
		return nil
	}
	if n.Kind != yaml.SequenceNode {
		p.errorf(n, `expect: want a list of expectations, each with files and by, got %s`, describe(n))
		return nil
	}
	if len(n.Content) > pipeline.MaxExpectations {
		p.errorf(n, "expect: %d expectations are above the limit of %d per flow; split the flow", len(n.Content), pipeline.MaxExpectations)
	}
	var out []pipeline.Expectation
	names := map[string]*yaml.Node{}
	for i, item := range n.Content {
		if x, ok := p.expectation(i, item, zone, names); ok {
			out = append(out, x)
		}
	}
	return out
}

// expectation parses one item of expect and checks it, reporting each
// problem at the value at fault. names holds the names taken so far.
func (p *parser) expectation(i int, item *yaml.Node, zone string, names map[string]*yaml.Node) (pipeline.Expectation, bool) {
	m, ok := p.deref(item)
	if !ok {
		return pipeline.Expectation{}, false
	}
	path := fmt.Sprintf("expect[%d]", i)
	if m.Kind != yaml.MappingNode {
		p.errorf(item, "%s: want a mapping with files and by, got %s", path, describe(m))
		return pipeline.Expectation{}, false
	}
	x := pipeline.Expectation{Pos: p.pos(m)}
	values := map[string]*yaml.Node{}     // key -> value node
	holidays := map[string][]*yaml.Node{} // "holidays" -> its items
	errs := len(p.errs)
	for _, ee := range p.pairs(m) {
		p.expectSetting(&x, ee, path+"."+ee.key, values, holidays)
	}
	good := len(p.errs) == errs
	good = p.checkExpectation(x.WithDefaults(zone), path, m, values, holidays["holidays"]) && good
	return x, p.uniqueExpectation(x.WithDefaults(zone), path, m, values["name"], names) && good
}

// expectSetting parses one setting of an expectation into x, and keeps its
// value node in values (and a holiday list's items in lists).
func (p *parser) expectSetting(x *pipeline.Expectation, e pair, path string, values map[string]*yaml.Node, lists map[string][]*yaml.Node) {
	if !slices.Contains(expectKeys, e.key) {
		p.errorf(e.k, "unknown key %q (known: %s)", e.key, strings.Join(expectKeys, ", "))
		return
	}
	field, typed := expectFields[e.key]
	if !typed {
		field = nameField
	}
	v, n, ok := p.setting(e, path, field)
	if !ok || v == nil {
		return
	}
	values[e.key] = n
	switch e.key {
	case "name":
		x.Name = v.(string)
	case "files":
		x.Files = v.(string)
	case "by":
		x.By = v.(string)
	case "time_zone":
		x.TimeZone = v.(string)
	case "count":
		if x.Count = v.(int); x.Count < 1 {
			p.errorf(n, "%s: must be at least 1 (the files expected per period), got %d", path, x.Count)
		}
	case "warn_before":
		x.WarnBefore = v.(time.Duration)
	case "holidays":
		x.Holidays = v.([]string)
		if n.Kind == yaml.SequenceNode {
			lists[e.key] = n.Content
		}
	}
}

// checkExpectation runs Expectation.Check on x (defaults applied) and
// reports each problem at the value it names, else at the item m.
func (p *parser) checkExpectation(x pipeline.Expectation, path string, m *yaml.Node, values map[string]*yaml.Node, holidays []*yaml.Node) bool {
	err := x.Check()
	if err == nil {
		return true
	}
	for _, e := range unjoin(err) {
		at := m
		var xe *pipeline.ExpectError
		if errors.As(e, &xe) {
			if n := values[xe.Field]; n != nil {
				at = n
			}
			if xe.Field == "holidays" && xe.Index >= 0 && xe.Index < len(holidays) {
				at = holidays[xe.Index]
			}
		}
		p.add(p.pos(at), e, "%s.%v", path, e)
	}
	return false
}

// uniqueExpectation reports x's name when an earlier expectation has it.
func (p *parser) uniqueExpectation(x pipeline.Expectation, path string, m, nameAt *yaml.Node, names map[string]*yaml.Node) bool {
	at := nameAt
	if at == nil {
		at = m
	}
	first, dup := names[x.Name]
	switch {
	case !dup:
		names[x.Name] = at
		return true
	case nameAt != nil:
		p.errorf(at, "%s.name: %q is used twice (first at %d:%d): give each expectation its own name", path, x.Name, first.Line, first.Column)
	default:
		p.errorf(at, "%s: the name %q, taken from files %q, is used twice (first at %d:%d): give this expectation a name", path, x.Name, x.Files, first.Line, first.Column)
	}
	return false
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
