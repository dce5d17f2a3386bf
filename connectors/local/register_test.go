package local

import (
	"context"
	"errors"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/mftflow/mftflow/pipeline"
	"github.com/mftflow/mftflow/testkit"
)

func TestRegister(t *testing.T) {
	r := pipeline.NewRegistry()
	if err := Register(r); err != nil {
		t.Fatal(err)
	}
	if err := Register(r); err == nil {
		t.Error("registering twice succeeded")
	}
	for _, k := range []pipeline.Kind{pipeline.KindSource, pipeline.KindSink} {
		spec, ok := r.Lookup(k, "local")
		if !ok {
			t.Fatalf("no %s called local", k)
		}
		if spec.Summary == "" {
			t.Errorf("%s: no summary", k)
		}
		for _, f := range spec.Fields {
			if f.Doc == "" || f.Type == "" {
				t.Errorf("%s field %q: missing doc or type", k, f.Name)
			}
			if f.Required && f.Default != nil {
				t.Errorf("%s field %q: required with a default", k, f.Name)
			}
		}
	}
}

// The defaults of the specs and of the Go constructors agree.
func TestSpecDefaults(t *testing.T) {
	c, err := pipeline.ParseConfig(sourceSpec(), map[string]any{"path": "/in"})
	if err != nil {
		t.Fatal(err)
	}
	src, err := pipeline.Decode[SourceConfig](c)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(DefaultSourceConfig("/in"), src); diff != "" {
		t.Errorf("source defaults (-Go +spec):\n%s", diff)
	}
	c, err = pipeline.ParseConfig(sinkSpec(), map[string]any{"path": "/out"})
	if err != nil {
		t.Fatal(err)
	}
	want := SinkConfig{Path: "/out", Name: "{name}", Overwrite: OverwriteReplace, PartSize: DefaultPartSize}
	sink, err := pipeline.Decode[SinkConfig](c)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(want, sink); diff != "" {
		t.Errorf("sink defaults (-want +spec):\n%s", diff)
	}
}

func TestRegistryRoundTrip(t *testing.T) {
	r := pipeline.NewRegistry()
	if err := Register(r); err != nil {
		t.Fatal(err)
	}
	in, out := t.TempDir(), t.TempDir()
	writeFiles(t, in, map[string]string{"a/report.csv": "1,2,3\n", "skip.txt": "no"})
	src, err := r.NewSource(context.Background(), "local", map[string]any{
		"path": in, "include": "**/*.csv", "watch": false, "stable_for": "0s",
		"after": "move", "archive_dir": filepath.Join(out, "archive"),
	})
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	sink, err := r.NewSink(context.Background(), "local", map[string]any{
		"path": filepath.Join(out, "inbox"), "name": "{attr.code}/{base}", "part_size": "4KiB", "fsync": true,
	})
	if err != nil {
		t.Fatal(err)
	}
	defer sink.Close()
	items := drain(t, src)
	if len(items) != 1 {
		t.Fatalf("got %d items", len(items))
	}
	data := testkit.ReadItem(t, items[0])
	f := items[0].File().WithAttr("code", "ACME")
	f.SHA256 = testkit.SHA256Hex(data)
	u, err := sink.Open(context.Background(), f, nil)
	if err != nil {
		t.Fatal(err)
	}
	if got := u.Plan().PartSize; got != 4096 {
		t.Errorf("part size %d", got)
	}
	writeParts(t, u, data, partsOf(int64(len(data)), 4096))
	if err := u.Commit(context.Background(), f); err != nil {
		t.Fatal(err)
	}
	if err := items[0].Ack(context.Background(), pipeline.Outcome{Status: pipeline.Passed}); err != nil {
		t.Fatal(err)
	}
	want := map[string]string{
		"inbox/ACME/report.csv": testkit.SHA256Hex(data),
		"archive/a/report.csv":  testkit.SHA256Hex(data),
	}
	if diff := cmp.Diff(want, tree(t, out)); diff != "" {
		t.Errorf("files (-want +got):\n%s", diff)
	}
}

func TestRegistryConfigErrors(t *testing.T) {
	r := pipeline.NewRegistry()
	if err := Register(r); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	tests := []struct {
		kind pipeline.Kind
		raw  map[string]any
		want string
	}{
		{pipeline.KindSource, map[string]any{}, `local: field "path": required field is missing`},
		{pipeline.KindSource, map[string]any{"path": dir, "after": "burn"}, `local: field "after": want one of delete, move, leave, got "burn"`},
		{pipeline.KindSource, map[string]any{"path": dir, "after": "move"}, `local: field "archive_dir": required when after is "move"`},
		{pipeline.KindSource, map[string]any{"path": dir, "exclude": []any{"ok", "[bad"}}, `local: field "exclude": invalid glob pattern "[bad"`},
		{pipeline.KindSource, map[string]any{"path": dir, "stable": "1s"}, `local: field "stable": unknown field`},
		{pipeline.KindSink, map[string]any{"path": dir, "name": "{when}"}, `local: field "name": name template "{when}": unknown placeholder {when}`},
		{pipeline.KindSink, map[string]any{"path": dir, "overwrite": "always"}, `local: field "overwrite": want one of replace, skip, fail, rename, got "always"`},
		{pipeline.KindSink, map[string]any{"path": dir, "part_size": "lots"}, `local: field "part_size": want a size`},
	}
	for _, tt := range tests {
		var err error
		if tt.kind == pipeline.KindSource {
			var s pipeline.Source
			if s, err = r.NewSource(context.Background(), "local", tt.raw); err == nil {
				s.Close()
			}
		} else {
			_, err = r.NewSink(context.Background(), "local", tt.raw)
		}
		if err == nil || !strings.HasPrefix(err.Error(), tt.want) {
			t.Errorf("%s %v: error = %v, want %s...", tt.kind, tt.raw, err, tt.want)
		}
		var fe *pipeline.FieldError
		if err != nil && !errors.As(err, &fe) {
			t.Errorf("%s %v: error %v is not a FieldError", tt.kind, tt.raw, err)
		}
	}
}
