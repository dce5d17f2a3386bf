package stages_test

import (
	"bytes"
	"errors"
	"io"
	"testing"
	"testing/iotest"

	"github.com/mftflow/mftflow/pipeline"
	"github.com/mftflow/mftflow/pipeline/stages"
)

func TestMatch(t *testing.T) {
	tests := []struct {
		name string
		cfg  stages.MatchConfig
		file string
		size int64
		want string // the skip error, "" if the file passes
	}{
		{"default passes all", stages.MatchConfig{}, ".hidden/deep/x", 5, ""},
		{"include", stages.MatchConfig{Include: []string{"*.csv"}}, "a.csv", 5, ""},
		{"include misses", stages.MatchConfig{Include: []string{"*.csv"}}, "report.txt", 5,
			`"report.txt" does not match include ["*.csv"]: file skipped`},
		{"star stays in its directory", stages.MatchConfig{Include: []string{"*.csv"}}, "in/a.csv", 5,
			`"in/a.csv" does not match include ["*.csv"]: file skipped`},
		{"doublestar at depth", stages.MatchConfig{Include: []string{"**/*.csv"}}, "in/2024/a.csv", 5, ""},
		{"doublestar at top", stages.MatchConfig{Include: []string{"**/*.csv"}}, "a.csv", 5, ""},
		{"alternatives", stages.MatchConfig{Include: []string{"*.{csv,txt}"}}, "a.txt", 5, ""},
		{"several includes", stages.MatchConfig{Include: []string{"*.csv", "*.txt"}}, "a.bin", 5,
			`"a.bin" does not match include ["*.csv", "*.txt"]: file skipped`},
		{"second include", stages.MatchConfig{Include: []string{"*.csv", "*.txt"}}, "a.txt", 5, ""},
		{"exclude", stages.MatchConfig{Exclude: []string{"tmp/**"}}, "tmp/x.csv", 5,
			`"tmp/x.csv" matches exclude "tmp/**": file skipped`},
		{"exclude after include", stages.MatchConfig{Include: []string{"**"}, Exclude: []string{"**/*.part", "**/.*"}}, "in/.x", 5,
			`"in/.x" matches exclude "**/.*": file skipped`},
		{"exclude misses", stages.MatchConfig{Exclude: []string{"tmp/**"}}, "in/tmp.csv", 5, ""},
		{"regex", stages.MatchConfig{Regex: `^[0-9]{8}_`}, "20240305_a.csv", 5, ""},
		{"regex unanchored", stages.MatchConfig{Regex: `[0-9]{8}`}, "in/20240305.csv", 5, ""},
		{"regex misses", stages.MatchConfig{Regex: `^[0-9]{8}_`}, "x.csv", 5,
			`"x.csv" does not match regex "^[0-9]{8}_": file skipped`},
		{"below min", stages.MatchConfig{MinSize: 1024}, "a.csv", 10,
			`"a.csv" is 10 B, below min_size 1.0 KiB: file skipped`},
		{"at min", stages.MatchConfig{MinSize: 1024}, "a.csv", 1024, ""},
		{"empty file below min", stages.MatchConfig{MinSize: 1}, "a.csv", 0,
			`"a.csv" is 0 B, below min_size 1 B: file skipped`},
		{"above max", stages.MatchConfig{MaxSize: 1 << 20}, "a.csv", 2 << 20,
			`"a.csv" is 2.0 MiB, above max_size 1.0 MiB: file skipped`},
		{"at max", stages.MatchConfig{MaxSize: 1 << 20}, "a.csv", 1 << 20, ""},
		{"unknown size passes min", stages.MatchConfig{MinSize: 1 << 20}, "a.csv", -1, ""},
		{"include is checked first", stages.MatchConfig{Include: []string{"*.csv"}, MinSize: 100}, "a.txt", 1,
			`"a.txt" does not match include ["*.csv"]: file skipped`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m, err := stages.NewMatch(tt.cfg)
			if err != nil {
				t.Fatal(err)
			}
			in := pipeline.File{Name: tt.file, Size: tt.size, Key: "k"}
			r := bytes.NewReader([]byte("12345"))
			out, rr, err := m.Process(t.Context(), in, r)
			if tt.want == "" {
				if err != nil {
					t.Fatalf("got %v, want the file to pass", err)
				}
				if out.Name != in.Name || out.Size != in.Size || out.Key != in.Key {
					t.Errorf("file changed: got %+v, want %+v", out, in)
				}
				if tt.size >= 0 && rr != io.Reader(r) {
					t.Errorf("reader of a file of known size was wrapped")
				}
				return
			}
			if err == nil {
				t.Fatalf("file passed, want %q", tt.want)
			}
			if err.Error() != tt.want {
				t.Errorf("got error\n%s\nwant\n%s", err, tt.want)
			}
			if !errors.Is(err, pipeline.ErrSkip) {
				t.Errorf("error %v does not wrap ErrSkip", err)
			}
			if pipeline.IsPermanent(err) {
				t.Errorf("a skip is not a failure, yet IsPermanent(%v) is true", err)
			}
		})
	}
}

