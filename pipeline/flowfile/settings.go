package flowfile

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"go.yaml.in/yaml/v3"

	"github.com/mftflow/mftflow/pipeline"
)

// The types of the flow's own settings. Settings are parsed with
// pipeline.Field, like connector fields, so their messages match.
var (
	nameField     = pipeline.Field{Type: pipeline.TypeString}
	countField    = pipeline.Field{Type: pipeline.TypeInt}
	durationField = pipeline.Field{Type: pipeline.TypeDuration}
	sizeField     = pipeline.Field{Type: pipeline.TypeSize}
	stringsField  = pipeline.Field{Type: pipeline.TypeStrings}

	// scalarTypeWant says what a scalar field wants, in Field.Parse's words.
	scalarTypeWant = map[pipeline.FieldType]string{
		pipeline.TypeString:   "a string",
		pipeline.TypeInt:      "an integer",
		pipeline.TypeBool:     "true or false",
		pipeline.TypeDuration: "a duration such as 500ms, 10s or 1m30s",
		pipeline.TypeSize:     "a size such as 1048576, 512KiB, 8MiB or 1GB",
	}
)

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

// text parses a string setting of type f; "" when empty.
func (p *parser) text(e pair, path string, f pipeline.Field) string {
	v, _, ok := p.setting(e, path, f)
	if !ok || v == nil {
		return ""
	}
	return v.(string)
}

// size parses a size setting (bytes); 0 when empty.
func (p *parser) size(e pair, path string) int64 {
	v, _, ok := p.setting(e, path, sizeField)
	if !ok || v == nil {
		return 0
	}
	return v.(int64)
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

// list returns the sequence node of a list setting such as stages, or nil
// when it is empty or not a list; want says what it should be.
func (p *parser) list(e pair, want string) *yaml.Node {
	n, ok := p.deref(e.v)
	if !ok || isNull(n) {
		return nil
	}
	if n.Kind != yaml.SequenceNode {
		p.errorf(n, "%s, got %s", want, describe(n))
		return nil
	}
	return n
}

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
