package engine

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/mftflow/mftflow/pipeline/bus"
)

// DefaultBusFullWait is how long writes the bus refuses for want of room
// wait for it unless Options.BusFullWait says otherwise. Room comes back
// within a run as deliveries write chunks and remove them from the bus
// (a window of chunks drains in seconds to a minute even on a slow sink), as
// the janitor drops retained chunks, or as an operator frees room on an
// external server; a store still full after two minutes will not clear by
// itself (the embedded server sizes its store when it starts), and the
// run should end and say so rather than hang.
const DefaultBusFullWait = 2 * time.Minute

// spaceLogEvery is how often a file still waiting for room is logged again.
const spaceLogEvery = 30 * time.Second

// spaceFileKey keys the file a write is for in its context, so that waits
// for room are logged once per file.
type spaceFileKey struct{}

type spaceFile struct{ id, name string }

// withFile marks ctx as belonging to the file id (named name, if known).
func withFile(ctx context.Context, id, name string) context.Context {
	return context.WithValue(ctx, spaceFileKey{}, spaceFile{id, name})
}

// spaceWatch is a run's bus.SpaceWatcher: it logs writes waiting for room
// once per file when the first is refused, then every spaceLogEvery while
// any waits, and once when room comes; and it counts refused writes.
type spaceWatch struct {
	log     *slog.Logger
	max     time.Duration
	refused prometheus.Counter

	mu    sync.Mutex
	files map[string]*fileWait // by file id; "" for writes of no file
}

// fileWait is one file's writes waiting for room.
type fileWait struct {
	name          string
	waiting       int
	first, logged time.Time
}

func newSpaceWatch(log *slog.Logger, max time.Duration, refused prometheus.Counter) *spaceWatch {
	return &spaceWatch{log: log, max: max, refused: refused, files: map[string]*fileWait{}}
}

func (s *spaceWatch) Refused(ctx context.Context, err *bus.StoreFullError, first bool) {
	if first {
		s.refused.Inc()
	}
	f, _ := ctx.Value(spaceFileKey{}).(spaceFile)
	now := time.Now()
	s.mu.Lock()
	fw := s.files[f.id]
	if fw == nil {
		fw = &fileWait{first: now}
		s.files[f.id] = fw
	}
	if first {
		fw.waiting++
	}
	if fw.name == "" {
		fw.name = f.name
	}
	// A write that gives up at its first refusal (the store has refused
	// writes for the whole bound already) does not wait: its writer
	// reports the failure.
	quiet := first && err.Waited > 0
	due := !quiet && (fw.logged.IsZero() || now.Sub(fw.logged) >= spaceLogEvery)
	if due {
		fw.logged = now
	}
	waited, name := now.Sub(fw.first), fw.name
	s.mu.Unlock()
	if !due {
		return
	}
	where, fix := err.Place()
	args := []any{"store", where, "waited", waited.Round(time.Second), "gives_up_after", s.max, "what_to_do", fix, "err", serverErr(err)}
	if f.id != "" {
		args = append([]any{"file", name, "id", f.id}, args...)
	}
	if waited < time.Second {
		s.log.Warn("the bus store is full: waiting for room", args...)
	} else {
		s.log.Warn("the bus store is still full: waiting for room", args...)
	}
}

func (s *spaceWatch) Ended(ctx context.Context, err error) {
	f, _ := ctx.Value(spaceFileKey{}).(spaceFile)
	s.mu.Lock()
	fw := s.files[f.id]
	if fw == nil {
		s.mu.Unlock()
		return
	}
	fw.waiting--
	if fw.waiting > 0 {
		s.mu.Unlock()
		return
	}
	delete(s.files, f.id)
	s.mu.Unlock()
	if err != nil || fw.logged.IsZero() {
		return // the writer reports its failure; or nothing was said
	}
	args := []any{"waited", time.Since(fw.first).Round(time.Second)}
	if f.id != "" {
		args = append([]any{"file", fw.name, "id", f.id}, args...)
	}
	s.log.Info("room in the bus store again; going on", args...)
}

// serverErr is the server's answer within a refusal.
func serverErr(err *bus.StoreFullError) string {
	if err.Err == nil {
		return ""
	}
	return err.Err.Error()
}

// newSpace returns the run's wait for room in the bus store.
func (r *Run) newSpace(refused prometheus.Counter) *bus.SpaceWait {
	hint := r.e.opts.BusStore
	if hint.Where == "" {
		hint = bus.ServerStore
	}
	return &bus.SpaceWait{Max: r.e.opts.BusFullWait, Hint: hint, Watch: newSpaceWatch(r.log, r.e.opts.BusFullWait, refused)}
}

// wedgedAfter is how long the bus store may refuse every write before the
// run gives up and stops (see watchSpace): a bound after files waiting for
// room have failed and made what room they could, and time for the source
// lease, renewed every third of its TTL, to find that room.
func (r *Run) wedgedAfter() time.Duration { return 2*r.space.Max + 3*r.e.opts.LeaseTTL }

// watchSpace stops the run when the bus store has refused every write for
// wedgedAfter: files that failed for want of room removed their chunks,
// and still nothing can be written, so nothing can be recorded either, and
// a run of a finite source would otherwise never end (its deliveries
// cannot be recorded final; its source lease cannot be taken or renewed).
// The run's error says why; files in flight resume on the next run.
func (r *Run) watchSpace() {
	t := time.NewTicker(time.Second)
	defer t.Stop()
	for {
		select {
		case <-r.done:
			return
		case <-r.stopping.Done():
			return
		case <-t.C:
		}
		since, last, full := r.space.Full()
		if !full || time.Since(since) < r.wedgedAfter() {
			continue
		}
		c := *last
		c.Waited = time.Since(since)
		r.log.Error("the bus store refuses every write: the flow stops; files in flight resume on the next run", "err", &c)
		r.fail(&c)
		r.stop()
		return
	}
}

// Problems returns why the run cannot get on, one line each, for
// readiness checks: today, a bus store refusing writes for want of room
// (while it does). It is safe for concurrent use.
func (r *Run) Problems() []string {
	since, last, full := r.space.Full()
	if !full {
		return nil
	}
	where, fix := last.Place()
	return []string{fmt.Sprintf("flow %s: the bus store is full: %s has refused writes for %s (a file waiting for room fails after %s): %s",
		r.flow.Name, where, time.Since(since).Round(time.Second), r.space.Max, fix)}
}