func TestMatchMaxSizeOfUnknownSize(t *testing.T) {
	for _, tt := range []struct {
		name string
		size int
		want string // "" if the whole content passes
	}{
		{"below", 9, ""},
		{"at", 10, ""},
		{"one over", 11, `match: "a.gz" is larger than max_size 10 B (its size was unknown when it was matched)`},
		{"far over", 1 << 16, `match: "a.gz" is larger than max_size 10 B (its size was unknown when it was matched)`},
	} {
		for _, wrap := range []struct {
			name string
			fn   func(io.Reader) io.Reader
		}{{"whole", func(r io.Reader) io.Reader { return r }}, {"one byte", iotest.OneByteReader}} {
			t.Run(tt.name+"/"+wrap.name, func(t *testing.T) {
				m, err := stages.NewMatch(stages.MatchConfig{MaxSize: 10})
				if err != nil {
					t.Fatal(err)
				}
				data := textBytes(tt.size)
				_, got, err := run(t, m, pipeline.File{Name: "a.gz", Size: -1}, wrap.fn(bytes.NewReader(data)))
				if tt.want == "" {
					if err != nil {
						t.Fatal(err)
					}
					if !bytes.Equal(got, data) {
						t.Fatalf("content changed")
					}
					return
				}
				if err == nil || err.Error() != tt.want {
					t.Fatalf("got error %v, want %q", err, tt.want)
				}
				if !pipeline.IsPermanent(err) {
					t.Errorf("IsPermanent(%v) = false", err)
				}
				if !bytes.Equal(got, data[:10]) {
					t.Errorf("read %d bytes before the error, want the first 10", len(got))
				}
			})
		}
	}
}

func TestNewMatchErrors(t *testing.T) {
	for _, tt := range []struct {
		cfg  stages.MatchConfig
		want string
	}{
		{stages.MatchConfig{Include: []string{"*.csv", "[a"}}, `match: include pattern "[a": syntax error in pattern`},
		{stages.MatchConfig{Exclude: []string{"{a,b"}}, `match: exclude pattern "{a,b": syntax error in pattern`},
		{stages.MatchConfig{Regex: "("}, "match: regex \"(\": error parsing regexp: missing closing ): `(`"},
		{stages.MatchConfig{MinSize: 2048, MaxSize: 1024}, "match: min_size 2.0 KiB is above max_size 1.0 KiB: no file could match"},
		{stages.MatchConfig{MaxSize: -1}, "match: min_size and max_size must not be negative"},
	} {
		_, err := stages.NewMatch(tt.cfg)
		if err == nil || err.Error() != tt.want {
			t.Errorf("NewMatch(%+v): got error %v, want %q", tt.cfg, err, tt.want)
		}
	}
}

func TestMatchConfigIsCopied(t *testing.T) {
	include := []string{"*.csv"}
	m, err := stages.NewMatch(stages.MatchConfig{Include: include})
	if err != nil {
		t.Fatal(err)
	}
	include[0] = "*.txt"
	if _, _, err := m.Process(t.Context(), pipeline.File{Name: "a.csv", Size: 1}, bytes.NewReader(nil)); err != nil {
		t.Errorf("changing the caller's slice changed the stage: %v", err)
	}
}
