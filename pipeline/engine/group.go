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
	"math/bits"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go/jetstream"

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
