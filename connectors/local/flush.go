package local

import (
	"context"
	"sync"
)

// Flush blocks until every file this sink committed before the call is on
// stable storage, with the directories leading to it; it implements
// pipeline.Flusher. With Fsync set, Commit already synced each file and its
// directories, so Flush returns nil at once. Otherwise it syncs the file
// system holding the sink's directory: on Linux with syncfs(2), which also
// covers files an earlier process committed there, and errors of write-back
// since the last sync (Linux 5.8 and later report them); elsewhere by
// syncing each file committed since the last Flush and its directory.
// Directories below the sink's that are mount points of another file system
// are not covered by syncfs: set fsync for such layouts.
//
// Concurrent calls share syncs: a call waits for the next sync that starts
// after it was made, so many files finishing at once cost one sync, not one
// each. ctx bounds the wait; a sync already under way runs to its end. Flush
// is safe for concurrent use.
func (s *Sink) Flush(ctx context.Context) error {
	if s.cfg.Fsync {
		return ctx.Err()
	}
	return s.flushes.wait(ctx)
}

// flushGroup runs one sync at a time for any number of callers. A caller
// joins the sync that will start next, never one already under way, so the
// sync it waits for began after it asked and covers whatever the caller did
// before.
type flushGroup struct {
	sync func() error

	mu      sync.Mutex
	running bool       // a goroutine is running syncs
	next    *flushCall // the sync that starts once the running one ends; nil if nobody asked
}

// flushCall is one sync and its waiters.
type flushCall struct {
	done chan struct{} // closed when err is set
	err  error
}

func newFlushGroup(sync func() error) *flushGroup {
	return &flushGroup{sync: sync}
}

// wait asks for a sync and waits until one that started after the call has
// ended, or ctx ends.
func (g *flushGroup) wait(ctx context.Context) error {
	g.mu.Lock()
	c := g.next
	if c == nil {
		c = &flushCall{done: make(chan struct{})}
		g.next = c
	}
	if !g.running {
		g.running = true
		go g.run()
	}
	g.mu.Unlock()
	select {
	case <-c.done:
		return c.err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// run performs the syncs asked for, one after another, and ends when nobody
// waits for another.
func (g *flushGroup) run() {
	for {
		g.mu.Lock()
		c := g.next
		g.next = nil
		if c == nil {
			g.running = false
			g.mu.Unlock()
			return
		}
		g.mu.Unlock()
		c.err = g.sync()
		close(c.done)
	}
}
