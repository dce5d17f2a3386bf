package flowfile

import (
	"go.yaml.in/yaml/v3"
)

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
