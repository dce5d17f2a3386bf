package flowfile

import (
	"errors"
	"fmt"
	"strings"

	"go.yaml.in/yaml/v3"

	"github.com/mftflow/mftflow/pipeline"
)

// kindLabel names a kind of connector in messages.
var kindLabel = map[pipeline.Kind]string{
	pipeline.KindSource: "source connector",
	pipeline.KindStage:  "stage",
	pipeline.KindSink:   "sink connector",
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

// connectorConfig is a connector's config as it is read, with where each
// field is written, so that later checks report at the value at fault.
type connectorConfig struct {
	spec   pipeline.Spec
	label  string // "local source", for messages
	cfg    map[string]any
	given  map[string]*yaml.Node // field name -> key node, for each field written
	values map[string]*yaml.Node // field name -> value node, for each field with a value
	empty  map[string]bool
}

// fieldError is the Err of a problem with the field named field.
func (c *connectorConfig) fieldError(field, problem string) error {
	return &pipeline.FieldError{Connector: c.spec.Name, Field: field, Err: errors.New(problem)}
}

// config converts a connector's config mapping with its spec.
func (p *parser) config(spec pipeline.Spec, e pair) (map[string]any, bool) {
	c := &connectorConfig{
		spec:   spec,
		label:  spec.Name + " " + string(spec.Kind),
		cfg:    map[string]any{},
		given:  map[string]*yaml.Node{},
		values: map[string]*yaml.Node{},
		empty:  map[string]bool{},
	}
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
		p.errorf(n, "%s: want a mapping of config fields, got %s", c.label, describe(n))
		return nil, false
	}
	good := true
	for _, fe := range entries {
		f, ok := spec.Field(fe.key)
		if !ok {
			p.unknownField(c, fe)
			good = false
			continue
		}
		c.given[f.Name] = fe.k
		v, ok := p.deref(fe.v)
		if !ok {
			return nil, false
		}
		if isNull(v) {
			c.empty[f.Name] = true
			continue
		}
		good = p.configValue(c, f, v) && good
	}
	good = p.requiredFields(c, at) && good
	if good && spec.Check != nil {
		good = p.checkConfig(spec, c.label, c.cfg, e.k, c.values)
	}
	return c.cfg, good
}

// unknownField reports the entry fe, which names no field of c's spec.
func (p *parser) unknownField(c *connectorConfig, fe pair) {
	known := "none"
	if names := fieldNames(c.spec); len(names) > 0 {
		known = strings.Join(names, ", ")
	}
	p.add(p.pos(fe.k), c.fieldError(fe.key, "unknown field"), "%s: unknown field %q (known: %s)", c.label, fe.key, known)
}

// configValue converts v, the value of field f, into c.
func (p *parser) configValue(c *connectorConfig, f pipeline.Field, v *yaml.Node) bool {
	wrap := func(err error) error {
		return &pipeline.FieldError{Connector: c.spec.Name, Field: f.Name, Err: err}
	}
	pv, ok := p.convert(v, f, fmt.Sprintf("%s: field %q", c.label, f.Name), wrap)
	if !ok {
		return false
	}
	c.values[f.Name] = v
	if f.Required && pv == "" {
		// "path: ${X:}" with X unset: a required field that the
		// flow file does give, but as nothing.
		msg := fmt.Sprintf("%s: required field %q is empty", c.label, f.Name)
		if note := varNote(v.Value, p.lookup); note != "" && !f.Secret {
			msg += ": " + note + `; set the variable, or give a default that is not empty ("${VAR:value}")`
		}
		p.add(p.pos(v), c.fieldError(f.Name, "required field is empty"), "%s", msg)
		return false
	}
	c.cfg[f.Name] = pv
	return true
}

// requiredFields reports the required fields c lacks: written empty, at
// their key, or not written, at the config (at).
func (p *parser) requiredFields(c *connectorConfig, at *yaml.Node) bool {
	good := true
	for _, f := range c.spec.Fields {
		if _, ok := c.cfg[f.Name]; ok || !f.Required {
			continue
		}
		good = false
		switch k, written := c.given[f.Name]; {
		case c.empty[f.Name]:
			p.add(p.pos(k), c.fieldError(f.Name, "required field is empty"), "%s: required field %q is empty", c.label, f.Name)
		case !written:
			p.add(p.pos(at), c.fieldError(f.Name, "required field is missing"), "%s: missing required field %q", c.label, f.Name)
		}
		// Otherwise its value was wrong, and that is reported already.
	}
	return good
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
	n := p.list(e, "stages: want a list of stages")
	if n == nil {
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
