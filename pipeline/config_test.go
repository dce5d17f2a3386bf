package pipeline_test

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/mftflow/mftflow/pipeline"
)

// demoSpec has one field of every type.
func demoSpec() pipeline.Spec {
	return pipeline.Spec{
		Name:    "demo",
		Kind:    pipeline.KindSink,
		Summary: "A connector for tests.",
		Fields: []pipeline.Field{
			{Name: "path", Type: pipeline.TypeString, Required: true, Doc: "Where."},
			{Name: "count", Type: pipeline.TypeInt, Default: 3, Doc: "How many."},
			{Name: "dry_run", Type: pipeline.TypeBool, Doc: "Pretend."},
			{Name: "timeout", Type: pipeline.TypeDuration, Default: "30s", Doc: "How long."},
			{Name: "part_size", Type: pipeline.TypeSize, Default: "8MiB", Doc: "How big."},
			{Name: "tags", Type: pipeline.TypeStrings, Doc: "Labels."},
			{Name: "headers", Type: pipeline.TypeStringMap, Doc: "Extra headers."},
			{Name: "mode", Type: pipeline.TypeString, Default: "copy", Enum: []string{"copy", "move"}, Doc: "After delivery."},
			{Name: "password", Type: pipeline.TypeString, Secret: true, Doc: "Secret."},
			{Name: "pin", Type: pipeline.TypeInt, Secret: true, Doc: "Secret number."},
		},
	}
}

type demoValues struct {
	Path     string
	Count    int
	DryRun   bool
	Timeout  time.Duration
	PartSize int64
	Tags     []string
	Headers  map[string]string
	Mode     string
	Password string
	Pin      int
}

func valuesOf(c pipeline.Config) demoValues {
	return demoValues{
		c.String("path"), c.Int("count"), c.Bool("dry_run"), c.Duration("timeout"), c.Size("part_size"),
		c.Strings("tags"), c.StringMap("headers"), c.String("mode"), c.String("password"), c.Int("pin"),
	}
}

func TestParseConfigDefaults(t *testing.T) {
	c, err := pipeline.ParseConfig(demoSpec(), map[string]any{"path": "/data"})
	if err != nil {
		t.Fatal(err)
	}
	want := demoValues{Path: "/data", Count: 3, Timeout: 30 * time.Second, PartSize: 8 << 20, Mode: "copy"}
	if diff := cmp.Diff(want, valuesOf(c)); diff != "" {
		t.Errorf("values (-want +got):\n%s", diff)
	}
	if c.Spec().Name != "demo" {
		t.Errorf("Spec().Name = %q", c.Spec().Name)
	}
	for name, want := range map[string]bool{"path": true, "count": true, "dry_run": false, "timeout": true, "mode": true, "password": false, "pin": false} {
		if got := c.Has(name); got != want {
			t.Errorf("Has(%q) = %v, want %v", name, got, want)
		}
	}
}

func TestParseConfigValues(t *testing.T) {
	// Values as YAML decodes them (int, float64, []any, map[string]any) and as Go gives them.
	tests := []struct {
		desc string
		raw  map[string]any
		want demoValues
	}{
		{"yaml types", map[string]any{
			"path": "/data", "count": 7, "dry_run": true, "timeout": "1m30s", "part_size": "5MB",
			"tags": []any{"a", 1, true}, "headers": map[string]any{"X-A": "b", "X-N": 2},
			"mode": "move", "password": "hunter2", "pin": 1234,
		}, demoValues{"/data", 7, true, 90 * time.Second, 5e6, []string{"a", "1", "true"}, map[string]string{"X-A": "b", "X-N": "2"}, "move", "hunter2", 1234}},
		{"go types", map[string]any{
			"path": "/data", "count": int64(8), "dry_run": "false", "timeout": 2 * time.Second, "part_size": int64(1 << 20),
			"tags": []string{"x"}, "headers": map[string]string{"k": "v"},
		}, demoValues{"/data", 8, false, 2 * time.Second, 1 << 20, []string{"x"}, map[string]string{"k": "v"}, "copy", "", 0}},
		{"numbers as strings and floats", map[string]any{
			"path": 42, "count": " 9 ", "part_size": 1024.0, "tags": "one",
		}, demoValues{"42", 9, false, 30 * time.Second, 1024, []string{"one"}, nil, "copy", "", 0}},
		{"float count", map[string]any{"path": "p", "count": 5.0, "part_size": uint64(7)},
			demoValues{"p", 5, false, 30 * time.Second, 7, nil, nil, "copy", "", 0}},
		{"nil is absent", map[string]any{"path": "p", "count": nil, "tags": nil},
			demoValues{"p", 3, false, 30 * time.Second, 8 << 20, nil, nil, "copy", "", 0}},
	}
	for _, tt := range tests {
		c, err := pipeline.ParseConfig(demoSpec(), tt.raw)
		if err != nil {
			t.Errorf("%s: %v", tt.desc, err)
			continue
		}
		if diff := cmp.Diff(tt.want, valuesOf(c)); diff != "" {
			t.Errorf("%s: values (-want +got):\n%s", tt.desc, diff)
		}
	}
}

