package stages_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/mftflow/mftflow/pipeline"
	"github.com/mftflow/mftflow/pipeline/stages"
)

func TestRegister(t *testing.T) {
	r := pipeline.NewRegistry()
	if err := stages.Register(r); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]string{"attrs", "compress", "decompress", "match", "pgp_decrypt", "pgp_encrypt", "rename", "verify"}, r.Names(pipeline.KindStage)); diff != "" {
		t.Errorf("stage names (-want +got):\n%s", diff)
	}
	for _, s := range r.Specs(pipeline.KindStage) {
		if s.Summary == "" || s.Origin != "built-in" || len(s.Fields) == 0 {
			t.Errorf("%s: incomplete spec %+v", s.Name, s)
		}
		for _, f := range s.Fields {
			if f.Doc == "" || f.Type == "" {
				t.Errorf("%s: field %s has no doc or type", s.Name, f.Name)
			}
			if !f.Required && f.Default == nil && f.Type != pipeline.TypeStrings && f.Type != pipeline.TypeString {
				t.Errorf("%s: optional field %s has no default", s.Name, f.Name)
			}
		}
	}
	err := stages.Register(r)
	want := `registering stage "match" from built-in: the name is taken by built-in`
	if err == nil || err.Error() != want {
		t.Errorf("second Register: got %v, want %q", err, want)
	}
}

func TestRegisteredStages(t *testing.T) {
	r := pipeline.NewRegistry()
	if err := stages.Register(r); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()

	// Every stage builds from its defaults alone, except rename.
	for _, name := range []string{"match", "compress", "decompress"} {
		if _, err := r.NewStage(ctx, name, nil); err != nil {
			t.Errorf("%s with defaults: %v", name, err)
		}
	}

	// Flow-file values reach the Go config.
	m, err := r.NewStage(ctx, "match", map[string]any{"include": "*.csv", "exclude": []any{"tmp*"}, "regex": "^[a-z]", "min_size": "1KiB", "max_size": 4096})
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		name string
		size int64
		want string
	}{
		{"a.csv", 2048, ""},
		{"a.txt", 2048, `"a.txt" does not match include ["*.csv"]: file skipped`},
		{"tmp.csv", 2048, `"tmp.csv" matches exclude "tmp*": file skipped`},
		{"1.csv", 2048, `"1.csv" does not match regex "^[a-z]": file skipped`},
		{"a.csv", 10, `"a.csv" is 10 B, below min_size 1.0 KiB: file skipped`},
		{"a.csv", 5000, `"a.csv" is 4.9 KiB, above max_size 4.0 KiB: file skipped`},
	} {
		_, _, err := m.Process(ctx, pipeline.File{Name: tt.name, Size: tt.size}, bytes.NewReader(nil))
		if got := fmt.Sprint(err); (tt.want == "" && err != nil) || (tt.want != "" && got != tt.want) {
			t.Errorf("%s (%d): got %v, want %q", tt.name, tt.size, err, tt.want)
		}
	}

	c, err := r.NewStage(ctx, "compress", map[string]any{"format": "zstd", "level": 19})
	if err != nil {
		t.Fatal(err)
	}
	d, err := r.NewStage(ctx, "decompress", map[string]any{"format": "zstd"})
	if err != nil {
		t.Fatal(err)
	}
	rn, err := r.NewStage(ctx, "rename", map[string]any{"name": "out/{base}"})
	if err != nil {
		t.Fatal(err)
	}
	f := pipeline.File{Name: "in/a.csv", Size: 5}
	data := []byte("hello")
	for _, s := range []pipeline.Stage{c, rn, d} {
		var rd io.Reader
		f, rd, err = s.Process(ctx, f, bytes.NewReader(data))
		if err != nil {
			t.Fatal(err)
		}
		if data, err = io.ReadAll(rd); err != nil {
			t.Fatal(err)
		}
	}
	if f.Name != "out/a.csv" || string(data) != "hello" {
		t.Errorf("compress, rename, decompress: got %q %q, want out/a.csv hello", f.Name, data)
	}
}

func TestRegisteredStageErrors(t *testing.T) {
	r := pipeline.NewRegistry()
	if err := stages.Register(r); err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		stage string
		raw   map[string]any
		want  string
	}{
		{"rename", nil, `rename: field "name": required field is missing`},
		{"rename", map[string]any{"name": "{bad}"}, `rename: name template "{bad}": unknown placeholder {bad} (known: {name} {base} {dir} {stem} {ext} {date} {time} {id} {attr.KEY})`},
		{"compress", map[string]any{"format": "lz4"}, `compress: field "format": want one of gzip, zstd, got "lz4"`},
		{"compress", map[string]any{"level": 10}, "compress: level 10: gzip levels are 1 (fastest) to 9 (smallest), or 0 for the default"},
		{"decompress", map[string]any{"format": "bzip2"}, `decompress: field "format": want one of auto, gzip, zstd, got "bzip2"`},
		{"match", map[string]any{"include": "[a"}, `match: include pattern "[a": syntax error in pattern`},
		{"match", map[string]any{"max_size": "lots"}, `match: field "max_size": want a size such as 1048576, 512KiB, 8MiB or 1GB, got string lots`},
		{"match", map[string]any{"inclde": "*.csv"}, `match: field "inclde": unknown field (known: include, exclude, regex, min_size, max_size)`},
		{"attrs", nil, `attrs: field "set": required field is missing`},
		{"attrs", map[string]any{"set": map[string]any{}}, `attrs: set names no attribute: give at least one, such as set: {thru.batch_total: "{attr.records}"}`},
		{"attrs", map[string]any{"set": map[string]any{"thru.batch_total": "{records}", " x": "1"}},
			"attrs: attribute name \" x\" has spaces around it: remove them, or templates ({attr.KEY}) and sources will not find it\n" +
				`attribute thru.batch_total: name template "{records}": unknown placeholder {records} (known: {name} {base} {dir} {stem} {ext} {date} {time} {id} {attr.KEY})`},
		{"unzip", nil, `unknown stage connector "unzip" (known: attrs, compress, decompress, match, pgp_decrypt, pgp_encrypt, rename, verify)`},
	} {
		s, err := r.NewStage(context.Background(), tt.stage, tt.raw)
		if err == nil || err.Error() != tt.want {
			t.Errorf("%s %v: got error\n%v\nwant\n%s", tt.stage, tt.raw, err, tt.want)
		}
		if s != nil {
			t.Errorf("%s %v: got a stage (%#v) with the error", tt.stage, tt.raw, s)
		}
	}
	var unknown *pipeline.UnknownError
	if _, err := r.NewStage(context.Background(), "unzip", nil); !errors.As(err, &unknown) {
		t.Errorf("unknown stage: %v is not an *UnknownError", err)
	}
}
