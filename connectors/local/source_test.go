package local

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/mftflow/mftflow/pipeline"
	"github.com/mftflow/mftflow/testkit"
)

// writeFiles creates files (slash-separated names relative to dir -> content).
func writeFiles(t *testing.T, dir string, files map[string]string) {
	t.Helper()
	for name, content := range files {
		p := filepath.Join(dir, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o777); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o666); err != nil {
			t.Fatal(err)
		}
	}
}

// newTestSource writes files under a new directory and returns a Source over
// it that takes every file at once and does not watch; edit, if not nil,
// changes the config first. The Source is closed when the test ends.
func newTestSource(t *testing.T, files map[string]string, edit func(*SourceConfig)) (*Source, string) {
	t.Helper()
	dir := t.TempDir()
	writeFiles(t, dir, files)
	c := DefaultSourceConfig(dir)
	c.Watch = false
	c.StableFor = 0
	if edit != nil {
		edit(&c)
	}
	src, err := NewSource(context.Background(), c)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { src.Close() })
	return src, dir
}

// replaceFile replaces p atomically with a file holding content, modified at mtime.
func replaceFile(t *testing.T, p, content string, mtime time.Time) {
	t.Helper()
	tmp := p + ".tmp"
	if err := os.WriteFile(tmp, []byte(content), 0o666); err != nil {
		t.Fatal(err)
	}
	if err := os.Chtimes(tmp, mtime, mtime); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, p); err != nil {
		t.Fatal(err)
	}
}

