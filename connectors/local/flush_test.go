package local

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mftflow/mftflow/testkit"
)

// TestFlushGroupWaitsForASyncStartedAfterTheCall checks the coalescing: a
// caller that asks while a sync is under way does not take that sync's
// result but waits for the next, and every caller that asked meanwhile
// shares that next one.
func TestFlushGroupWaitsForASyncStartedAfterTheCall(t *testing.T) {
	var syncs atomic.Int32
	started := make(chan int32, 10)
	release := make(chan struct{})
	g := newFlushGroup(func() error {
		n := syncs.Add(1)
		started <- n
		<-release
		return nil
	})
	first := make(chan error, 1)
	go func() { first <- g.wait(context.Background()) }()
	if n := <-started; n != 1 {
		t.Fatalf("sync %d started, want 1", n)
	}

	// Sync 1 is under way: these callers must wait for sync 2.
	const callers = 8
	var done atomic.Int32
	var wg sync.WaitGroup
	for range callers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := g.wait(context.Background()); err != nil {
				t.Error(err)
			}
			done.Add(1)
		}()
	}
	time.Sleep(50 * time.Millisecond) // let them all ask
	release <- struct{}{}             // sync 1 ends
	if err := <-first; err != nil {
		t.Fatal(err)
	}
	if n := <-started; n != 2 {
		t.Fatalf("sync %d started, want 2", n)
	}
	time.Sleep(20 * time.Millisecond)
	if d := done.Load(); d != 0 {
		t.Fatalf("%d callers returned when the sync under way as they asked ended, want 0", d)
	}
	release <- struct{}{} // sync 2 ends
	wg.Wait()
	if n := syncs.Load(); n != 2 {
		t.Errorf("%d syncs for 1+%d callers, want 2", n, callers)
	}
}

func TestFlushGroupReportsErrorsAndContext(t *testing.T) {
	boom := errors.New("boom")
	block := make(chan struct{})
	g := newFlushGroup(func() error { <-block; return boom })
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	if err := g.wait(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("wait with an expiring context: %v, want deadline exceeded", err)
	}
	close(block)
	if err := g.wait(context.Background()); !errors.Is(err, boom) {
		t.Fatalf("wait: %v, want the sync's error", err)
	}
}

// commitOne writes data through s as name and commits it.
func commitOne(t *testing.T, s *Sink, name string, data []byte) {
	t.Helper()
	f := fileFor(name, data)
	u, err := s.Open(context.Background(), f, nil)
	if err != nil {
		t.Fatal(err)
	}
	writeParts(t, u, data, partsOf(int64(len(data)), 64<<10))
	if err := u.Commit(context.Background(), f); err != nil {
		t.Fatal(err)
	}
}

func TestFlushWithFsyncReturnsAtOnce(t *testing.T) {
	s := newTestSink(t, SinkConfig{Fsync: true})
	var syncs atomic.Int32
	s.flushes = newFlushGroup(func() error { syncs.Add(1); return nil })
	commitOne(t, s, "a.txt", []byte("hello"))
	if err := s.Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
	if n := syncs.Load(); n != 0 {
		t.Errorf("%d syncs with fsync on, want 0: Commit already synced", n)
	}

	s = newTestSink(t, SinkConfig{})
	s.flushes = newFlushGroup(func() error { syncs.Add(1); return nil })
	commitOne(t, s, "a.txt", []byte("hello"))
	if err := s.Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
	if n := syncs.Load(); n != 1 {
		t.Errorf("%d syncs with fsync off, want 1", n)
	}
}