func TestParseConfigCopiesValues(t *testing.T) {
	tags := []string{"a"}
	headers := map[string]string{"k": "v"}
	c, err := pipeline.ParseConfig(demoSpec(), map[string]any{"path": "p", "tags": tags, "headers": headers})
	if err != nil {
		t.Fatal(err)
	}
	tags[0], headers["k"] = "changed", "changed"
	if c.Strings("tags")[0] != "a" || c.StringMap("headers")["k"] != "v" {
		t.Errorf("the config shares the caller's slice or map")
	}
}

func TestParseConfigErrors(t *testing.T) {
	const known = "path, count, dry_run, timeout, part_size, tags, headers, mode, password, pin"
	tests := []struct {
		desc string
		raw  map[string]any
		want []string
	}{
		{"missing required", map[string]any{}, []string{`demo: field "path": required field is missing`}},
		{"required nil", map[string]any{"path": nil}, []string{`demo: field "path": required field is missing`}},
		{"unknown field", map[string]any{"path": "p", "colour": "red"}, []string{`demo: field "colour": unknown field (known: ` + known + `)`}},
		{"int", map[string]any{"path": "p", "count": "many"}, []string{`demo: field "count": want an integer, got string many`}},
		{"int fraction", map[string]any{"path": "p", "count": 1.5}, []string{`demo: field "count": want an integer, got float64 1.5`}},
		{"int range", map[string]any{"path": "p", "count": int64(1) << 40}, []string{`demo: field "count": want an integer, got 1099511627776 (out of range)`}},
		{"bool", map[string]any{"path": "p", "dry_run": "perhaps"}, []string{`demo: field "dry_run": want true or false, got string perhaps`}},
		{"duration", map[string]any{"path": "p", "timeout": "soon"}, []string{`demo: field "timeout": want a duration such as 500ms, 10s or 1m30s, got string soon`}},
		{"negative duration", map[string]any{"path": "p", "timeout": "-1s"}, []string{`demo: field "timeout": want a duration such as 500ms, 10s or 1m30s, got string -1s`}},
		{"bare number duration", map[string]any{"path": "p", "timeout": 30}, []string{`demo: field "timeout": want a duration such as 500ms, 10s or 1m30s, got int 30`}},
		{"size", map[string]any{"path": "p", "part_size": "big"}, []string{`demo: field "part_size": want a size such as 1048576, 512KiB, 8MiB or 1GB, got string big`}},
		{"negative size", map[string]any{"path": "p", "part_size": -1}, []string{`demo: field "part_size": want a size such as 1048576, 512KiB, 8MiB or 1GB, got int -1`}},
		{"strings", map[string]any{"path": "p", "tags": []any{"a", []any{"b"}}}, []string{`demo: field "tags": want a list of strings, item 2 is []interface {}`}},
		{"strings map", map[string]any{"path": "p", "tags": map[string]any{}}, []string{`demo: field "tags": want a list of strings, got map[string]interface {} map[]`}},
		{"map", map[string]any{"path": "p", "headers": []any{"a"}}, []string{`demo: field "headers": want a map of strings, got []interface {} [a]`}},
		{"map value", map[string]any{"path": "p", "headers": map[string]any{"k": []any{}}}, []string{`demo: field "headers": want a map of strings, key "k" is []interface {}`}},
		{"enum", map[string]any{"path": "p", "mode": "delete"}, []string{`demo: field "mode": want one of copy, move, got "delete"`}},
		{"string", map[string]any{"path": []any{"a"}}, []string{`demo: field "path": want a string, got []interface {} [a]`}},
		{"secret", map[string]any{"path": "p", "password": []any{"hunter2"}, "pin": "hunter2"}, []string{
			`demo: field "password": want a string, got a []interface {}`,
			`demo: field "pin": want an integer, got a string`,
		}},
		{"several, each reported", map[string]any{"count": "x", "zzz": 1, "aaa": 2, "mode": "y"}, []string{
			`demo: field "aaa": unknown field (known: ` + known + `)`,
			`demo: field "path": required field is missing`,
			`demo: field "count": want an integer, got string x`,
			`demo: field "mode": want one of copy, move, got "y"`,
			`demo: field "zzz": unknown field (known: ` + known + `)`,
		}},
	}
	for _, tt := range tests {
		_, err := pipeline.ParseConfig(demoSpec(), tt.raw)
		if err == nil {
			t.Errorf("%s: no error, want %q", tt.desc, tt.want)
			continue
		}
		got := strings.Split(err.Error(), "\n")
		if diff := cmp.Diff(tt.want, got, cmpopts.SortSlices(func(a, b string) bool { return a < b })); diff != "" {
			t.Errorf("%s: errors (-want +got):\n%s", tt.desc, diff)
		}
		var fe *pipeline.FieldError
		if !errors.As(err, &fe) || fe.Connector != "demo" {
			t.Errorf("%s: %v holds no *FieldError for demo", tt.desc, err)
		}
		if strings.Contains(err.Error(), "hunter2") {
			t.Errorf("%s: error shows a secret: %v", tt.desc, err)
		}
	}
}

