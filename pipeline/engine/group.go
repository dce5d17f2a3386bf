package engine

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"maps"
	"math/bits"
	"net"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"golang.org/x/sync/errgroup"

	"github.com/mftflow/mftflow/pipeline"
	"github.com/mftflow/mftflow/pipeline/bus"
)

// Grouping bounds: a group closes when it holds groupFiles files or
// groupBytes bytes, or groupLinger after its first file came.
const (
	groupFiles  = 128
	groupBytes  = 512 << 10
	groupLinger = 5 * time.Millisecond
)

// member is a file waiting in a group for its outcome.
type member struct {
	item pipeline.Item
	m    bus.Member
	data []byte
	res  chan groupResult
}

// groupResult is what a group tells its member's goroutine.
type groupResult struct {
	out   pipeline.Outcome
	alone bool  // not taken into the group: the file goes its own way
	err   error // errStopped
}

// grouper gathers small files into groups.
type grouper struct {
	r       *Run
	mu      sync.Mutex
	batch   []*member
	bytes   int
	timer   *time.Timer
	settled map[string][]bus.GroupDelivery // see groupRecords
	// known has a bit for each of the last 32 files offered for a group,
	// set when the file had a manifest already: a run offered many known
	// files (a restart over a folder that keeps them) looks at manifests
	// first rather than reading each file to find out.
	known atomic.Uint32
}

// noteClaim records whether a file offered for a group was known.
func (g *grouper) noteClaim(known bool) {
	for {
		old := g.known.Load()
		next := old << 1
		if known {
			next |= 1
		}
		if g.known.CompareAndSwap(old, next) {
			return
		}
	}
}

// looksFirst reports whether most files offered lately were known.
func (g *grouper) looksFirst() bool { return bits.OnesCount32(g.known.Load()) > 16 }

// add puts mb in the open group, and sends the group off when it is full.
func (g *grouper) add(mb *member) {
	g.mu.Lock()
	g.batch = append(g.batch, mb)
	g.bytes += len(mb.data)
	var full []*member
	if len(g.batch) >= groupFiles || g.bytes >= g.r.groupBytes() {
		full = g.takeLocked()
	} else if g.timer == nil {
		g.timer = time.AfterFunc(groupLinger, g.flush)
	}
	g.mu.Unlock()
	if full != nil {
		go g.r.runGroup(full)
	}
}

// flush sends the open group off as it is.
func (g *grouper) flush() {
	g.mu.Lock()
	b := g.takeLocked()
	g.mu.Unlock()
	if len(b) > 0 {
		go g.r.runGroup(b)
	}
}

func (g *grouper) takeLocked() []*member {
	b := g.batch
	g.batch, g.bytes = nil, 0
	if g.timer != nil {
		g.timer.Stop()
		g.timer = nil
	}
	return b
}

// canGroup reports whether file f may travel in a group: a new file small
// enough to go inline, in a flow that does not keep chunks for replay.
func (r *Run) canGroup(f pipeline.File) bool {
	return f.Size >= 0 && f.Size <= r.groupFileMax() && !r.flow.Bus.Retains()
}

// groupFileMax is the largest file a group takes; groupBytes how many
// bytes a group holds at most: its chunk must fit a chunk's size.
func (r *Run) groupFileMax() int64 { return min(inlineMax, r.flow.Bus.ChunkSize) }
func (r *Run) groupBytes() int     { return int(min(groupBytes, r.flow.Bus.ChunkSize)) }

// tryGroup reads file f and hands it to a group, then waits for its
// outcome. It reports false, having changed nothing, when the file is not
// for a group after all (its content, after the stages, is too big, or it
// could not be read: its own way reads it again and says why).
func (r *Run) tryGroup(item pipeline.Item, f pipeline.File, id string, release func()) (groupResult, bool) {
	out, data, ok := r.readSmall(item, f, id)
	if !ok {
		return groupResult{}, false
	}
	name, err := pipeline.CleanName(out.Name)
	if err != nil {
		return groupResult{}, false
	}
	sum := sha256.Sum256(data)
	mb := &member{item: item, res: make(chan groupResult, 1), data: bytes.Clone(data), m: bus.Member{ID: id, Key: f.Key, Name: name,
		Size: int64(len(data)), SHA256: hex.EncodeToString(sum[:]), Digests: r.newDigests().of(data), ModTime: out.ModTime, Attrs: out.Attrs,
		SourceRemoves: ackRemoves(item)}}
	r.chunks.put(data)
	release()
	r.grouper.add(mb)
	res := <-mb.res
	res.out.Attrs = out.Attrs
	return res, true
}

