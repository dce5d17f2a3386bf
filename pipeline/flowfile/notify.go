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

// The keys of a notify rule, and the settings of its targets in the
// order their messages list them.
var (
	notifyKeys = []string{"on", "sinks", "webhook", "email"}

	webhookFields = []targetField[pipeline.WebhookTarget]{
		{"url", nameField, func(w *pipeline.WebhookTarget, v any) { w.URL = v.(string) }},
		{"secret", secretField, func(w *pipeline.WebhookTarget, v any) { w.Secret = v.(string) }},
		{"headers", headersField, func(w *pipeline.WebhookTarget, v any) { w.Headers = v.(map[string]string) }},
		{"timeout", durationField, func(w *pipeline.WebhookTarget, v any) { w.Timeout = v.(time.Duration) }},
	}
	emailFields = []targetField[pipeline.EmailTarget]{
		{"server", nameField, func(m *pipeline.EmailTarget, v any) { m.Server = v.(string) }},
		{"tls", nameField, func(m *pipeline.EmailTarget, v any) { m.TLS = v.(string) }},
		{"user", nameField, func(m *pipeline.EmailTarget, v any) { m.User = v.(string) }},
		{"password", secretField, func(m *pipeline.EmailTarget, v any) { m.Password = v.(string) }},
		{"from", nameField, func(m *pipeline.EmailTarget, v any) { m.From = v.(string) }},
		{"to", stringsField, func(m *pipeline.EmailTarget, v any) { m.To = v.([]string) }},
		{"subject", nameField, func(m *pipeline.EmailTarget, v any) { m.Subject = v.(string) }},
		{"timeout", durationField, func(m *pipeline.EmailTarget, v any) { m.Timeout = v.(time.Duration) }},
	}

	secretField  = pipeline.Field{Type: pipeline.TypeString, Secret: true}
	headersField = pipeline.Field{Type: pipeline.TypeStringMap, Secret: true}
)

// targetField is one setting of a notify target T: its key, its type,
// and how its value is stored.
type targetField[T any] struct {
	key   string
	field pipeline.Field
	set   func(*T, any)
}

// parsedRule is a notify rule with where its settings are written, so
// that pipeline.NotifyRule's checks are reported at the value at fault.
type parsedRule struct {
	index int
	rule  pipeline.NotifyRule
	item  *yaml.Node
	// values holds the value node of each setting ("on", "webhook.url"),
	// or its key when the value is empty; items the items of lists.
	values map[string]*yaml.Node
	items  map[string][]*yaml.Node
}

// at is where a problem of the rule belongs: the list item, else the
// setting's value, else its block ("webhook"), else the rule.
func (r *parsedRule) at(ne *pipeline.NotifyError) *yaml.Node {
	if l := r.items[ne.Field]; ne.Index >= 0 && ne.Index < len(l) {
		return l[ne.Index]
	}
	for field := ne.Field; field != ""; {
		if n := r.values[field]; n != nil {
			return n
		}
		i := strings.LastIndexByte(field, '.')
		if i < 0 {
			break
		}
		field = field[:i]
	}
	return r.item
}

// notify parses "notify: [{on: [...], sinks: [...], webhook|email: {...}}, ...]".
// Rules whose own settings are wrong are reported and left out.
func (p *parser) notify(e pair) []*parsedRule {
	n := p.list(e, "notify: want a list of rules, each with on: and a webhook or an email")
	if n == nil {
		return nil
	}
	if len(n.Content) > pipeline.MaxNotifyRules {
		p.errorf(n, "notify: %d rules: at most %d (send to a list or a hook that fans out)", len(n.Content), pipeline.MaxNotifyRules)
	}
	var out []*parsedRule
	for i, item := range n.Content {
		if r := p.notifyRule(i, item); r != nil {
			out = append(out, r)
		}
	}
	return out
}

