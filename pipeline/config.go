package pipeline

import (
	"errors"
	"fmt"
	"maps"
	"math"
	"reflect"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"
)

// FieldType is the type of a config field's value.
type FieldType string

const (
	TypeString    FieldType = "string"
	TypeInt       FieldType = "int"
	TypeBool      FieldType = "bool"
	TypeDuration  FieldType = "duration"  // "1m30s"
	TypeSize      FieldType = "size"      // bytes: 1048576, "1MiB", "5MB"
	TypeStrings   FieldType = "strings"   // a list of strings (a single string is a list of one)
	TypeStringMap FieldType = "stringmap" // a map of string to string
)

// Field documents one config field of a connector.
type Field struct {
	Name string
	Type FieldType
	Doc  string
	// Default is used when the field is absent; nil means no default.
	// It has the field's Go type (string, int, bool, time.Duration, int64,
	// []string, map[string]string) or a string in the flow-file syntax.
	Default  any
	Required bool
	// Enum, when set, lists the only accepted values of a string field.
	Enum []string
	// Secret fields are never printed in logs or errors.
	Secret bool
}

var fieldName = regexp.MustCompile(`^[a-z][a-z0-9_]*$`)

func (s Spec) validate() error {
	if !fieldName.MatchString(s.Name) {
		return fmt.Errorf("connector name %q: use lowercase letters, digits and underscores, starting with a letter", s.Name)
	}
	seen := map[string]bool{}
	for _, f := range s.Fields {
		if !fieldName.MatchString(f.Name) {
			return fmt.Errorf("connector %q: field name %q: use lowercase letters, digits and underscores", s.Name, f.Name)
		}
		if seen[f.Name] {
			return fmt.Errorf("connector %q: field %q is declared twice", s.Name, f.Name)
		}
		seen[f.Name] = true
		switch f.Type {
		case TypeString, TypeInt, TypeBool, TypeDuration, TypeSize, TypeStrings, TypeStringMap:
		default:
			return fmt.Errorf("connector %q: field %q has unknown type %q", s.Name, f.Name, f.Type)
		}
		if f.Default != nil {
			if _, err := f.Parse(f.Default); err != nil {
				return fmt.Errorf("connector %q: default of field %q: %v", s.Name, f.Name, err)
			}
		}
	}
	if s.Options != nil {
		if _, err := bindOptions(s, reflect.TypeOf(s.Options)); err != nil {
			return err
		}
	}
	return nil
}

// Parse converts v (from YAML or Go) to the field's Go type: string, int,
// bool, time.Duration, int64 (size), []string or map[string]string.
// Errors name the expected type but not the value of a Secret field.
func (f Field) Parse(v any) (any, error) {
	got := func() string {
		if f.Secret {
			return fmt.Sprintf("a %T", v)
		}
		return fmt.Sprintf("%T %v", v, v)
	}
	switch f.Type {
	case TypeString:
		return f.parseString(v, got)
	case TypeStrings:
		return parseStrings(v, got)
	case TypeStringMap:
		return parseStringMap(v, got)
	}
	p, ok := scalarParsers[f.Type]
	if !ok {
		return nil, fmt.Errorf("unknown field type %q", f.Type)
	}
	out, err := p.parse(v)
	if errors.Is(err, errNotThisType) {
		return nil, fmt.Errorf("want %s, got %s", p.want, got())
	}
	return out, err
}

// errNotThisType is a scalar parser's answer for a value it cannot take;
// Parse says what it wanted.
var errNotThisType = errors.New("not this type")

// scalarParsers parse the field types whose values are one scalar: what
// each wants, for its error, and its parser.
var scalarParsers = map[FieldType]struct {
	want  string
	parse func(any) (any, error)
}{
	TypeInt:      {"an integer", parseInt},
	TypeBool:     {"true or false", parseBool},
	TypeDuration: {"a duration such as 500ms, 10s or 1m30s", parseDuration},
	TypeSize:     {"a size such as 1048576, 512KiB, 8MiB or 1GB", parseSize},
}