// readSmall reads file f through the stages and returns its metadata and
// bytes after them, if it is one chunk no bigger than a group takes.
func (r *Run) readSmall(item pipeline.Item, f pipeline.File, id string) (pipeline.File, []byte, bool) {
	ctx := withFile(r.stopping, id, f.Name)
	out, next, closeSrc, _, err := r.openContent(ctx, item, f, nil, r.flow.Bus.ChunkSize, false)
	if err != nil {
		return out, nil, false
	}
	defer closeSrc()
	data, err := next()
	if err != nil && err != io.EOF || int64(len(data)) > r.groupFileMax() {
		return out, nil, false
	}
	if _, err = next(); err != io.EOF {
		return out, nil, false
	}
	return out, data, true
}

// runGroup carries a group of files: it claims each file with its
// manifest (a file that has one already goes its own way), writes the
// group's record, queues one task per sink, waits until every delivery is
// final and tells each member its outcome.
func (r *Run) runGroup(batch []*member) {
	gid := newGroupID()
	sinks := r.sinkNames()
	taken := r.claimMembers(gid, sinks, batch)
	var members []bus.Member
	var in []*member
	var content []byte
	for i, mb := range batch {
		if taken[i] {
			mb.m.Offset = int64(len(content))
			content = append(content, mb.data...)
			mb.data = nil
			members = append(members, mb.m)
			in = append(in, mb)
		}
	}
	tell := func(res groupResult) {
		for _, mb := range in {
			mb.res <- res
		}
	}
	if len(in) == 0 {
		return
	}
	now := time.Now().UTC()
	err := r.publishGroup(gid, content)
	var gv bus.Versioned[bus.Group]
	if err == nil {
		gv, err = bus.UpdateFrom(r.hard, r.fb.Store, bus.GroupKey(gid), bus.Versioned[bus.Group]{}, func(g *bus.Group, exists bool) error {
			if exists {
				return errGroupTaken
			}
			*g = bus.Group{ID: gid, Sinks: sinks, Members: members, Size: int64(len(content)), Created: now}
			return nil
		})
	}
	if err != nil {
		// The members' manifests name a group that is not there: the next
		// run that is offered them abandons it and reads them again.
		r.log.Warn("writing a group of files failed; they are read again alone", "group", gid, "files", len(in), "err", err)
		if r.stopping.Err() != nil {
			tell(groupResult{err: errStopped})
			return
		}
		tell(groupResult{alone: true})
		return
	}
	for _, m := range members {
		r.stats.bytesRead.Add(m.Size)
		r.metrics.readBytes.Add(float64(m.Size))
		r.metrics.readFiles.Inc()
	}
	w := r.finisher.watchGroup(gid, sinks, members)
	defer w.stop()
	if err := r.queueUntilDone(r.stopping, bus.GroupTask(gid), 0, sinks); err != nil {
		tell(groupResult{err: errStopped})
		return
	}
	outs, err := w.wait(r.stopping)
	if err != nil {
		tell(groupResult{err: errStopped})
		return
	}
	passed := true
	for _, mb := range in {
		passed = passed && outs[mb.m.ID].Status == pipeline.Passed
	}
	if passed {
		if err := purgeGroup(r.hard, r.fb.Store, r.fb.Chunks, r.fb.Names, gv); err != nil { // before the acks, which may end the run
			r.log.Warn("removing the chunk of a delivered group", "group", gid, "err", err)
		}
	}
	for _, mb := range in {
		mb.res <- groupResult{out: outs[mb.m.ID]}
	}
}

var errGroupTaken = errors.New("the group's key is taken")

