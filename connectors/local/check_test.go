package local

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/mftflow/mftflow/pipeline"
)

func specOf(t *testing.T, k pipeline.Kind) pipeline.Spec {
	t.Helper()
	r := pipeline.NewRegistry()
	if err := Register(r); err != nil {
		t.Fatal(err)
	}
	s, _ := r.Lookup(k, "local")
	return s
}

func configOf(t *testing.T, s pipeline.Spec, raw map[string]any) pipeline.Config {
	t.Helper()
	c, err := pipeline.ParseConfig(s, raw)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func errLines(err error) []string {
	if err == nil {
		return nil
	}
	return strings.Split(err.Error(), "\n")
}

func TestCheckSource(t *testing.T) {
	dir, err := filepath.EvalSymlinks(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(dir, "file")
	if err := os.WriteFile(file, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	spec := specOf(t, pipeline.KindSource)
	tests := []struct {
		raw  map[string]any
		want []string
	}{
		{map[string]any{"path": dir, "include": []string{"**/*.csv"}, "after": "move", "archive_dir": filepath.Join(dir, "done")}, nil},
		{map[string]any{"path": filepath.Join(dir, "nope")}, []string{
			`local: field "path": directory ` + filepath.Join(dir, "nope") + ` does not exist: create it, or correct the path`}},
		{map[string]any{"path": file}, []string{
			`local: field "path": ` + file + ` is not a directory: give the directory that holds the files`}},
		{map[string]any{"path": dir, "include": []string{"[a"}, "exclude": []string{""}, "ignore": []string{"{x"}, "trigger": "a/.done"}, []string{
			`local: field "include": invalid glob pattern "[a": close every "[" and "{", or escape them with "\"`,
			`local: field "exclude": an empty pattern matches nothing: remove it, or write "**" for every file`,
			`local: field "ignore": invalid glob pattern "{x": close every "[" and "{", or escape them with "\"`,
			`local: field "trigger": "a/.done": want a suffix such as .done, without slashes`}},
		{map[string]any{"path": dir, "after": "move"}, []string{
			`local: field "archive_dir": required when after is "move": name the directory delivered files are moved to`}},
		{map[string]any{"path": dir, "after": "move", "archive_dir": dir + "/."}, []string{
			`local: field "archive_dir": ` + dir + ` is the source directory itself: give another directory`}},
	}
	for _, tt := range tests {
		err := spec.Check(configOf(t, spec, tt.raw))
		if diff := cmp.Diff(tt.want, errLines(err)); diff != "" {
			t.Errorf("%v (-want +got):\n%s", tt.raw, diff)
		}
	}
}

func TestCheckSink(t *testing.T) {
	dir, err := filepath.EvalSymlinks(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(dir, "file")
	if err := os.WriteFile(file, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	spec := specOf(t, pipeline.KindSink)
	tests := []struct {
		raw  map[string]any
		want []string
	}{
		{map[string]any{"path": filepath.Join(dir, "new"), "name": "{date}/{name}", "part_size": "1GiB"}, nil},
		{map[string]any{"path": file, "name": "{nmae}", "part_size": "2GiB"}, []string{
			`local: field "path": ` + file + ` exists and is not a directory: give a directory (it is created if missing)`,
			`local: field "name": name template "{nmae}": unknown placeholder {nmae} (known: {name} {base} {dir} {stem} {ext} {date} {time} {id} {attr.KEY})`,
			`local: field "part_size": 2GiB is above the limit of 1GiB per part (each part being written is held in memory); lower it`}},
		{map[string]any{"path": dir, "name": "../{name}"}, []string{
			`local: field "name": name template "../{name}" makes unsafe names (contains ".." and would escape the target directory): every file would be refused`}},
	}
	for _, tt := range tests {
		err := spec.Check(configOf(t, spec, tt.raw))
		if diff := cmp.Diff(tt.want, errLines(err)); diff != "" {
			t.Errorf("%v (-want +got):\n%s", tt.raw, diff)
		}
	}
	if _, err := os.Stat(filepath.Join(dir, "new")); err == nil {
		t.Error("Check created the sink's directory")
	}
}

func TestPlaces(t *testing.T) {
	dir, err := filepath.EvalSymlinks(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(filepath.Join(dir, "real"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(filepath.Join(dir, "real"), filepath.Join(dir, "link")); err != nil {
		t.Fatal(err)
	}
	sink := specOf(t, pipeline.KindSink)
	for _, tt := range []struct {
		raw  map[string]any
		want string
	}{
		{map[string]any{"path": filepath.Join(dir, "real")}, dir + "/real"},
		{map[string]any{"path": filepath.Join(dir, "link") + "/"}, dir + "/real"},
		{map[string]any{"path": filepath.Join(dir, "link", "not", "yet"), "name": "out/{date}/{name}"}, dir + "/real/not/yet/out"},
	} {
		p, ok := sink.Place(configOf(t, sink, tt.raw))
		if !ok || p.Store != "file" || p.Dir != tt.want || p.Text != "local directory "+tt.want {
			t.Errorf("sink place of %v = %+v, %v; want %s", tt.raw, p, ok, tt.want)
		}
	}

	source := specOf(t, pipeline.KindSource)
	for _, tt := range []struct {
		raw   map[string]any
		skips map[string]bool
	}{
		{map[string]any{"path": dir}, map[string]bool{"out": false, "a/b": false, ".hidden": true, "a/.hidden/b": true, "x.tmp": true}},
		{map[string]any{"path": dir, "ignore": []string{}}, map[string]bool{".hidden": false}},
		{map[string]any{"path": dir, "exclude": []string{"out"}}, map[string]bool{"out": true, "out/x": true, "outer": false}},
		{map[string]any{"path": dir, "exclude": []string{"out/**"}}, map[string]bool{"out": true, "out/x": true, "a/out": false}},
		{map[string]any{"path": dir, "exclude": []string{"**/tmp"}}, map[string]bool{"a/b/tmp/c": true, "a/b": false}},
		{map[string]any{"path": dir, "recursive": false}, map[string]bool{"out": true}},
		{map[string]any{"path": dir, "after": "move", "archive_dir": filepath.Join(dir, "done")}, map[string]bool{"done": true, "done/x": true, "other": false}},
	} {
		p, ok := source.Place(configOf(t, source, tt.raw))
		if !ok || p.Dir != dir {
			t.Fatalf("source place of %v = %+v, %v", tt.raw, p, ok)
		}
		for rel, want := range tt.skips {
			if got := p.Skips(rel); got != want {
				t.Errorf("source %v: Skips(%q) = %v, want %v", tt.raw, rel, got, want)
			}
		}
	}
}
