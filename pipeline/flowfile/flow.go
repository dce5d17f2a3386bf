package flowfile

import (
	"regexp"
	"strings"

	"go.yaml.in/yaml/v3"

	"github.com/mftflow/mftflow/pipeline"
)

// The flow's top-level keys, and the rule for flow and sink names.
var (
	topKeys = []string{"name", "source", "stages", "sinks", "bus", "schedule", "rate", "audit", "expect", "notify"}

	// flowName is the rule pipeline.Flow.Check applies to flow and sink names.
	flowName = regexp.MustCompile(`^[A-Za-z0-9_-]{1,64}$`)
)

const nameRule = "use 1 to 64 letters, digits, '-' or '_'"

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