func (p *parser) notifyRule(i int, item *yaml.Node) *parsedRule {
	m, ok := p.deref(item)
	if !ok {
		return nil
	}
	if m.Kind != yaml.MappingNode {
		p.errorf(item, "notify[%d]: want a mapping with on: and a webhook or an email, got %s", i, describe(m))
		return nil
	}
	before := len(p.errs)
	r := &parsedRule{index: i, item: m, values: map[string]*yaml.Node{}, items: map[string][]*yaml.Node{}}
	r.rule.Pos = p.pos(m)
	path := fmt.Sprintf("notify[%d].", i)
	for _, e := range p.pairs(m) {
		switch e.key {
		case "on":
			r.rule.On = p.ruleStrings(r, e, path, "on")
		case "sinks":
			r.rule.Sinks = p.ruleStrings(r, e, path, "sinks")
		case "webhook":
			r.rule.Webhook = parseTarget(p, r, e, path, webhookFields)
		case "email":
			r.rule.Email = parseTarget(p, r, e, path, emailFields)
		default:
			p.errorf(e.k, "unknown key %q (known: %s)", e.key, strings.Join(notifyKeys, ", "))
		}
	}
	if len(p.errs) > before {
		return nil
	}
	p.ruleErrors(r, r.rule.Check())
	if len(p.errs) > before {
		return nil
	}
	return r
}

// ruleErrors reports the *pipeline.NotifyError values in err at their
// places in r.
func (p *parser) ruleErrors(r *parsedRule, err error) {
	if err == nil {
		return
	}
	for _, e := range unjoin(err) {
		var ne *pipeline.NotifyError
		at := r.item
		if errors.As(e, &ne) {
			at = r.at(ne)
		}
		p.add(p.pos(at), e, "notify[%d].%v", r.index, e)
	}
}

// ruleSetting converts the value of e, a setting named field of rule r
// ("on", "webhook.url"), and notes where it is written.
func (p *parser) ruleSetting(r *parsedRule, e pair, path, field string, f pipeline.Field) (any, bool) {
	v, n, ok := p.setting(e, path+field, f)
	if !ok {
		return nil, false
	}
	if v == nil {
		r.values[field] = e.k
		return nil, false
	}
	r.values[field] = n
	if n.Kind == yaml.SequenceNode {
		r.items[field] = n.Content
	}
	return v, true
}

func (p *parser) ruleStrings(r *parsedRule, e pair, path, field string) []string {
	if v, ok := p.ruleSetting(r, e, path, field, stringsField); ok {
		return v.([]string)
	}
	return nil
}

// target returns the entries of a rule's webhook or email block; an empty
// block is a target with nothing set, which the rule's Check reports.
func (p *parser) target(r *parsedRule, e pair, path string, keys []string) ([]pair, bool) {
	r.values[e.key] = e.k
	n, ok := p.deref(e.v)
	if !ok {
		return nil, false
	}
	if isNull(n) {
		return nil, true
	}
	if n.Kind != yaml.MappingNode {
		p.errorf(n, "%s%s: want a mapping with %s, got %s", path, e.key, strings.Join(keys, ", "), describe(n))
		return nil, false
	}
	return p.pairs(n), true
}

// parseTarget parses a rule's webhook or email block (e) into a T, with
// fields the settings it may hold.
func parseTarget[T any](p *parser, r *parsedRule, e pair, path string, fields []targetField[T]) *T {
	keys := make([]string, len(fields))
	for i, f := range fields {
		keys[i] = f.key
	}
	entries, ok := p.target(r, e, path, keys)
	if !ok {
		return nil
	}
	t := new(T)
	for _, te := range entries {
		i := slices.IndexFunc(fields, func(f targetField[T]) bool { return f.key == te.key })
		if i < 0 {
			p.errorf(te.k, "unknown key %q (known: %s)", te.key, strings.Join(keys, ", "))
			continue
		}
		if v, ok := p.ruleSetting(r, te, path, e.key+"."+te.key, fields[i].field); ok {
			fields[i].set(t, v)
		}
	}
	return t
}

// notifySinks reports the sinks the rules name that the flow does not
// have, at each name. f's sinks must have parsed without problems.
func (p *parser) notifySinks(f *pipeline.Flow, rules []*parsedRule) {
	var names []string
	for _, s := range f.WithDefaults().Sinks {
		names = append(names, s.Name)
	}
	for _, r := range rules {
		p.ruleErrors(r, r.rule.CheckSinks(names))
	}
}

// notifyRules returns the rules of parsed, for pipeline.Flow.Notify.
func notifyRules(parsed []*parsedRule) []pipeline.NotifyRule {
	var out []pipeline.NotifyRule
	for _, r := range parsed {
		out = append(out, r.rule)
	}
	return out
}
