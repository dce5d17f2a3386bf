package pipeline

import (
	"fmt"
	"reflect"
	"strings"
	"time"
)

// goTypes is the Go type a field of each FieldType decodes into.
var goTypes = map[FieldType]reflect.Type{
	TypeString:    reflect.TypeFor[string](),
	TypeInt:       reflect.TypeFor[int](),
	TypeBool:      reflect.TypeFor[bool](),
	TypeDuration:  reflect.TypeFor[time.Duration](),
	TypeSize:      reflect.TypeFor[int64](),
	TypeStrings:   reflect.TypeFor[[]string](),
	TypeStringMap: reflect.TypeFor[map[string]string](),
}

// Decode returns c's values in an options struct: each field of c's spec
// goes into the exported field of T tagged `config:"<name>"`, which may be
// promoted from an embedded struct. Fields of T without the tag are left
// zero. It fails, naming the Go field and its tag, unless T's tags and the
// spec's fields match one to one with the Go types of FieldType (string,
// int, bool, time.Duration, int64, []string, map[string]string); a spec
// whose Options is a T was checked at registration, so that cannot happen.
func Decode[T any](c Config) (T, error) {
	var opts T
	v := reflect.ValueOf(&opts).Elem()
	index, err := bindOptions(c.spec, v.Type())
	if err != nil {
		return opts, err
	}
	for name, i := range index {
		if val := c.values[name]; val != nil {
			v.FieldByIndex(i).Set(reflect.ValueOf(val))
		}
	}
	return opts, nil
}

// CheckOptions adapts check, which takes a connector's options struct,
// to Spec.Check.
func CheckOptions[T any](check func(T) error) func(Config) error {
	return func(c Config) error {
		opts, err := Decode[T](c)
		if err != nil {
			return err
		}
		return check(opts)
	}
}

// PlaceOptions adapts place, which takes a connector's options struct, to
// Spec.Place. A config that does not decode has no place.
func PlaceOptions[T any](place func(T) (Place, bool)) func(Config) (Place, bool) {
	return func(c Config) (Place, bool) {
		opts, err := Decode[T](c)
		if err != nil {
			return Place{}, false
		}
		return place(opts)
	}
}

// bindOptions maps the name of each field of spec to the index of the Go
// field of t tagged with it.
func bindOptions(spec Spec, t reflect.Type) (map[string][]int, error) {
	if t.Kind() != reflect.Struct {
		return nil, fmt.Errorf("connector %q: options %s: want a struct", spec.Name, t)
	}
	index := map[string][]int{}
	for _, sf := range reflect.VisibleFields(t) {
		name, ok := sf.Tag.Lookup("config")
		if !ok {
			continue
		}
		where := fmt.Sprintf("connector %q: options field %s.%s (config:%q)", spec.Name, t.Name(), sf.Name, name)
		f, known := spec.Field(name)
		switch {
		case !known:
			return nil, fmt.Errorf("%s: no such config field (known: %s)", where, strings.Join(fieldNames(spec), ", "))
		case index[name] != nil:
			return nil, fmt.Errorf("%s: the tag is used twice", where)
		case !sf.IsExported() || throughPointer(t, sf.Index):
			return nil, fmt.Errorf("%s: not settable: export it, and embed structs by value", where)
		case sf.Type != goTypes[f.Type]:
			return nil, fmt.Errorf("%s: is %s, a %s field wants %s", where, sf.Type, f.Type, goTypes[f.Type])
		}
		index[name] = sf.Index
	}
	for _, f := range spec.Fields {
		if index[f.Name] == nil {
			return nil, fmt.Errorf("connector %q: field %q: no field of options %s is tagged config:%q", spec.Name, f.Name, t, f.Name)
		}
	}
	return index, nil
}

// throughPointer reports whether the field at index is promoted through an
// embedded pointer, which a zero options struct leaves nil.
func throughPointer(t reflect.Type, index []int) bool {
	for i := 1; i < len(index); i++ {
		if t.FieldByIndex(index[:i]).Type.Kind() == reflect.Pointer {
			return true
		}
	}
	return false
}
