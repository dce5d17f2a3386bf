package sftp

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"path"
	"regexp"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/mftflow/mftflow/pipeline"
	"github.com/mftflow/mftflow/testkit"
	"github.com/mftflow/mftflow/testkit/sshd"
)

const testPart = 64 << 10

func testFile(name string, content []byte) pipeline.File {
	return pipeline.File{ID: "id-" + name, Key: name, Name: name, Size: int64(len(content)), SHA256: testkit.SHA256Hex(content)}
}

// parts cuts content into the sink's parts, as the engine does.
func parts(content []byte) []pipeline.Part {
	return testkit.PartsFor(int64(len(content)), testPart)
}

func expectFiles(t *testing.T, srv *sshd.Server, dir string, want ...string) {
	t.Helper()
	slices.Sort(want)
	if diff := cmp.Diff(want, srv.List(t, dir)); diff != "" {
		t.Fatalf("files in %s (-want +got):\n%s", dir, diff)
	}
}

func expectContent(t *testing.T, srv *sshd.Server, name string, want []byte) {
	t.Helper()
	got, ok := srv.ReadFile(t, name)
	if !ok {
		t.Fatalf("%s is missing", name)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("%s: got %d bytes (sha256 %s), want %d bytes (sha256 %s)", name, len(got), testkit.SHA256Hex(got), len(want), testkit.SHA256Hex(want))
	}
}

// TestLogins delivers a file with each way of logging in.
func TestLogins(t *testing.T) {
	srv := sshd.Start(t)
	needPassword := func(t *testing.T) {
		if srv.Password == "" {
			t.Skip("no password user: run ./scripts/sshd.sh as root")
		}
	}
	tests := []struct {
		name   string
		change func(t *testing.T, c *ConnConfig)
	}{
		{"key", func(t *testing.T, c *ConnConfig) {}},
		{"password", func(t *testing.T, c *ConnConfig) {
			needPassword(t)
			c.PrivateKey, c.Password = "", srv.Password
		}},
		{"encrypted key", func(t *testing.T, c *ConnConfig) {
			c.PrivateKey, c.PrivateKeyPassphrase = srv.EncryptedClientKey(t, "sesame"), "sesame"
		}},
		{"unknown key, then password", func(t *testing.T, c *ConnConfig) {
			needPassword(t)
			c.PrivateKey, c.Password = writeKey(t), srv.Password
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := connConfig(srv)
			tt.change(t, &c)
			dir := srv.FreshDir(t, "login")
			s := newTestSink(t, SinkConfig{ConnConfig: c, Directory: srv.Path(dir)})
			content := testkit.RandomContent(1, 100_000)
			if err := deliver(t, s, "in.bin", content); err != nil {
				t.Fatal(err)
			}
			expectContent(t, srv, path.Join(dir, "in.bin"), content)
		})
	}
}

// TestTempNames checks that a file is uploaded under its temporary name only,
// and appears under its final name only at Commit.
func TestTempNames(t *testing.T) {
	srv := sshd.Start(t)
	tests := []struct {
		tempName string
		want     *regexp.Regexp
	}{
		{"", regexp.MustCompile(`^sub/\.data\.bin\.[0-9a-f]{12}\.tmp$`)},
		{"{base}.filepart", regexp.MustCompile(`^sub/data\.bin\.filepart$`)},
		{"{stem}.{id}.part{ext}", regexp.MustCompile(`^sub/data\.[0-9a-f]{12}\.part\.bin$`)},
	}
	for _, tt := range tests {
		t.Run(tt.tempName, func(t *testing.T) {
			dir := srv.FreshDir(t, "temp")
			s := newTestSink(t, SinkConfig{ConnConfig: connConfig(srv), Directory: srv.Path(dir), PartSize: testPart, Naming: pipeline.Naming{TempName: tt.tempName}})
			content := testkit.RandomContent(2, 3*testPart+5)
			f := testFile("sub/data.bin", content)
			u, err := s.Open(t.Context(), f, nil)
			if err != nil {
				t.Fatal(err)
			}
			testkit.WriteParts(t, u, content)
			names := srv.List(t, dir)
			if len(names) != 1 || !tt.want.MatchString(names[0]) {
				t.Fatalf("with every part written, the directory holds %q; want one temporary file matching %s", names, tt.want)
			}
			expectContent(t, srv, path.Join(dir, names[0]), content)
			if err := u.Commit(t.Context(), f); err != nil {
				t.Fatal(err)
			}
			expectFiles(t, srv, dir, "sub/data.bin")
			expectContent(t, srv, path.Join(dir, "sub/data.bin"), content)
		})
	}
	if _, err := NewSink(SinkConfig{ConnConfig: connConfig(srv), Directory: srv.Dir, Naming: pipeline.Naming{TempName: "tmp/{base}"}}); err == nil ||
		err.Error() != `sftp: field "temp_name": temporary name template "tmp/{base}" gives "tmp/x.csv": it must be one name, without slashes` {
		t.Errorf("a temp_name with a slash: got %v", err)
	}
}

