package pipeline

import (
	"cmp"
	"context"
	"errors"
	"io"
	"slices"
	"strconv"
	"sync"
	"time"
)

// Listed is a file as a directory listing shows it.
type Listed struct {
	Name    string // relative to the listed directory, slash-separated
	Size    int64
	ModTime time.Time
}

// Key names this version of the file: its name, size and modification time.
func (l Listed) Key() string {
	return l.Name + "|" + strconv.FormatInt(l.Size, 10) + "|" + strconv.FormatInt(l.ModTime.UnixNano(), 10)
}

// Lister lists a polled directory for a Poller.
type Lister interface {
	// List returns the files the directory holds now, those a source would
	// take (after its include, exclude and ignore patterns).
	List(ctx context.Context) ([]Listed, error)
	// Recheck reports whether f is still there as listed, for a file that
	// waited in the queue longer than a poll interval.
	Recheck(ctx context.Context, f Listed) (bool, error)
}

// ErrPollerStopped is what Poller.Next returns once its stop channel is
// closed.
var ErrPollerStopped = errors.New("the source is closed")

// Poller decides when the files of a polled directory (a remote server's, a
// bucket's) are offered: each version of a file once, oldest first, once
// two listings at least StableFor apart show the same size and modification
// time, or at once when it is older than MinAge; so that a file still being
// uploaded is not read half-way. Its methods are for one goroutine.
type Poller struct {
	// Watch keeps listing every PollInterval; without it Next returns io.EOF
	// once the files of the first listing were offered.
	Watch        bool
	PollInterval time.Duration
	StableFor    time.Duration
	MinAge       time.Duration

	listed   bool
	lastList time.Time
	pending  map[string]pollCandidate // name -> version waiting to be stable
	ready    []Listed
	offered  map[string]bool // keys offered
}

type pollCandidate struct {
	Listed
	since time.Time // when this size and modification time were first listed
}

// Next returns the next file to offer, listing with l whenever a listing is
// due and sleeping in between. It returns io.EOF when the Poller does not
// Watch and every file was offered, ctx.Err() when ctx ends and
// ErrPollerStopped once stop is closed. Errors of l are returned as they are.
func (p *Poller) Next(ctx context.Context, stop <-chan struct{}, l Lister) (Listed, error) {
	for {
		if err := ctx.Err(); err != nil {
			return Listed{}, err
		}
		if isClosed(stop) {
			return Listed{}, ErrPollerStopped
		}
		now := time.Now()
		if len(p.ready) == 0 && p.due(now) {
			files, err := l.List(ctx)
			if err != nil {
				if isClosed(stop) {
					return Listed{}, ErrPollerStopped
				}
				return Listed{}, err
			}
			p.record(now, files)
		}
		if len(p.ready) > 0 {
			f := p.ready[0]
			if now.Sub(p.lastList) > p.PollInterval {
				// Listed a while ago, with a long queue ahead of it: make
				// sure it is still there, unchanged.
				current, err := l.Recheck(ctx, f)
				if err != nil {
					return Listed{}, err
				}
				if !current {
					p.ready = p.ready[1:]
					continue
				}
			}
			p.ready = p.ready[1:]
			p.offered[f.Key()] = true
			return f, nil
		}
		if !p.Watch && len(p.pending) == 0 {
			return Listed{}, io.EOF
		}
		if err := p.wait(ctx, stop); err != nil {
			return Listed{}, err
		}
	}
}

func isClosed(c <-chan struct{}) bool {
	select {
	case <-c:
		return true
	default:
		return false
	}
}

// due reports whether a listing is due: the first, one that may find a
// pending file stable, or the next poll.
func (p *Poller) due(now time.Time) bool {
	return !p.listed ||
		len(p.pending) > 0 && !now.Before(p.lastList.Add(p.StableFor)) ||
		p.Watch && !now.Before(p.lastList.Add(p.PollInterval))
}

// wait sleeps until the next listing is due.
func (p *Poller) wait(ctx context.Context, stop <-chan struct{}) error {
	var at time.Time
	if p.Watch {
		at = p.lastList.Add(p.PollInterval)
	}
	if len(p.pending) > 0 {
		if t := p.lastList.Add(p.StableFor); at.IsZero() || t.Before(at) {
			at = t
		}
	}
	t := time.NewTimer(time.Until(at))
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-stop:
	case <-t.C:
	}
	return nil
}

// record takes a listing made at now: files that are ready join the queue,
// oldest first; pending files no longer listed are forgotten.
func (p *Poller) record(now time.Time, files []Listed) {
	if p.pending == nil {
		p.pending, p.offered = map[string]pollCandidate{}, map[string]bool{}
	}
	seen := make(map[string]bool, len(files))
	var found []Listed
	for _, f := range files {
		seen[f.Name] = true
		if p.observe(f, now) {
			found = append(found, f)
		}
	}
	for name := range p.pending {
		if !seen[name] {
			delete(p.pending, name)
		}
	}
	slices.SortFunc(found, func(a, b Listed) int {
		return cmp.Or(a.ModTime.Compare(b.ModTime), cmp.Compare(a.Name, b.Name))
	})
	p.ready = append(p.ready, found...)
	p.listed, p.lastList = true, now
}

// observe records one listed file and reports whether it is ready to offer:
// not offered before, and stable.
func (p *Poller) observe(f Listed, now time.Time) bool {
	if p.offered[f.Key()] {
		delete(p.pending, f.Name)
		return false
	}
	c := pollCandidate{Listed: f, since: now}
	if old, ok := p.pending[f.Name]; ok && old.Size == f.Size && old.ModTime.Equal(f.ModTime) {
		c.since = old.since
	}
	stable := p.StableFor == 0 ||
		now.Sub(c.since) >= p.StableFor ||
		p.MinAge > 0 && now.Sub(f.ModTime) >= p.MinAge
	if !stable {
		p.pending[f.Name] = c
		return false
	}
	delete(p.pending, f.Name)
	return true
}

// PollLoop is a Poller together with the signal that its source closed: the
// state a polled source keeps for its Next and Close.
type PollLoop struct {
	poller Poller // for the goroutine calling Next
	once   sync.Once
	stop   chan struct{}
}

// NewPollLoop returns a PollLoop that polls with p.
func NewPollLoop(p Poller) *PollLoop { return &PollLoop{poller: p, stop: make(chan struct{})} }

// Next is the Poller's Next (see Poller.Next), which returns
// ErrPollerStopped once Stop was called. It is for one goroutine at a time.
func (l *PollLoop) Next(ctx context.Context, lister Lister) (Listed, error) {
	return l.poller.Next(ctx, l.stop, lister)
}

// Stop makes a blocked or later Next return ErrPollerStopped. It reports
// whether this was the first call, so that the source releases what it
// holds once. It is safe for concurrent use.
func (l *PollLoop) Stop() (first bool) {
	l.once.Do(func() {
		close(l.stop)
		first = true
	})
	return first
}
