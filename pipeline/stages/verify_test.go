package stages_test

import (
	"bytes"
	"context"
	"crypto/md5"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/mftflow/mftflow/connectors/local"
	"github.com/mftflow/mftflow/pipeline"
	"github.com/mftflow/mftflow/pipeline/flowfile"
	"github.com/mftflow/mftflow/pipeline/stages"
	"github.com/mftflow/mftflow/testkit"
)

// sourceItems offers the files under dir, by name, from a real local source.
func sourceItems(t *testing.T, dir string) map[string]pipeline.Item {
	t.Helper()
	cfg := local.DefaultSourceConfig(dir)
	cfg.Watch = false
	cfg.StableFor = 0
	src, err := local.NewSource(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { src.Close() })
	items := map[string]pipeline.Item{}
	for {
		it, err := src.Next(context.Background())
		if errors.Is(err, io.EOF) {
			return items
		}
		if err != nil {
			t.Fatal(err)
		}
		items[it.File().Name] = it
	}
}

// verifyItem runs v over item as the engine does and reads the output.
func verifyItem(v pipeline.Stage, it pipeline.Item, timeout time.Duration) (pipeline.File, []byte, error) {
	ctx, cancel := context.WithTimeout(pipeline.WithItem(context.Background(), it), timeout)
	defer cancel()
	rc, err := it.Open(ctx)
	if err != nil {
		return pipeline.File{}, nil, err
	}
	defer rc.Close()
	f, r, err := v.Process(ctx, it.File(), rc)
	if err != nil {
		return f, nil, err
	}
	out, err := io.ReadAll(r)
	return f, out, err
}

func sha256Hex(b []byte) string { s := sha256.Sum256(b); return hex.EncodeToString(s[:]) }