// TestTrigger checks that the trigger file appears empty, next to the file,
// only once the file has its final name.
func TestTrigger(t *testing.T) {
	srv := sshd.Start(t)
	dir := srv.FreshDir(t, "trigger")
	s := newTestSink(t, SinkConfig{ConnConfig: connConfig(srv), Directory: srv.Path(dir), PartSize: testPart, Naming: pipeline.Naming{Name: "out/{base}", Trigger: "{name}.done"}})
	content := testkit.RandomContent(3, 2*testPart)
	f := testFile("in/report.csv", content)
	u, err := s.Open(t.Context(), f, nil)
	if err != nil {
		t.Fatal(err)
	}
	testkit.WriteParts(t, u, content)
	if srv.Exists(path.Join(dir, "out/report.csv.done")) {
		t.Fatal("the trigger file exists before Commit")
	}
	if err := u.Commit(t.Context(), f); err != nil {
		t.Fatal(err)
	}
	expectFiles(t, srv, dir, "out/report.csv", "out/report.csv.done")
	expectContent(t, srv, path.Join(dir, "out/report.csv"), content)
	expectContent(t, srv, path.Join(dir, "out/report.csv.done"), []byte{})
}

// TestResumeInNewProcess drops an upload half-way, as a killed runner does,
// and finishes it from its State with a new Sink and a new connection: the
// same temporary file is reopened and what it held is kept.
func TestResumeInNewProcess(t *testing.T) {
	srv := sshd.Start(t)
	// A name that is not UTF-8 resumes too: the state keeps its bytes.
	for i, name := range []string{"deep/resumed.bin", "deep/odd-\xff.bin"} {
		t.Run(strconv.Quote(name), func(t *testing.T) { resumeInNewProcess(t, srv, srv.FreshDir(t, "resume"+strconv.Itoa(i)), name) })
	}
}

func resumeInNewProcess(t *testing.T, srv *sshd.Server, dir, name string) {
	cfg := SinkConfig{ConnConfig: connConfig(srv), Directory: srv.Path(dir), PartSize: testPart, Naming: pipeline.Naming{Trigger: "{name}.ok"}}
	content := testkit.RandomContent(4, 4*testPart+100)
	f := testFile(name, content)

	first, err := NewSink(cfg)
	if err != nil {
		t.Fatal(err)
	}
	u, err := first.Open(t.Context(), f, nil)
	if err != nil {
		t.Fatal(err)
	}
	testkit.WriteParts(t, u, content, 0, 2, 4)
	state := u.State()
	first.Close() // the runner dies: no Commit, no Abort

	var st resumeState
	if err := json.Unmarshal(state, &st); err != nil {
		t.Fatal(err)
	}
	held, ok := srv.ReadFile(t, path.Join(dir, "deep", path.Base(string(st.Temp))))
	if !ok {
		t.Fatalf("the temporary file %s is gone after the crash", st.Temp)
	}
	all := parts(content)
	for _, n := range []int{0, 2, 4} {
		p := all[n]
		if !bytes.Equal(held[p.Offset:p.Offset+p.Size], content[p.Offset:p.Offset+p.Size]) {
			t.Fatalf("part %d is not in the temporary file after the crash", n)
		}
	}

	second := newTestSink(t, cfg)
	u2, err := second.Open(t.Context(), f, state)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(u2.State(), state) {
		t.Fatalf("the resumed upload has State %s, want the same temporary file as before: %s", u2.State(), state)
	}
	testkit.WriteParts(t, u2, content, 1, 3)
	if err := u2.Commit(t.Context(), f); err != nil {
		t.Fatal(err)
	}
	expectFiles(t, srv, dir, name, name+".ok")
	expectContent(t, srv, path.Join(dir, name), content)

	// The runner dies again before recording the Commit; the next one
	// commits again from the same state, which must make no second copy.
	for _, policy := range []string{OverwriteReplace, OverwriteFail, OverwriteSkip} {
		again := cfg
		again.Overwrite = policy
		third := newTestSink(t, again)
		u3, err := third.Open(t.Context(), f, state)
		if err != nil {
			t.Fatalf("overwrite %s: reopening a committed upload: %v", policy, err)
		}
		if err := u3.Commit(t.Context(), f); err != nil {
			t.Fatalf("overwrite %s: committing again: %v", policy, err)
		}
		expectFiles(t, srv, dir, name, name+".ok")
		expectContent(t, srv, path.Join(dir, name), content)
	}
}

