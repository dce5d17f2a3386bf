package local

import (
	"context"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/mftflow/mftflow/pipeline"
	"github.com/mftflow/mftflow/testkit"
)

// TestReopenReadsOnlyTheVersionOffered reads files again by the keys they
// were offered with, on a source of their own (as another runner would):
// names with "|" and bytes that are not UTF-8 come back whole; a file
// rewritten, even with its time put back, or removed is a change; Reoffer
// gives the present version under a new key, which the source does not
// offer again.
func TestReopenReadsOnlyTheVersionOffered(t *testing.T) {
	names := []string{"a|1|2.csv", "sub/\xff\xfe.bin", "plain.txt"}
	files := map[string]string{}
	for _, n := range names {
		files[n] = "first version of " + n
	}
	src, dir := newTestSource(t, files, nil)
	items := drain(t, src)
	if len(items) != len(names) {
		t.Fatalf("offered %d files, want %d", len(items), len(names))
	}
	other, err := NewSource(context.Background(), DefaultSourceConfig(dir))
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	for _, it := range items {
		f := it.File()
		ro, err := other.Reopen(context.Background(), f.Key)
		if err != nil {
			t.Fatal(err)
		}
		if got := testkit.ReadRange(t, ro, 0, f.Size); got != files[f.Name] {
			t.Errorf("%q reads %q again, want %q", f.Name, got, files[f.Name])
		}
	}

	f := items[0].File()
	ro, _ := other.Reopen(context.Background(), f.Key)
	p := filepath.Join(dir, filepath.FromSlash(f.Name))
	info, _ := os.Stat(p)
	replaceFile(t, p, "FIRST version of "+f.Name, info.ModTime()) // same size, same time
	if got := testkit.ReadRange(t, ro, 0, 5); got != "FIRST" {
		t.Fatalf("read %q: the test means the bytes to change under the same size and time", got)
	}
	// Size and time cannot tell this change: the engine's chunk checksums
	// do. A new time can:
	replaceFile(t, p, "FIRST version of "+f.Name, info.ModTime().Add(time.Second))
	if _, err := ro.OpenRange(context.Background(), 0, 5); !errors.Is(err, pipeline.ErrChanged) || !pipeline.IsPermanent(err) {
		t.Errorf("reading a rewritten file: %v; want a permanent error matching ErrChanged", err)
	}
	next, err := other.Reoffer(context.Background(), f.Key)
	if err != nil {
		t.Fatal(err)
	}
	if n := next.File(); n.Key == f.Key || n.Name != f.Name || n.Size != f.Size {
		t.Errorf("reoffered %+v; want %q, %d bytes, under a key other than %q", n, f.Name, f.Size, f.Key)
	}
	if !other.wasOffered(next.File().Key) {
		t.Error("the new version is not marked offered: a scan would offer it a second time")
	}
	if err := os.Remove(p); err != nil {
		t.Fatal(err)
	}
	if _, err := ro.OpenRange(context.Background(), 0, 5); !errors.Is(err, pipeline.ErrChanged) {
		t.Errorf("reading a removed file: %v; want an error matching ErrChanged", err)
	}
	if _, err := other.Reoffer(context.Background(), f.Key); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("reoffering a removed file: %v; want an error matching fs.ErrNotExist", err)
	}
	for _, bad := range []string{"", "name", "name|12", "name|x|1", "|3|4"} {
		if _, err := other.Reopen(context.Background(), bad); err == nil {
			t.Errorf("Reopen(%q) accepted a key this source never gave", bad)
		}
	}
}

// FuzzKeyRoundTrip checks that every key a candidate gives reads back as
// the same name, size and time, and that no input makes fileOfKey panic.
func FuzzKeyRoundTrip(f *testing.F) {
	f.Add("a|1|2.csv", int64(5), int64(1700000000123456789))
	f.Add("\xff|", int64(0), int64(-1))
	f.Fuzz(func(t *testing.T, rel string, size, nanos int64) {
		fileOfKey(rel) // any string: an error or a file, never a panic
		if rel == "" {
			return
		}
		c := candidate{rel: rel, size: size, mtime: time.Unix(0, nanos)}
		got, err := fileOfKey(c.key())
		if err != nil {
			t.Fatalf("key %q of a candidate: %v", c.key(), err)
		}
		if got.Name != rel || got.Size != size || !got.ModTime.Equal(c.mtime) {
			t.Fatalf("key %q read back as %q, %d, %v", c.key(), got.Name, got.Size, got.ModTime)
		}
	})
}
