package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/mftflow/mftflow/testkit/minio"
)

// Names that are not valid UTF-8 reach a local sink byte for byte: each
// file keeps its own name, none overwrites another, and the sources that
// after: delete removes are the ones delivered.
func TestNamesTravelAsExactBytes(t *testing.T) {
	dir := t.TempDir()
	names := []string{"\xff.txt", "\xfe.txt", "\x80.txt", "\uFFFD.txt", "ok.txt", "d\xe9j\xe0/vu.txt"}
	for i, n := range names {
		writeFile(t, dir, filepath.Join("in", n), strings.Repeat(string(rune('a'+i)), 10+i))
	}
	writeFile(t, dir, "flow.yaml", localFlowHead("bytes", "./in", "after: delete")+`  - local:
      path: ./out
      overwrite: fail
`)
	stdout, stderr, exit := runRunner(t, dir, "run", "--progress", "none", "flow.yaml")
	if exit != 0 || !strings.HasPrefix(stdout, "bytes: 6 passed, 0 failed, 0 skipped; ") {
		t.Fatalf("exit %d\nstdout:\n%s\nstderr:\n%s", exit, stdout, stderr)
	}
	for i, n := range names {
		got, err := os.ReadFile(filepath.Join(dir, "out", n))
		if want := strings.Repeat(string(rune('a'+i)), 10+i); err != nil || string(got) != want {
			t.Errorf("out/%q: %q, %v; want %q", n, got, err, want)
		}
	}
	if left := listFiles(t, filepath.Join(dir, "in")); len(left) != 0 {
		t.Errorf("sources left: %q; want every one delivered and deleted", left)
	}
	if out := listFiles(t, filepath.Join(dir, "out")); len(out) != len(names) {
		t.Errorf("out holds %q; want the %d names", out, len(names))
	}
}

// An S3 key is UTF-8: a name that is not is refused with a message that
// says so, and the source keeps the file.
func TestS3RefusesANameThatIsNotUTF8(t *testing.T) {
	if testing.Short() {
		t.Skip("needs MinIO; skipped with -short")
	}
	srv := minio.StartMinIO(t)
	dir := t.TempDir()
	writeFile(t, dir, "in/\xff.txt", "x")
	writeFile(t, dir, "in/fine.txt", "y")
	writeFile(t, dir, "flow.yaml", localFlowHead("s3names", "./in", "after: delete")+`  - name: bucket
    s3:
      bucket: `+srv.Bucket+`
      endpoint: `+srv.Endpoint+`
      path_style: true
      region: `+minio.Region+`
      access_key_id: `+minio.AccessKey+`
      secret_access_key: `+minio.SecretKey+`
`)
	stdout, stderr, exit := runRunner(t, dir, "run", "--progress", "none", "flow.yaml")
	if exit != 3 || !strings.HasPrefix(stdout, "s3names: 1 passed, 1 failed, 0 skipped; ") {
		t.Fatalf("exit %d\nstdout:\n%s\nstderr:\n%s", exit, stdout, stderr)
	}
	want := `file name \"\\xff.txt\" is not valid UTF-8, which an S3 key (bucket \"` + srv.Bucket + `\") cannot carry: rename the file at the source or with a rename stage`
	if !strings.Contains(stderr, want) {
		t.Errorf("stderr does not say %q:\n%s", want, stderr)
	}
	if left := listFiles(t, filepath.Join(dir, "in")); len(left) != 1 || left[0] != "\xff.txt" {
		t.Errorf("sources left: %q; want the refused one kept", left)
	}
}