func testCtx(t *testing.T, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

// drain takes items until io.EOF.
func drain(t *testing.T, src pipeline.Source) []pipeline.Item {
	t.Helper()
	ctx := testCtx(t, 10*time.Second)
	var items []pipeline.Item
	for {
		it, err := src.Next(ctx)
		if err == io.EOF {
			return items
		}
		if err != nil {
			t.Fatalf("Next: %v", err)
		}
		items = append(items, it)
	}
}

func names(items []pipeline.Item) []string {
	out := make([]string, len(items))
	for i, it := range items {
		out[i] = it.File().Name
	}
	sort.Strings(out)
	return out
}

func exists(p string) bool {
	_, err := os.Lstat(p)
	return err == nil
}

// nextWithin calls Next with a timeout and returns what it returned.
func nextWithin(src pipeline.Source, d time.Duration) (pipeline.Item, error) {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	return src.Next(ctx)
}

func TestSourceOffersEveryFileOnce(t *testing.T) {
	files := map[string]string{
		"a.txt":           "alpha",
		"empty":           "",
		"sub/b.csv":       "b,c\n1,2\n",
		"sub/deep/c.json": `{"c":true}`,
	}
	src, dir := newTestSource(t, files, nil)
	items := drain(t, src)
	got := map[string]string{}
	for _, it := range items {
		f := it.File()
		b := testkit.ReadItem(t, it)
		if _, dup := got[f.Name]; dup {
			t.Errorf("%s offered twice", f.Name)
		}
		got[f.Name] = testkit.SHA256Hex(b)
		info, err := os.Stat(filepath.Join(dir, filepath.FromSlash(f.Name)))
		if err != nil {
			t.Fatal(err)
		}
		wantKey := f.Name + "|" + strconv.FormatInt(info.Size(), 10) + "|" + strconv.FormatInt(info.ModTime().UnixNano(), 10)
		if f.Key != wantKey || f.Size != info.Size() || !f.ModTime.Equal(info.ModTime()) || f.ID != "" {
			t.Errorf("File() = %+v, want key %q size %d mtime %v", f, wantKey, info.Size(), info.ModTime())
		}
	}
	want := map[string]string{}
	for name, content := range files {
		want[name] = testkit.SHA256Hex([]byte(content))
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("offered files (-want +got):\n%s", diff)
	}
	for i := 0; i < 2; i++ {
		if _, err := src.Next(context.Background()); err != io.EOF {
			t.Fatalf("Next after the last file = %v, want io.EOF", err)
		}
	}
}

func TestSourceEmptyDirEOF(t *testing.T) {
	src, _ := newTestSource(t, nil, nil)
	if _, err := nextWithin(src, 5*time.Second); err != io.EOF {
		t.Fatalf("Next = %v, want io.EOF", err)
	}
}

func TestSourcePatterns(t *testing.T) {
	files := map[string]string{
		"a.csv": "1", "b.txt": "2", "sub/c.csv": "3", "sub/deep/d.csv": "4",
		"x.tmp": "5", ".hidden": "6", "sub/.hid/e.csv": "7", "~lock": "8", "f.part": "9",
		"archive/old.csv": "10",
	}
	tests := []struct {
		name string
		edit func(*SourceConfig)
		want []string
	}{
		{"defaults", nil, []string{"a.csv", "archive/old.csv", "b.txt", "sub/c.csv", "sub/deep/d.csv"}},
		{"include top level", func(c *SourceConfig) { c.Include = []string{"*.csv"} }, []string{"a.csv"}},
		{"include any depth", func(c *SourceConfig) { c.Include = []string{"**/*.csv"} },
			[]string{"a.csv", "archive/old.csv", "sub/c.csv", "sub/deep/d.csv"}},
		{"exclude a directory", func(c *SourceConfig) {
			c.Include = []string{"**/*.csv"}
			c.Exclude = []string{"archive"}
		}, []string{"a.csv", "sub/c.csv", "sub/deep/d.csv"}},
		{"exclude a subtree", func(c *SourceConfig) { c.Exclude = []string{"sub/**"} }, []string{"a.csv", "archive/old.csv", "b.txt"}},
		{"exclude files", func(c *SourceConfig) { c.Exclude = []string{"**/*.csv"} }, []string{"b.txt"}},
		{"alternatives", func(c *SourceConfig) { c.Include = []string{"{a,b}.*"} }, []string{"a.csv", "b.txt"}},
		{"not recursive", func(c *SourceConfig) { c.Recursive = false }, []string{"a.csv", "b.txt"}},
		{"no ignore", func(c *SourceConfig) { c.Ignore = nil }, []string{
			".hidden", "a.csv", "archive/old.csv", "b.txt", "f.part", "sub/.hid/e.csv", "sub/c.csv", "sub/deep/d.csv", "x.tmp", "~lock"}},
		{"own ignore", func(c *SourceConfig) { c.Ignore = []string{"*.txt", "deep"} },
			[]string{".hidden", "a.csv", "archive/old.csv", "f.part", "sub/.hid/e.csv", "sub/c.csv", "x.tmp", "~lock"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			src, _ := newTestSource(t, files, tt.edit)
			if diff := cmp.Diff(tt.want, names(drain(t, src))); diff != "" {
				t.Errorf("offered (-want +got):\n%s", diff)
			}
		})
	}
}

func TestSourceWaitsForStableFiles(t *testing.T) {
	src, dir := newTestSource(t, map[string]string{"growing.log": "start\n"}, func(c *SourceConfig) {
		c.StableFor = 400 * time.Millisecond
	})
	p := filepath.Join(dir, "growing.log")
	const appends = 15
	lastWrite := make(chan time.Time, 1)
	go func() {
		f, err := os.OpenFile(p, os.O_WRONLY|os.O_APPEND, 0)
		if err != nil {
			panic(err)
		}
		defer f.Close()
		for i := 0; i < appends; i++ {
			time.Sleep(30 * time.Millisecond)
			fmt.Fprintf(f, "line %02d\n", i)
		}
		lastWrite <- time.Now()
	}()
	it, err := nextWithin(src, 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	took := time.Now()
	last := <-lastWrite
	if took.Before(last) {
		t.Errorf("the file was taken at %v, before its last write at %v", took, last)
	}
	want := int64(len("start\n") + appends*len("line 00\n"))
	if got := it.File().Size; got != want {
		t.Errorf("size = %d, want %d", got, want)
	}
	if b := testkit.ReadItem(t, it); int64(len(b)) != want {
		t.Errorf("read %d bytes, want %d", len(b), want)
	}
	if _, err := nextWithin(src, 5*time.Second); err != io.EOF {
		t.Errorf("second Next = %v, want io.EOF", err)
	}
}

func TestSourceTrigger(t *testing.T) {
	src, dir := newTestSource(t, map[string]string{"a.csv": "data a"}, func(c *SourceConfig) {
		c.Watch = true
		c.Rescan = 50 * time.Millisecond
		c.StableFor = time.Hour // ignored with a trigger
		c.Trigger = ".done"
		c.After = AfterDelete
	})
	if _, err := nextWithin(src, 300*time.Millisecond); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Next before the trigger = %v, want a deadline error", err)
	}
	writeFiles(t, dir, map[string]string{"a.csv.done": ""})
	it, err := nextWithin(src, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if it.File().Name != "a.csv" || string(testkit.ReadItem(t, it)) != "data a" {
		t.Fatalf("got %q", it.File().Name)
	}
	if _, err := nextWithin(src, 300*time.Millisecond); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Next after the file = %v, want a deadline error (trigger files are never offered)", err)
	}
	if err := it.Ack(context.Background(), pipeline.Outcome{Status: pipeline.Passed}); err != nil {
		t.Fatal(err)
	}
	for _, n := range []string{"a.csv", "a.csv.done"} {
		if exists(filepath.Join(dir, n)) {
			t.Errorf("%s still exists after delete", n)
		}
	}
}

func TestSourceTriggerWithoutWatch(t *testing.T) {
	src, _ := newTestSource(t, map[string]string{
		"ready.csv": "1", "ready.csv.done": "", "waiting.csv": "2", "orphan.done": "",
	}, func(c *SourceConfig) { c.Trigger = ".done" })
	if diff := cmp.Diff([]string{"ready.csv"}, names(drain(t, src))); diff != "" {
		t.Errorf("offered (-want +got):\n%s", diff)
	}
}

func TestSourceWatchFindsNewFiles(t *testing.T) {
	for _, notify := range []bool{true, false} {
		t.Run(fmt.Sprintf("notifications=%v", notify), func(t *testing.T) {
			src, dir := newTestSource(t, map[string]string{"old.txt": "old"}, func(c *SourceConfig) {
				c.Watch = true
				c.StableFor = 100 * time.Millisecond
				c.Rescan = time.Hour
				if !notify {
					c.Rescan = 100 * time.Millisecond
				}
			})
			if !notify {
				src.watcher.Close() // only rescans are left
			}
			it, err := nextWithin(src, 5*time.Second)
			if err != nil || it.File().Name != "old.txt" {
				t.Fatalf("first Next = %v, %v", it, err)
			}
			writeFiles(t, dir, map[string]string{"new/dir/new.txt": "new"})
			it, err = nextWithin(src, 5*time.Second)
			if err != nil {
				t.Fatal(err)
			}
			if it.File().Name != "new/dir/new.txt" || string(testkit.ReadItem(t, it)) != "new" {
				t.Fatalf("got %q", it.File().Name)
			}
		})
	}
}

func TestSourceDoesNotOfferAgain(t *testing.T) {
	src, dir := newTestSource(t, map[string]string{"a.txt": "v1"}, func(c *SourceConfig) {
		c.Watch = true
		c.Rescan = 30 * time.Millisecond
	})
	for _, status := range []pipeline.Status{pipeline.Passed, pipeline.Failed} {
		// after "leave" and after a failure, the file stays and is not taken again
		it, err := nextWithin(src, 5*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		if err := it.Ack(context.Background(), pipeline.Outcome{Status: status}); err != nil {
			t.Fatal(err)
		}
		if it, err := nextWithin(src, 300*time.Millisecond); !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("Next after %v = %v, %v; want a deadline error", status, it, err)
		}
		// A changed file is a new file.
		replaceFile(t, filepath.Join(dir, "a.txt"), "version "+status.String(), time.Now().Add(time.Duration(status)*time.Second))
	}
	it, err := nextWithin(src, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if got := string(testkit.ReadItem(t, it)); got != "version failed" {
		t.Errorf("content = %q", got)
	}
}

func TestSourceAfter(t *testing.T) {
	statuses := []pipeline.Status{pipeline.Passed, pipeline.Failed, pipeline.Mixed, pipeline.Skipped}
	for _, after := range []string{AfterDelete, AfterMove, AfterLeave} {
		for _, status := range statuses {
			t.Run(after+"/"+status.String(), func(t *testing.T) {
				archive := filepath.Join(t.TempDir(), "archive")
				src, dir := newTestSource(t, map[string]string{"sub/a.txt": "content"}, func(c *SourceConfig) {
					c.After = after
					c.ArchiveDir = archive
				})
				items := drain(t, src)
				if len(items) != 1 {
					t.Fatalf("got %d items", len(items))
				}
				for i := 0; i < 2; i++ { // Ack is idempotent
					if err := items[0].Ack(context.Background(), pipeline.Outcome{Status: status}); err != nil {
						t.Fatalf("Ack #%d: %v", i+1, err)
					}
				}
				acted := status == pipeline.Passed && after != AfterLeave
				if got := exists(filepath.Join(dir, "sub", "a.txt")); got == acted {
					t.Errorf("source file exists = %v", got)
				}
				moved := acted && after == AfterMove
				b, err := os.ReadFile(filepath.Join(archive, "sub", "a.txt"))
				if moved && (err != nil || string(b) != "content") {
					t.Errorf("archived file: %q, %v", b, err)
				}
				if !moved && err == nil {
					t.Errorf("file archived")
				}
				if exists(filepath.Join(archive, "sub", "a-1.txt")) {
					t.Errorf("second Ack archived a second copy")
				}
			})
		}
	}
}

func TestSourceMoveKeepsExistingArchive(t *testing.T) {
	archive := t.TempDir()
	writeFiles(t, archive, map[string]string{"d/a.csv": "older", "d/a.csv.done": "older trigger", "d/a-1.csv": "oldest"})
	src, dir := newTestSource(t, map[string]string{"d/a.csv": "new", "d/a.csv.done": ""}, func(c *SourceConfig) {
		c.After = AfterMove
		c.ArchiveDir = archive
		c.Trigger = ".done"
	})
	items := drain(t, src)
	if len(items) != 1 {
		t.Fatalf("got %d items", len(items))
	}
	if err := items[0].Ack(context.Background(), pipeline.Outcome{Status: pipeline.Passed}); err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	filepath.WalkDir(archive, func(p string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			b, _ := os.ReadFile(p)
			rel, _ := filepath.Rel(archive, p)
			got[filepath.ToSlash(rel)] = string(b)
		}
		return nil
	})
	want := map[string]string{
		"d/a.csv": "older", "d/a.csv.done": "older trigger", "d/a-1.csv": "oldest",
		"d/a-2.csv": "new", "d/a-2.csv.done": "",
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("archive (-want +got):\n%s", diff)
	}
	if exists(filepath.Join(dir, "d", "a.csv")) || exists(filepath.Join(dir, "d", "a.csv.done")) {
		t.Errorf("source files left behind")
	}
}

func TestSourceArchiveInsideSourceIsNotRead(t *testing.T) {
	src, dir := newTestSource(t, map[string]string{"a.txt": "a"}, func(c *SourceConfig) {
		c.Watch = true
		c.Rescan = 30 * time.Millisecond
		c.After = AfterMove
		c.ArchiveDir = filepath.Join(c.Path, "done")
	})
	it, err := nextWithin(src, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if err := it.Ack(context.Background(), pipeline.Outcome{Status: pipeline.Passed}); err != nil {
		t.Fatal(err)
	}
	if !exists(filepath.Join(dir, "done", "a.txt")) {
		t.Fatal("not archived")
	}
	if it, err := nextWithin(src, 300*time.Millisecond); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Next = %v, %v; want a deadline error (the archive is not read)", it, err)
	}
}

func TestSourceAckChangedFile(t *testing.T) {
	for _, after := range []string{AfterDelete, AfterMove} {
		t.Run(after, func(t *testing.T) {
			archive := t.TempDir()
			src, dir := newTestSource(t, map[string]string{"a.txt": "v1"}, func(c *SourceConfig) {
				c.After = after
				c.ArchiveDir = archive
			})
			items := drain(t, src)
			writeFiles(t, dir, map[string]string{"a.txt": "version 2"})
			err := items[0].Ack(context.Background(), pipeline.Outcome{Status: pipeline.Passed})
			if err == nil || !strings.Contains(err.Error(), "changed since it was offered") || !pipeline.IsPermanent(err) {
				t.Fatalf("Ack = %v, want a permanent error about the change", err)
			}
			if b, _ := os.ReadFile(filepath.Join(dir, "a.txt")); string(b) != "version 2" {
				t.Errorf("file content = %q", b)
			}
			if _, err := items[0].Open(context.Background()); err == nil || !strings.Contains(err.Error(), "changed") {
				t.Errorf("Open = %v, want an error about the change", err)
			}
		})
	}
}

func TestSourceVanishedFile(t *testing.T) {
	src, dir := newTestSource(t, map[string]string{"a.txt": "a"}, nil)
	items := drain(t, src)
	if err := os.Remove(filepath.Join(dir, "a.txt")); err != nil {
		t.Fatal(err)
	}
	_, err := items[0].Open(context.Background())
	if !errors.Is(err, fs.ErrNotExist) || !strings.Contains(err.Error(), "vanished") || !strings.Contains(err.Error(), dir) {
		t.Fatalf("Open = %v, want a not-exist error naming the file", err)
	}
	if _, err := items[0].(pipeline.RangeOpener).OpenRange(context.Background(), 0, 1); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("OpenRange = %v", err)
	}
}

