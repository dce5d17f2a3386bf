package stages_test

import (
	"bytes"
	"errors"
	"io"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/mftflow/mftflow/pipeline"
	"github.com/mftflow/mftflow/pipeline/stages"
)

func TestRename(t *testing.T) {
	// 01:30 at UTC+2 is the previous day in UTC.
	mod := time.Date(2024, 3, 6, 1, 30, 15, 0, time.FixedZone("EET", 2*3600))
	file := pipeline.File{
		ID: "f-123", Key: "k", Name: "in/report.final.csv", Size: 42, SHA256: "abc", ModTime: mod,
		Attrs: map[string]string{"code": "X1", "sub": "a/b"},
	}
	tests := []struct {
		tmpl string
		want string
	}{
		{"{name}", "in/report.final.csv"},
		{"{base}", "report.final.csv"},
		{"out/{dir}/{base}", "out/in/report.final.csv"},
		{"{stem}.bak", "report.final.bak"},
		{"{dir}/{date}/{stem}-{attr.code}{ext}", "in/2024-03-05/report.final-X1.csv"},
		{"{date}T{time}_{base}", "2024-03-05T233015_report.final.csv"},
		{"{id}{ext}", "f-123.csv"},
		{"{attr.sub}/{base}", "a/b/report.final.csv"},
		{"{attr.missing}x/{base}", "x/report.final.csv"},
		{"./a//b/{base}", "a/b/report.final.csv"},
	}
	for _, tt := range tests {
		t.Run(tt.tmpl, func(t *testing.T) {
			s, err := stages.NewRename(stages.RenameConfig{Name: tt.tmpl})
			if err != nil {
				t.Fatal(err)
			}
			r := bytes.NewReader([]byte("data"))
			out, rr, err := s.Process(t.Context(), file, r)
			if err != nil {
				t.Fatal(err)
			}
			want := file
			want.Name = tt.want
			if diff := cmp.Diff(want, out); diff != "" {
				t.Errorf("file (-want +got):\n%s", diff)
			}
			if rr != io.Reader(r) {
				t.Errorf("content reader was replaced")
			}
		})
	}
	if file.Name != "in/report.final.csv" {
		t.Errorf("input file changed: %q", file.Name)
	}
}

func TestRenameAtTheTop(t *testing.T) {
	f := pipeline.File{Name: "x.csv", Attrs: map[string]string{"abs": "/etc/passwd", "empty": ""}}
	for _, tt := range []struct{ tmpl, want string }{
		{"{dir}/{base}", "x.csv"},          // {dir} is empty at the top
		{"{attr.empty}/{dir}/{stem}", "x"}, // so are missing attributes
		{"in/{attr.abs}/{base}", "in/etc/passwd/x.csv"},
	} {
		s, err := stages.NewRename(stages.RenameConfig{Name: tt.tmpl})
		if err != nil {
			t.Fatal(err)
		}
		out, _, err := s.Process(t.Context(), f, bytes.NewReader(nil))
		if err != nil || out.Name != tt.want {
			t.Errorf("%s: got %q, %v; want %q", tt.tmpl, out.Name, err, tt.want)
		}
	}
}

// A value that is an absolute path stays one and is refused.
func TestRenameRefusesAbsoluteValue(t *testing.T) {
	f := pipeline.File{Name: "x.csv", Attrs: map[string]string{"abs": "/etc/passwd"}}
	s, err := stages.NewRename(stages.RenameConfig{Name: "{attr.abs}"})
	if err != nil {
		t.Fatal(err)
	}
	_, _, err = s.Process(t.Context(), f, bytes.NewReader(nil))
	want := `rename "x.csv" with template "{attr.abs}": file name "/etc/passwd": absolute path: unsafe file name`
	if err == nil || err.Error() != want {
		t.Errorf("got %v, want %s", err, want)
	}
}