func put(t *testing.T, dir, name string, data []byte) {
	t.Helper()
	p := filepath.Join(dir, filepath.FromSlash(name))
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, data, 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestVerifyPassesMatchingFiles(t *testing.T) {
	dir := t.TempDir()
	data := randomBytes(300_000, 7)
	m5 := md5.Sum(data)
	put(t, dir, "a.bin", data)
	put(t, dir, "a.bin.sha256", []byte(pipeline.ChecksumLine(sha256Hex(data), "a.bin")))
	put(t, dir, "sub/b.bin", data)
	put(t, dir, "sub/b.bin.sha256", []byte("SHA256 (b.bin) = "+strings.ToUpper(sha256Hex(data))+"\n"))
	put(t, dir, "c.bin", data)
	put(t, dir, "c.bin.sha256", []byte(hex.EncodeToString(m5[:])+"\n")) // the algorithm follows the digest
	v, err := stages.NewVerify(stages.VerifyConfig{})
	if err != nil {
		t.Fatal(err)
	}
	items := sourceItems(t, dir)
	for _, name := range []string{"a.bin", "sub/b.bin", "c.bin"} {
		f, out, err := verifyItem(v, items[name], 10*time.Second)
		if err != nil || !bytes.Equal(out, data) {
			t.Fatalf("%s: %v (%d bytes out)", name, err, len(out))
		}
		if got := f.Attr(pipeline.AttrCompanions); got != "{name}.sha256" {
			t.Errorf("%s: companions %q", name, got)
		}
	}
	_, _, err = verifyItem(v, items["a.bin.sha256"], 10*time.Second)
	if want := `a checksum file (verify's sidecar "{name}.sha256"): it goes with its file: file skipped`; err == nil || err.Error() != want || !errors.Is(err, pipeline.ErrSkip) {
		t.Errorf("the sidecar itself: %v, want %s", err, want)
	}
}

func TestVerifyMismatchFailsAtTheEnd(t *testing.T) {
	dir := t.TempDir()
	data := randomBytes(100_000, 9)
	put(t, dir, "a.bin", data)
	wrong := sha256Hex(append([]byte("x"), data...))
	put(t, dir, "a.bin.sha256", []byte(wrong+"  a.bin\n"))
	v, _ := stages.NewVerify(stages.VerifyConfig{})
	_, out, err := verifyItem(v, sourceItems(t, dir)["a.bin"], 10*time.Second)
	want := `verify: sha256 of "a.bin" is ` + sha256Hex(data) + `, but its checksum file "a.bin.sha256" says ` + wrong +
		`: the file changed on its way or the checksum file is for another version; have the sender send both again: checksum mismatch`
	if err == nil || err.Error() != want || !pipeline.IsPermanent(err) || !errors.Is(err, stages.ErrChecksumMismatch) {
		t.Fatalf("got %v\nwant %s", err, want)
	}
	if !bytes.Equal(out, data) {
		t.Errorf("the content before the end: %d bytes, want %d", len(out), len(data))
	}
}

func TestVerifyWaitsForTheSidecar(t *testing.T) {
	dir := t.TempDir()
	data := []byte("late pair\n")
	put(t, dir, "in/a.csv", data)
	v, _ := stages.NewVerify(stages.VerifyConfig{Sidecar: "sums/{name}.md5", Timeout: time.Minute, Poll: 20 * time.Millisecond})
	items := sourceItems(t, dir)
	go func() {
		time.Sleep(300 * time.Millisecond)
		m5 := md5.Sum(data)
		put(t, dir, "sums/in/a.csv.md5.tmp", []byte(pipeline.ChecksumLine(hex.EncodeToString(m5[:]), "a.csv")))
		os.Rename(filepath.Join(dir, "sums/in/a.csv.md5.tmp"), filepath.Join(dir, "sums/in/a.csv.md5"))
	}()
	start := time.Now()
	_, out, err := verifyItem(v, items["in/a.csv"], 30*time.Second)
	if err != nil || !bytes.Equal(out, data) {
		t.Fatalf("%v, %q", err, out)
	}
	if waited := time.Since(start); waited < 300*time.Millisecond {
		t.Errorf("passed after %s, before its checksum file was written", waited)
	}
}

func TestVerifyFailures(t *testing.T) {
	dir := t.TempDir()
	data := []byte("payload\n")
	for _, name := range []string{"none.csv", "garbled.csv", "other.csv", "sha512.csv"} {
		put(t, dir, name, data)
	}
	put(t, dir, "garbled.csv.sha256", []byte("not a checksum\n"))
	put(t, dir, "other.csv.sha256", []byte(sha256Hex(data)+"  another.csv\n"))
	put(t, dir, "sha512.csv.sha256", []byte(strings.Repeat("ab", 64)+"  sha512.csv\n"))
	items := sourceItems(t, dir)
	v, _ := stages.NewVerify(stages.VerifyConfig{Algorithm: "sha256", Timeout: 50 * time.Millisecond, Poll: 10 * time.Millisecond})
	for name, want := range map[string]string{
		"none.csv":    `verify: no checksum file "none.csv.sha256" for "none.csv" (waited 50ms): have the sender put it beside the file, raise verify's timeout, or fix its sidecar pattern; then replay the file`,
		"garbled.csv": `verify: checksum file "garbled.csv.sha256": line 1: "not a checksum" is not a checksum line: want "HEX  NAME" (two spaces) as sha256sum prints it, "SHA256 (NAME) = HEX", or a bare HEX`,
		"other.csv":   `verify: checksum file "other.csv.sha256": no checksum for the file "other.csv" (it lists "another.csv")`,
		"sha512.csv":  `verify: checksum file "sha512.csv.sha256": it holds a sha512 digest, but verify's algorithm is sha256`,
	} {
		_, _, err := verifyItem(v, items[name], 10*time.Second)
		if err == nil || err.Error() != want || !pipeline.IsPermanent(err) {
			t.Errorf("%s:\n got %v\nwant %s", name, err, want)
		}
	}
	// Without the item (a stage called outside a flow) and from a source
	// that cannot open other files.
	_, _, err := v.Process(context.Background(), pipeline.File{Name: "x"}, strings.NewReader(""))
	if want := "verify: the file comes without its source item, so its checksum file cannot be read; run verify in a flow"; err == nil || err.Error() != want {
		t.Errorf("no item: %v", err)
	}
	_, _, err = v.Process(pipeline.WithItem(context.Background(), plainItem{}), pipeline.File{Name: "x"}, strings.NewReader(""))
	if want := "verify: this source cannot open a file's checksum file by name; use a source that can (local, s3, sftp, ftps)"; err == nil || err.Error() != want {
		t.Errorf("no SiblingOpener: %v", err)
	}
}

// plainItem is an item of a source that cannot open other files.
type plainItem struct{}

func (plainItem) File() pipeline.File { return pipeline.File{Name: "x", Key: "x"} }
func (plainItem) Open(context.Context) (io.ReadCloser, error) {
	return io.NopCloser(strings.NewReader("")), nil
}
func (plainItem) Ack(context.Context, pipeline.Outcome) error { return nil }

func TestVerifyConfigErrors(t *testing.T) {
	for _, c := range []struct {
		cfg  stages.VerifyConfig
		want string
	}{
		{stages.VerifyConfig{Algorithm: "crc32"}, `verify: field "algorithm": want one of sha256, sha512, md5 (or leave it out to read it from the checksum file), got "crc32"`},
		{stages.VerifyConfig{Sidecar: "sums.txt"}, `verify: field "sidecar": "sums.txt": want {name} exactly once, for the file's name at the source, as in "{name}.sha256"`},
		{stages.VerifyConfig{Sidecar: "{name}{name}.md5"}, `verify: field "sidecar": "{name}{name}.md5": want {name} exactly once, for the file's name at the source, as in "{name}.sha256"`},
		{stages.VerifyConfig{Sidecar: "{name}"}, `verify: field "sidecar": "{name}" names the file itself: add a suffix or a directory, as in "{name}.sha256"`},
		{stages.VerifyConfig{Sidecar: "../{name}.md5"}, `verify: field "sidecar": "../{name}.md5": want a name relative to the source root, without "..", backslashes or control characters`},
		{stages.VerifyConfig{Sidecar: "/sums/{name}.md5"}, `verify: field "sidecar": "/sums/{name}.md5": want a name relative to the source root, without "..", backslashes or control characters`},
		{stages.VerifyConfig{Sidecar: "sum-{name}"}, `verify: field "sidecar": "sum-{name}": text before {name} must be a directory ending in "/", as in "sums/{name}.sha256"`},
		{stages.VerifyConfig{Timeout: -time.Second}, `verify: field "timeout": must not be negative`},
	} {
		_, err := stages.NewVerify(c.cfg)
		if err == nil || err.Error() != c.want {
			t.Errorf("%+v:\n got %v\nwant %s", c.cfg, err, c.want)
		}
	}
}

// A flow file's bad verify settings are reported at their values.
func TestVerifyFlowFileErrors(t *testing.T) {
	reg := pipeline.NewRegistry()
	if err := testkit.Register(reg); err != nil {
		t.Fatal(err)
	}
	if err := stages.Register(reg); err != nil {
		t.Fatal(err)
	}
	flow := `name: sums
source:
  memory: {}
stages:
  - verify:
      sidecar: "checksums-{name}"
      algorithm: sha1
      timeout: soon
sinks:
  - memory: {}
`
	_, err := flowfile.Parse("flow.yaml", []byte(flow), reg, nil)
	want := `flow.yaml:7:18: verify stage: field "algorithm": want one of sha256, sha512, md5, got "sha1"
flow.yaml:8:16: verify stage: field "timeout": want a duration such as 500ms, 10s or 1m30s, got string soon`
	if err == nil || err.Error() != want {
		t.Errorf("error:\n%v\nwant:\n%s", err, want)
	}
	flow = strings.NewReplacer("      algorithm: sha1\n", "", "      timeout: soon\n", "").Replace(flow)
	_, err = flowfile.Parse("flow.yaml", []byte(flow), reg, nil)
	want = `flow.yaml:6:16: verify stage: field "sidecar": "checksums-{name}": text before {name} must be a directory ending in "/", as in "sums/{name}.sha256"`
	if err == nil || err.Error() != want {
		t.Errorf("error:\n%v\nwant:\n%s", err, want)
	}
}
