package local

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"io"
	"io/fs"
	mrand "math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"testing/iotest"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/mftflow/mftflow/pipeline"
	"github.com/mftflow/mftflow/testkit"
)

func newTestSink(t *testing.T, c SinkConfig) *Sink {
	t.Helper()
	if c.Path == "" {
		c.Path = t.TempDir()
	}
	s, err := NewSink(c)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func randomData(n int) []byte {
	b := make([]byte, n)
	rand.Read(b)
	return b
}

// partsOf cuts size bytes into parts of partSize.
func partsOf(size, partSize int64) []pipeline.Part {
	var parts []pipeline.Part
	for off, n := int64(0), 0; off < size || n == 0; off, n = off+partSize, n+1 {
		sz := min(partSize, size-off)
		parts = append(parts, pipeline.Part{Number: n, Offset: off, Size: sz, Last: off+sz >= size})
	}
	return parts
}

// writeParts writes the given parts of data, all at once, in the given order.
func writeParts(t *testing.T, u pipeline.Upload, data []byte, parts []pipeline.Part) {
	t.Helper()
	var wg sync.WaitGroup
	errs := make(chan error, len(parts))
	for _, p := range parts {
		wg.Add(1)
		go func(p pipeline.Part) {
			defer wg.Done()
			errs <- u.WritePart(context.Background(), p, bytes.NewReader(data[p.Offset:p.Offset+p.Size]))
		}(p)
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
}

func shuffled(parts []pipeline.Part) []pipeline.Part {
	out := append([]pipeline.Part(nil), parts...)
	mrand.Shuffle(len(out), func(i, j int) { out[i], out[j] = out[j], out[i] })
	return out
}

// tree lists the files under dir (slash names -> sha256), hidden ones included.
func tree(t *testing.T, dir string) map[string]string {
	t.Helper()
	out := map[string]string{}
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		out[filepath.ToSlash(rel)] = testkit.SHA256Hex(b)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func fileFor(name string, data []byte) pipeline.File {
	return pipeline.File{ID: "0123abcd", Key: name + "|x", Name: name, Size: int64(len(data)), SHA256: testkit.SHA256Hex(data)}
}

func TestSinkParallelParts(t *testing.T) {
	tests := []struct {
		name     string
		size     int
		partSize int64
		fsync    bool
	}{
		{"many parts", 1<<20 + 12345, 64 << 10, false},
		{"fsync", 300<<10 + 1, 64 << 10, true},
		{"one part", 1000, 8 << 20, false},
		{"exact multiple", 256 << 10, 64 << 10, false},
		{"empty", 0, 64 << 10, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			s := newTestSink(t, SinkConfig{Path: dir, PartSize: tt.partSize, Fsync: tt.fsync})
			data := randomData(tt.size)
			f := fileFor("sub/dir/out.bin", data)
			u, err := s.Open(context.Background(), f, nil)
			if err != nil {
				t.Fatal(err)
			}
			if got := u.Plan(); got != (pipeline.PartPlan{PartSize: tt.partSize}) {
				t.Errorf("Plan() = %+v", got)
			}
			writeParts(t, u, data, shuffled(partsOf(int64(tt.size), tt.partSize)))
			target := filepath.Join(dir, "sub", "dir", "out.bin")
			if exists(target) {
				t.Fatal("the target is visible before Commit")
			}
			if err := u.Commit(context.Background(), f); err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(map[string]string{"sub/dir/out.bin": testkit.SHA256Hex(data)}, tree(t, dir)); diff != "" {
				t.Errorf("directory after Commit (-want +got):\n%s", diff)
			}
			// Commit again and Abort after Commit change nothing.
			if err := u.Commit(context.Background(), f); err != nil {
				t.Errorf("second Commit: %v", err)
			}
			if err := u.Abort(context.Background(), nil); err != nil {
				t.Errorf("Abort after Commit: %v", err)
			}
			if !exists(target) {
				t.Error("Abort after Commit removed the file")
			}
		})
	}
}

func TestSinkRewritingAPartIsHarmless(t *testing.T) {
	dir := t.TempDir()
	s := newTestSink(t, SinkConfig{Path: dir, PartSize: 1000})
	data := randomData(2500)
	f := fileFor("x", data)
	u, err := s.Open(context.Background(), f, nil)
	if err != nil {
		t.Fatal(err)
	}
	parts := partsOf(2500, 1000)
	writeParts(t, u, data, append(parts, parts[1], parts[2], parts[1]))
	if err := u.Commit(context.Background(), f); err != nil {
		t.Fatal(err)
	}
	if got := tree(t, dir)["x"]; got != testkit.SHA256Hex(data) {
		t.Error("content differs")
	}
}

func TestSinkAbort(t *testing.T) {
	dir := t.TempDir()
	s := newTestSink(t, SinkConfig{Path: dir, PartSize: 100})
	data := randomData(1000)
	f := fileFor("a/b.txt", data)
	u, err := s.Open(context.Background(), f, nil)
	if err != nil {
		t.Fatal(err)
	}
	writeParts(t, u, data, partsOf(1000, 100)[:4])
	for i := 0; i < 2; i++ {
		if err := u.Abort(context.Background(), errors.New("a sink failed")); err != nil {
			t.Fatalf("Abort #%d: %v", i+1, err)
		}
	}
	if got := tree(t, dir); len(got) != 0 {
		t.Errorf("files left after Abort: %v", got)
	}
	if err := u.WritePart(context.Background(), pipeline.Part{Size: 1}, strings.NewReader("x")); err == nil {
		t.Error("WritePart after Abort succeeded")
	}
	if err := u.Commit(context.Background(), f); err == nil || !strings.Contains(err.Error(), "a sink failed") {
		t.Errorf("Commit after Abort = %v", err)
	}
}

func TestSinkShortPart(t *testing.T) {
	s := newTestSink(t, SinkConfig{})
	u, err := s.Open(context.Background(), pipeline.File{Name: "x", Size: 10}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer u.Abort(context.Background(), nil)
	err = u.WritePart(context.Background(), pipeline.Part{Size: 10}, strings.NewReader("short"))
	if !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Errorf("WritePart with a short reader = %v, want io.ErrUnexpectedEOF", err)
	}
	err = u.WritePart(context.Background(), pipeline.Part{Size: 10}, iotest.ErrReader(errors.New("boom")))
	if err == nil || !strings.Contains(err.Error(), "boom") {
		t.Errorf("WritePart with a failing reader = %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := u.WritePart(ctx, pipeline.Part{Size: 1}, strings.NewReader("x")); !errors.Is(err, context.Canceled) {
		t.Errorf("WritePart with a cancelled context = %v", err)
	}
}

func TestSinkRefusesMissingParts(t *testing.T) {
	dir := t.TempDir()
	s := newTestSink(t, SinkConfig{Path: dir, PartSize: 100})
	data := randomData(1000)
	f := fileFor("x", data)
	u, err := s.Open(context.Background(), f, nil)
	if err != nil {
		t.Fatal(err)
	}
	writeParts(t, u, data, partsOf(1000, 100)[:9])
	err = u.Commit(context.Background(), f)
	if err == nil || !strings.Contains(err.Error(), "parts are missing") || !pipeline.IsPermanent(err) {
		t.Fatalf("Commit = %v, want a permanent error about missing parts", err)
	}
	if got := tree(t, dir); len(got) != 0 {
		t.Errorf("files left: %v", got)
	}
}

// crash drops an upload without Commit or Abort, as a killed process would.
func crash(u pipeline.Upload) {
	u.(*upload).file.Close()
}

func TestSinkResume(t *testing.T) {
	const size, partSize = 10000, 1000
	tests := []struct {
		name string
		// before the restart: how many parts are written; loseTemp removes the temp file
		before   int
		loseTemp bool
		badState bool
		// after the restart: parts written again (from this index on)
		from    int
		wantErr string
	}{
		{name: "temp kept", before: 5, from: 5},
		{name: "temp kept, everything sent again", before: 5, from: 0},
		{name: "temp lost, everything sent again", before: 5, loseTemp: true, from: 0},
		{name: "temp lost, only the rest sent", before: 5, loseTemp: true, from: 5,
			wantErr: "was lost in a restart and parts written before it were not sent again"},
		{name: "unusable state", before: 5, badState: true, from: 0},
		{name: "unusable state, only the rest sent", before: 5, badState: true, from: 5,
			wantErr: "was lost in a restart"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			data := randomData(size)
			f := fileFor("r/resumed.bin", data)
			parts := partsOf(size, partSize)

			u, err := newTestSink(t, SinkConfig{Path: dir, PartSize: partSize}).Open(context.Background(), f, nil)
			if err != nil {
				t.Fatal(err)
			}
			writeParts(t, u, data, parts[:tt.before])
			state := u.State()
			crash(u)
			var st resumeState
			if err := json.Unmarshal(state, &st); err != nil {
				t.Fatalf("State() = %q: %v", state, err)
			}
			if tt.loseTemp {
				if err := os.Remove(string(st.TempRaw)); err != nil {
					t.Fatal(err)
				}
			}
			if tt.badState {
				state = []byte(`{"temp":"/etc/passwd","target":"/etc/passwd"}`)
			}

			s2 := newTestSink(t, SinkConfig{Path: dir, PartSize: partSize}) // a new process
			u2, err := s2.Open(context.Background(), f, state)
			if err != nil {
				t.Fatal(err)
			}
			rest := parts[tt.from:]
			writeParts(t, u2, data, shuffled(rest[:len(rest)/2]))
			// A second crash after the restart resumes from the newer state.
			state2 := u2.State()
			crash(u2)
			u3, err := newTestSink(t, SinkConfig{Path: dir, PartSize: partSize}).Open(context.Background(), f, state2)
			if err != nil {
				t.Fatal(err)
			}
			writeParts(t, u3, data, shuffled(rest[len(rest)/2:]))
			err = u3.Commit(context.Background(), f)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) || !pipeline.IsPermanent(err) {
					t.Fatalf("Commit = %v, want a permanent error containing %q", err, tt.wantErr)
				}
				if got := tree(t, dir); len(got) != 0 {
					t.Errorf("files left after a refused Commit: %v", got)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(map[string]string{"r/resumed.bin": testkit.SHA256Hex(data)}, tree(t, dir)); diff != "" {
				t.Errorf("directory (-want +got):\n%s", diff)
			}
		})
	}
}

func TestSinkCommitAfterCrash(t *testing.T) {
	for _, policy := range []string{OverwriteReplace, OverwriteFail, OverwriteSkip, OverwriteRename} {
		t.Run(policy, func(t *testing.T) {
			for _, when := range []string{"after publishing", "between link and unlink"} {
				if when == "between link and unlink" && policy == OverwriteReplace {
					continue // rename has no such moment
				}
				t.Run(when, func(t *testing.T) {
					dir := t.TempDir()
					c := SinkConfig{Path: dir, PartSize: 1000, Overwrite: policy}
					data := randomData(3000)
					f := fileFor("x.bin", data)
					u, err := newTestSink(t, c).Open(context.Background(), f, nil)
					if err != nil {
						t.Fatal(err)
					}
					writeParts(t, u, data, partsOf(3000, 1000))
					state := u.State()
					if when == "after publishing" {
						if err := u.Commit(context.Background(), f); err != nil {
							t.Fatal(err)
						}
					} else {
						crash(u)
						var st resumeState
						json.Unmarshal(state, &st)
						if err := os.Link(string(st.TempRaw), filepath.Join(dir, "x.bin")); err != nil {
							t.Fatal(err)
						}
					}
					// The engine did not record the commit and resumes the upload.
					u2, err := newTestSink(t, c).Open(context.Background(), f, state)
					if err != nil {
						t.Fatalf("Open with the state: %v", err)
					}
					if err := u2.Commit(context.Background(), f); err != nil {
						t.Fatalf("Commit after the crash: %v", err)
					}
					if diff := cmp.Diff(map[string]string{"x.bin": testkit.SHA256Hex(data)}, tree(t, dir)); diff != "" {
						t.Errorf("directory (-want +got):\n%s", diff)
					}
				})
			}
		})
	}
}

func TestSinkResumeKeepsTheName(t *testing.T) {
	dir := t.TempDir()
	day1 := time.Date(2024, 3, 5, 23, 59, 59, 0, time.UTC)
	c := SinkConfig{Path: dir, Name: "{date}/{name}", PartSize: 10}
	s1 := newTestSink(t, c)
	s1.now = func() time.Time { return day1 }
	data := randomData(30)
	f := fileFor("a.txt", data)
	u, err := s1.Open(context.Background(), f, nil)
	if err != nil {
		t.Fatal(err)
	}
	writeParts(t, u, data, partsOf(30, 10)[:1])
	state := u.State()
	crash(u)
	s2 := newTestSink(t, c)
	s2.now = func() time.Time { return day1.Add(time.Minute) }
	u2, err := s2.Open(context.Background(), f, state)
	if err != nil {
		t.Fatal(err)
	}
	writeParts(t, u2, data, partsOf(30, 10)[1:])
	if err := u2.Commit(context.Background(), f); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(map[string]string{"2024-03-05/a.txt": testkit.SHA256Hex(data)}, tree(t, dir)); diff != "" {
		t.Errorf("directory (-want +got):\n%s", diff)
	}
}

// A name that is not UTF-8 survives the resume state: JSON strings would
// replace its odd bytes, and the file would be published under another name.
func TestSinkResumeKeepsOddBytesInNames(t *testing.T) {
	dir := t.TempDir()
	c := SinkConfig{Path: dir, Name: "{name}", PartSize: 10}
	data := randomData(30)
	f := fileFor("odd-\xff\xfe/n\x80.txt", data)
	u, err := newTestSink(t, c).Open(context.Background(), f, nil)
	if err != nil {
		t.Fatal(err)
	}
	writeParts(t, u, data, partsOf(30, 10)[:1])
	state := u.State()
	crash(u)
	u2, err := newTestSink(t, c).Open(context.Background(), f, state)
	if err != nil {
		t.Fatal(err)
	}
	writeParts(t, u2, data, partsOf(30, 10)[1:])
	if err := u2.Commit(context.Background(), f); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(map[string]string{"odd-\xff\xfe/n\x80.txt": testkit.SHA256Hex(data)}, tree(t, dir)); diff != "" {
		t.Errorf("directory (-want +got):\n%s", diff)
	}
}

func TestSinkOverwrite(t *testing.T) {
	old, data := []byte("old content"), []byte("new content!")
	tests := []struct {
		policy string
		// existsAt: the target appears before Open or between Open and Commit
		existsAt string
		want     map[string]string
		wantErr  error
	}{
		{OverwriteReplace, "open", map[string]string{"d/x.txt": testkit.SHA256Hex(data)}, nil},
		{OverwriteReplace, "commit", map[string]string{"d/x.txt": testkit.SHA256Hex(data)}, nil},
		{OverwriteSkip, "open", map[string]string{"d/x.txt": testkit.SHA256Hex(old)}, pipeline.ErrSkip},
		{OverwriteSkip, "commit", map[string]string{"d/x.txt": testkit.SHA256Hex(old)}, pipeline.ErrSkip},
		{OverwriteFail, "open", map[string]string{"d/x.txt": testkit.SHA256Hex(old)}, pipeline.ErrExists},
		{OverwriteFail, "commit", map[string]string{"d/x.txt": testkit.SHA256Hex(old)}, pipeline.ErrExists},
		{OverwriteRename, "open", map[string]string{"d/x.txt": testkit.SHA256Hex(old), "d/x-1.txt": testkit.SHA256Hex(data)}, nil},
		{OverwriteRename, "commit", map[string]string{"d/x.txt": testkit.SHA256Hex(old), "d/x-1.txt": testkit.SHA256Hex(data)}, nil},
		{OverwriteRename, "never", map[string]string{"d/x.txt": testkit.SHA256Hex(data)}, nil},
		{OverwriteFail, "never", map[string]string{"d/x.txt": testkit.SHA256Hex(data)}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.policy+"/"+tt.existsAt, func(t *testing.T) {
			dir := t.TempDir()
			s := newTestSink(t, SinkConfig{Path: dir, Overwrite: tt.policy})
			f := fileFor("d/x.txt", data)
			if tt.existsAt == "open" {
				writeFiles(t, dir, map[string]string{"d/x.txt": string(old)})
			}
			err := func() error {
				u, err := s.Open(context.Background(), f, nil)
				if err != nil {
					return err
				}
				writeParts(t, u, data, partsOf(int64(len(data)), DefaultPartSize))
				if tt.existsAt == "commit" {
					writeFiles(t, dir, map[string]string{"d/x.txt": string(old)})
				}
				err = u.Commit(context.Background(), f)
				if err != nil {
					u.Abort(context.Background(), err)
				}
				return err
			}()
			if tt.wantErr == nil && err != nil || !errors.Is(err, tt.wantErr) {
				t.Fatalf("error = %v, want %v", err, tt.wantErr)
			}
			if err != nil && !strings.Contains(err.Error(), filepath.Join(dir, "d", "x.txt")) {
				t.Errorf("error %q does not name the target", err)
			}
			if errors.Is(err, pipeline.ErrExists) && !pipeline.IsPermanent(err) {
				t.Errorf("error %q is not permanent", err)
			}
			if diff := cmp.Diff(tt.want, tree(t, dir)); diff != "" {
				t.Errorf("directory (-want +got):\n%s", diff)
			}
		})
	}
}

func TestSinkRenameCounts(t *testing.T) {
	dir := t.TempDir()
	s := newTestSink(t, SinkConfig{Path: dir, Overwrite: OverwriteRename})
	want := map[string]string{}
	for i, name := range []string{"x.txt", "x-1.txt", "x-2.txt"} {
		data := []byte(strings.Repeat("v", i+1))
		want[name] = testkit.SHA256Hex(data)
		f := fileFor("x.txt", data)
		u, err := s.Open(context.Background(), f, nil)
		if err != nil {
			t.Fatal(err)
		}
		writeParts(t, u, data, partsOf(int64(len(data)), DefaultPartSize))
		if err := u.Commit(context.Background(), f); err != nil {
			t.Fatal(err)
		}
	}
	if diff := cmp.Diff(want, tree(t, dir)); diff != "" {
		t.Errorf("directory (-want +got):\n%s", diff)
	}
}

func TestSinkTargetIsADirectory(t *testing.T) {
	dir := t.TempDir()
	writeFiles(t, dir, map[string]string{"x/inside": ""})
	s := newTestSink(t, SinkConfig{Path: dir})
	_, err := s.Open(context.Background(), pipeline.File{Name: "x", Size: 0}, nil)
	if err == nil || !strings.Contains(err.Error(), "is a directory") || !pipeline.IsPermanent(err) {
		t.Fatalf("Open = %v, want a permanent error", err)
	}
}

func TestSinkHostileNames(t *testing.T) {
	tests := []struct {
		name string
		want string
	}{
		{"../x", `file name "../x": contains ".." and would escape the target directory: unsafe file name`},
		{"/etc/passwd", `file name "/etc/passwd": absolute path: unsafe file name`},
		{"a/../../b", `file name "a/../../b": contains ".." and would escape the target directory: unsafe file name`},
		{"a/..", `file name "a/..": contains ".." and would escape the target directory: unsafe file name`},
		{"a\x00b", `file name "a\x00b": contains a NUL byte: unsafe file name`},
		{`a\b`, `file name "a\\b": contains a backslash: unsafe file name`},
		{`..\x`, `file name "..\\x": contains a backslash: unsafe file name`},
		{"", `file name "": empty name: unsafe file name`},
		{".", `file name ".": names no file: unsafe file name`},
		{"C:x", `file name "C:x": absolute path: unsafe file name`},
	}
	dir := t.TempDir()
	s := newTestSink(t, SinkConfig{Path: dir})
	for _, tt := range tests {
		u, err := s.Open(context.Background(), pipeline.File{Name: tt.name, Size: 1}, nil)
		if err == nil {
			u.Abort(context.Background(), nil)
			t.Errorf("Open(%q) succeeded", tt.name)
			continue
		}
		if err.Error() != tt.want {
			t.Errorf("Open(%q):\n got %s\nwant %s", tt.name, err, tt.want)
		}
		if !errors.Is(err, pipeline.ErrBadName) || !pipeline.IsPermanent(err) {
			t.Errorf("Open(%q) = %v, want a permanent ErrBadName", tt.name, err)
		}
	}
	// A template can build a hostile name too.
	s2 := newTestSink(t, SinkConfig{Path: dir, Name: "{attr.dir}/{base}"})
	_, err := s2.Open(context.Background(), pipeline.File{Name: "x", Attrs: map[string]string{"dir": ".."}}, nil)
	if want := `file name "../x": contains ".." and would escape the target directory: unsafe file name`; err == nil || err.Error() != want {
		t.Errorf("Open with a hostile attribute = %v, want %s", err, want)
	}
	if got := tree(t, dir); len(got) != 0 {
		t.Errorf("files created: %v", got)
	}
	if got, _ := os.ReadDir(filepath.Dir(dir)); len(got) != 1 {
		t.Errorf("something was written next to the sink directory: %v", got)
	}
}

func TestSinkNameTemplates(t *testing.T) {
	now := time.Date(2024, 3, 5, 14, 15, 16, 0, time.UTC)
	file := pipeline.File{ID: "abc123", Name: "in/report.final.csv", Attrs: map[string]string{"code": "ACME"}}
	tests := []struct {
		tmpl string
		want string
	}{
		{"{name}", "in/report.final.csv"},
		{"{base}", "report.final.csv"},
		{"{stem}-{id}{ext}", "report.final-abc123.csv"},
		{"{date}/{time}-{base}", "2024-03-05/141516-report.final.csv"},
		{"{attr.code}/{dir}/{base}", "ACME/in/report.final.csv"},
		{"out/{attr.missing}{base}", "out/report.final.csv"},
		{"./x//{base}", "x/report.final.csv"},
	}
	for _, tt := range tests {
		t.Run(tt.tmpl, func(t *testing.T) {
			dir := t.TempDir()
			s := newTestSink(t, SinkConfig{Path: dir, Name: tt.tmpl})
			s.now = func() time.Time { return now }
			data := []byte("content")
			f := file
			f.Size, f.SHA256 = int64(len(data)), testkit.SHA256Hex(data)
			u, err := s.Open(context.Background(), f, nil)
			if err != nil {
				t.Fatal(err)
			}
			writeParts(t, u, data, partsOf(int64(len(data)), DefaultPartSize))
			if err := u.Commit(context.Background(), f); err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(map[string]string{tt.want: testkit.SHA256Hex(data)}, tree(t, dir)); diff != "" {
				t.Errorf("directory (-want +got):\n%s", diff)
			}
		})
	}
}

func TestNewSinkErrors(t *testing.T) {
	dir := t.TempDir()
	writeFiles(t, dir, map[string]string{"file": ""})
	tests := []struct {
		name string
		c    SinkConfig
		want string
	}{
		{"no path", SinkConfig{}, `local: field "path": required field is missing`},
		{"unknown placeholder", SinkConfig{Path: dir, Name: "{nope}"},
			`local: field "name": name template "{nope}": unknown placeholder {nope} (known: {name} {base} {dir} {stem} {ext} {date} {time} {id} {attr.KEY})`},
		{"unclosed brace", SinkConfig{Path: dir, Name: "{name"}, `local: field "name": name template "{name": unclosed {`},
		{"bad overwrite", SinkConfig{Path: dir, Overwrite: "maybe"}, `local: field "overwrite": want one of replace, skip, fail, rename, got "maybe"`},
		{"negative part size", SinkConfig{Path: dir, PartSize: -1}, `local: field "part_size": must not be negative`},
		{"path is a file", SinkConfig{Path: filepath.Join(dir, "file", "sub")},
			`local: field "path": creating the directory: mkdir ` + filepath.Join(dir, "file") + `: not a directory`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := NewSink(tt.c)
			if err == nil || err.Error() != tt.want {
				t.Errorf("error:\n got %v\nwant %s", err, tt.want)
			}
		})
	}
	// The directory is created.
	p := filepath.Join(dir, "new", "dir")
	if _, err := NewSink(SinkConfig{Path: p}); err != nil || !exists(p) {
		t.Errorf("NewSink = %v; directory exists = %v", err, exists(p))
	}
}

func TestSinkConcurrentUploads(t *testing.T) {
	dir := t.TempDir()
	s := newTestSink(t, SinkConfig{Path: dir, PartSize: 4096})
	want := map[string]string{}
	var wg sync.WaitGroup
	for i := 0; i < 6; i++ {
		data := randomData(20000 + i)
		name := filepath.ToSlash(filepath.Join("d", string(rune('a'+i))+".bin"))
		want[name] = testkit.SHA256Hex(data)
		wg.Add(1)
		go func() {
			defer wg.Done()
			f := fileFor(name, data)
			f.ID = "" // no ID: a random temporary name
			u, err := s.Open(context.Background(), f, nil)
			if err != nil {
				t.Error(err)
				return
			}
			writeParts(t, u, data, shuffled(partsOf(int64(len(data)), 4096)))
			if err := u.Commit(context.Background(), f); err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	if diff := cmp.Diff(want, tree(t, dir)); diff != "" {
		t.Errorf("directory (-want +got):\n%s", diff)
	}
}