func TestRenameWithoutModTimeUsesNow(t *testing.T) {
	s, err := stages.NewRename(stages.RenameConfig{Name: "{date}/{base}"})
	if err != nil {
		t.Fatal(err)
	}
	before := time.Now().UTC().Format("2006-01-02")
	out, _, err := s.Process(t.Context(), pipeline.File{Name: "a.csv"}, bytes.NewReader(nil))
	after := time.Now().UTC().Format("2006-01-02")
	if err != nil {
		t.Fatal(err)
	}
	if out.Name != before+"/a.csv" && out.Name != after+"/a.csv" {
		t.Errorf("got %q, want today's date (UTC) in the name", out.Name)
	}
}

func TestRenameIsDeterministic(t *testing.T) {
	s, err := stages.NewRename(stages.RenameConfig{Name: "{date}-{time}-{base}"})
	if err != nil {
		t.Fatal(err)
	}
	f := pipeline.File{Name: "a.csv", ModTime: time.Date(2024, 1, 2, 3, 4, 5, 0, time.UTC)}
	first, _, err := s.Process(t.Context(), f, bytes.NewReader(nil))
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(1100 * time.Millisecond) // across a second: the clock must not matter
	second, _, err := s.Process(t.Context(), f, bytes.NewReader(nil))
	if err != nil {
		t.Fatal(err)
	}
	if first.Name != "2024-01-02-030405-a.csv" || second.Name != first.Name {
		t.Errorf("got %q then %q, want 2024-01-02-030405-a.csv twice", first.Name, second.Name)
	}
}

func TestRenameUnsafeNames(t *testing.T) {
	f := pipeline.File{Name: "x.csv", Attrs: map[string]string{"up": "../evil", "abs": "/etc/passwd", "nul": "a\x00b"}}
	for _, tt := range []struct {
		tmpl string
		want string
	}{
		{"{attr.up}", `rename "x.csv" with template "{attr.up}": file name "../evil": contains ".." and would escape the target directory: unsafe file name`},
		{"/out/{base}", `rename "x.csv" with template "/out/{base}": file name "/out/x.csv": absolute path: unsafe file name`},
		{"{attr.nul}", `rename "x.csv" with template "{attr.nul}": file name "a\x00b": contains a NUL byte: unsafe file name`},
		{"{attr.none}", `rename "x.csv" with template "{attr.none}": file name "": empty name: unsafe file name`},
		{"a/../../{base}", `rename "x.csv" with template "a/../../{base}": file name "a/../../x.csv": contains ".." and would escape the target directory: unsafe file name`},
		{"./", `rename "x.csv" with template "./": file name "./": names no file: unsafe file name`},
	} {
		s, err := stages.NewRename(stages.RenameConfig{Name: tt.tmpl})
		if err != nil {
			t.Fatal(err)
		}
		_, _, err = s.Process(t.Context(), f, bytes.NewReader(nil))
		if err == nil || err.Error() != tt.want {
			t.Errorf("%s: got error\n%v\nwant\n%s", tt.tmpl, err, tt.want)
			continue
		}
		if !errors.Is(err, pipeline.ErrBadName) || !pipeline.IsPermanent(err) {
			t.Errorf("%s: %v is not a permanent ErrBadName", tt.tmpl, err)
		}
	}
}

func TestNewRenameErrors(t *testing.T) {
	for _, tt := range []struct {
		tmpl string
		want string
	}{
		{"", "rename: the name template is empty"},
		{"{nme}", `rename: name template "{nme}": unknown placeholder {nme} (known: {name} {base} {dir} {stem} {ext} {date} {time} {id} {attr.KEY})`},
		{"{attr.}", `rename: name template "{attr.}": unknown placeholder {attr.} (known: {name} {base} {dir} {stem} {ext} {date} {time} {id} {attr.KEY})`},
		{"out/{name", `rename: name template "out/{name": unclosed {`},
	} {
		_, err := stages.NewRename(stages.RenameConfig{Name: tt.tmpl})
		if err == nil || err.Error() != tt.want {
			t.Errorf("NewRename(%q): got error\n%v\nwant\n%s", tt.tmpl, err, tt.want)
		}
	}
}
