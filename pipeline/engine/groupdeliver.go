package engine

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"net"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/mftflow/mftflow/pipeline"
	"github.com/mftflow/mftflow/pipeline/bus"
)

// opened is a member written to its sink and not yet committed; or, for a
// sink that writes small files whole (pipeline.WholeWriter), not yet
// written (up is nil): its bytes go in one request at the commit.
type opened struct {
	m    bus.Member
	up   pipeline.Upload
	data []byte
}

// deliverGroup makes one attempt at delivering the members of group gid
// that are not final at sink s: each is opened and written, then the
// commit is claimed for all of them at once, then each is committed, and
// one record write says how each ended. A member that fails does not hold
// the others back: it is tried again by the group's next attempt (its
// failures count against the sink's retry budget, its own), or fails alone.
func (r *Run) deliverGroup(ctx context.Context, s *sinkRun, gid string, task uint64, log logger) error {
	key := bus.GroupDeliveryKey(gid, s.spec.Name)
	var g bus.Group
	rev, err := r.fb.Store.Get(ctx, bus.GroupKey(gid), &g)
	if err != nil {
		return r.stopped(err)
	}
	if rev == 0 || g.Abandoned {
		log.Warn("delivery task for an unknown group; dropping it", "group", gid)
		return nil
	}
	recv, err := r.beginGroupAttempt(ctx, s, gid, task)
	if err != nil {
		return r.stopped(err)
	}
	if recv.V.State == bus.DeliveryCommitted {
		return nil
	}
	owner := recv.V.Owner
	a := &groupAttempt{r: r, s: s, log: log, states: maps.Clone(recv.V.Files), loaded: recv.V.Files, attempt: recv.V.Attempts}
	if a.states == nil {
		a.states = map[string]bus.MemberDelivery{}
	}
	content, err := r.groupContent(ctx, g)
	if err != nil && !pipeline.IsPermanent(err) {
		return r.stopped(err)
	}
	open, tried := a.writeAll(ctx, g.Members, content, err)
	if r.stopping.Err() != nil {
		a.abort(open, errStopped)
		return errStopped
	}
	claimed := a.withResumes(open)
	recv, err = bus.UpdateFrom(ctx, r.fb.Store, key, recv, func(d *bus.GroupDelivery, exists bool) error {
		if d.Owner != owner {
			return errSuperseded
		}
		d.State, d.Updated = bus.DeliveryCommitting, time.Now().UTC()
		d.Files = claimed
		return nil
	})
	if err != nil {
		a.abort(open, err)
		return r.stopped(err)
	}
	committed := a.commitAll(ctx, open, tried)
	done, err := a.record(key, recv, owner, g.Members)
	if err != nil {
		return r.stopped(err)
	}
	s.stats.committed.Add(int64(committed))
	s.metrics.files.Add(float64(committed))
	if !done {
		return &retryLater{err: fmt.Errorf("%d of the group's %d files failed at the sink: %s", a.failed, len(g.Members), a.lastErr), after: a.retry, files: a.again}
	}
	return nil
}

// groupAttempt is one attempt at a group's delivery to a sink. Its members
// are written, and committed, up to the sink's parallelism at once.
type groupAttempt struct {
	r   *Run
	s   *sinkRun
	log logger

	mu      sync.Mutex
	states  map[string]bus.MemberDelivery // by file id
	retry   time.Duration                 // the longest wait a failed member asks for
	failed  int                           // members that failed in this attempt
	again   int                           // of those, the ones to be tried again
	lastErr error
	attempt int                           // the group delivery's attempt, counted on the bus
	loaded  map[string]bus.MemberDelivery // the states as the attempt began
}

