package sftp

import (
	"context"
	"errors"
	"io"
	"os"
	"path"
	"slices"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/mftflow/mftflow/pipeline"
	"github.com/mftflow/mftflow/testkit"
	"github.com/mftflow/mftflow/testkit/sshd"
)

// drainNames reads a finite source to io.EOF and returns the items.
func drainItems(t *testing.T, src pipeline.Source) []pipeline.Item {
	t.Helper()
	var items []pipeline.Item
	for {
		it, err := src.Next(t.Context())
		if errors.Is(err, io.EOF) {
			return items
		}
		if err != nil {
			t.Fatal(err)
		}
		items = append(items, it)
	}
}

func namesOf(items []pipeline.Item) []string {
	var names []string
	for _, it := range items {
		names = append(names, it.File().Name)
	}
	slices.Sort(names)
	return names
}

// TestSourceFilters checks include, exclude, ignore and recursion.
func TestSourceFilters(t *testing.T) {
	srv := sshd.Start(t)
	dir := srv.FreshDir(t, "filters")
	for _, name := range []string{"a.csv", "b.txt", ".hidden.csv", "upload.csv.tmp", "sub/c.csv", "skip/d.csv", "sub/e.csv.filepart"} {
		srv.WriteFile(t, path.Join(dir, name), []byte(name))
	}
	tests := []struct {
		name   string
		change func(c *SourceConfig)
		want   []string
	}{
		{"top only", func(c *SourceConfig) {}, []string{"a.csv", "b.txt"}},
		{"recursive", func(c *SourceConfig) { c.Recursive = true }, []string{"a.csv", "b.txt", "skip/d.csv", "sub/c.csv"}},
		{"include", func(c *SourceConfig) { c.Recursive, c.Include = true, []string{"**/*.csv"} }, []string{"a.csv", "skip/d.csv", "sub/c.csv"}},
		{"exclude a directory", func(c *SourceConfig) { c.Recursive, c.Exclude = true, []string{"skip", "*.txt"} }, []string{"a.csv", "sub/c.csv"}},
		{"no ignore", func(c *SourceConfig) { c.Ignore = nil }, []string{".hidden.csv", "a.csv", "b.txt", "upload.csv.tmp"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := SourceConfig{ConnConfig: connConfig(srv), Directory: srv.Path(dir), Polling: pipeline.Polling{Ignore: pipeline.DefaultIgnore()}}
			tt.change(&c)
			got := namesOf(drainItems(t, newTestSource(t, c)))
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Fatalf("offered (-want +got):\n%s", diff)
			}
		})
	}
}

