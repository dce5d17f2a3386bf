package flowfile

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/mftflow/mftflow/pipeline"
)

// The keys of a notify rule and of its targets.
var (
	notifyKeys  = []string{"on", "sinks", "webhook", "email"}
	webhookKeys = []string{"url", "secret", "headers", "timeout"}
	emailKeys   = []string{"server", "tls", "user", "password", "from", "to", "subject", "timeout"}

	secretField  = pipeline.Field{Type: pipeline.TypeString, Secret: true}
	headersField = pipeline.Field{Type: pipeline.TypeStringMap, Secret: true}
)

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
	n, ok := p.deref(e.v)
	if !ok || isNull(n) {
		return nil
	}
	if n.Kind != yaml.SequenceNode {
		p.errorf(n, "notify: want a list of rules, each with on: and a webhook or an email, got %s", describe(n))
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
			r.rule.Webhook = p.webhook(r, e, path)
		case "email":
			r.rule.Email = p.email(r, e, path)
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

func (p *parser) ruleString(r *parsedRule, e pair, path, field string, f pipeline.Field) string {
	if v, ok := p.ruleSetting(r, e, path, field, f); ok {
		return v.(string)
	}
	return ""
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

func (p *parser) webhook(r *parsedRule, e pair, path string) *pipeline.WebhookTarget {
	entries, ok := p.target(r, e, path, webhookKeys)
	if !ok {
		return nil
	}
	w := &pipeline.WebhookTarget{}
	for _, we := range entries {
		field := "webhook." + we.key
		switch we.key {
		case "url":
			w.URL = p.ruleString(r, we, path, field, nameField)
		case "secret":
			w.Secret = p.ruleString(r, we, path, field, secretField)
		case "headers":
			if v, ok := p.ruleSetting(r, we, path, field, headersField); ok {
				w.Headers = v.(map[string]string)
			}
		case "timeout":
			w.Timeout = p.ruleDuration(r, we, path, field)
		default:
			p.errorf(we.k, "unknown key %q (known: %s)", we.key, strings.Join(webhookKeys, ", "))
		}
	}
	return w
}

func (p *parser) email(r *parsedRule, e pair, path string) *pipeline.EmailTarget {
	entries, ok := p.target(r, e, path, emailKeys)
	if !ok {
		return nil
	}
	m := &pipeline.EmailTarget{}
	for _, me := range entries {
		field := "email." + me.key
		switch me.key {
		case "server":
			m.Server = p.ruleString(r, me, path, field, nameField)
		case "tls":
			m.TLS = p.ruleString(r, me, path, field, nameField)
		case "user":
			m.User = p.ruleString(r, me, path, field, nameField)
		case "password":
			m.Password = p.ruleString(r, me, path, field, secretField)
		case "from":
			m.From = p.ruleString(r, me, path, field, nameField)
		case "to":
			m.To = p.ruleStrings(r, me, path, field)
		case "subject":
			m.Subject = p.ruleString(r, me, path, field, nameField)
		case "timeout":
			m.Timeout = p.ruleDuration(r, me, path, field)
		default:
			p.errorf(me.k, "unknown key %q (known: %s)", me.key, strings.Join(emailKeys, ", "))
		}
	}
	return m
}

func (p *parser) ruleDuration(r *parsedRule, e pair, path, field string) time.Duration {
	if v, ok := p.ruleSetting(r, e, path, field, durationField); ok {
		return v.(time.Duration)
	}
	return 0
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
