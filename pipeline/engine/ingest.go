package engine

import (
	"errors"
	"fmt"
	"log/slog"

	"github.com/mftflow/mftflow/pipeline"
	"github.com/mftflow/mftflow/pipeline/bus"
)

// Ingest tuning: how many chunk publishes may await their ack, and how often
// (in chunks) the manifest records a checkpoint.
const (
	publishWindow   = 8
	checkpointEvery = 32
	ingestAttempts  = 5
)

var errStopped = errors.New("run stopping")

// errReplaying stops the reset of a file that a replay marked meanwhile.
var errReplaying = errors.New("a replay of the file is under way")

// handleFile takes one item from the source to its final outcome and acks it.
func (r *Run) handleFile(item pipeline.Item) { r.handleVersion(item, 0) }

// handleVersion is handleFile for a version of a file read again, rereads
// times so far, because the versions before changed during their transfer
// (bus.on_change: reread).
func (r *Run) handleVersion(item pipeline.Item, rereads int) {
	defer r.files.Done()
	v := &version{r: r, item: item, f: item.File(), rereads: rereads}
	defer v.release()
	v.log = r.log.With("file", v.f.Name)
	r.stats.seen.Add(1)
	r.stats.inFlight.Add(1)
	defer r.stats.inFlight.Add(-1)

	v.id = bus.FileID(r.flow.Name, v.f.Key)
	v.log = v.log.With("id", v.id)
	r.emit(pipeline.Event{Kind: pipeline.EventDiscovered, FileID: v.id, Name: v.f.Name, Size: v.f.Size})
	if !v.accept() {
		return
	}
	if v.f.Size >= 0 {
		r.stats.bytesKnown.Add(v.f.Size)
	}
	if v.group() || v.known == nil && !v.readManifest() || v.rejoin() {
		return
	}
	if !v.again() || v.read() {
		return
	}
	v.release()

	out, err := r.finisher.wait(r.stopping, v.id, fileSinks(v.m, r))
	if err != nil {
		return // stopping: the next run resumes
	}
	out.RunID = r.e.opts.RunID
	r.finishOrReread(item, v.id, out, v.known, rereads, v.log)
}

// version is one version of a file from the source on its way to its
// outcome. Its steps, in order: accept (the source's name and key), group
// (a small file into a group), readManifest, rejoin (a file of a group
// resumed), again (a finished file to be read again) and read; then the
// finisher says the outcome. A step that reports the file handled ends it.
type version struct {
	r        *Run
	item     pipeline.Item
	f        pipeline.File
	id       string
	rereads  int
	log      *slog.Logger
	released bool // the ingest slot

	m     bus.Manifest
	known *bus.Versioned[bus.Manifest] // m as last read or written, if at hand
}

// release gives back the ingest slot the file holds, once.
func (v *version) release() {
	if !v.released {
		v.released = true
		v.r.ingestSlots.Release(1)
	}
}

// accept checks the file's name and key, and fails a file without them.
func (v *version) accept() bool {
	r, f := v.r, v.f
	err := pipeline.CheckSourceName(f.Name)
	if err == nil && f.Key == "" {
		err = pipeline.Permanent(fmt.Errorf("file %q: the source gave no key", f.Name))
	}
	if err == nil {
		return true
	}
	v.log.Error("file rejected", "err", err)
	r.emit(pipeline.Event{Kind: pipeline.EventReadFailed, FileID: v.id, Name: f.Name, Error: err.Error(), Permanent: true})
	r.recordRejected(v.id, f, err)
	r.countOutcome(v.id, pipeline.Failed)
	r.ack(v.item, pipeline.Outcome{Status: pipeline.Failed, Message: err.Error(), RunID: r.e.opts.RunID}, v.log)
	return false
}

// readManifest reads the file's manifest. It reports false when that
// failed, which it logs.
func (v *version) readManifest() bool {
	rev, err := v.r.fb.Store.Get(v.r.hard, bus.ManifestKey(v.id), &v.m)
	if err != nil {
		v.log.Error("reading manifest", "err", err)
		return false
	}
	v.known = &bus.Versioned[bus.Manifest]{V: v.m, Rev: rev}
	return true
}

// group puts a new small file into a group when the flow groups them. It
// reports whether the file is handled.
func (v *version) group() (handled bool) {
	r := v.r
	if !r.canGroup(v.f) {
		return false
	}
	// A new file goes into a group without a look at its manifest
	// (claiming it tells), unless most files lately were known ones.
	if r.grouper.looksFirst() && !v.readManifest() {
		return true
	}
	if v.known != nil && v.known.Rev != 0 {
		return false
	}
	res, ok := r.tryGroup(v.item, v.f, v.id, v.release)
	if !ok {
		return false
	}
	switch {
	case res.err != nil:
		return true // stopping: the next run resumes
	case !res.alone:
		if _, lost := r.lost.LoadAndDelete(v.id); lost && res.out.Status != pipeline.Passed && r.mayReadAgain(v.rereads) {
			// As a rerun would: the member becomes a file of its own
			// (rejoin), read again for the sinks that failed it.
			v.log.Warn("a sink lost what earlier attempts wrote: reading the file again from its source")
			r.handleAgain(v.item, v.rereads+1)
			return true
		}
		res.out.RunID = r.e.opts.RunID
		r.countOutcome(v.id, res.out.Status)
		r.ack(v.item, res.out, v.log)
		return true
	}
	v.known = nil // claimed meanwhile: read it again
	return false
}

