package pipeline_test

import (
	"context"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/mftflow/mftflow/pipeline"
)

func TestTemplateDir(t *testing.T) {
	for tmpl, want := range map[string]string{
		"{name}":             "",
		"x{name}":            "",
		"out/{name}":         "out",
		"out/{date}/{name}":  "out",
		"a/b/c{name}":        "a/b",
		"a//b/./{name}":      "a/b",
		"../{name}":          "",
		"a/../../{name}":     "",
		"fixed/name.csv":     "fixed",
		"/abs/{name}":        "abs",
		"{dir}/static/{ext}": "",
	} {
		if got := pipeline.TemplateDir(tmpl); got != want {
			t.Errorf("TemplateDir(%q) = %q, want %q", tmpl, got, want)
		}
	}
}

func TestCheckNameTemplate(t *testing.T) {
	for tmpl, want := range map[string]string{
		"{name}":          "",
		"{dir}/{stem}":    "",
		"{attr.code}.csv": "",
		"a/{name}":        "",
		"{nmae}":          `name template "{nmae}": unknown placeholder {nmae} (known: {name} {base} {dir} {stem} {ext} {date} {time} {id} {attr.KEY})`,
		"{name":           `name template "{name": unclosed {`,
		"/out/{name}":     `name template "/out/{name}" makes unsafe names (absolute path): every file would be refused`,
		"../{name}":       `name template "../{name}" makes unsafe names (contains ".." and would escape the target directory): every file would be refused`,
		"{dir}/../{base}": `name template "{dir}/../{base}" makes unsafe names (contains ".." and would escape the target directory): every file would be refused`,
		`a\{name}`:        `name template "a\\{name}" makes unsafe names (contains a backslash): every file would be refused`,
	} {
		got := ""
		if err := pipeline.CheckNameTemplate(tmpl); err != nil {
			got = err.Error()
		}
		if got != want {
			t.Errorf("CheckNameTemplate(%q) = %q, want %q", tmpl, got, want)
		}
	}
}

// placeRegistry has a source and a sink whose places are their "dir"
// config field in the store named by "store"; the source skips "skip".
func placeRegistry(t *testing.T) *pipeline.Registry {
	t.Helper()
	reg := pipeline.NewRegistry()
	fields := []pipeline.Field{
		{Name: "dir", Type: pipeline.TypeString},
		{Name: "store", Type: pipeline.TypeString, Default: "disk"},
	}
	place := func(c pipeline.Config) (pipeline.Place, bool) {
		d := c.String("dir")
		if d == "?" {
			return pipeline.Place{}, false
		}
		return pipeline.Place{Store: c.String("store"), Dir: d, Text: c.String("store") + " " + d,
			Skips: func(rel string) bool { return rel == "skip" || strings.HasPrefix(rel, "skip/") }}, true
	}
	if err := reg.RegisterSource(pipeline.Spec{Name: "fs", Fields: fields, Place: place},
		func(context.Context, pipeline.Config) (pipeline.Source, error) { return nil, nil }); err != nil {
		t.Fatal(err)
	}
	if err := reg.RegisterSink(pipeline.Spec{Name: "fs", Fields: fields, Place: place},
		func(context.Context, pipeline.Config) (pipeline.Sink, error) { return nil, nil }); err != nil {
		t.Fatal(err)
	}
	if err := reg.RegisterSink(pipeline.Spec{Name: "other", Fields: fields},
		func(context.Context, pipeline.Config) (pipeline.Sink, error) { return nil, nil }); err != nil {
		t.Fatal(err)
	}
	return reg
}