// The helper process of TestFlushReachesTheKernel: it commits a file to a
// sink on $MFTFLOW_FLUSH_DIR (name and fsync from $MFTFLOW_FLUSH_MODE) and,
// without fsync, flushes it.
func TestFlushHelperProcess(t *testing.T) {
	dir := os.Getenv("MFTFLOW_FLUSH_DIR")
	if dir == "" {
		t.Skip("helper process of TestFlushReachesTheKernel")
	}
	fsync := os.Getenv("MFTFLOW_FLUSH_MODE") == "fsync"
	s, err := NewSink(SinkConfig{Path: filepath.Join(dir, "out"), Name: "a/b/{name}", Fsync: fsync})
	if err != nil {
		t.Fatal(err)
	}
	commitOne(t, s, "f.txt", []byte("content"))
	fmt.Println("committed")
	if err := s.Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
	fmt.Println("flushed")
}

// TestFlushReachesTheKernel runs TestFlushHelperProcess under strace and
// checks the system calls that make the committed file durable, in order:
// without fsync a syncfs of the sink's file system after the rename that
// publishes the file; with fsync an fsync of the file before the rename, then
// of every directory from the file's up to the sink's, created by the name
// template or not.
func TestFlushReachesTheKernel(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("syncfs is Linux only")
	}
	strace := testkit.Strace(t)
	for _, mode := range []string{"flush", "fsync"} {
		t.Run(mode, func(t *testing.T) {
			dir := t.TempDir()
			trace := filepath.Join(dir, "trace")
			cmd := exec.Command(strace, "-f", "-y", "-qq", "-o", trace,
				"-e", "trace=syncfs,fsync,fdatasync,rename,renameat,renameat2,link,linkat",
				os.Args[0], "-test.run=^TestFlushHelperProcess$", "-test.count=1")
			cmd.Env = append(os.Environ(), "MFTFLOW_FLUSH_DIR="+dir, "MFTFLOW_FLUSH_MODE="+mode)
			if out, err := cmd.CombinedOutput(); err != nil {
				if strings.Contains(string(out), "ptrace") || strings.Contains(string(out), "PTRACE") {
					t.Skipf("strace cannot trace here: %s", out)
				}
				t.Fatalf("helper under strace: %v\n%s", err, out)
			}
			b, err := os.ReadFile(trace)
			if err != nil {
				t.Fatal(err)
			}
			calls := testkit.ParseStrace(string(b))
			out := filepath.Join(dir, "out")
			target := filepath.Join(out, "a", "b", "f.txt")
			rename := indexOf(calls, 0, func(c testkit.SysCall) bool {
				return strings.HasPrefix(c.Name, "rename") && strings.Contains(c.Args, `"`+target+`"`) && c.OK()
			})
			if rename < 0 {
				t.Fatalf("no rename publishing %s in:\n%s", target, b)
			}
			after := func(c testkit.SysCall) bool { return c.Start > calls[rename].End }
			switch mode {
			case "flush":
				if indexOf(calls, 0, func(c testkit.SysCall) bool {
					return c.Name == "syncfs" && strings.Contains(c.Args, "<"+out+">") && c.OK() && after(c)
				}) < 0 {
					t.Fatalf("no successful syncfs of %s after the rename:\n%s", out, b)
				}
			case "fsync":
				if indexOf(calls, 0, func(c testkit.SysCall) bool {
					return c.Name == "fsync" && strings.Contains(c.Args, ".mftflow-") && c.OK() && c.End < calls[rename].Start
				}) < 0 {
					t.Errorf("the temporary file was not synced before the rename:\n%s", b)
				}
				next := rename + 1
				for _, d := range []string{filepath.Join(out, "a", "b"), filepath.Join(out, "a"), out} {
					i := indexOf(calls, next, func(c testkit.SysCall) bool {
						return c.Name == "fsync" && strings.Contains(c.Args, "<"+d+">") && c.OK() && after(c)
					})
					if i < 0 {
						t.Fatalf("no fsync of directory %s after the rename (and after the directories below it):\n%s", d, b)
					}
					next = i + 1
				}
			}
		})
	}
}

// indexOf returns the index of the first call from calls[from:] that
// matches, or -1.
func indexOf(calls []testkit.SysCall, from int, match func(testkit.SysCall) bool) int {
	for i := from; i < len(calls); i++ {
		if match(calls[i]) {
			return i
		}
	}
	return -1
}