func (f Field) parseString(v any, got func() string) (any, error) {
	s, ok := scalarString(v)
	if !ok {
		return nil, fmt.Errorf("want a string, got %s", got())
	}
	if len(f.Enum) > 0 && !contains(f.Enum, s) {
		if f.Secret {
			return nil, fmt.Errorf("want one of %s", strings.Join(f.Enum, ", "))
		}
		return nil, fmt.Errorf("want one of %s, got %q", strings.Join(f.Enum, ", "), s)
	}
	return s, nil
}

func parseInt(v any) (any, error) {
	switch n := v.(type) {
	case int:
		return n, nil
	case int64:
		if n > math.MaxInt32 || n < math.MinInt32 {
			return nil, fmt.Errorf("want an integer, got %d (out of range)", n)
		}
		return int(n), nil
	case uint64:
		if n > math.MaxInt32 {
			return nil, fmt.Errorf("want an integer, got %d (out of range)", n)
		}
		return int(n), nil
	case float64:
		if n == math.Trunc(n) && math.Abs(n) <= math.MaxInt32 {
			return int(n), nil
		}
	case string:
		if i, err := strconv.Atoi(strings.TrimSpace(n)); err == nil {
			return i, nil
		}
	}
	return nil, errNotThisType
}

func parseBool(v any) (any, error) {
	switch b := v.(type) {
	case bool:
		return b, nil
	case string:
		if p, err := strconv.ParseBool(b); err == nil {
			return p, nil
		}
	}
	return nil, errNotThisType
}

func parseDuration(v any) (any, error) {
	switch d := v.(type) {
	case time.Duration:
		return d, nil
	case string:
		p, err := time.ParseDuration(strings.TrimSpace(d))
		if err == nil && p >= 0 {
			return p, nil
		}
	}
	return nil, errNotThisType
}

func parseSize(v any) (any, error) {
	switch n := v.(type) {
	case int:
		if n >= 0 {
			return int64(n), nil
		}
	case int64:
		if n >= 0 {
			return n, nil
		}
	case uint64:
		if n <= math.MaxInt64 {
			return int64(n), nil
		}
	case float64:
		if n >= 0 && n == math.Trunc(n) && n < math.MaxInt64 {
			return int64(n), nil
		}
	case string:
		if p, err := ParseSize(n); err == nil {
			return p, nil
		}
	}
	return nil, errNotThisType
}

func parseStrings(v any, got func() string) (any, error) {
	switch l := v.(type) {
	case string:
		return []string{l}, nil
	case []string:
		return append([]string(nil), l...), nil
	case []any:
		out := make([]string, len(l))
		for i, e := range l {
			s, ok := scalarString(e)
			if !ok {
				return nil, fmt.Errorf("want a list of strings, item %d is %T", i+1, e)
			}
			out[i] = s
		}
		return out, nil
	}
	return nil, fmt.Errorf("want a list of strings, got %s", got())
}

func parseStringMap(v any, got func() string) (any, error) {
	switch m := v.(type) {
	case map[string]string:
		out := make(map[string]string, len(m))
		maps.Copy(out, m)
		return out, nil
	case map[string]any:
		out := make(map[string]string, len(m))
		for k, e := range m {
			s, ok := scalarString(e)
			if !ok {
				return nil, fmt.Errorf("want a map of strings, key %q is %T", k, e)
			}
			out[k] = s
		}
		return out, nil
	}
	return nil, fmt.Errorf("want a map of strings, got %s", got())
}

func scalarString(v any) (string, bool) {
	switch s := v.(type) {
	case string:
		return s, true
	case int, int64, uint64, float64, bool:
		return fmt.Sprint(s), true
	}
	return "", false
}

func contains(list []string, s string) bool {
	for _, e := range list {
		if e == s {
			return true
		}
	}
	return false
}

// Config is a connector's parsed config: every field of its spec, with
// defaults applied and values converted to the field's Go type.
//
// Connectors read it with Decode into an options struct whose `config` tags
// name the fields, so a typo is an error when the connector registers, not
// a panic in a running flow. The spec's []Field stays the one list of
// names, types, defaults and docs, and the tags are checked against it,
// rather than the fields being derived from the struct: docs of several
// lines, enums and secrets read better as Field values than as tags, the
// Field order is the order "runner connectors" prints, and one options
// struct (often a connector's public Go config) can then serve a spec
// through embedded structs shared by several connectors.
//
// The getters (String, Int...) remain for callers that look fields up by
// name; they panic on a name the spec does not declare with that type.
type Config struct {
	spec   Spec
	values map[string]any
}