// fail notes a failed attempt at member m: final when the error is
// permanent or m's failures reach the sink's budget.
func (a *groupAttempt) fail(m bus.Member, err error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	md := a.states[m.ID]
	md.Failures++
	md.Error = pipeline.RedactURLs(err.Error())
	md.State = bus.DeliveryPending
	a.failed++
	a.lastErr = err
	final := pipeline.IsPermanent(err) || md.Failures >= a.s.spec.Retry.Attempts
	a.s.emitFor(withFile(context.Background(), m.ID, m.Name), pipeline.Event{Kind: pipeline.EventAttemptFailed,
		Attempt: md.Failures, Error: pipeline.RedactURLs(err.Error()), Permanent: final})
	if final && errors.Is(err, pipeline.ErrUploadLost) {
		a.r.lost.Store(m.ID, true) // read again from the source (version.group)
	}
	if final {
		md.State = bus.DeliveryFailed
		a.s.stats.failed.Add(1)
		a.s.metrics.failures.Inc()
		a.log.Error("delivery failed", "file", m.Name, "id", m.ID, "failures", md.Failures, "err", err)
	} else {
		a.again++
		a.retry = max(a.retry, retryDelay(a.s.spec.Retry, md.Failures))
	}
	a.states[m.ID] = md
}

// settle notes member m final at the sink, keeping its failures' count
// (a flush that fails after the commit makes it pending again).
func (a *groupAttempt) settle(m bus.Member, state string, size int64) {
	a.mu.Lock()
	defer a.mu.Unlock()
	md := a.states[m.ID]
	md.State, md.Bytes, md.Error, md.Resume = state, size, "", nil
	a.states[m.ID] = md
}

// resumeOf returns member id's upload state recorded by an earlier
// attempt's commit claim; nil for none.
func (a *groupAttempt) resumeOf(id string) []byte {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.states[id].Resume
}

// withResumes notes the upload state of each member in open and returns
// the states as the attempt began with those upload states, for the commit
// claim: an attempt after a crash that follows a member's commit then
// finds its upload, not a new one. This attempt's writes and failures are
// recorded once it ends, as before.
func (a *groupAttempt) withResumes(open []opened) map[string]bus.MemberDelivery {
	a.mu.Lock()
	defer a.mu.Unlock()
	claimed := maps.Clone(a.loaded)
	if claimed == nil {
		claimed = map[string]bus.MemberDelivery{}
	}
	for _, o := range open {
		if o.up != nil {
			st := o.up.State()
			md := a.states[o.m.ID]
			md.Resume = st
			a.states[o.m.ID] = md
			cmd := claimed[o.m.ID]
			cmd.Resume = st
			claimed[o.m.ID] = cmd
		}
	}
	return claimed
}

// locationOf says where the sink put member o, if it says.
func (a *groupAttempt) locationOf(o opened) string {
	if o.up != nil {
		return locationOf(o.up)
	}
	if l, ok := a.s.sink.(pipeline.WholeLocator); ok {
		return l.LocationOf(memberFile(o.m))
	}
	return ""
}

// state returns member id's state.
func (a *groupAttempt) state(id string) string {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.states[id].State
}

// beginGroupAttempt records an attempt at delivering group gid to sink s,
// as owned by this run, unless the delivery is committed already (the
// record returned then says so) or another task message carries it.
func (r *Run) beginGroupAttempt(ctx context.Context, s *sinkRun, gid string, task uint64) (bus.Versioned[bus.GroupDelivery], error) {
	return bus.UpdateFrom(ctx, r.fb.Store, bus.GroupDeliveryKey(gid, s.spec.Name), bus.Versioned[bus.GroupDelivery]{}, func(d *bus.GroupDelivery, exists bool) error {
		if exists && d.State == bus.DeliveryCommitted {
			return bus.ErrUnchanged
		}
		if exists {
			if err := r.duplicateTask(ctx, d.Task, task); err != nil {
				return err
			}
		}
		d.Group, d.Sink, d.Task = gid, s.spec.Name, task
		d.Attempts++
		d.State, d.Owner, d.Updated = bus.DeliveryActive, attemptName(r.e.opts.RunID, 0, d.Attempts), time.Now().UTC()
		return nil
	})
}

