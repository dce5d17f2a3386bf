package flowfile

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/mftflow/mftflow/pipeline"
)

// checkRegistry has connectors with Check and Place functions: "dir"
// sources and sinks whose place is their path (a path "missing" does not
// exist), and a "pick" stage whose regex must compile.
func checkRegistry(t testing.TB) *pipeline.Registry {
	t.Helper()
	reg := pipeline.NewRegistry()
	fields := []pipeline.Field{
		{Name: "path", Type: pipeline.TypeString, Required: true},
		{Name: "name", Type: pipeline.TypeString, Default: "{name}"},
		{Name: "token", Type: pipeline.TypeString, Secret: true},
	}
	check := func(c pipeline.Config) error {
		var errs []error
		if c.String("path") == "missing" {
			errs = append(errs, &pipeline.FieldError{Connector: "dir", Field: "path", Err: errors.New("directory missing does not exist")})
		}
		if err := pipeline.CheckNameTemplate(c.String("name")); err != nil {
			errs = append(errs, &pipeline.FieldError{Connector: "dir", Field: "name", Err: err})
		}
		if c.String("token") == "bad" {
			errs = append(errs, &pipeline.FieldError{Connector: "dir", Field: "token", Err: errors.New("refused")})
		}
		if c.String("path") == "odd" {
			errs = append(errs, errors.New("something about the whole config"))
		}
		return errors.Join(errs...)
	}
	place := func(c pipeline.Config) (pipeline.Place, bool) {
		dir := "/" + strings.Trim(c.String("path"), "/")
		if sub := pipeline.TemplateDir(c.String("name")); sub != "" {
			dir += "/" + sub
		}
		return pipeline.Place{Store: "file", Dir: dir, Text: "directory " + dir}, true
	}
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(reg.RegisterSource(pipeline.Spec{Name: "dir", Fields: fields, Check: check, Place: place},
		func(context.Context, pipeline.Config) (pipeline.Source, error) { return nil, nil }))
	must(reg.RegisterSink(pipeline.Spec{Name: "dir", Fields: fields, Check: check, Place: place},
		func(context.Context, pipeline.Config) (pipeline.Sink, error) { return nil, nil }))
	must(reg.RegisterStage(pipeline.Spec{Name: "pick", Fields: []pipeline.Field{{Name: "regex", Type: pipeline.TypeString}},
		Check: func(c pipeline.Config) error {
			if c.String("regex") == "(" {
				return &pipeline.FieldError{Connector: "pick", Field: "regex", Err: errors.New(`"(" does not compile`)}
			}
			return nil
		}},
		func(context.Context, pipeline.Config) (pipeline.Stage, error) { return nil, nil }))
	return reg
}