// FieldError is a problem with one config field.
type FieldError struct {
	Connector string
	Field     string
	Err       error
}

func (e *FieldError) Error() string {
	return fmt.Sprintf("%s: field %q: %v", e.Connector, e.Field, e.Err)
}

func (e *FieldError) Unwrap() error { return e.Err }

// ParseConfig checks raw against spec: unknown fields (sorted by name), then
// missing required fields and type errors in the spec's field order, all
// reported together.
func ParseConfig(spec Spec, raw map[string]any) (Config, error) {
	c := Config{spec: spec, values: map[string]any{}}
	var errs []error
	keys := make([]string, 0, len(raw))
	for k := range raw {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		if _, ok := spec.Field(k); !ok {
			errs = append(errs, &FieldError{spec.Name, k, fmt.Errorf("unknown field (known: %s)", strings.Join(fieldNames(spec), ", "))})
		}
	}
	for _, f := range spec.Fields {
		v, present := raw[f.Name]
		if !present || v == nil {
			if f.Required {
				errs = append(errs, &FieldError{spec.Name, f.Name, errors.New("required field is missing")})
				continue
			}
			if f.Default == nil {
				c.values[f.Name] = zero(f.Type)
				continue
			}
			v = f.Default
		}
		p, err := f.Parse(v)
		if err != nil {
			errs = append(errs, &FieldError{spec.Name, f.Name, err})
			continue
		}
		c.values[f.Name] = p
	}
	return c, errors.Join(errs...)
}

func fieldNames(s Spec) []string {
	names := make([]string, len(s.Fields))
	for i, f := range s.Fields {
		names[i] = f.Name
	}
	return names
}

func zero(t FieldType) any {
	switch t {
	case TypeInt:
		return 0
	case TypeBool:
		return false
	case TypeDuration:
		return time.Duration(0)
	case TypeSize:
		return int64(0)
	case TypeStrings:
		return []string(nil)
	case TypeStringMap:
		return map[string]string(nil)
	}
	return ""
}

// Spec returns the spec the config was parsed against.
func (c Config) Spec() Spec { return c.spec }

// Values returns a copy of every field's value keyed by field name, each in
// the field's Go type, secrets included. The plugin host uses it to hand a
// parsed config to a plugin process.
func (c Config) Values() map[string]any {
	out := make(map[string]any, len(c.values))
	for k, v := range c.values {
		out[k] = v
	}
	return out
}

// Has reports whether the field was given a non-zero value (by the user or a default).
func (c Config) Has(name string) bool {
	f := c.mustField(name)
	v, ok := c.values[name]
	if !ok {
		return false
	}
	switch x := v.(type) {
	case []string:
		return len(x) > 0
	case map[string]string:
		return len(x) > 0
	}
	return v != zero(f.Type)
}

func (c Config) mustField(name string) Field {
	f, ok := c.spec.Field(name)
	if !ok {
		panic(fmt.Sprintf("pipeline: connector %q has no field %q", c.spec.Name, name))
	}
	return f
}

func get[T any](c Config, name string) T {
	c.mustField(name)
	v, ok := c.values[name].(T)
	if !ok {
		var want T
		panic(fmt.Sprintf("pipeline: field %q of connector %q is not a %T", name, c.spec.Name, want))
	}
	return v
}

func (c Config) String(name string) string               { return get[string](c, name) }
func (c Config) Int(name string) int                     { return get[int](c, name) }
func (c Config) Bool(name string) bool                   { return get[bool](c, name) }
func (c Config) Duration(name string) time.Duration      { return get[time.Duration](c, name) }
func (c Config) Size(name string) int64                  { return get[int64](c, name) }
func (c Config) Strings(name string) []string            { return get[[]string](c, name) }
func (c Config) StringMap(name string) map[string]string { return get[map[string]string](c, name) }