// record writes the members' states after the attempt (from the record as
// claimed, recv, while owner holds it), as committed when every member is
// final. It reports whether they are.
func (a *groupAttempt) record(key string, recv bus.Versioned[bus.GroupDelivery], owner string, members []bus.Member) (bool, error) {
	done := true
	for _, m := range members {
		done = done && bus.Final(a.states[m.ID].State)
	}
	_, err := bus.UpdateFrom(a.r.hard, a.r.fb.Store, key, recv, func(d *bus.GroupDelivery, exists bool) error {
		if d.Owner != owner {
			return errSuperseded
		}
		d.Files, d.State, d.Updated = a.states, bus.DeliveryPending, time.Now().UTC()
		if done {
			d.State = bus.DeliveryCommitted
		}
		return nil
	})
	return done, err
}

// each runs fn for each of ms, up to the sink's parallelism at once.
func (a *groupAttempt) each(n int, fn func(i int)) {
	var g errgroup.Group
	g.SetLimit(max(1, a.s.spec.Parallelism))
	for i := range n {
		g.Go(func() error { fn(i); return nil })
	}
	_ = g.Wait() // fn fails no task; the group only bounds how many run
}

// writeAll opens and writes each member not final yet, and returns those
// that are ready to commit.
func (a *groupAttempt) writeAll(ctx context.Context, members []bus.Member, content []byte, lost error) (open []opened, tried []bus.Member) {
	var todo []bus.Member
	for _, m := range members {
		if !bus.Final(a.state(m.ID)) {
			todo = append(todo, m)
		}
	}
	if a.s.emit != nil && len(todo) > 0 {
		evs := make([]pipeline.Event, len(todo))
		for i, m := range todo {
			evs[i] = pipeline.Event{Kind: pipeline.EventAttempt, FileID: m.ID, Name: m.Name, Sink: a.s.spec.Name, Attempt: a.attempt}
		}
		a.s.emit(evs...)
	}
	var mu sync.Mutex
	a.each(len(todo), func(i int) {
		if o, ok := a.write(ctx, todo[i], content, lost); ok {
			mu.Lock()
			open = append(open, o)
			mu.Unlock()
		}
	})
	return open, todo
}

// write opens member m at the sink and writes its one part.
func (a *groupAttempt) write(ctx context.Context, m bus.Member, content []byte, lost error) (opened, bool) {
	switch {
	case a.r.stopping.Err() != nil:
		return opened{}, false
	case lost != nil:
		a.fail(m, lost) // permanent: the group's chunk is gone
		return opened{}, false
	case m.Offset < 0 || m.Size < 0 || m.Offset+m.Size > int64(len(content)):
		a.fail(m, pipeline.Permanent(fmt.Errorf("%s: bytes %d to %d are outside its group's %d", m.Name, m.Offset, m.Offset+m.Size, len(content))))
		return opened{}, false
	}
	data := content[m.Offset : m.Offset+m.Size]
	if _, ok := a.s.sink.(pipeline.WholeWriter); ok {
		return opened{m: m, data: data}, true
	}
	fctx := withFile(ctx, m.ID, m.Name)
	up, err := a.s.sink.Open(fctx, memberFile(m), a.resumeOf(m.ID))
	if errors.Is(err, pipeline.ErrSkip) {
		a.log.Info("sink skipped the file", "file", m.Name, "reason", err)
		a.settle(m, bus.DeliverySkipped, 0)
		a.s.stats.skipped.Add(1)
		return opened{}, false
	}
	if err != nil {
		a.fail(m, fmt.Errorf("opening %s on sink %s: %w", m.Name, a.s.spec.Name, err))
		return opened{}, false
	}
	p := pipeline.Part{Number: 0, Size: m.Size, Last: true}
	if err := writePart(fctx, up, p, net.Buffers{data}, a.s); err != nil {
		err = fmt.Errorf("writing part 0 of %s to sink %s: %w", m.Name, a.s.spec.Name, err)
		a.abort([]opened{{m: m, up: up}}, err)
		a.fail(m, err)
		return opened{}, false
	}
	a.wrote(m)
	return opened{m: m, up: up}, true
}

