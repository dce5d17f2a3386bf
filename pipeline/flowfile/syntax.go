package flowfile

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"regexp"
	"strconv"
	"strings"
	"unicode/utf8"

	"go.yaml.in/yaml/v3"

	"github.com/mftflow/mftflow/pipeline"
)

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