var checkCases = []struct {
	name  string
	in    string
	env   map[string]string
	chunk ChunkLimit
	want  string
}{
	{
		name: "spec checks at the field's value",
		in: lines("name: x",
			"source: {dir: {path: missing}}",
			"stages: [pick: {regex: '('}]",
			"sinks:",
			"  - dir:",
			"      path: out",
			"      name: '{nmae}'"),
		want: lines(
			`f.yaml:2:22: dir source: field "path": directory missing does not exist`,
			`f.yaml:3:24: pick stage: field "regex": "(" does not compile`,
			`f.yaml:7:13: dir sink: field "name": name template "{nmae}": unknown placeholder {nmae} (known: {name} {base} {dir} {stem} {ext} {date} {time} {id} {attr.KEY})`),
	},
	{
		name: "spec checks of defaults and the whole config at the connector",
		in:   lines("name: x", "source: {dir: {path: odd}}", "sinks: [dir: {path: out}]"),
		want: `f.yaml:2:10: dir source: something about the whole config`,
	},
	{
		name: "where a value came from",
		in:   lines("name: x", "source: {dir: {path: '${IN:missing}', token: '${T:bad}'}}", "sinks: [dir: {path: out}]"),
		env:  map[string]string{},
		want: lines(
			`f.yaml:2:22: dir source: field "path": directory missing does not exist (IN is not set, so ${IN:missing} gave "missing")`,
			`f.yaml:2:46: dir source: field "token": refused`),
	},
	{
		name: "required field left empty by a variable",
		in:   lines("name: x", "source: {dir: {path: '${A:}${B:}', token: '${T:}'}}", "sinks: [dir: {path: '${C}'}]"),
		env:  map[string]string{"B": "", "C": ""},
		want: lines(
			`f.yaml:2:22: dir source: required field "path" is empty: A is not set, so ${A:} gave ""; B is set to an empty value; set the variable, or give a default that is not empty ("${VAR:value}")`,
			`f.yaml:3:21: dir sink: required field "path" is empty: C is set to an empty value; set the variable, or give a default that is not empty ("${VAR:value}")`),
	},
	{
		name: "required field written empty",
		in:   lines("name: x", "source: {dir: {path: ''}}", "sinks: [dir: {path: out}]"),
		want: `f.yaml:2:22: dir source: required field "path" is empty`,
	},
	{
		name:  "chunk size above the server's",
		in:    lines("name: x", "source: {dir: {path: in}}", "sinks: [dir: {path: out}]", "bus: {chunk_size: 2MiB}"),
		chunk: ChunkLimit{Max: 1 << 20, Why: "(the server's)", Fix: "lower it or raise the server's"},
		want:  `f.yaml:4:19: bus.chunk_size: 2MiB is above the limit of 1MiB (the server's); lower it or raise the server's`,
	},
	{
		name:  "chunk size above every server's",
		in:    lines("name: x", "source: {dir: {path: in}}", "sinks: [dir: {path: out}]", "bus: {chunk_size: 65MiB}"),
		chunk: ChunkLimit{Max: 1 << 20, Why: "(the server's)", Fix: "lower it"},
		want:  `f.yaml:4:19: bus.chunk_size: 65MiB is above the limit of 64MiB per bus message; lower it`,
	},
	{
		name: "counts",
		in: lines("name: x", "source: {dir: {path: in}}",
			"sinks:",
			"  - dir: {path: out}",
			"    files: 1000000000",
			"    parallelism: 1000",
			"    retry: {attempts: 2000, max: 25h}",
			"bus: {files: 1000, readers: 1000, window: 2TiB}"),
		want: lines(
			`f.yaml:5:12: sinks[0].files: 1000000000 is above the limit of 256 files delivered at once per sink; lower it`,
			`f.yaml:6:18: sinks[0].parallelism: 1000 is above the limit of 64 parts of one file written at once; lower it`,
			`f.yaml:7:23: sinks[0].retry.attempts: 2000 is above the limit of 1000 attempts per delivery; lower it`,
			`f.yaml:7:34: sinks[0].retry.max: 25h0m0s is above the limit of 24h0m0s; lower it`,
			`f.yaml:8:14: bus.files: 1000 is above the limit of 256 files read from the source at once; lower it`,
			`f.yaml:8:29: bus.readers: 1000 is above the limit of 64 range reads of one file at once; lower it`,
			`f.yaml:8:43: bus.window: 2TiB is above the limit of 1TiB of reading ahead of the slowest sink; lower it`),
	},
	{
		name: "too many sinks and stages",
		in: lines("name: x", "source: {dir: {path: in}}",
			"stages: ["+strings.TrimSuffix(strings.Repeat("pick: {}, ", pipeline.MaxStages+1), ", ")+"]",
			"sinks: ["+strings.TrimSuffix(manySinks(pipeline.MaxSinks+1), ", ")+"]"),
		want: lines(
			`f.yaml:3:9: stages: 65 is above the limit of 64 stages per flow; combine stages or split the flow`,
			`f.yaml:4:8: sinks: 65 is above the limit of 64 sinks per flow; split the fan-out into several flows`),
	},
	{
		name: "overlapping places",
		in: lines("name: x", "source: {dir: {path: in}}",
			"sinks:",
			"  - dir: {path: out}",
			"  - name: copy",
			"    dir: {path: out/}",
			"  - dir: {path: in/x}"),
		want: lines(
			`f.yaml:5:5: sink "copy" writes into directory /out, as sink "dir" does (f.yaml:4:5): the two would overwrite each other's files and deliveries would fail with parts missing; give each sink its own place`,
			`f.yaml:7:5: sink "dir-2" writes into directory /in/x, which the source reads (f.yaml:2:10): every file delivered would be read again, in a loop; write elsewhere, or exclude it from the source (exclude: ["x/**"])`),
	},
}

func manySinks(n int) string {
	var b strings.Builder
	for i := range n {
		fmt.Fprintf(&b, "dir: {path: out%d}, ", i)
	}
	return b.String()
}

func TestParseChecks(t *testing.T) {
	reg := checkRegistry(t)
	for _, tt := range checkCases {
		t.Run(tt.name, func(t *testing.T) {
			f, err := ParseWith("f.yaml", []byte(tt.in), reg, Options{Lookup: env(tt.env), Chunk: tt.chunk})
			if err == nil {
				t.Fatalf("Parse succeeded with %+v, want error:\n%s", f, tt.want)
			}
			if diff := cmp.Diff(strings.TrimSuffix(tt.want, "\n"), err.Error()); diff != "" {
				t.Errorf("error mismatch (-want +got):\n%s", diff)
			}
		})
	}
}

// The errors of a spec's Check and of a limit can be told apart.
func TestParseCheckErrorsUnwrap(t *testing.T) {
	in := lines("name: x", "source: {dir: {path: missing}}", "sinks: [{dir: {path: out}, files: 300}]")
	_, err := ParseWith("f.yaml", []byte(in), checkRegistry(t), Options{})
	var fe *pipeline.FieldError
	if !errors.As(err, &fe) || fe.Field != "path" {
		t.Errorf("errors.As(FieldError): %+v in %v", fe, err)
	}
	var le *pipeline.LimitError
	if !errors.As(err, &le) || le.Setting != "sinks[0].files" {
		t.Errorf("errors.As(LimitError): %+v in %v", le, err)
	}
}

func TestParseChecksPass(t *testing.T) {
	in := lines("name: x", "source: {dir: {path: '${IN:in}'}}",
		"stages: [pick: {regex: 'a+'}]",
		"sinks:",
		"  - dir: {path: out, name: 'a/{name}'}",
		"  - dir: {path: out, name: 'b/{name}'}",
		"    files: 256",
		"    parallelism: 64",
		"    retry: {attempts: 1000, max: 24h}",
		"bus: {chunk_size: 1MiB, files: 256, readers: 64, window: 1TiB}")
	if _, err := ParseWith("f.yaml", []byte(in), checkRegistry(t), Options{Chunk: ChunkLimit{Max: 1 << 20}}); err != nil {
		t.Errorf("Parse: %v", err)
	}
}
