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
