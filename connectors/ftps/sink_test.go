package ftps

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"path"
	"strings"
	"testing"

	"github.com/mftflow/mftflow/pipeline"
	"github.com/mftflow/mftflow/testkit"
	"github.com/mftflow/mftflow/testkit/ftpd"
)

// failAfter yields n bytes of r, then fails, as a part whose source broke.
type failAfter struct {
	r io.Reader
	n int
}

func (f *failAfter) Read(p []byte) (int, error) {
	if f.n <= 0 {
		return 0, errors.New("the bus went away")
	}
	n, err := f.r.Read(p[:min(len(p), f.n)])
	f.n -= n
	return n, err
}

// A part cut short is written again at its offset with REST; a resumed
// upload appends; a temporary file that lost bytes is refused, not
// published with a hole; a Commit whose record was lost is done again
// without a second copy.
func TestSinkWritesInOrderAndResumes(t *testing.T) {
	srv := ftpd.Start(t, ftpd.Options{})
	dir := srv.FreshDir(t, "resume")
	const part = 64 << 10
	cfg := SinkConfig{ConnConfig: connConfig(srv, TLSExplicit), Directory: srv.Path(dir), PartSize: part, Naming: pipeline.Naming{Trigger: "{name}.ready"}}
	content := testkit.RandomContent(7, 3*part+100)
	f := pipeline.File{ID: "f1", Name: "big.bin", Size: int64(len(content))}
	parts := testkit.PartsFor(f.Size, part)
	body := func(n int) io.Reader { p := parts[n]; return bytes.NewReader(content[p.Offset : p.Offset+p.Size]) }
	ctx := t.Context()

	up, err := newTestSink(t, cfg).Open(ctx, f, nil)
	if err != nil {
		t.Fatal(err)
	}
	if plan := up.Plan(); !plan.InOrder {
		t.Fatalf("plan %+v is not InOrder", plan)
	}
	if err := up.WritePart(ctx, parts[0], body(0)); err != nil {
		t.Fatal(err)
	}
	err = up.WritePart(ctx, parts[1], &failAfter{r: body(1), n: part / 3})
	if err == nil || !strings.Contains(err.Error(), "the bus went away") || pipeline.IsPermanent(err) {
		t.Fatalf("part 1 with a failing reader: %v; want the reader's error, retryable", err)
	}
	if err := up.WritePart(ctx, parts[1], body(1)); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(srv.Log(), fmt.Sprintf(`"REST %d"`, part)) {
		t.Fatalf("part 1 was not written again with REST %d:\n%s", part, srv.Log())
	}
	state := up.State()

	// A new process resumes: the engine continues with part 2.
	up2, err := newTestSink(t, cfg).Open(ctx, f, state)
	if err != nil {
		t.Fatal(err)
	}
	for n := 2; n < len(parts); n++ {
		if err := up2.WritePart(ctx, parts[n], body(n)); err != nil {
			t.Fatal(err)
		}
	}
	final := f
	final.SHA256 = testkit.SHA256Hex(content)
	if err := up2.Commit(ctx, final); err != nil {
		t.Fatal(err)
	}
	// The runner dies before recording the commit: the next one commits again.
	up3, err := newTestSink(t, cfg).Open(ctx, f, state)
	if err != nil {
		t.Fatal(err)
	}
	if err := up3.Commit(ctx, final); err != nil {
		t.Fatalf("second Commit: %v", err)
	}
	got, ok := srv.ReadFile(t, path.Join(dir, "big.bin"))
	if !ok || !bytes.Equal(got, content) {
		t.Fatalf("committed %d bytes (found %v), want %d identical", len(got), ok, len(content))
	}
	if names := srv.List(t, dir); strings.Join(names, ",") != "big.bin,big.bin.ready" {
		t.Fatalf("directory holds %v, want the file and its trigger", names)
	}

	// A temporary file that lost its bytes is refused.
	g := pipeline.File{ID: "f2", Name: "lost.bin", Size: int64(len(content))}
	up4, err := newTestSink(t, cfg).Open(ctx, g, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := up4.WritePart(ctx, parts[0], body(0)); err != nil {
		t.Fatal(err)
	}
	var st resumeState
	if err := jsonUnmarshal(up4.State(), &st); err != nil {
		t.Fatal(err)
	}
	srv.WriteFile(t, strings.TrimPrefix(string(st.Temp), srv.Dir+"/"), content[:100]) // the server lost bytes
	err = up4.WritePart(ctx, parts[1], body(1))
	want := fmt.Sprintf("the temporary file ftps://%s%s holds 100 bytes, but part 1 starts at byte %d: earlier parts were lost; send the file again (runner replay)",
		srv.Addr, st.Temp, part)
	if err == nil || err.Error() != want || !pipeline.IsPermanent(err) {
		t.Fatalf("WritePart after lost bytes:\n got %v\nwant %s (permanent)", err, want)
	}
}

// TestSinkResumesANameThatIsNotUTF8 resumes an upload whose name holds a
// byte that is not UTF-8: the resume state keeps the temporary file's and
// the target's bytes, so the new process finds the parts written before
// and publishes under the very name.
func TestSinkResumesANameThatIsNotUTF8(t *testing.T) {
	srv := ftpd.Start(t, ftpd.Options{})
	dir := srv.FreshDir(t, "odd")
	const part = 64 << 10
	cfg := SinkConfig{ConnConfig: connConfig(srv, TLSExplicit), Directory: srv.Path(dir), PartSize: part}
	content := testkit.RandomContent(8, 2*part+10)
	f := pipeline.File{ID: "f1", Name: "odd-\xff.bin", Size: int64(len(content)), SHA256: testkit.SHA256Hex(content)}
	parts := testkit.PartsFor(f.Size, part)
	ctx := t.Context()
	up, err := newTestSink(t, cfg).Open(ctx, f, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := up.WritePart(ctx, parts[0], bytes.NewReader(content[:part])); err != nil {
		t.Fatal(err)
	}
	up2, err := newTestSink(t, cfg).Open(ctx, f, up.State()) // a new process
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range parts[1:] {
		if err := up2.WritePart(ctx, p, bytes.NewReader(content[p.Offset:p.Offset+p.Size])); err != nil {
			t.Fatalf("part %d after the resume: %v", p.Number, err)
		}
	}
	if err := up2.Commit(ctx, f); err != nil {
		t.Fatal(err)
	}
	if got, ok := srv.ReadFile(t, path.Join(dir, f.Name)); !ok || !bytes.Equal(got, content) {
		t.Fatalf("%q: %d bytes (found %v), want %d identical", f.Name, len(got), ok, len(content))
	}
	if names := srv.List(t, dir); len(names) != 1 || names[0] != f.Name {
		t.Fatalf("directory holds %q, want only %q", names, f.Name)
	}
}

// Overwrite policies: skip and fail at Open, and at Commit when the target
// appeared meanwhile; replace replaces.
func TestSinkOverwrite(t *testing.T) {
	srv := ftpd.Start(t, ftpd.Options{})
	ctx := t.Context()
	for _, policy := range []string{OverwriteReplace, OverwriteSkip, OverwriteFail} {
		dir := srv.FreshDir(t, policy)
		srv.WriteFile(t, path.Join(dir, "a.txt"), []byte("old"))
		sink := newTestSink(t, SinkConfig{ConnConfig: connConfig(srv, TLSExplicit), Directory: srv.Path(dir), Naming: pipeline.Naming{Overwrite: policy}})
		err := testkit.Deliver(ctx, sink, pipeline.File{ID: "a", Name: "a.txt"}, []byte("new"))
		got, _ := srv.ReadFile(t, path.Join(dir, "a.txt"))
		switch policy {
		case OverwriteReplace:
			if err != nil || string(got) != "new" {
				t.Errorf("replace: %v, content %q", err, got)
			}
		case OverwriteSkip:
			if !errors.Is(err, pipeline.ErrSkip) || string(got) != "old" {
				t.Errorf("skip: %v, content %q", err, got)
			}
		case OverwriteFail:
			if !errors.Is(err, pipeline.ErrExists) || string(got) != "old" {
				t.Errorf("fail: %v, content %q", err, got)
			}
		}
		if policy == OverwriteReplace {
			continue
		}
		// The target appears between Open and Commit.
		up, err := sink.Open(ctx, pipeline.File{ID: "b", Name: "b.txt", Size: 3}, nil)
		if err != nil {
			t.Fatal(err)
		}
		if err := up.WritePart(ctx, pipeline.Part{Size: 3, Last: true}, strings.NewReader("new")); err != nil {
			t.Fatal(err)
		}
		srv.WriteFile(t, path.Join(dir, "b.txt"), []byte("old"))
		err = up.Commit(ctx, pipeline.File{ID: "b", Name: "b.txt", Size: 3})
		if want := map[string]error{OverwriteSkip: pipeline.ErrSkip, OverwriteFail: pipeline.ErrExists}[policy]; !errors.Is(err, want) {
			t.Errorf("%s at Commit: %v, want %v", policy, err, want)
		}
		if names := srv.List(t, dir); strings.Join(names, ",") != "a.txt,b.txt" {
			t.Errorf("%s: directory holds %v, want no temporary file left", policy, names)
		}
	}
}
