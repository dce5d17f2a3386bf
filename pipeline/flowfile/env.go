package flowfile

import (
	"fmt"
	"strings"
)

// expand substitutes ${VAR} and ${VAR:default} in s with values from lookup
// and turns "$$" into "$". A "$" followed by anything else stays as it is.
// Substituted text is not expanded again. When secret is set, error messages
// leave out the text of s: only variable names from a ${...} reference are
// ever quoted, and not even those for a secret field.
func expand(s string, lookup func(string) (string, bool), secret bool) (string, error) {
	if !strings.Contains(s, "$") {
		return s, nil
	}
	var b strings.Builder
	for {
		i := strings.IndexByte(s, '$')
		if i < 0 || i == len(s)-1 {
			b.WriteString(s)
			return b.String(), nil
		}
		b.WriteString(s[:i])
		switch s[i+1] {
		case '$':
			b.WriteByte('$')
			s = s[i+2:]
			continue
		case '{':
		default:
			b.WriteByte('$')
			s = s[i+1:]
			continue
		}
		end := strings.IndexByte(s[i+2:], '}')
		if end < 0 {
			return "", fmt.Errorf(`unclosed "${": end the variable with "}" or write "$${" for a literal "${"`)
		}
		ref := s[i+2 : i+2+end]
		name, def, hasDef := strings.Cut(ref, ":")
		if !validVarName(name) {
			if secret || name == "" {
				return "", fmt.Errorf(`invalid variable name in "${...}": use letters, digits and '_', not starting with a digit (write "$${" for a literal "${")`)
			}
			return "", fmt.Errorf(`invalid variable name %q in "${...}": use letters, digits and '_', not starting with a digit (write "$${" for a literal "${")`, name)
		}
		v, ok := lookup(name)
		switch {
		case ok:
			b.WriteString(v)
		case hasDef:
			b.WriteString(def)
		default:
			return "", fmt.Errorf("environment variable %q is not set (use ${%s:default} for a default)", name, name)
		}
		s = s[i+2+end+1:]
	}
}

// validVarName reports whether name is a shell-style variable name:
// letters, digits and '_', not starting with a digit.
func validVarName(name string) bool {
	if name == "" {
		return false
	}
	for i, r := range name {
		switch {
		case r == '_', 'a' <= r && r <= 'z', 'A' <= r && r <= 'Z':
		case '0' <= r && r <= '9' && i > 0:
		default:
			return false
		}
	}
	return true
}

// varRef is one ${VAR} or ${VAR:default} reference in a value.
type varRef struct {
	name, def string
	hasDef    bool
}

// varRefs returns the well-formed ${...} references of s in order, as
// expand reads them ("$$" escapes a "$").
func varRefs(s string) []varRef {
	var out []varRef
	for {
		i := strings.IndexByte(s, '$')
		if i < 0 || i == len(s)-1 {
			return out
		}
		switch s[i+1] {
		case '$':
			s = s[i+2:]
			continue
		case '{':
		default:
			s = s[i+1:]
			continue
		}
		end := strings.IndexByte(s[i+2:], '}')
		if end < 0 {
			return out
		}
		name, def, hasDef := strings.Cut(s[i+2:i+2+end], ":")
		if validVarName(name) {
			out = append(out, varRef{name: name, def: def, hasDef: hasDef})
		}
		s = s[i+2+end+1:]
	}
}

// varNote explains where the value of raw came from when it holds ${...}
// references that fell back to their default or are set to "": `X is not
// set, so ${X:} gave ""`. It returns "" when raw holds no reference or
// every one was set to something. Values of variables are never quoted.
func varNote(raw string, lookup func(string) (string, bool)) string {
	var notes []string
	seen := map[string]bool{}
	for _, r := range varRefs(raw) {
		if seen[r.name] {
			continue
		}
		seen[r.name] = true
		v, ok := lookup(r.name)
		switch {
		case !ok && r.hasDef:
			notes = append(notes, fmt.Sprintf("%s is not set, so ${%s:%s} gave %q", r.name, r.name, r.def, r.def))
		case ok && v == "":
			notes = append(notes, fmt.Sprintf("%s is set to an empty value", r.name))
		}
	}
	return strings.Join(notes, "; ")
}