// TestResumeLostTemp resumes an upload whose temporary file vanished: the
// parts written before are gone, so Commit must refuse to publish holes.
func TestResumeLostTemp(t *testing.T) {
	srv := sshd.Start(t)
	dir := srv.FreshDir(t, "lost")
	s := newTestSink(t, SinkConfig{ConnConfig: connConfig(srv), Directory: srv.Path(dir), PartSize: testPart})
	content := testkit.RandomContent(5, 3*testPart)
	f := testFile("lost.bin", content)
	u, err := s.Open(t.Context(), f, nil)
	if err != nil {
		t.Fatal(err)
	}
	testkit.WriteParts(t, u, content, 0)
	state := u.State()
	if err := u.Abort(t.Context(), nil); err != nil { // the temporary file goes
		t.Fatal(err)
	}
	u2, err := s.Open(t.Context(), f, state)
	if err != nil {
		t.Fatal(err)
	}
	testkit.WriteParts(t, u2, content, 1, 2)
	err = u2.Commit(t.Context(), f)
	want := fmt.Sprintf(`committing "lost.bin": the temporary file in %s was lost in a restart and parts written before it were not sent again; the file must be sent again`,
		location(s.cfg.ConnConfig, srv.Path(dir)))
	if err == nil || err.Error() != want || !pipeline.IsPermanent(err) {
		t.Fatalf("Commit:\n got %v\nwant %s (permanent)", err, want)
	}
	expectFiles(t, srv, dir)
}

// TestOverwrite checks each overwrite policy against a target that exists
// at Open, and one that appears between Open and Commit.
func TestOverwrite(t *testing.T) {
	srv := sshd.Start(t)
	old := []byte("the old content\n")
	content := []byte("the new content, longer than the old\n")
	tests := []struct {
		policy   string
		atOpen   string // error at Open when the target exists; "" for none
		atCommit string // error at Commit when it appears after Open
		sentinel error
		keepsOld bool
	}{
		{policy: OverwriteReplace},
		{
			policy:   OverwriteSkip,
			atOpen:   `writing "x.txt" to TARGET: the target exists (overwrite: skip): file skipped`,
			atCommit: `committing "x.txt" to TARGET: the target appeared meanwhile (overwrite: skip): file skipped`,
			sentinel: pipeline.ErrSkip,
			keepsOld: true,
		},
		{
			policy:   OverwriteFail,
			atOpen:   `writing "x.txt" to TARGET: target already exists (overwrite: fail)`,
			atCommit: `committing "x.txt" to TARGET: target already exists (overwrite: fail)`,
			sentinel: pipeline.ErrExists,
			keepsOld: true,
		},
	}
	for _, tt := range tests {
		t.Run(tt.policy, func(t *testing.T) {
			dir := srv.FreshDir(t, "overwrite")
			s := newTestSink(t, SinkConfig{ConnConfig: connConfig(srv), Directory: srv.Path(dir), Naming: pipeline.Naming{Overwrite: tt.policy}})
			target := location(s.cfg.ConnConfig, srv.Path(path.Join(dir, "x.txt")))
			check := func(when string, err error, want string) {
				t.Helper()
				want = regexp.MustCompile(`TARGET`).ReplaceAllLiteralString(want, target)
				if want == "" {
					if err != nil {
						t.Fatalf("%s: %v", when, err)
					}
					return
				}
				if err == nil || err.Error() != want || !errors.Is(err, tt.sentinel) {
					t.Fatalf("%s:\n got %v\nwant %s (wrapping %v)", when, err, want, tt.sentinel)
				}
			}
			// The target exists before Open.
			srv.WriteFile(t, path.Join(dir, "x.txt"), old)
			f := testFile("x.txt", content)
			u, err := s.Open(t.Context(), f, nil)
			check("Open with the target there", err, tt.atOpen)
			if err == nil {
				testkit.WriteParts(t, u, content)
				if err := u.Commit(t.Context(), f); err != nil {
					t.Fatal(err)
				}
			}
			want := content
			if tt.keepsOld {
				want = old
			}
			expectFiles(t, srv, dir, "x.txt")
			expectContent(t, srv, path.Join(dir, "x.txt"), want)

			// The target appears between Open and Commit.
			f = testFile("y.txt", content)
			f.Name = "x.txt"
			dir2 := srv.FreshDir(t, "overwrite")
			s2 := newTestSink(t, SinkConfig{ConnConfig: connConfig(srv), Directory: srv.Path(dir2), Naming: pipeline.Naming{Overwrite: tt.policy}})
			target = location(s.cfg.ConnConfig, srv.Path(path.Join(dir2, "x.txt")))
			u, err = s2.Open(t.Context(), f, nil)
			if err != nil {
				t.Fatal(err)
			}
			testkit.WriteParts(t, u, content)
			srv.WriteFile(t, path.Join(dir2, "x.txt"), old)
			check("Commit with the target appeared", u.Commit(t.Context(), f), tt.atCommit)
			expectFiles(t, srv, dir2, "x.txt") // no temporary file left
			expectContent(t, srv, path.Join(dir2, "x.txt"), want)
		})
	}
}

