package flowfile

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/mftflow/mftflow/pipeline"
)

func TestLoad(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "flow.yaml")
	data := lines("name: x", "source: {local: {path: '${FLOWFILE_TEST_INBOX}'}}", "sinks: [memory: {}]")
	if err := os.WriteFile(path, []byte(data), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("FLOWFILE_TEST_INBOX", "/srv/inbox")
	f, err := Load(path, testRegistry(t))
	if err != nil {
		t.Fatal(err)
	}
	if got := f.Source.Config["path"]; got != "/srv/inbox" {
		t.Errorf("path = %v, want /srv/inbox", got)
	}
	if f.Pos.File != path {
		t.Errorf("Pos.File = %q, want %q", f.Pos.File, path)
	}

	_, err = Load(filepath.Join(dir, "missing.yaml"), testRegistry(t))
	if !errors.Is(err, fs.ErrNotExist) || !strings.HasPrefix(err.Error(), "reading flow file: ") {
		t.Errorf("Load of a missing file: %v", err)
	}
}

func TestErrorTypes(t *testing.T) {
	in := lines("name: x", "source: {ftp: {}}", "sinks: [local: {path: a, fsync: maybe}]")
	_, err := Parse("f.yaml", []byte(in), testRegistry(t), env(nil))
	var all Errors
	if !errors.As(err, &all) || len(all) != 2 {
		t.Fatalf("errors.As(Errors): %v", err)
	}
	type result struct {
		Pos pipeline.Pos
		Msg string
		Err string // the type and text of the underlying error
	}
	want := []result{
		{
			Pos: pipeline.Pos{File: "f.yaml", Line: 2, Column: 10},
			Msg: `unknown source connector "ftp" (known: local, s3)`,
			Err: `*pipeline.UnknownError: unknown source connector "ftp" (known: local, s3)`,
		},
		{
			Pos: pipeline.Pos{File: "f.yaml", Line: 3, Column: 33},
			Msg: `local sink: field "fsync": want true or false, got string maybe`,
			Err: `*pipeline.FieldError: local: field "fsync": want true or false, got string maybe`,
		},
	}
	var got []result
	for _, e := range all {
		got = append(got, result{e.Pos, e.Msg, fmt.Sprintf("%T: %v", e.Err, e.Err)})
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("Errors mismatch (-want +got):\n%s", diff)
	}
	var unknown *pipeline.UnknownError
	if !errors.As(err, &unknown) || unknown.Name != "ftp" {
		t.Errorf("errors.As(*pipeline.UnknownError) = %v", unknown)
	}
	var field *pipeline.FieldError
	if !errors.As(err, &field) || field.Field != "fsync" {
		t.Errorf("errors.As(*pipeline.FieldError) = %v", field)
	}
	var first *Error
	if !errors.As(err, &first) || first != all[0] {
		t.Errorf("errors.As(*Error) = %v", first)
	}
	if got := (&Error{Pos: pipeline.Pos{Line: 3, Column: 4}, Msg: "m"}).Error(); got != "3:4: m" {
		t.Errorf("Error without a file name = %q", got)
	}
}

func TestLimits(t *testing.T) {
	reg := testRegistry(t)

	// Merge keys that expand to 10^9 entries.
	level := "&a0 {x: 1}"
	for i := 1; i <= 9; i++ {
		level = fmt.Sprintf("&a%d {<<: [%s%s]}", i, level, strings.Repeat(fmt.Sprintf(", *a%d", i-1), 9))
	}
	bomb := lines("name: x", "source: {local: "+level+"}", "sinks: [memory: {}]")
	_, err := Parse("f.yaml", []byte(bomb), reg, env(nil))
	var all Errors
	if !errors.As(err, &all) || len(all) != 1 || !strings.HasSuffix(all[0].Msg, "aliases expand the file by more than 100000 YAML nodes: a flow file this large is refused") {
		t.Errorf("alias bomb: %v", err)
	}

	big := lines("name: x", "source: {local: {path: a, include: ["+strings.Repeat("x, ", MaxNodes)+"x]}}", "sinks: [memory: {}]")
	_, err = Parse("f.yaml", []byte(big), reg, env(nil))
	if want := "f.yaml:2:300001: the file has more than 100000 YAML nodes: a flow file this large is refused"; err == nil || err.Error() != want {
		t.Errorf("too many nodes: %v", err)
	}

	huge := make([]byte, MaxFileSize+1)
	for i := range huge {
		huge[i] = '#'
	}
	_, err = Parse("f.yaml", huge, reg, env(nil))
	if want := "f.yaml:1:1: the file is larger than 8 MiB: a flow file this large is refused"; err == nil || err.Error() != want {
		t.Errorf("huge file: %v", err)
	}
}

// TestCheckErrors covers reporting what pipeline.Flow.Check finds, which
// the parser's own checks normally pre-empt.
func TestCheckErrors(t *testing.T) {
	p := &parser{file: "f.yaml"}
	flowAt := pipeline.Pos{File: "f.yaml", Line: 1, Column: 1}
	sinkAt := pipeline.Pos{File: "f.yaml", Line: 5, Column: 5}
	p.check(&pipeline.Flow{
		Name:   "x",
		Pos:    flowAt,
		Source: pipeline.Use("local", nil),
		Sinks: []pipeline.SinkSpec{
			{Name: "a", Component: pipeline.Component{Type: "memory", Pos: sinkAt}, Parallelism: -1},
		},
		Bus: pipeline.BusSpec{Compression: "lz4"},
	})
	want := lines(
		`f.yaml:1:1: bus compression "lz4": want one of s2, zstd, none`,
		`f.yaml:5:5: sink "a": parallelism, files and retry settings must not be negative`,
	)
	if diff := cmp.Diff(strings.TrimSuffix(want, "\n"), p.sorted().Error()); diff != "" {
		t.Errorf("mismatch (-want +got):\n%s", diff)
	}
}
