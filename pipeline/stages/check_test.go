package stages_test

import (
	"context"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/mftflow/mftflow/pipeline"
	"github.com/mftflow/mftflow/pipeline/stages"
)

// Each spec's Check refuses what its constructor refuses, naming the field,
// so that "runner validate" finds it.
func TestSpecChecks(t *testing.T) {
	reg := pipeline.NewRegistry()
	if err := stages.Register(reg); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		stage string
		cfg   map[string]any
		want  []string
	}{
		{"match", map[string]any{"include": []string{"**/*.csv"}, "regex": `^a+\.csv$`, "min_size": "1KiB", "max_size": "1MiB"}, nil},
		{"match", map[string]any{"regex": "(a"}, []string{"match: field \"regex\": \"(a\" does not compile: missing closing ): `(a`; correct it (Go RE2 syntax, see https://pkg.go.dev/regexp/syntax)"}},
		{"match", map[string]any{"include": []string{"[a"}, "exclude": []string{"{b"}}, []string{
			`match: field "include": invalid glob pattern "[a": close every "[" and "{", or escape them with "\"`,
			`match: field "exclude": invalid glob pattern "{b": close every "[" and "{", or escape them with "\"`,
		}},
		{"match", map[string]any{"min_size": "2MiB", "max_size": "1MiB"}, []string{`match: field "min_size": 2MiB is above max_size 1MiB: no file could match; lower min_size or raise max_size`}},
		{"rename", map[string]any{"name": "{date}/{stem}{ext}"}, nil},
		{"rename", map[string]any{"name": "{stem}.{extension}"}, []string{`rename: field "name": name template "{stem}.{extension}": unknown placeholder {extension} (known: {name} {base} {dir} {stem} {ext} {date} {time} {id} {attr.KEY})`}},
		{"rename", map[string]any{"name": "/srv/{name}"}, []string{`rename: field "name": name template "/srv/{name}" makes unsafe names (absolute path): every file would be refused`}},
		{"compress", map[string]any{"format": "zstd", "level": 22}, nil},
		{"compress", map[string]any{"format": "zstd", "level": 99}, []string{`compress: field "level": zstd has levels 1 (fastest) to 22 (smallest), got 99: pick one of them, or 0 for the default`}},
		{"compress", map[string]any{"level": 10}, []string{`compress: field "level": gzip has levels 1 (fastest) to 9 (smallest), got 10: pick one of them, or 0 for the default`}},
		{"compress", map[string]any{"format": "gzip", "level": -1}, []string{`compress: field "level": gzip has levels 1 (fastest) to 9 (smallest), got -1: pick one of them, or 0 for the default`}},
	}
	for _, tt := range tests {
		spec, _ := reg.Lookup(pipeline.KindStage, tt.stage)
		c, err := pipeline.ParseConfig(spec, tt.cfg)
		if err != nil {
			t.Fatalf("%s %v: %v", tt.stage, tt.cfg, err)
		}
		var got []string
		if err := spec.Check(c); err != nil {
			got = strings.Split(err.Error(), "\n")
		}
		if diff := cmp.Diff(tt.want, got); diff != "" {
			t.Errorf("%s %v (-want +got):\n%s", tt.stage, tt.cfg, diff)
		}
		// The constructor agrees, but for templates it accepts and every
		// file then fails with.
		if strings.Contains(strings.Join(got, ""), "unsafe names") {
			continue
		}
		if _, err := reg.NewStage(context.Background(), tt.stage, tt.cfg); (err == nil) != (tt.want == nil) {
			t.Errorf("%s %v: constructor error %v, Check %v", tt.stage, tt.cfg, err, got)
		}
	}
}
