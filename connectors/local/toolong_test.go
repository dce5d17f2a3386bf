package local

import (
	"context"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/mftflow/mftflow/pipeline"
	"github.com/mftflow/mftflow/testkit"
)

// A file or directory whose path the system refuses for its length is not
// skipped in silence: it is offered, and fails with a permanent error that
// says why, so the run counts it failed.
func TestSourceOffersPathsTooLongAsFailing(t *testing.T) {
	src, dir := newTestSource(t, map[string]string{"short.txt": "ok\n"}, nil)
	_, longFile, longDir := testkit.LongPaths(t, dir)
	root, err := filepath.Abs(dir)
	if err != nil {
		t.Fatal(err)
	}
	items := drain(t, src)
	if diff := cmp.Diff([]string{longFile, longDir, "short.txt"}, names(items)); diff != "" {
		t.Fatalf("offered (-want +got):\n%s", diff)
	}
	want := map[string]string{
		longFile: `local source: its path is ` + strconv.Itoa(len(root)+1+len(longFile)) +
			` bytes long, more than this system accepts (file name too long): shorten the directory names above it, or move it nearer the source directory`,
		longDir: `local source: a directory that cannot be listed: its path is ` + strconv.Itoa(len(root)+1+len(longDir)) +
			` bytes long, more than this system accepts (file name too long); the files in it are not read: shorten the directory names, or move them nearer the source directory`,
	}
	ctx := context.Background()
	for _, it := range items {
		f := it.File()
		msg, refused := want[f.Name]
		if !refused {
			if got := string(testkit.ReadItem(t, it)); got != "ok\n" {
				t.Errorf("%s: read %q", f.Name, got)
			}
			continue
		}
		if f.Key == "" || f.Size != -1 {
			t.Errorf("%.20s...: key %q, size %d; want a key and an unknown size", f.Name, f.Key, f.Size)
		}
		_, err := it.Open(ctx)
		if err == nil || err.Error() != msg {
			t.Errorf("Open: %v\nwant %s", err, msg)
		}
		if !pipeline.IsPermanent(err) {
			t.Errorf("Open: %v is not permanent", err)
		}
		if err := it.Ack(ctx, pipeline.Outcome{Status: pipeline.Failed}); err != nil {
			t.Errorf("Ack: %v", err)
		}
	}
}

// A watching source offers a refused path once, not on every rescan.
func TestSourceOffersPathsTooLongOnce(t *testing.T) {
	src, dir := newTestSource(t, nil, func(c *SourceConfig) {
		c.Watch = true
		c.Rescan = 20 * time.Millisecond
	})
	_, longFile, longDir := testkit.LongPaths(t, dir)
	ctx := testCtx(t, 10*time.Second)
	var got []string
	for range 2 {
		it, err := src.Next(ctx)
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, it.File().Name)
	}
	if diff := cmp.Diff([]string{longFile, longDir}, got); diff != "" {
		t.Errorf("offered (-want +got):\n%s", diff)
	}
	short, cancel := context.WithTimeout(ctx, 200*time.Millisecond)
	defer cancel()
	if it, err := src.Next(short); err == nil {
		t.Errorf("offered %.40s... again", it.File().Name)
	}
}