// rejoin resumes a file that an earlier run put into a group. It reports
// whether the file is handled.
func (v *version) rejoin() (handled bool) {
	if v.m.Group == "" {
		return false
	}
	r := v.r
	next, fresh, done, err := r.rejoin(v.item, v.m, v.log)
	switch {
	case errors.Is(err, bus.ErrStoreFull):
		// As a read that a full store stopped: the file fails, its
		// source keeps it, and a later run reads it afresh.
		v.log.Error("resuming a file of a group", "group", v.m.Group, "err", err)
		r.countOutcome(v.id, pipeline.Failed)
		r.ack(v.item, pipeline.Outcome{Status: pipeline.Failed, Message: err.Error(), RunID: r.e.opts.RunID, Attrs: v.m.Attrs}, v.log)
		return true
	case err != nil:
		if !errors.Is(err, errStopped) {
			v.log.Error("resuming a file of a group", "group", v.m.Group, "err", err)
		}
		return true
	case done:
		return true
	case fresh:
		v.m, v.known = bus.Manifest{}, nil // read afresh
	default:
		v.m, v.known = next.V, next
	}
	return false
}

// again marks a finished file to be read again when its read failed or a
// sink is to get it again. It reports false when that could not be told,
// which it logs.
func (v *version) again() bool {
	m := &v.m
	if m.State == bus.FileDone && m.ReadError != "" {
		m.State = bus.FileFailed // read it again
	}
	if m.State != bus.FileDone {
		return true
	}
	again, err := v.r.deliverAgain(*m)
	if err != nil {
		v.log.Error("reading deliveries", "err", err)
		return false
	}
	if len(again) > 0 {
		// The source still holds a file whose delivery failed (or that
		// a replay asked for): read it again for those sinks, since the
		// bus may no longer hold its chunks.
		v.log.Info("delivering the file again: reading it again from the source", "sinks", again)
		m.State = bus.FileFailed
	}
	return true
}

// read takes the file as its manifest finds it: finished earlier, read
// but perhaps not queued, or to be read (again). It reports whether the
// file is handled.
func (v *version) read() (handled bool) {
	r := v.r
	switch v.m.State {
	case bus.FileDone, bus.FileSkipped:
		r.finishedEarlier(v.item, v.m, v.log)
		return true
	case bus.FileReady:
		// Read by a run that stopped before the file finished, maybe before
		// its deliveries were queued: queue them (again: a task queued twice
		// is dropped by the stream's duplicate window or, later, by the
		// delivery's own duplicate check).
		if err := r.queueDeliveries(r.hard, v.id, v.m.Epoch, fileSinks(v.m, r)); err != nil {
			v.log.Error("queueing deliveries", "err", err)
			return true
		}
		return false
	case bus.FileFailed:
		if err := r.resetFile(v.id, v.m); errors.Is(err, errReplaying) {
			v.log.Info("a replay of the file began meanwhile; it is left to the replay")
			return true
		} else if err != nil {
			v.log.Error("resetting failed file", "err", err)
			return true
		}
		v.m, v.known = bus.Manifest{}, nil // read afresh, for this run's sinks
	}
	return v.ingest()
}

// ingest reads the file onto the bus. It reports whether the file is
// handled (a read that failed before any sink heard of the file).
func (v *version) ingest() (handled bool) {
	r := v.r
	read, err := r.ingestWithRetry(v.item, v.f, v.id, v.known, v.log)
	if err == nil {
		v.m, v.known = read.V, &read
		return false
	}
	if errors.Is(err, errStopped) {
		return true
	}
	if errors.Is(err, pipeline.ErrSkip) {
		v.log.Info("file skipped", "reason", err)
		r.countOutcome(v.id, pipeline.Skipped)
		r.ack(v.item, pipeline.Outcome{Status: pipeline.Skipped, Message: err.Error(), RunID: r.e.opts.RunID}, v.log)
		return true
	}
	v.log.Error("reading file failed", "err", err)
	if errors.Is(err, pipeline.ErrChanged) {
		r.noteChanged(v.id, err)
	}
	var cur bus.Manifest
	if _, gerr := r.fb.Store.Get(r.hard, bus.ManifestKey(v.id), &cur); gerr == nil && !cur.TasksPublished {
		// No sink heard of the file: it fails here.
		out := pipeline.Outcome{Status: pipeline.Failed, Message: err.Error(), RunID: r.e.opts.RunID}
		r.finishOrReread(v.item, v.id, out, nil, v.rereads, v.log)
		return true
	}
	// The deliveries see the failed manifest and fail too; the
	// outcome below gathers them.
	v.known = nil
	return false
}