func TestSourceRangeReads(t *testing.T) {
	data := make([]byte, 1<<20+333)
	rand.Read(data)
	src, _ := newTestSource(t, map[string]string{"big.bin": string(data)}, nil)
	items := drain(t, src)
	ro, ok := items[0].(pipeline.RangeOpener)
	if !ok {
		t.Fatal("item is not a RangeOpener")
	}
	const piece = 64 << 10
	out := make([]byte, len(data))
	var wg sync.WaitGroup
	errs := make(chan error, len(data)/piece+1)
	for off := 0; off < len(data); off += piece {
		wg.Add(1)
		go func(off int) {
			defer wg.Done()
			n := min(piece, len(data)-off)
			r, err := ro.OpenRange(context.Background(), int64(off), int64(n))
			if err != nil {
				errs <- err
				return
			}
			defer r.Close()
			if _, err := io.ReadFull(r, out[off:off+n]); err != nil {
				errs <- err
			}
		}(off)
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	if testkit.SHA256Hex(out) != testkit.SHA256Hex(data) {
		t.Fatal("range reads differ from the file")
	}

	tests := []struct {
		off, n int64
		want   []byte
	}{
		{0, 0, []byte{}},
		{10, 5, data[10:15]},
		{int64(len(data)) - 3, 100, data[len(data)-3:]},
		{int64(len(data)) + 10, 5, []byte{}},
	}
	for _, tt := range tests {
		r, err := ro.OpenRange(context.Background(), tt.off, tt.n)
		if err != nil {
			t.Fatal(err)
		}
		got, err := io.ReadAll(r)
		r.Close()
		if err != nil || !bytes.Equal(got, tt.want) {
			t.Errorf("OpenRange(%d, %d) = %d bytes, %v; want %d bytes", tt.off, tt.n, len(got), err, len(tt.want))
		}
	}
	if _, err := ro.OpenRange(context.Background(), -1, 5); err == nil {
		t.Error("OpenRange at a negative offset succeeded")
	}
}

func TestSourceSymlinks(t *testing.T) {
	if runtime.GOOS == "windows" {
		t.Skip("symbolic links need privileges on Windows")
	}
	outside := t.TempDir()
	writeFiles(t, outside, map[string]string{"real.txt": "real", "d/inner.txt": "inner"})
	src, dir := newTestSource(t, map[string]string{"plain.txt": "plain"}, func(c *SourceConfig) { c.After = AfterDelete })
	for link, target := range map[string]string{
		"link.txt": filepath.Join(outside, "real.txt"),
		"linkdir":  filepath.Join(outside, "d"),
		"dangling": filepath.Join(outside, "nothing"),
		"loop":     dir,
	} {
		if err := os.Symlink(target, filepath.Join(dir, link)); err != nil {
			t.Fatal(err)
		}
	}
	items := drain(t, src)
	if diff := cmp.Diff([]string{"link.txt", "plain.txt"}, names(items)); diff != "" {
		t.Fatalf("offered (-want +got):\n%s", diff)
	}
	for _, it := range items {
		if it.File().Name != "link.txt" {
			continue
		}
		if got := string(testkit.ReadItem(t, it)); got != "real" || it.File().Size != 4 {
			t.Errorf("link read %q, size %d", got, it.File().Size)
		}
		if err := it.Ack(context.Background(), pipeline.Outcome{Status: pipeline.Passed}); err != nil {
			t.Fatal(err)
		}
	}
	if exists(filepath.Join(dir, "link.txt")) {
		t.Error("the link was not deleted")
	}
	if !exists(filepath.Join(outside, "real.txt")) {
		t.Error("the file the link pointed to was deleted")
	}
}

func TestSourceCloseStopsNext(t *testing.T) {
	before := runtime.NumGoroutine()
	src, _ := newTestSource(t, nil, func(c *SourceConfig) { c.Watch = true })
	done := make(chan error, 1)
	go func() {
		_, err := src.Next(context.Background())
		done <- err
	}()
	time.Sleep(50 * time.Millisecond)
	if err := src.Close(); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-done:
		if !errors.Is(err, errSourceClosed) {
			t.Fatalf("Next = %v, want the closed error", err)
		}
	case <-time.After(2 * time.Second):
		t.Fatal("Next did not return after Close")
	}
	if err := src.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	if _, err := src.Next(context.Background()); !errors.Is(err, errSourceClosed) {
		t.Fatalf("Next after Close = %v", err)
	}
	deadline := time.Now().Add(2 * time.Second)
	for runtime.NumGoroutine() > before {
		if time.Now().After(deadline) {
			t.Fatalf("%d goroutines after Close, %d before", runtime.NumGoroutine(), before)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestSourceNextHonoursContext(t *testing.T) {
	src, _ := newTestSource(t, nil, func(c *SourceConfig) { c.Watch = true })
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := src.Next(ctx); !errors.Is(err, context.Canceled) {
		t.Fatalf("Next = %v, want context.Canceled", err)
	}
	start := time.Now()
	if _, err := nextWithin(src, 100*time.Millisecond); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Next = %v, want a deadline error", err)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Fatalf("Next took %v to notice its deadline", d)
	}
}

func TestNewSourceErrors(t *testing.T) {
	dir := t.TempDir()
	writeFiles(t, dir, map[string]string{"file": "x"})
	tests := []struct {
		name string
		c    SourceConfig
		want string
	}{
		{"no path", SourceConfig{}, `local: field "path": required field is missing`},
		{"missing dir", SourceConfig{Path: filepath.Join(dir, "nope")}, `local: field "path": stat ` + filepath.Join(dir, "nope") + `: no such file or directory`},
		{"not a dir", SourceConfig{Path: filepath.Join(dir, "file")}, `local: field "path": ` + filepath.Join(dir, "file") + ` is not a directory`},
		{"bad include", SourceConfig{Path: dir, Include: []string{"[a"}}, `local: field "include": invalid glob pattern "[a"`},
		{"bad after", SourceConfig{Path: dir, After: "burn"}, `local: field "after": want one of delete, move, leave, got "burn"`},
		{"move without archive", SourceConfig{Path: dir, After: AfterMove}, `local: field "archive_dir": required when after is "move"`},
		{"archive is the source", SourceConfig{Path: dir, After: AfterMove, ArchiveDir: dir + "/."}, `local: field "archive_dir": ` + dir + ` is the source directory itself`},
		{"trigger with slash", SourceConfig{Path: dir, Trigger: "a/b"}, `local: field "trigger": "a/b": want a suffix such as .done, without slashes`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			src, err := NewSource(context.Background(), tt.c)
			if err == nil {
				src.Close()
				t.Fatal("NewSource succeeded")
			}
			if err.Error() != tt.want {
				t.Errorf("error:\n got %s\nwant %s", err, tt.want)
			}
		})
	}
}