func newGroupID() string {
	var b [16]byte
	rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// claimMembers creates each member's manifest, naming group gid, all at
// once; it reports which it created. A file that has a manifest already
// (offered again) is left out.
func (r *Run) claimMembers(gid string, sinks []string, batch []*member) []bool {
	taken := make([]bool, len(batch))
	now := time.Now().UTC()
	var wg sync.WaitGroup
	for i, mb := range batch {
		wg.Go(func() {
			m := mb.m
			_, err := bus.UpdateFrom(r.hard, r.fb.Store, bus.ManifestKey(m.ID), bus.Versioned[bus.Manifest]{}, func(v *bus.Manifest, exists bool) error {
				if exists {
					return errGroupTaken
				}
				*v = bus.Manifest{ID: m.ID, Key: m.Key, Name: m.Name, Size: m.Size, SHA256: m.SHA256, Digests: m.Digests, ModTime: m.ModTime,
					Attrs: m.Attrs, ChunkSize: r.flow.Bus.ChunkSize, Chunks: 1, SourceRead: m.Size, Sinks: sinks,
					State: bus.FileReady, TasksPublished: true, Inline: true, SourceRemoves: m.SourceRemoves,
					Group: gid, Created: now, Updated: now}
				return nil
			})
			taken[i] = err == nil
			if taken[i] {
				// After the claim, unlike a file of its own: a file
				// offered again is claimed by nobody, and was not read.
				r.emitRead(m.ID, mb.item.File().Name, m.Name, m.Size, m.SHA256)
			}
			r.grouper.noteClaim(errors.Is(err, errGroupTaken))
			if !taken[i] {
				res := groupResult{alone: true}
				if r.stopping.Err() != nil {
					res.err = errStopped
				}
				mb.res <- res
			}
		})
	}
	wg.Wait()
	return taken
}

// publishGroup puts the members' bytes on the bus as the group's chunk.
func (r *Run) publishGroup(gid string, content []byte) error {
	msg := r.codec.Encode(r.fb.ChunkSubject(gid), bus.Chunk{Index: 0, Data: content, Last: true})
	start := time.Now()
	err := r.space.Do(r.hard, int64(len(content)), func() error {
		_, err := r.fb.JS.PublishMsg(r.hard, msg, jetstream.WithMsgID(gid), jetstream.WithExpectStream(r.fb.ChunkStream()))
		return err
	})
	if err != nil {
		return fmt.Errorf("publishing the group's chunk: %w", err)
	}
	r.metrics.publish.Observe(time.Since(start).Seconds())
	return nil
}

// groupContent reads the members' bytes of group g.
func (r *Run) groupContent(ctx context.Context, g bus.Group) ([]byte, error) {
	return groupContent(ctx, r.fb.Chunks, r.codec, r.fb.Names, g)
}

func groupContent(ctx context.Context, chunks jetstream.Stream, codec *bus.Codec, n bus.Names, g bus.Group) ([]byte, error) {
	c, err := onlyChunk(ctx, chunks, codec, n.ChunkSubject(g.ID), "group "+g.ID)
	data := c.Data
	if err == nil && int64(len(data)) != g.Size {
		err = pipeline.Permanent(fmt.Errorf("group %s: its chunk holds %d bytes, its record says %d", g.ID, len(data), g.Size))
	}
	return data, err
}

// purgeGroup marks group g purged, then removes its chunk. g is the
// record as last read or written.
func purgeGroup(ctx context.Context, st bus.Store, chunks jetstream.Stream, n bus.Names, g bus.Versioned[bus.Group]) error {
	if _, err := bus.UpdateFrom(ctx, st, bus.GroupKey(g.V.ID), g, func(v *bus.Group, exists bool) error {
		if !exists {
			return bus.ErrUnchanged
		}
		v.Purged = true
		return nil
	}); err != nil {
		return err
	}
	return chunks.Purge(ctx, jetstream.WithPurgeSubject(n.ChunkSubject(g.V.ID)))
}

// memberFile is the file a member is to its sinks.
func memberFile(m bus.Member) pipeline.File {
	return pipeline.File{ID: m.ID, Key: m.Key, Name: m.Name, Size: m.Size, SHA256: m.SHA256, ModTime: m.ModTime, Attrs: m.Attrs}
}

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

// errGroupBusy refuses to make a file of its own of a member whose group
// is still being delivered.
var errGroupBusy = errors.New("the file's group is still being delivered; try again once it has finished")

// readGroupRecords reads group gid's delivery records for sinks (a
// missing one is the zero value, for its sink).
func readGroupRecords(ctx context.Context, st bus.Store, gid string, sinks []string) ([]bus.GroupDelivery, error) {
	recs := make([]bus.GroupDelivery, len(sinks))
	for i, s := range sinks {
		if _, err := st.Get(ctx, bus.GroupDeliveryKey(gid, s), &recs[i]); err != nil {
			return nil, err
		}
		recs[i].Sink = s
	}
	return recs, nil
}

// memberDeliveries reads group gid's records for sinks and returns member
// id's delivery at each, as a file's own record would say it.
func memberDeliveries(ctx context.Context, st bus.Store, gid, id, name string, sinks []string) ([]bus.Delivery, error) {
	recs, err := readGroupRecords(ctx, st, gid, sinks)
	if err != nil {
		return nil, err
	}
	out := make([]bus.Delivery, len(recs))
	for i, g := range recs {
		out[i] = g.Delivery(id, name)
	}
	return out, nil
}

// ungroup makes a file of its own of group member m, whose deliveries
// are final: its manifest takes its bytes (while the group has them) and
// outcome, and each sink's delivery gets a record of its own, so that
// replay and a rerun treat it as any other file. It returns the new
// manifest.
func ungroup(ctx context.Context, st bus.Store, content func(bus.Group) ([]byte, error), m bus.Manifest) (bus.Versioned[bus.Manifest], error) {
	var g bus.Group
	if _, err := st.Get(ctx, bus.GroupKey(m.Group), &g); err != nil {
		return bus.Versioned[bus.Manifest]{}, err
	}
	mb, ok := g.Member(m.ID)
	if !ok {
		return bus.Versioned[bus.Manifest]{}, fmt.Errorf("file %s is not in its group %s", m.ID, m.Group)
	}
	recs, err := memberDeliveries(ctx, st, m.Group, m.ID, m.Name, m.Sinks)
	if err != nil {
		return bus.Versioned[bus.Manifest]{}, err
	}
	for _, d := range recs {
		if !bus.Final(d.State) {
			return bus.Versioned[bus.Manifest]{}, errGroupBusy
		}
	}
	for _, d := range recs {
		if _, err := bus.Update(ctx, st, bus.DeliveryKey(m.ID, d.Sink), func(v *bus.Delivery, exists bool) error {
			if exists {
				return bus.ErrUnchanged // an ungroup cut short wrote it
			}
			*v = d
			return nil
		}); err != nil {
			return bus.Versioned[bus.Manifest]{}, err
		}
	}
	// Gone once every sink committed every member: a replay then reads
	// the file again from its source.
	data, err := content(g)
	purged := pipeline.IsPermanent(err)
	if err != nil && !purged {
		return bus.Versioned[bus.Manifest]{}, err
	}
	var own []byte
	if !purged {
		if mb.Offset < 0 || mb.Size < 0 || mb.Offset+mb.Size > int64(len(data)) {
			return bus.Versioned[bus.Manifest]{}, fmt.Errorf("file %s: bytes %d to %d are outside its group's %d", m.ID, mb.Offset, mb.Offset+mb.Size, len(data))
		}
		own = bytes.Clone(data[mb.Offset : mb.Offset+mb.Size])
	}
	out := outcomeOf(recs)
	gid := m.Group
	return bus.UpdateFrom(ctx, st, bus.ManifestKey(m.ID), bus.Versioned[bus.Manifest]{}, func(v *bus.Manifest, exists bool) error {
		if !exists || v.Group != gid {
			return bus.ErrUnchanged
		}
		now := time.Now().UTC()
		v.Group, v.Inline, v.Content, v.Purged = "", true, own, purged
		v.State, v.Outcome, v.Error, v.Finished, v.Updated = bus.FileDone, out.Status.String(), pipeline.RedactURLs(out.Message), now, now
		return nil
	})
}

// rejoin takes a file offered again whose manifest names a group. When
// the group was never written, it abandons it and reports fresh: the file
// is to be read afresh. When the file's deliveries are final and one
// failed, it makes a file of its own of it and returns its new manifest,
// for the caller to carry on with. Otherwise it finishes the file itself
// (waiting for the group's deliveries if they are under way) and reports
// done.
func (r *Run) rejoin(item pipeline.Item, m bus.Manifest, log logger) (next *bus.Versioned[bus.Manifest], fresh, done bool, err error) {
	ctx := r.hard
	recs, err := r.groupRecords(ctx, m.Group, m.Sinks)
	if err != nil {
		return nil, false, false, err
	}
	final := true
	dels := make([]bus.Delivery, len(recs))
	for i, g := range recs {
		dels[i] = g.Delivery(m.ID, m.Name)
		final = final && g.Group != "" && bus.Final(dels[i].State)
	}
	if final {
		out := outcomeOf(dels)
		if out.Status == pipeline.Passed && len(m.Redeliver) == 0 {
			m.State, m.Outcome = bus.FileDone, out.Status.String()
			r.finishedEarlier(item, m, log)
			return nil, false, true, nil
		}
		nv, err := ungroup(ctx, r.fb.Store, func(g bus.Group) ([]byte, error) { return r.groupContent(ctx, g) }, m)
		if err == nil {
			if perr := purgeGroupIfDone(ctx, r.fb.Store, r.fb.Chunks, r.fb.Names, m.Group); perr != nil {
				log.Warn("removing the chunk of a group no file needs", "group", m.Group, "err", perr)
			}
		}
		return &nv, false, false, err
	}
	var g bus.Group
	rev, err := r.fb.Store.Get(ctx, bus.GroupKey(m.Group), &g)
	if err != nil {
		return nil, false, false, err
	}
	if rev == 0 {
		// Written first, the tombstone keeps a run still writing the group
		// from writing it after all.
		g, err = bus.Update(ctx, r.fb.Store, bus.GroupKey(m.Group), func(v *bus.Group, exists bool) error {
			if exists {
				return bus.ErrUnchanged
			}
			*v = bus.Group{ID: m.Group, Abandoned: true, Created: time.Now().UTC()}
			return nil
		})
		if err != nil {
			return nil, false, false, err
		}
	}
	if g.Abandoned {
		// Its chunk, if the run that abandoned it got that far.
		if err := r.fb.Chunks.Purge(ctx, jetstream.WithPurgeSubject(r.fb.ChunkSubject(m.Group))); err != nil {
			return nil, false, false, err
		}
		return nil, true, false, r.resetFile(m.ID, m)
	}
	mb, _ := g.Member(m.ID)
	w := r.finisher.watchGroup(m.Group, m.Sinks, []bus.Member{mb})
	defer w.stop()
	if err := r.queueUntilDone(r.stopping, bus.GroupTask(m.Group), 0, m.Sinks); err != nil {
		return nil, false, false, err
	}
	outs, err := w.wait(r.stopping)
	if err != nil {
		return nil, false, false, errStopped
	}
	out := outs[m.ID]
	out.RunID, out.Attrs = r.e.opts.RunID, m.Attrs
	r.countOutcome(m.ID, out.Status)
	r.ack(item, out, log)
	return nil, false, true, nil
}

// groupRecords reads group gid's delivery records for sinks (a missing
// one is the zero value). Records that are all committed, which no longer
// change, are kept for the next member asking: a restart offers a group's
// files one after the other.
func (r *Run) groupRecords(ctx context.Context, gid string, sinks []string) ([]bus.GroupDelivery, error) {
	r.grouper.mu.Lock()
	recs, ok := r.grouper.settled[gid]
	r.grouper.mu.Unlock()
	if ok {
		return recs, nil
	}
	recs, err := readGroupRecords(ctx, r.fb.Store, gid, sinks)
	if err != nil {
		return nil, err
	}
	settled := !slices.ContainsFunc(recs, func(g bus.GroupDelivery) bool { return g.State != bus.DeliveryCommitted })
	if settled {
		r.grouper.mu.Lock()
		if len(r.grouper.settled) >= 256 {
			clear(r.grouper.settled)
		}
		r.grouper.settled[gid] = recs
		r.grouper.mu.Unlock()
	}
	return recs, nil
}

// purgeGroupIfDone removes group gid's chunk once no member needs it any
// more: each is a file of its own now (replayed, or read again), or every
// sink has it.
func purgeGroupIfDone(ctx context.Context, st bus.Store, chunks jetstream.Stream, n bus.Names, gid string) error {
	var gv bus.Versioned[bus.Group]
	rev, err := st.Get(ctx, bus.GroupKey(gid), &gv.V)
	if err != nil || rev == 0 || gv.V.Purged {
		return err
	}
	gv.Rev = rev
	g := gv.V
	for _, mb := range g.Members {
		var m bus.Manifest
		if _, err := st.Get(ctx, bus.ManifestKey(mb.ID), &m); err != nil {
			return err
		}
		if m.Group != gid {
			continue
		}
		recs, err := memberDeliveries(ctx, st, gid, mb.ID, mb.Name, m.Sinks)
		if err != nil {
			return err
		}
		for _, d := range recs {
			if d.State != bus.DeliveryCommitted && d.State != bus.DeliverySkipped {
				return nil
			}
		}
	}
	return purgeGroup(ctx, st, chunks, n, gv)
}