func TestCheckPlaces(t *testing.T) {
	reg := placeRegistry(t)
	at := func(line int) pipeline.Pos { return pipeline.Pos{File: "f.yaml", Line: line, Column: 5} }
	sink := func(name, dir string, line int) pipeline.SinkSpec {
		return pipeline.SinkSpec{Name: name, Component: pipeline.Component{Type: "fs", Config: map[string]any{"dir": dir}, Pos: at(line)}}
	}
	flow := func(src string, sinks ...pipeline.SinkSpec) pipeline.Flow {
		return pipeline.Flow{Name: "f", Source: pipeline.Component{Type: "fs", Config: map[string]any{"dir": src}, Pos: at(2)}, Sinks: sinks}
	}
	const clash = "the two would overwrite each other's files and deliveries would fail with parts missing"
	tests := []struct {
		desc string
		flow pipeline.Flow
		want []string
	}{
		{"apart", flow("/in", sink("a", "/out/a", 4), sink("b", "/out/b", 5), sink("c", "/out/ab", 6)), nil},
		{"same", flow("/in", sink("a", "/out", 4), sink("", "/out", 5)), []string{
			`f.yaml:5:5: sink "fs" writes into disk /out, as sink "a" does (f.yaml:4:5): ` + clash + `; give each sink its own place`,
		}},
		{"inside", flow("/in", sink("a", "/out", 4), sink("b", "/out/x/y", 5)), []string{
			`f.yaml:5:5: sink "b" writes into disk /out/x/y, inside disk /out of sink "a" (f.yaml:4:5): ` + clash + `; give each sink its own place, not one inside the other`,
		}},
		{"holds", flow("/in", sink("a", "/out/x", 4), sink("b", "/out", 5)), []string{
			`f.yaml:5:5: sink "b" writes into disk /out, which holds disk /out/x of sink "a" (f.yaml:4:5): ` + clash + `; give each sink its own place, not one inside the other`,
		}},
		{"bucket root", flow("in", sink("a", "", 4), sink("b", "x", 5)), []string{
			// The source lies inside sink a: not a loop by itself.
			`f.yaml:5:5: sink "b" writes into disk x, inside disk  of sink "a" (f.yaml:4:5): ` + clash + `; give each sink its own place, not one inside the other`,
		}},
		{"source itself", flow("/in", sink("a", "/in", 4)), []string{
			`f.yaml:4:5: sink "a" writes into disk /in, which the source reads (f.yaml:2:5): every file delivered would be read again, in a loop; write elsewhere`,
		}},
		{"inside the source", flow("/in", sink("b", "/in/out", 5), sink("c", "/in/skip/x", 6), sink("d", "/", 7)), []string{
			`f.yaml:5:5: sink "b" writes into disk /in/out, which the source reads (f.yaml:2:5): every file delivered would be read again, in a loop; write elsewhere, or exclude it from the source (exclude: ["out/**"])`,
			`f.yaml:7:5: sink "d" writes into disk /, which holds disk /in/out of sink "b" (f.yaml:5:5): ` + clash + `; give each sink its own place, not one inside the other`,
			`f.yaml:7:5: sink "d" writes into disk /, which holds disk /in/skip/x of sink "c" (f.yaml:6:5): ` + clash + `; give each sink its own place, not one inside the other`,
		}},
		{"other store", flow("/in", sink("a", "/in/x", 4),
			pipeline.SinkSpec{Name: "b", Component: pipeline.Component{Type: "fs", Config: map[string]any{"dir": "/in/x", "store": "s3"}}}), []string{
			`f.yaml:4:5: sink "a" writes into disk /in/x, which the source reads (f.yaml:2:5): every file delivered would be read again, in a loop; write elsewhere, or exclude it from the source (exclude: ["x/**"])`,
		}},
		{"unknown places", flow("/in",
			sink("a", "?", 4),
			pipeline.SinkSpec{Name: "b", Component: pipeline.Component{Type: "other", Config: map[string]any{"dir": "/in"}}},
			pipeline.SinkSpec{Name: "c", Component: pipeline.Component{Type: "fs", Config: map[string]any{"dir": []any{1}}}},
			pipeline.SinkOf("d", nil),
		), nil},
	}
	for _, tt := range tests {
		var got []string
		if err := reg.CheckPlaces(tt.flow); err != nil {
			got = strings.Split(err.Error(), "\n")
		}
		if diff := cmp.Diff(tt.want, got); diff != "" {
			t.Errorf("%s: (-want +got):\n%s", tt.desc, diff)
		}
	}
}