// wrote counts member m's part as written.
func (a *groupAttempt) wrote(m bus.Member) {
	a.mu.Lock()
	md := a.states[m.ID]
	md.Writes++
	a.states[m.ID] = md
	a.mu.Unlock()
	a.s.stats.bytes.Add(m.Size)
	a.s.metrics.bytes.Add(float64(m.Size))
}

// commit commits member o, or writes it whole, then its checksum file.
func (a *groupAttempt) commit(ctx context.Context, o opened) error {
	ctx = withFile(ctx, o.m.ID, o.m.Name)
	if err := a.commitMember(ctx, o); err != nil {
		return err
	}
	return a.r.writeChecksum(ctx, a.s, memberFile(o.m), o.m.Digests)
}

func (a *groupAttempt) commitMember(ctx context.Context, o opened) error {
	if o.up != nil {
		return o.up.Commit(ctx, memberFile(o.m))
	}
	if err := a.s.wait(ctx, int64(len(o.data))); err != nil {
		return err
	}
	start := time.Now()
	err := a.s.sink.(pipeline.WholeWriter).WriteWhole(ctx, memberFile(o.m), o.data)
	if err == nil {
		a.s.metrics.partWrite.Observe(time.Since(start).Seconds())
		a.wrote(o.m)
	}
	return err
}

// commitAll commits each written member and makes the sink's copies of
// the members tried by this attempt durable when their sources remove them
// (one skipped may be an earlier attempt's commit); it returns how many
// committed.
func (a *groupAttempt) commitAll(ctx context.Context, open []opened, tried []bus.Member) int {
	var committed atomic.Int64
	var mu sync.Mutex
	var events []pipeline.Event
	// Reported together once every member is through, before the group's
	// record: one wait for the events' store, not one per member.
	defer func() {
		if a.s.emit != nil {
			a.s.emit(events...)
		}
	}()
	a.each(len(open), func(i int) {
		o := open[i]
		err := a.commit(ctx, o)
		switch {
		case errors.Is(err, pipeline.ErrSkip):
			a.log.Info("sink skipped the file at commit", "file", o.m.Name, "reason", err)
			a.settle(o.m, bus.DeliverySkipped, 0)
			a.s.stats.skipped.Add(1)
		case err != nil:
			err = fmt.Errorf("committing %s on sink %s: %w", o.m.Name, a.s.spec.Name, err)
			a.abort([]opened{o}, err)
			a.fail(o.m, err)
		default:
			ev := pipeline.Event{Kind: pipeline.EventCommitted, FileID: o.m.ID, Name: o.m.Name, Sink: a.s.spec.Name, Attempt: a.attempt, Location: a.locationOf(o)}
			mu.Lock()
			events = append(events, ev)
			mu.Unlock()
			a.settle(o.m, bus.DeliveryCommitted, o.m.Size)
			committed.Add(1)
			a.log.Info("delivered", "file", o.m.Name, "bytes", o.m.Size)
		}
	})
	fl, ok := a.s.sink.(pipeline.Flusher)
	removes := slices.ContainsFunc(tried, func(m bus.Member) bool {
		st := a.state(m.ID)
		return m.SourceRemoves && (st == bus.DeliveryCommitted || st == bus.DeliverySkipped)
	})
	if !removes || !ok {
		return int(committed.Load())
	}
	if err := fl.Flush(ctx); err != nil {
		// What this attempt made final is not durable: try it again.
		for _, m := range tried {
			st := a.state(m.ID)
			if !m.SourceRemoves || st != bus.DeliveryCommitted && st != bus.DeliverySkipped {
				continue
			}
			if st == bus.DeliveryCommitted {
				committed.Add(-1)
			}
			a.fail(m, fmt.Errorf("making %s durable on sink %s: %w", m.Name, a.s.spec.Name, err))
		}
	}
	return int(committed.Load())
}

// abort gives up uploads that will not be committed by this attempt.
func (a *groupAttempt) abort(open []opened, cause error) {
	for _, o := range open {
		if o.up == nil {
			continue
		}
		if err := o.up.Abort(a.r.hard, cause); err != nil {
			a.log.Warn("aborting upload", "file", o.m.Name, "err", err)
		}
	}
}
