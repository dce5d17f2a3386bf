package flowfile

import (
	"fmt"
	"strings"

	"go.yaml.in/yaml/v3"

	"github.com/mftflow/mftflow/pipeline"
)

// The keys of a sink item and of its retry block.
var (
	sinkKeys      = []string{"name", "parallelism", "files", "retry", "rate", "checksum"}
	retryKeys     = []string{"attempts", "initial", "max"}
	checksumField = pipeline.Field{Type: pipeline.TypeString, Enum: pipeline.Checksums}
)

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
			s.Checksum = p.text(e, path+"checksum", checksumField)
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
