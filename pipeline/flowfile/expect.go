package flowfile

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/mftflow/mftflow/pipeline"
)

var (
	expectKeys = []string{"name", "files", "by", "time_zone", "count", "warn_before", "holidays"}
	// expectFields are the expectation settings that are not strings.
	expectFields = map[string]pipeline.Field{"count": countField, "warn_before": durationField, "holidays": stringsField}
)

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
	n := p.list(e, "expect: want a list of expectations, each with files and by")
	if n == nil {
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