// ParseConfig reports unknown fields by name, then the spec's fields in order.
func TestParseConfigErrorOrder(t *testing.T) {
	_, err := pipeline.ParseConfig(demoSpec(), map[string]any{"count": "x", "zzz": 1, "aaa": 2, "mode": "y"})
	want := strings.Join([]string{
		`demo: field "aaa": unknown field (known: path, count, dry_run, timeout, part_size, tags, headers, mode, password, pin)`,
		`demo: field "zzz": unknown field (known: path, count, dry_run, timeout, part_size, tags, headers, mode, password, pin)`,
		`demo: field "path": required field is missing`,
		`demo: field "count": want an integer, got string x`,
		`demo: field "mode": want one of copy, move, got "y"`,
	}, "\n")
	if err == nil {
		t.Fatal("no error")
	}
	if err.Error() != want {
		t.Errorf("errors:\n%v\nwant:\n%s", err, want)
	}
}

func TestParseConfigSecretEnum(t *testing.T) {
	spec := pipeline.Spec{Name: "demo", Fields: []pipeline.Field{
		{Name: "token", Type: pipeline.TypeString, Secret: true, Enum: []string{"a", "b"}},
	}}
	_, err := pipeline.ParseConfig(spec, map[string]any{"token": "hunter2"})
	if err == nil {
		t.Fatal("no error")
	}
	if strings.Contains(err.Error(), "hunter2") {
		t.Errorf("the enum check prints the value of a Secret field: %v", err)
	}
}

func TestConfigHasOnListsAndMaps(t *testing.T) {
	c, err := pipeline.ParseConfig(demoSpec(), map[string]any{"path": "p", "tags": "a", "headers": map[string]any{"k": "v"}})
	if err != nil {
		t.Fatal(err)
	}
	var panics []string
	for _, name := range []string{"tags", "headers"} {
		func() {
			defer func() {
				if r := recover(); r != nil {
					panics = append(panics, fmt.Sprintf("Config.Has(%q) panics: %v", name, r))
				}
			}()
			if !c.Has(name) {
				t.Errorf("Has(%q) = false for a field that was given", name)
			}
		}()
	}
	if len(panics) > 0 {
		t.Error("Has panics:\n" + strings.Join(panics, "\n"))
	}
}

func TestConfigGetterPanics(t *testing.T) {
	c, err := pipeline.ParseConfig(demoSpec(), map[string]any{"path": "p"})
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		get  func()
		want string
	}{
		{func() { c.String("nope") }, `pipeline: connector "demo" has no field "nope"`},
		{func() { c.Int("path") }, `pipeline: field "path" of connector "demo" is not a int`},
		{func() { c.Size("count") }, `pipeline: field "count" of connector "demo" is not a int64`},
	} {
		got := func() (msg string) {
			defer func() { msg = fmt.Sprint(recover()) }()
			tt.get()
			return ""
		}()
		if got != tt.want {
			t.Errorf("got panic %q, want %q", got, tt.want)
		}
	}
}

func TestFieldParseDefaultsInGoTypes(t *testing.T) {
	// A default may be given in the field's Go type or in flow-file syntax.
	for _, f := range []pipeline.Field{
		{Name: "a", Type: pipeline.TypeDuration, Default: time.Minute},
		{Name: "a", Type: pipeline.TypeDuration, Default: "1m"},
	} {
		spec := pipeline.Spec{Name: "x", Fields: []pipeline.Field{f}}
		c, err := pipeline.ParseConfig(spec, nil)
		if err != nil || c.Duration("a") != time.Minute {
			t.Errorf("default %#v: got %v, %v", f.Default, c.Duration("a"), err)
		}
	}
}