// TestSourceStable checks that a file is held back until two listings show
// it unchanged, unless it is older than min_age.
func TestSourceStable(t *testing.T) {
	srv := sshd.Start(t)
	dir := srv.FreshDir(t, "stable")
	srv.WriteFile(t, path.Join(dir, "fresh.txt"), []byte("just written"))
	srv.WriteFile(t, path.Join(dir, "old.txt"), []byte("written long ago"))
	long := time.Now().Add(-2 * time.Hour)
	if err := os.Chtimes(srv.Path(path.Join(dir, "old.txt")), long, long); err != nil {
		t.Fatal(err)
	}
	c := SourceConfig{ConnConfig: connConfig(srv), Directory: srv.Path(dir), Polling: pipeline.Polling{Watch: true, PollInterval: 20 * time.Millisecond, StableFor: time.Hour, MinAge: time.Hour}}
	src := newTestSource(t, c)
	it, err := src.Next(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if got := it.File().Name; got != "old.txt" {
		t.Fatalf("offered %q first, want old.txt (older than min_age)", got)
	}
	// fresh.txt has not been stable for an hour: several polls offer nothing.
	ctx, cancel := context.WithTimeout(t.Context(), 300*time.Millisecond)
	defer cancel()
	if it, err := src.Next(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Next offered %v (error %v) while fresh.txt was not stable yet", it, err)
	}

	// With a short stable_for it is offered once a second listing shows it
	// unchanged.
	c.StableFor, c.MinAge = 50*time.Millisecond, 0
	src = newTestSource(t, c)
	var names []string
	for range 2 {
		it, err := src.Next(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		names = append(names, it.File().Name)
	}
	slices.Sort(names)
	if diff := cmp.Diff([]string{"fresh.txt", "old.txt"}, names); diff != "" {
		t.Fatalf("offered (-want +got):\n%s", diff)
	}
}

// TestSourceWatch checks that a watching source offers new files and new
// versions, and never a file twice while it is in flight.
func TestSourceWatch(t *testing.T) {
	srv := sshd.Start(t)
	dir := srv.FreshDir(t, "watch")
	srv.WriteFile(t, path.Join(dir, "one.txt"), []byte("one"))
	src := newTestSource(t, SourceConfig{ConnConfig: connConfig(srv), Directory: srv.Path(dir), Polling: pipeline.Polling{Watch: true, PollInterval: 20 * time.Millisecond}})
	first, err := src.Next(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	srv.WriteFile(t, path.Join(dir, "two.txt"), []byte("two"))
	second, err := src.Next(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if first.File().Name != "one.txt" || second.File().Name != "two.txt" {
		t.Fatalf("offered %q then %q, want one.txt then two.txt", first.File().Name, second.File().Name)
	}
	// A new version of one.txt (a new size) is a new file.
	srv.WriteFile(t, path.Join(dir, "one.txt"), []byte("one, again"))
	third, err := src.Next(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if third.File().Name != "one.txt" || third.File().Key == first.File().Key || third.File().Size != 10 {
		t.Fatalf("offered %+v, want the new version of one.txt", third.File())
	}
}

// TestSourceAfter checks the after actions: applied for Passed only,
// idempotent, and never over an existing archived file.
func TestSourceAfter(t *testing.T) {
	srv := sshd.Start(t)
	for _, status := range []pipeline.Status{pipeline.Failed, pipeline.Mixed, pipeline.Skipped} {
		dir := srv.FreshDir(t, "after")
		srv.WriteFile(t, path.Join(dir, "x.txt"), []byte("x"))
		src := newTestSource(t, SourceConfig{ConnConfig: connConfig(srv), Directory: srv.Path(dir), Polling: pipeline.Polling{After: pipeline.AfterDelete}})
		items := drainItems(t, src)
		if err := items[0].Ack(t.Context(), pipeline.Outcome{Status: status}); err != nil {
			t.Fatal(err)
		}
		if !srv.Exists(path.Join(dir, "x.txt")) {
			t.Fatalf("Ack(%v) deleted the file", status)
		}
	}

	t.Run("delete", func(t *testing.T) {
		dir := srv.FreshDir(t, "after")
		srv.WriteFile(t, path.Join(dir, "sub/x.txt"), []byte("x"))
		src := newTestSource(t, SourceConfig{ConnConfig: connConfig(srv), Directory: srv.Path(dir), Polling: pipeline.Polling{Recursive: true, After: pipeline.AfterDelete}})
		items := drainItems(t, src)
		for range 2 {
			if err := items[0].Ack(t.Context(), pipeline.Outcome{Status: pipeline.Passed}); err != nil {
				t.Fatal(err)
			}
		}
		if srv.Exists(path.Join(dir, "sub/x.txt")) {
			t.Fatal("the file is still there")
		}
	})

	t.Run("move", func(t *testing.T) {
		dir := srv.FreshDir(t, "after")
		srv.WriteFile(t, path.Join(dir, "in/sub/x.txt"), []byte("new"))
		srv.WriteFile(t, path.Join(dir, "archive/sub/x.txt"), []byte("archived before"))
		src := newTestSource(t, SourceConfig{ConnConfig: connConfig(srv), Directory: srv.Path(dir + "/in"), Polling: pipeline.Polling{Recursive: true, After: pipeline.AfterMove, ArchiveDir: srv.Path(dir + "/archive")}})
		items := drainItems(t, src)
		for range 2 {
			if err := items[0].Ack(t.Context(), pipeline.Outcome{Status: pipeline.Passed}); err != nil {
				t.Fatal(err)
			}
		}
		expectFiles(t, srv, dir, "archive/sub/x-1.txt", "archive/sub/x.txt")
		expectContent(t, srv, path.Join(dir, "archive/sub/x-1.txt"), []byte("new"))
		expectContent(t, srv, path.Join(dir, "archive/sub/x.txt"), []byte("archived before"))
	})

	t.Run("changed since offered", func(t *testing.T) {
		dir := srv.FreshDir(t, "after")
		srv.WriteFile(t, path.Join(dir, "x.txt"), []byte("x"))
		src := newTestSource(t, SourceConfig{ConnConfig: connConfig(srv), Directory: srv.Path(dir), Polling: pipeline.Polling{After: pipeline.AfterDelete}})
		items := drainItems(t, src)
		srv.WriteFile(t, path.Join(dir, "x.txt"), []byte("changed"))
		err := items[0].Ack(t.Context(), pipeline.Outcome{Status: pipeline.Passed})
		if err == nil || !pipeline.IsPermanent(err) {
			t.Fatalf("Ack of a changed file: got %v, want a permanent error", err)
		}
		expectContent(t, srv, path.Join(dir, "x.txt"), []byte("changed"))
	})
}

// TestSourceRecheck checks that a file listed a while ago is not offered
// once it is gone.
func TestSourceRecheck(t *testing.T) {
	srv := sshd.Start(t)
	dir := srv.FreshDir(t, "recheck")
	srv.WriteFile(t, path.Join(dir, "a.txt"), []byte("a"))
	srv.WriteFile(t, path.Join(dir, "b.txt"), []byte("b"))
	long := time.Now().Add(-time.Hour) // a.txt first: the oldest
	if err := os.Chtimes(srv.Path(path.Join(dir, "a.txt")), long, long); err != nil {
		t.Fatal(err)
	}
	src := newTestSource(t, SourceConfig{ConnConfig: connConfig(srv), Directory: srv.Path(dir), Polling: pipeline.Polling{Watch: true, PollInterval: 10 * time.Millisecond}})
	it, err := src.Next(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if it.File().Name != "a.txt" {
		t.Fatalf("offered %q first, want a.txt", it.File().Name)
	}
	if err := os.Remove(srv.Path(path.Join(dir, "b.txt"))); err != nil {
		t.Fatal(err)
	}
	time.Sleep(50 * time.Millisecond) // the listing that found b.txt is now old
	ctx, cancel := context.WithTimeout(t.Context(), 300*time.Millisecond)
	defer cancel()
	if it, err := src.Next(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Next offered %v (error %v) after b.txt was deleted", it, err)
	}
}

// TestSourceSiblings checks that items open the files beside them and that
// the after actions follow a file's companions.
func TestSourceSiblings(t *testing.T) {
	srv := sshd.Start(t)
	var dir string
	testkit.RunSiblingTests(t, testkit.SiblingHarness{
		New: func(t *testing.T, after string, files map[string][]byte) pipeline.Source {
			dir = srv.FreshDir(t, "siblings")
			for name, content := range files {
				srv.WriteFile(t, path.Join(dir, "in", name), content)
			}
			return newTestSource(t, SourceConfig{ConnConfig: connConfig(srv), Directory: srv.Path(dir + "/in"),
				Polling: pipeline.Polling{Recursive: true, After: after, ArchiveDir: srv.Path(dir + "/archive")}})
		},
		Exists:   func(t *testing.T, name string) bool { return srv.Exists(path.Join(dir, "in", name)) },
		Archived: func(t *testing.T, name string) bool { return srv.Exists(path.Join(dir, "archive", name)) },
	})
}
