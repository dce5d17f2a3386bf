package pipeline_test

import (
	"context"
	"errors"
	"io"
	"sync"
	"testing"
	"time"

	"github.com/mftflow/mftflow/pipeline"
)

// dirList is a directory whose listing the test changes.
type dirList struct {
	mu       sync.Mutex
	files    map[string]pipeline.Listed
	listings int
}

func (d *dirList) set(name string, size int64, mtime time.Time) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if size < 0 {
		delete(d.files, name)
		return
	}
	d.files[name] = pipeline.Listed{Name: name, Size: size, ModTime: mtime}
}

func (d *dirList) List(context.Context) ([]pipeline.Listed, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.listings++
	var out []pipeline.Listed
	for _, f := range d.files {
		out = append(out, f)
	}
	return out, nil
}

func (d *dirList) Recheck(_ context.Context, f pipeline.Listed) (bool, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	cur, ok := d.files[f.Name]
	return ok && cur == f, nil
}

func TestPollerOffersStableVersionsOnceOldestFirst(t *testing.T) {
	t0 := time.Now().Add(-time.Minute)
	d := &dirList{files: map[string]pipeline.Listed{}}
	d.set("b.csv", 10, t0.Add(2*time.Second))
	d.set("a.csv", 10, t0.Add(time.Second))
	p := &pipeline.Poller{StableFor: 20 * time.Millisecond, PollInterval: time.Hour}
	ctx := t.Context()
	var got []string
	for {
		f, err := p.Next(ctx, nil, d)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, f.Name)
		if f.Name == "a.csv" {
			// A file that grows while the first is offered waits for a
			// second listing; b.csv, stable, is offered before it.
			d.set("c.csv", 5, t0)
		}
	}
	if want := []string{"a.csv", "b.csv"}; len(got) != 2 || got[0] != want[0] || got[1] != want[1] {
		t.Fatalf("offered %v, want %v (c.csv appeared after the only listing of a finite poll)", got, want)
	}
	if d.listings != 2 {
		t.Fatalf("%d listings, want 2 (one to see the files, one to find them stable)", d.listings)
	}
}

func TestPollerWatchesForNewVersions(t *testing.T) {
	t0 := time.Now().Add(-time.Minute)
	d := &dirList{files: map[string]pipeline.Listed{}}
	d.set("a.csv", 10, t0)
	p := &pipeline.Poller{Watch: true, PollInterval: 10 * time.Millisecond, MinAge: time.Second, StableFor: time.Hour}
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	first, err := p.Next(ctx, nil, d)
	if err != nil || first.Name != "a.csv" {
		t.Fatalf("Next: %v, %v; want a.csv at once (older than min_age)", first, err)
	}
	d.set("a.csv", 11, t0.Add(time.Second)) // a new version, also old enough
	second, err := p.Next(ctx, nil, d)
	if err != nil || second.Size != 11 || second.Key() == first.Key() {
		t.Fatalf("Next: %v, %v; want the new version of a.csv", second, err)
	}
	stop := make(chan struct{})
	go func() { time.Sleep(30 * time.Millisecond); close(stop) }()
	if _, err := p.Next(ctx, stop, d); !errors.Is(err, pipeline.ErrPollerStopped) {
		t.Fatalf("Next after stop: %v, want ErrPollerStopped (nothing new to offer)", err)
	}
}

func TestWithSuffix(t *testing.T) {
	for _, c := range []struct {
		in   string
		n    int
		want string
	}{
		{"report.csv", 0, "report.csv"},
		{"report.csv", 2, "report-2.csv"},
		{"in/v1.2/data", 1, "in/v1.2/data-1"},
		{"/a/b.tar.gz", 3, "/a/b.tar-3.gz"},
	} {
		if got := pipeline.WithSuffix(c.in, c.n); got != c.want {
			t.Errorf("WithSuffix(%q, %d) = %q, want %q", c.in, c.n, got, c.want)
		}
	}
}