// TestReconnect cuts the connection while a part is being written: that
// write fails with a retryable error, and the retry dials again and
// succeeds.
func TestReconnect(t *testing.T) {
	srv := sshd.Start(t)
	p := startProxy(t, srv.Addr)
	dir := srv.FreshDir(t, "reconnect")
	s := newTestSink(t, SinkConfig{ConnConfig: p.connConfig(t, srv), Directory: srv.Path(dir), PartSize: testPart})
	content := testkit.RandomContent(6, 3*testPart+1)
	f := testFile("r.bin", content)
	u, err := s.Open(t.Context(), f, nil)
	if err != nil {
		t.Fatal(err)
	}
	testkit.WriteParts(t, u, content, 0)

	all := parts(content)
	part := all[1]
	r := &gateReader{r: bytes.NewReader(content[part.Offset : part.Offset+part.Size]), reached: make(chan struct{}), release: make(chan struct{})}
	done := make(chan error, 1)
	go func() { done <- u.WritePart(t.Context(), part, r) }()
	<-r.reached // the part's file handle is open on the first connection
	p.cut()
	close(r.release)
	err = <-done
	if err == nil {
		t.Fatal("WritePart succeeded over a connection that was cut")
	}
	if pipeline.IsPermanent(err) {
		t.Fatalf("a cut connection gave a permanent error: %v", err)
	}
	t.Logf("the cut connection gave: %v", err)
	testkit.WriteParts(t, u, content, 1, 2, 3) // the retry, and the rest
	if err := u.Commit(t.Context(), f); err != nil {
		t.Fatal(err)
	}
	expectContent(t, srv, path.Join(dir, "r.bin"), content)
}

// TestDeadConnection freezes the connection (the server stops answering
// without closing it): the keep-alive notices and closes it, so a pending
// write fails with a retryable error instead of hanging, and the retry
// dials again.
func TestDeadConnection(t *testing.T) {
	srv := sshd.Start(t)
	p := startProxy(t, srv.Addr)
	dir := srv.FreshDir(t, "dead")
	c := p.connConfig(t, srv)
	c.KeepAlive, c.ConnectTimeout = 50*time.Millisecond, time.Second
	s := newTestSink(t, SinkConfig{ConnConfig: c, Directory: srv.Path(dir), PartSize: testPart})
	content := testkit.RandomContent(7, 2*testPart)
	f := testFile("d.bin", content)
	u, err := s.Open(t.Context(), f, nil)
	if err != nil {
		t.Fatal(err)
	}
	p.freeze()
	done := make(chan error, 1)
	go func() { done <- u.WritePart(t.Context(), parts(content)[0], bytes.NewReader(content[:testPart])) }()
	select {
	case err = <-done:
	case <-time.After(30 * time.Second):
		t.Fatal("WritePart over a frozen connection still hangs after 30s")
	}
	if err == nil || pipeline.IsPermanent(err) {
		t.Fatalf("WritePart over a frozen connection: got %v, want a retryable error", err)
	}
	testkit.WriteParts(t, u, content)
	if err := u.Commit(t.Context(), f); err != nil {
		t.Fatal(err)
	}
	expectContent(t, srv, path.Join(dir, "d.bin"), content)
}

// gateReader signals once it is first read, then blocks until released.
type gateReader struct {
	r       io.Reader
	reached chan struct{}
	release chan struct{}
	once    bool
}

func (g *gateReader) Read(p []byte) (int, error) {
	if !g.once {
		g.once = true
		close(g.reached)
		<-g.release
	}
	return g.r.Read(p)
}
