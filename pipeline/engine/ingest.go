package engine

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"log/slog"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"

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

// finishFile records a file's outcome, removes its chunks when no sink needs
// them, and acks the source. known is the manifest as last read or written,
// if at hand.
func (r *Run) finishFile(item pipeline.Item, id string, out pipeline.Outcome, known *bus.Versioned[bus.Manifest], log logger) {
	r.countOutcome(id, out.Status)
	if known == nil {
		known = &bus.Versioned[bus.Manifest]{}
		rev, err := r.fb.Store.Get(r.hard, bus.ManifestKey(id), &known.V)
		if err != nil {
			log.Error("recording outcome", "err", err)
			return
		}
		known.Rev = rev
	}
	// Marked purged in the same write when the chunks can go at once.
	purge, chunks := false, false
	_, err := bus.UpdateFrom(r.hard, r.fb.Store, bus.ManifestKey(id), *known, func(m *bus.Manifest, exists bool) error {
		if !exists {
			return bus.ErrUnchanged
		}
		m.State = bus.FileDone
		m.Outcome = out.Status.String()
		out.Attrs = m.Attrs // as the stages left them
		if out.Message != "" {
			m.Error = pipeline.RedactURLs(out.Message)
		}
		m.Finished = time.Now().UTC()
		m.Updated = m.Finished
		purge = out.Status == pipeline.Passed && !r.flow.Bus.Retains() && !m.Purged && !m.Replaying
		if purge {
			m.Purged, m.Content = true, nil
		}
		chunks = !m.Inline
		return nil
	})
	if err != nil {
		log.Error("recording outcome", "err", err)
		return
	}
	switch {
	case purge && chunks:
		r.removeChunks(id)
	case r.flow.Bus.Retains():
		r.kickJanitor()
	}
	r.ack(item, out, log)
}

// purgeFinished removes the chunks of a file every sink committed, unless the
// flow retains them (the janitor removes them later).
func (r *Run) purgeFinished(m bus.Manifest, s pipeline.Status) {
	if r.flow.Bus.Retains() {
		r.kickJanitor()
		return
	}
	if s == pipeline.Passed && !m.Purged && m.ID != "" {
		r.purgeFile(m.ID)
	}
}

// logger is the part of *slog.Logger the engine's helpers use.
type logger interface {
	Info(string, ...any)
	Warn(string, ...any)
	Error(string, ...any)
}

// ack tells the source the outcome, retrying a few times: a source that is
// not told offers the file again after a restart, and Ack is idempotent.
func (r *Run) ack(item pipeline.Item, out pipeline.Outcome, log logger) {
	if !r.flushBeforeAck(item, out, log) {
		return // see flushBeforeAck
	}
	b := newBackoff(500*time.Millisecond, 5*time.Second)
	out.Message = pipeline.RedactURLs(out.Message) // a source may pass it on (Thru reports it to the site)
	if out.Attrs == nil {
		out.Attrs = item.File().Attrs // the stages did not run to the end
	}
	// Said before the source is told: a source that deletes the file
	// will not offer it again to a runner killed right after.
	r.emit(pipeline.Event{Kind: pipeline.EventAcked, FileID: bus.FileID(r.flow.Name, item.File().Key), Name: item.File().Name,
		Outcome: out.Status.String(), Detail: out.Message, Sinks: out.Sinks})
	for attempt := 1; ; attempt++ {
		err := item.Ack(r.hard, out)
		if err == nil {
			log.Info("file finished", "outcome", out.Status.String())
			return
		}
		if attempt == 4 || pipeline.IsPermanent(err) || r.hard.Err() != nil {
			log.Error("source ack failed; the file will be offered again after a restart", "outcome", out.Status.String(), "err", err)
			return
		}
		sleep(r.hard, b.NextBackOff())
	}
}

// countOutcome counts file id under outcome s. A file counted before in
// this run (its replayed delivery changed its outcome) moves from its old
// count to the new one, so the run's summary says what status says. It
// reports whether the file was new to the counts.
func (r *Run) countOutcome(id string, s pipeline.Status) bool {
	prev, counted := r.stats.outcome(id, s)
	if counted {
		r.stats.counter(prev).Add(-1)
	}
	r.stats.counter(s).Add(1)
	return !counted
}

// finishedEarlier handles a file an earlier run finished: it is not sent
// again, and the source is acked again in case the earlier run stopped
// before its ack took effect. Sinks added to the flow since are named, with
// how to deliver the file to them.
func (r *Run) finishedEarlier(item pipeline.Item, m bus.Manifest, log logger) {
	r.stats.earlier.Add(1)
	out := pipeline.Outcome{Status: statusOf(m.Outcome), Message: m.Error, RunID: r.e.opts.RunID, Attrs: m.Attrs}
	if added := missing(r.sinkNames(), m.Sinks); len(added) > 0 && m.State == bus.FileDone {
		log.Warn("file delivered by an earlier run before these sinks were added: it is not sent to them; to send it, replay it to them",
			"delivered_to", m.Sinks, "not_to", added, "how", fmt.Sprintf("runner replay --flow %s --file %s --sink %s", r.flow.Name, m.ID, added[0]))
	}
	r.purgeFinished(m, out.Status)
	r.ack(item, out, log)
}

// missing returns the names in a that are not in b.
func missing(a, b []string) []string {
	var out []string
	for _, x := range a {
		if !slices.Contains(b, x) {
			out = append(out, x)
		}
	}
	return out
}

// deliverAgain returns the sinks that finished file m is to be read again
// for: those whose delivery failed for good, and those of this run that a
// replay named (Manifest.Redeliver); none while a replay from the bus is
// under way.
func (r *Run) deliverAgain(m bus.Manifest) ([]string, error) {
	if m.Replaying {
		return nil, nil
	}
	var failed []string
	for _, s := range m.Redeliver {
		if slices.Contains(r.sinkNames(), s) {
			failed = append(failed, s)
		}
	}
	if m.Outcome != pipeline.Failed.String() && m.Outcome != pipeline.Mixed.String() {
		return failed, nil
	}
	for _, s := range fileSinks(m, r) {
		var d bus.Delivery
		rev, err := r.fb.Store.Get(r.hard, bus.DeliveryKey(m.ID, s), &d)
		if err != nil {
			return nil, err
		}
		// No record: a reset for this sink was cut short (resetFile).
		if (rev == 0 || d.State == bus.DeliveryFailed) && !slices.Contains(failed, s) {
			failed = append(failed, s)
		}
	}
	return failed, nil
}

func statusOf(name string) pipeline.Status {
	for _, s := range []pipeline.Status{pipeline.Passed, pipeline.Failed, pipeline.Mixed, pipeline.Skipped} {
		if s.String() == name {
			return s
		}
	}
	return pipeline.Failed
}

// fileSinks returns the sinks file m was queued to, which are the flow's
// sinks when the file was read: runners of one flow may briefly differ in
// their sinks during a rolling change, and a file's deliveries are those it
// was queued for. A file not yet read goes to this run's sinks.
func fileSinks(m bus.Manifest, r *Run) []string {
	if len(m.Sinks) > 0 {
		return m.Sinks
	}
	return r.sinkNames()
}

func (r *Run) sinkNames() []string {
	names := make([]string, len(r.sinks))
	for i, s := range r.sinks {
		names[i] = s.spec.Name
	}
	return names
}

// recordRejected keeps a manifest for a file that could not be taken, so
// status shows it.
func (r *Run) recordRejected(id string, f pipeline.File, cause error) {
	now := time.Now().UTC()
	_, err := bus.Update(r.hard, r.fb.Store, bus.ManifestKey(id), func(m *bus.Manifest, exists bool) error {
		*m = bus.Manifest{ID: id, Key: f.Key, Name: f.Name, Size: f.Size, State: bus.FileDone,
			Outcome: pipeline.Failed.String(), Error: pipeline.RedactURLs(cause.Error()), Created: now, Updated: now, Finished: now}
		return nil
	})
	if err != nil {
		r.log.Warn("recording a rejected file; status will not show it", "file", f.Name, "err", err)
	}
}

// resetFile forgets a file whose earlier read or delivery failed so it is
// read afresh, in a new epoch so that its messages are not taken for
// duplicates. Deliveries that were committed (or that the sink skipped)
// stay: those sinks are not sent the file again.
func (r *Run) resetFile(id string, m bus.Manifest) error { return r.reset(id, m, false) }

// reset is resetFile; with everySink, committed deliveries are forgotten
// too, for a file whose content changed since they committed it.
func (r *Run) reset(id string, m bus.Manifest, everySink bool) error {
	var cur bus.Manifest
	if _, err := r.fb.Store.Get(r.hard, bus.ManifestKey(id), &cur); err != nil {
		return err
	}
	if cur.Replaying {
		return errReplaying
	}
	if err := r.fb.Chunks.Purge(r.hard, jetstream.WithPurgeSubject(r.fb.ChunkSubject(id))); err != nil {
		return err
	}
	for _, s := range append(r.sinkNames(), missing(m.Sinks, r.sinkNames())...) {
		key := bus.DeliveryKey(id, s)
		var d bus.Delivery
		rev, err := r.fb.Store.Get(r.hard, key, &d)
		if err != nil {
			return err
		}
		if rev == 0 || !everySink && (d.State == bus.DeliveryCommitted || d.State == bus.DeliverySkipped) {
			continue
		}
		if err := r.fb.Store.KV.Delete(r.hard, key, jetstream.LastRevision(rev)); err != nil && !errors.Is(err, jetstream.ErrKeyNotFound) {
			return err
		}
	}
	_, err := bus.Update(r.hard, r.fb.Store, bus.ManifestKey(id), func(m *bus.Manifest, exists bool) error {
		*m = bus.Manifest{ID: id, Epoch: m.Epoch + 1, Size: -1, Created: time.Now().UTC()}
		return nil
	})
	return err
}

// ingestWithRetry reads the file onto the bus, retrying read errors, and
// returns its manifest; when it gives up the manifest is marked failed.
// known is the manifest as read before, if at hand.
func (r *Run) ingestWithRetry(item pipeline.Item, f pipeline.File, id string, known *bus.Versioned[bus.Manifest], log interface {
	Warn(string, ...any)
}) (bus.Versioned[bus.Manifest], error) {
	b := newBackoff(time.Second, 30*time.Second)
	var (
		m   bus.Versioned[bus.Manifest]
		err error
	)
	for attempt := 1; attempt <= ingestAttempts; attempt++ {
		m, err = r.ingest(item, f, id, known)
		known = nil // a failed attempt may have changed it
		// A store still full after the bus's wait for room is not retried:
		// each attempt would wait as long again.
		if err == nil || errors.Is(err, errStopped) || errors.Is(err, pipeline.ErrSkip) || pipeline.IsPermanent(err) || errors.Is(err, bus.ErrStoreFull) {
			break
		}
		if attempt == ingestAttempts {
			break
		}
		d := b.NextBackOff()
		log.Warn("reading file failed; retrying", "attempt", attempt, "in", d, "err", err)
		select {
		case <-time.After(d):
		case <-r.stopping.Done():
			return m, errStopped
		}
	}
	if err == nil || errors.Is(err, errStopped) {
		return m, err
	}
	state := bus.FileFailed
	if errors.Is(err, pipeline.ErrSkip) {
		state = bus.FileSkipped
		r.emit(pipeline.Event{Kind: pipeline.EventDropped, FileID: id, Name: f.Name, Detail: err.Error()})
	} else {
		r.emit(pipeline.Event{Kind: pipeline.EventReadFailed, FileID: id, Name: f.Name, Error: pipeline.RedactURLs(err.Error()), Permanent: true})
	}
	if errors.Is(err, bus.ErrStoreFull) {
		// The file's chunks make room for the record that it failed and
		// for its deliveries to record theirs; a later read starts afresh
		// (resetFile) and needs none of them. A crash between the purge
		// and the record leaves a checkpoint whose chunks are gone: the
		// deliveries then find chunks missing and fail, and the file is
		// read afresh the time after.
		if perr := r.fb.Chunks.Purge(r.hard, jetstream.WithPurgeSubject(r.fb.ChunkSubject(id))); perr != nil {
			log.Warn("removing the chunks of a file that failed for want of room on the bus", "err", perr)
		}
	}
	_, uerr := bus.Update(withFile(r.hard, id, f.Name), r.fb.Store, bus.ManifestKey(id), func(m *bus.Manifest, exists bool) error {
		if !exists {
			*m = bus.Manifest{ID: id, Key: f.Key, Name: f.Name, Size: f.Size, Created: time.Now().UTC()}
		}
		m.State = state
		m.Error = pipeline.RedactURLs(err.Error())
		if state == bus.FileFailed {
			m.ReadError = m.Error
		}
		m.Updated = time.Now().UTC()
		if state == bus.FileSkipped {
			m.Outcome = pipeline.Skipped.String()
			m.Finished = m.Updated
		}
		return nil
	})
	return m, errors.Join(err, uerr)
}

// ingest puts one file on the bus, resuming from the manifest's checkpoint,
// and returns the manifest as written. known is the manifest as read
// before, if at hand.
func (r *Run) ingest(item pipeline.Item, f pipeline.File, id string, known *bus.Versioned[bus.Manifest]) (bus.Versioned[bus.Manifest], error) {
	ctx, cancel := context.WithCancel(withFile(r.hard, id, f.Name))
	defer cancel()
	stopWatch := context.AfterFunc(r.stopping, cancel)
	defer stopWatch()

	// Stages run before anything is recorded so a skipped file leaves no
	// deliveries behind; they run again on resume (they are deterministic).
	var cp *bus.Checkpoint
	mv, err := r.manifestOf(ctx, id, known)
	if err != nil {
		return mv, err
	}
	if mv.V.State == bus.FileIngesting {
		cp = mv.V.Checkpoint
	}
	chunkSize := r.flow.Bus.ChunkSize
	if mv.V.ChunkSize > 0 {
		chunkSize = mv.V.ChunkSize // a resumed file keeps its chunk size
	}

	out, next, closeSrc, ranged, err := r.openContent(ctx, item, f, cp, chunkSize, mv.V.State == bus.FileIngesting)
	if errors.Is(err, errStagesDiffer) {
		return r.readAfresh(item, f, id, mv.V, "the stages gave other bytes than the interrupted read (an encrypting stage, say)")
	}
	if err != nil {
		return mv, r.stopped(err)
	}
	defer closeSrc()
	out.Name, err = pipeline.CleanName(out.Name)
	if err != nil {
		return mv, err
	}
	// Read one chunk ahead, so the last chunk is published as such.
	cur, err := next()
	if err != nil && err != io.EOF {
		return mv, r.stopped(err)
	}
	following, ferr := next()
	if ferr != nil && ferr != io.EOF {
		return mv, r.stopped(ferr)
	}
	// An interrupted earlier read may have left chunks on the bus; the
	// chunked path below publishes over them as they expect.
	if cp == nil && ferr == io.EOF && mv.V.State != bus.FileIngesting {
		return r.ingestWhole(ctx, f, id, mv, out, cur, chunkSize, ackRemoves(item))
	}
	if mv, err = r.beginRead(ctx, item, f, id, mv, out, chunkSize); err != nil {
		return mv, err
	}

	p := &publisher{r: r, ctx: ctx, id: id, subject: r.fb.ChunkSubject(id), hash: sha256.New(), more: r.newDigests(), readBefore: mv.V.SourceRead,
		msgID: fmt.Sprintf("%s.%d.", id, mv.V.Epoch), size: mv.V.Size}
	stopBeat := r.heartbeat(ctx, id)
	defer stopBeat()
	if cp != nil {
		if ok, err := p.resume(cp, f.Name, ranged); err != nil {
			return mv, err
		} else if !ok {
			// A digest a sink's checksum file needs was not kept (the
			// sinks changed): what is on the bus cannot be hashed again.
			return r.readAfresh(item, f, id, mv.V, "a checksum file needs a digest the interrupted read did not keep")
		}
	}
	if err := p.publishAll(cur, following, ferr, next); err != nil {
		return mv, err
	}
	return r.endRead(p, f, id, mv)
}

// manifestOf returns file id's manifest: known when at hand, else as read.
func (r *Run) manifestOf(ctx context.Context, id string, known *bus.Versioned[bus.Manifest]) (bus.Versioned[bus.Manifest], error) {
	var mv bus.Versioned[bus.Manifest]
	if known != nil {
		return *known, nil
	}
	rev, err := r.fb.Store.Get(ctx, bus.ManifestKey(id), &mv.V)
	if err != nil {
		return mv, err
	}
	mv.Rev = rev
	return mv, nil
}

// beginRead records that file id is being read, in chunks, with what the
// stages made of it (out), and queues its deliveries unless that was done.
func (r *Run) beginRead(ctx context.Context, item pipeline.Item, f pipeline.File, id string, mv bus.Versioned[bus.Manifest], out pipeline.File, chunkSize int64) (bus.Versioned[bus.Manifest], error) {
	mv, err := bus.UpdateFrom(ctx, r.fb.Store, bus.ManifestKey(id), mv, func(m *bus.Manifest, exists bool) error {
		if exists && m.State == bus.FileIngesting && m.TasksPublished {
			return bus.ErrUnchanged
		}
		now := time.Now().UTC()
		if !exists || m.State != bus.FileIngesting {
			*m = bus.Manifest{ID: id, Key: f.Key, Size: -1, ChunkSize: chunkSize, Created: now, Epoch: m.Epoch, Payload: r.payloadName()}
		}
		m.Name, m.ModTime, m.Attrs, m.Sinks = out.Name, out.ModTime, out.Attrs, r.sinkNames()
		m.SourceRemoves = ackRemoves(item)
		m.Size = out.Size // known up front when no stage changed the content
		m.State, m.Updated = bus.FileIngesting, now
		return nil
	})
	if err != nil {
		return mv, r.stopped(err)
	}
	if mv.V.TasksPublished {
		return mv, nil
	}
	if err := r.queueDeliveries(ctx, id, mv.V.Epoch, r.sinkNames()); err != nil {
		return mv, r.stopped(err)
	}
	mv, err = bus.UpdateFrom(ctx, r.fb.Store, bus.ManifestKey(id), mv, func(m *bus.Manifest, exists bool) error {
		m.TasksPublished = true
		return nil
	})
	return mv, r.stopped(err)
}

// resume restores the hashes and position of an interrupted read from its
// checkpoint. It reports false when a digest a sink needs was not kept.
// ranged says the source reads from the checkpoint on; else the bytes
// before it are read again and discarded.
func (p *publisher) resume(cp *bus.Checkpoint, name string, ranged bool) (bool, error) {
	if err := p.hash.(encoding.BinaryUnmarshaler).UnmarshalBinary(cp.Hash); err != nil {
		return false, fmt.Errorf("resuming %s: bad checkpoint: %w", name, err)
	}
	if !p.more.restore(cp.Digests) {
		return false, nil
	}
	p.index, p.bytes, p.startBytes = cp.Chunks, cp.Bytes, cp.Bytes
	if !ranged {
		p.readBefore += cp.Bytes // read again and discarded to reach the checkpoint
	}
	return true, nil
}

// publishAll publishes cur and the chunks that next reads after it
// (following is the one after cur, ferr the error that came with it),
// checkpointing as it goes and when it stops, and waits for their acks.
func (p *publisher) publishAll(cur, following []byte, ferr error, next func() ([]byte, error)) error {
	r := p.r
	for {
		if r.stopping.Err() != nil {
			if err := p.checkpoint(r.hard); err != nil {
				return err
			}
			return errStopped
		}
		last := ferr == io.EOF
		if err := p.publish(cur, last); err != nil {
			return r.stopped(err)
		}
		if last {
			break
		}
		cur = following
		if p.index%checkpointEvery == 0 {
			if err := p.checkpoint(p.ctx); err != nil {
				return r.stopped(err)
			}
		}
		following, ferr = next()
		if ferr != nil && ferr != io.EOF {
			if cerr := p.checkpoint(r.hard); cerr != nil {
				return errors.Join(ferr, cerr)
			}
			return r.stopped(ferr)
		}
	}
	if err := p.drain(); err != nil {
		return r.stopped(err)
	}
	return nil
}

// endRead records the file as read, with its size, chunks and sums.
func (r *Run) endRead(p *publisher, f pipeline.File, id string, mv bus.Versioned[bus.Manifest]) (bus.Versioned[bus.Manifest], error) {
	sum, more := hex.EncodeToString(p.hash.Sum(nil)), p.more.sums()
	r.emitRead(id, f.Name, mv.V.Name, p.bytes, sum)
	// Checkpoints and heartbeats may have written the manifest since; the
	// compare-and-swap then reads it again.
	mv, err := bus.UpdateFrom(r.hard, r.fb.Store, bus.ManifestKey(id), mv, func(m *bus.Manifest, exists bool) error {
		m.Size, m.Chunks, m.SHA256, m.Digests = p.bytes, p.index, sum, more
		m.SourceRead = p.read()
		m.State, m.Checkpoint, m.Updated = bus.FileReady, nil, time.Now().UTC()
		return nil
	})
	if err != nil {
		return mv, err
	}
	r.countRead(mv.V)
	return mv, nil
}

// inlineMax is the largest file whose bytes travel inside its manifest
// rather than as a chunk, when the flow does not retain chunks.
const inlineMax = 32 << 10

// ingestWhole puts a file that fits in one chunk on the bus: the chunk (or,
// for a small file, the bytes inside the manifest), then the manifest, ready
// at once, then the deliveries' tasks (a restart that finds the file ready
// queues them again). Two or three round trips where a longer file takes
// several more, and a delivery finds everything in place.
func (r *Run) ingestWhole(ctx context.Context, f pipeline.File, id string, mv bus.Versioned[bus.Manifest], out pipeline.File, data []byte, chunkSize int64, removes bool) (bus.Versioned[bus.Manifest], error) {
	epoch := mv.V.Epoch // changes only in resetFile, before this
	size := int64(len(data))
	inline := size <= inlineMax && !r.flow.Bus.Retains()
	var content []byte
	if inline {
		content = bytes.Clone(data)
	} else {
		msg := r.codec.Encode(r.fb.ChunkSubject(id), r.chunkOf(0, data, true))
		start := time.Now()
		err := r.space.Do(ctx, size, func() error {
			_, err := r.fb.JS.PublishMsg(ctx, msg, jetstream.WithMsgID(fmt.Sprintf("%s.%d.0", id, epoch)), jetstream.WithExpectStream(r.fb.ChunkStream()))
			return err
		})
		if err != nil {
			return mv, r.stopped(fmt.Errorf("publishing chunk 0: %w", remaining(err, size)))
		}
		r.metrics.publish.Observe(time.Since(start).Seconds())
	}
	r.stats.bytesRead.Add(size)
	r.metrics.readBytes.Add(float64(size))
	sum := sha256.Sum256(data)
	more := r.newDigests().of(data)
	r.chunks.put(data)
	r.emitRead(id, f.Name, out.Name, size, hex.EncodeToString(sum[:]))

	mv, err := bus.UpdateFrom(ctx, r.fb.Store, bus.ManifestKey(id), mv, func(m *bus.Manifest, exists bool) error {
		now := time.Now().UTC()
		created, read := now, int64(0)
		if exists && m.State == bus.FileIngesting {
			created, read = m.Created, m.SourceRead
		}
		*m = bus.Manifest{ID: id, Key: f.Key, Name: out.Name, Size: size, SHA256: hex.EncodeToString(sum[:]), Digests: more,
			ModTime: out.ModTime, Attrs: out.Attrs, ChunkSize: chunkSize, Chunks: 1, SourceRead: read + size,
			Sinks: r.sinkNames(), State: bus.FileReady, TasksPublished: true, Epoch: epoch, Created: created, Updated: now,
			Inline: inline, Content: content, SourceRemoves: removes}
		if !inline {
			m.Payload = r.payloadName()
		}
		return nil
	})
	if err != nil {
		return mv, r.stopped(err)
	}
	// The file is ready: from here a failure is no read failure.
	if err := r.queueUntilDone(ctx, id, mv.V.Epoch, mv.V.Sinks); err != nil {
		return mv, err
	}
	r.countRead(mv.V)
	return mv, nil
}

// queueUntilDone queues task's deliveries (a file's id or a group's task)
// until that works, or returns errStopped once ctx ends or the run stops: a
// run that stops first leaves the file ready (or the group written), and
// the next one offered it queues them.
func (r *Run) queueUntilDone(ctx context.Context, task string, epoch int, sinks []string) error {
	b := newBackoff(time.Second, 30*time.Second)
	for {
		err := r.queueDeliveries(ctx, task, epoch, sinks)
		if err == nil {
			return nil
		}
		if r.stopping.Err() != nil || ctx.Err() != nil {
			return errStopped
		}
		d := b.NextBackOff()
		r.log.Warn("queueing deliveries failed; retrying", "task", task, "in", d, "err", err)
		sleep(ctx, d)
	}
}

// queueDeliveries publishes a delivery task of file id for each sink. The
// message ids make a task published again within the stream's duplicate
// window a no-op; later, the delivery tells it is a duplicate.
func (r *Run) queueDeliveries(ctx context.Context, id string, epoch int, sinks []string) error {
	for _, s := range sinks {
		err := r.space.Do(ctx, int64(len(id)), func() error {
			_, err := r.fb.JS.Publish(ctx, r.fb.TaskSubject(s), []byte(id), jetstream.WithMsgID(fmt.Sprintf("%s.%d.%s", id, epoch, s)))
			return err
		})
		if err != nil {
			return fmt.Errorf("queueing delivery to %s: %w", s, err)
		}
	}
	return nil
}

// remaining says in a refusal for want of room how much of the file was
// still to go onto the bus; other errors are returned as they are.
func remaining(err error, n int64) error {
	full, ok := err.(*bus.StoreFullError)
	if n <= 0 || !ok {
		return err
	}
	c := *full
	c.Remaining = n
	return &c
}

// stopped turns an error caused by the run stopping into errStopped.
func (r *Run) stopped(err error) error {
	if err != nil && r.stopping.Err() != nil {
		return errStopped
	}
	return err
}

// checkAttrs asks an item that checks the file the stages made
// (pipeline.AttrChecker) whether its Ack can act on it; a refusal is
// permanent: the same stages give the same attributes.
func checkAttrs(item pipeline.Item, f pipeline.File) error {
	c, ok := item.(pipeline.AttrChecker)
	if !ok {
		return nil
	}
	if err := c.CheckAttrs(f); err != nil {
		return pipeline.Permanent(err)
	}
	return nil
}

// openContent returns the file's metadata after the stages and a function
// yielding its content in chunks, starting after the checkpoint; ranged
// tells whether it reads byte ranges (so the checkpoint's bytes are not read
// again).
// readAfresh reads a file whose interrupted read cannot be continued from
// the start, in a new epoch; why says why, for the log.
func (r *Run) readAfresh(item pipeline.Item, f pipeline.File, id string, m bus.Manifest, why string) (bus.Versioned[bus.Manifest], error) {
	r.log.Info(why+": reading the file afresh", "file", f.Name, "id", id)
	if err := r.resetFile(id, m); err != nil {
		return bus.Versioned[bus.Manifest]{V: m}, err
	}
	return r.ingest(item, f, id, nil)
}

// errStagesDiffer says that a read resumed through stages cannot continue
// what an interrupted read put on the bus: the stages' bytes up to its
// checkpoint differ (a stage that encrypts with a fresh key), or there is
// no checkpoint to compare with while chunks of it may be there.
var errStagesDiffer = errors.New("the stages' output differs from the interrupted read's")

// openContent opens f's content as it goes onto the bus: ranges of the
// source, or the source through the stages. resuming says an earlier read
// of the file was interrupted; cp is its checkpoint, if any. Through
// stages, the bytes before the checkpoint are read again and must hash as
// they did (errStagesDiffer otherwise): stages are meant to be
// deterministic, and one that is not would join two different outputs.
func (r *Run) openContent(ctx context.Context, item pipeline.Item, f pipeline.File, cp *bus.Checkpoint, chunkSize int64, resuming bool) (_ pipeline.File, _ func() ([]byte, error), _ func(), ranged bool, _ error) {
	var skip int64
	if cp != nil {
		skip = cp.Bytes
	}
	ctx = pipeline.WithItem(ctx, item)
	if ro, ok := item.(pipeline.RangeOpener); ok && (len(r.stages) == 0 || r.byReference) && f.Size >= 0 {
		out, err := r.keepersOnly(ctx, f)
		if err == nil {
			err = checkAttrs(item, out)
		}
		if err != nil {
			return out, nil, nil, false, err
		}
		rr := newRangeReader(ctx, ro, f.Size, skip, chunkSize, r.flow.Bus.Readers, &r.chunks)
		return out, rr.next, rr.close, true, nil
	}
	f, content, closeAll, err := r.throughStages(ctx, item, f)
	if err != nil {
		return f, nil, nil, false, err
	}
	if resuming && len(r.stages) > 0 {
		if err := sameAsBefore(content, cp); err != nil {
			closeAll()
			return f, nil, nil, false, fmt.Errorf("resuming %s at byte %d: %w", f.Name, skip, err)
		}
	} else if skip > 0 {
		if _, err := io.CopyN(io.Discard, content, skip); err != nil {
			closeAll()
			return f, nil, nil, false, fmt.Errorf("resuming %s at byte %d: %w", f.Name, skip, err)
		}
	}
	return f, r.chunksOf(content, f.Name, chunkSize), closeAll, false, nil
}

// throughStages opens the item's content and runs it through the flow's
// stages. It returns the file as they left it, their output, and a
// function that closes the source and every stage.
func (r *Run) throughStages(ctx context.Context, item pipeline.Item, f pipeline.File) (pipeline.File, io.Reader, func(), error) {
	rc, err := item.Open(ctx)
	if err != nil {
		return f, nil, nil, fmt.Errorf("opening %s: %w", f.Name, err)
	}
	closers := []io.Closer{rc}
	closeAll := func() {
		for i := len(closers) - 1; i >= 0; i-- {
			_ = closers[i].Close() // what was read is checked by its sums, not by the close
		}
	}
	var content io.Reader = rc
	for i, st := range r.stages {
		f, content, err = st.Process(ctx, f, content)
		if err != nil {
			closeAll()
			if errors.Is(err, pipeline.ErrSkip) {
				return f, nil, nil, err
			}
			return f, nil, nil, fmt.Errorf("stage %d (%s): %w", i+1, r.flow.Stages[i].Type, err)
		}
		if c, ok := content.(io.Closer); ok {
			closers = append(closers, c)
		}
	}
	if err := checkAttrs(item, f); err != nil {
		closeAll()
		return f, nil, nil, err
	}
	return f, content, closeAll, nil
}

// chunksOf returns a function that reads content, the file name's, in
// chunks of chunkSize; the last may be shorter, and io.EOF follows it.
func (r *Run) chunksOf(content io.Reader, name string, chunkSize int64) func() ([]byte, error) {
	return func() ([]byte, error) {
		buf := r.chunks.get(chunkSize)
		n, err := io.ReadFull(content, buf)
		switch {
		case err == io.ErrUnexpectedEOF:
			return buf[:n], nil
		case err == io.EOF:
			return nil, io.EOF
		case err != nil:
			return nil, fmt.Errorf("reading %s: %w", name, err)
		}
		return buf, nil
	}
}

// sameAsBefore reads the bytes before checkpoint cp from content and checks
// that they hash to the checkpoint's state; errStagesDiffer when they do
// not or there is no checkpoint.
func sameAsBefore(content io.Reader, cp *bus.Checkpoint) error {
	if cp == nil {
		return errStagesDiffer
	}
	h := sha256.New()
	if _, err := io.CopyN(h, content, cp.Bytes); err != nil {
		if err == io.EOF {
			return errStagesDiffer // shorter than what the bus holds
		}
		return err
	}
	if state, err := h.(encoding.BinaryMarshaler).MarshalBinary(); err != nil || !bytes.Equal(state, cp.Hash) {
		return errStagesDiffer
	}
	return nil
}

// publisher puts one file's chunks on the bus with a bounded number of
// publishes awaiting their ack.
type publisher struct {
	r       *Run
	ctx     context.Context
	id      string
	msgID   string // prefix of chunk message ids: file id and epoch
	subject string
	hash    hash.Hash
	more    digests // beyond sha256, for the sinks' checksum files
	index   int     // next chunk index
	bytes   int64   // bytes published so far
	size    int64   // the file's size, if known before the end; else -1
	pending []inFlight
	slowest int
	// startBytes is where this attempt started; readBefore counts the
	// source bytes read by earlier attempts (and to reach startBytes).
	startBytes, readBefore int64 // chunk index the slowest active delivery had reached, last we looked
}

func (p *publisher) publish(data []byte, last bool) error {
	p.reap()
	if err := p.r.awaitWindow(p.ctx, p.id, p.index, &p.slowest); err != nil {
		return err
	}
	msg := p.r.codec.Encode(p.subject, p.r.chunkOf(p.index, data, last))
	fut, err := p.r.fb.JS.PublishMsgAsync(msg, jetstream.WithMsgID(p.msgID+strconv.Itoa(p.index)), jetstream.WithExpectStream(p.r.fb.ChunkStream()))
	if err != nil {
		return fmt.Errorf("publishing chunk %d: %w", p.index, err)
	}
	p.hash.Write(data)
	p.more.Write(data)
	p.index++
	p.bytes += int64(len(data))
	p.r.stats.bytesRead.Add(int64(len(data)))
	p.r.metrics.readBytes.Add(float64(len(data)))
	p.pending = append(p.pending, inFlight{fut, data, time.Now()})
	for len(p.pending) >= publishWindow {
		if err := p.awaitOldest(p.ctx); err != nil {
			return err
		}
	}
	return nil
}

// read is the source bytes read over every attempt, up to what is published.
func (p *publisher) read() int64 { return p.readBefore + p.bytes - p.startBytes }

// inFlight is a chunk publish awaiting its ack, with the buffer it came from
// and when it was published.
type inFlight struct {
	fut jetstream.PubAckFuture
	buf []byte
	at  time.Time
}

// reap takes the acks that have arrived, oldest first, without waiting, so
// that buffers return to the pool early and the publish latency is measured
// close to when each ack came rather than when the window filled.
func (p *publisher) reap() {
	for len(p.pending) > 0 {
		select {
		case <-p.pending[0].fut.Ok():
		default:
			return
		}
		p.r.metrics.publish.Observe(time.Since(p.pending[0].at).Seconds())
		p.r.chunks.put(p.pending[0].buf)
		p.pending = p.pending[1:]
		p.r.space.Room()
	}
}

func (p *publisher) awaitOldest(ctx context.Context) error {
	fut, buf, at := p.pending[0].fut, p.pending[0].buf, p.pending[0].at
	p.pending = p.pending[1:]
	select {
	case <-fut.Ok():
		p.r.metrics.publish.Observe(time.Since(at).Seconds())
		p.r.chunks.put(buf)
		p.r.space.Room()
		return nil
	case perr := <-fut.Err():
		p.r.log.Debug("publishing a chunk again", "err", perr)
		// Publish again synchronously; the message id deduplicates it if the
		// first one did land. A store without room is waited for.
		msg := fut.Msg()
		err := p.r.space.Do(ctx, int64(len(msg.Data)), func() error {
			_, err := p.r.fb.JS.PublishMsg(ctx, msg, jetstream.WithMsgID(msg.Header.Get("Nats-Msg-Id")))
			return err
		})
		if err != nil {
			if p.size >= 0 {
				// What was on the bus before this chunk and the ones
				// published after it.
				onBus := p.bytes - int64(len(buf))
				for _, f := range p.pending {
					onBus -= int64(len(f.buf))
				}
				err = remaining(err, p.size-onBus)
			}
			return fmt.Errorf("publishing chunk %s: %w", msg.Header.Get(bus.HeaderIndex), err)
		}
		p.r.metrics.publish.Observe(time.Since(at).Seconds())
		p.r.chunks.put(buf)
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (p *publisher) drain() error {
	for len(p.pending) > 0 {
		if err := p.awaitOldest(p.ctx); err != nil {
			return err
		}
	}
	return nil
}

// checkpoint waits for every publish and records how far the file got.
func (p *publisher) checkpoint(ctx context.Context) error {
	for len(p.pending) > 0 {
		if err := p.awaitOldest(ctx); err != nil {
			return err
		}
	}
	state, err := p.hash.(encoding.BinaryMarshaler).MarshalBinary()
	if err != nil {
		return err
	}
	more, err := p.more.state()
	if err != nil {
		return err
	}
	_, err = bus.Update(ctx, p.r.fb.Store, bus.ManifestKey(p.id), func(m *bus.Manifest, exists bool) error {
		if m.State != bus.FileIngesting {
			return bus.ErrUnchanged
		}
		m.Checkpoint = &bus.Checkpoint{Chunks: p.index, Bytes: p.bytes, Hash: state, Digests: more}
		m.SourceRead = p.read()
		m.Updated = time.Now().UTC()
		return nil
	})
	return err
}

// awaitWindow blocks while chunk index lies more than the flow's window
// beyond the slowest delivery of file id that is writing or yet to start.
// Deliveries waiting for a retry, and sinks that wait for the whole file
// (ManifestFirst), do not hold reading back; their chunks stay on the bus until they need them.
// slowest caches the last position seen, so the records are read only when
// the window seems full.
func (r *Run) awaitWindow(ctx context.Context, id string, index int, slowest *int) error {
	chunk := r.flow.Bus.ChunkSize
	for {
		window := r.flow.Bus.Window
		if int64(index-*slowest)*chunk < window {
			return nil
		}
		// Taken before the records are read, so a change made after the
		// reading wakes the wait below.
		moved := r.finisher.nextMove(id)
		pos, active := -1, false
		for _, s := range r.sinks {
			var d bus.Delivery
			rev, err := r.fb.Store.Get(ctx, bus.DeliveryKey(id, s.spec.Name), &d)
			if err != nil {
				return err
			}
			// A delivery not started yet holds reading back (it will start
			// at the first chunk); one waiting for a retry or for the whole
			// file (ManifestFirst) does not.
			if rev != 0 && d.State != bus.DeliveryActive && d.State != bus.DeliveryCommitting {
				continue
			}
			at := 0
			if d.Prefix != nil {
				at = d.Prefix.Chunks
			}
			// A sink must be able to finish its next parts inside the window.
			window = max(window, 2*d.PartSize)
			if !active || at < pos {
				pos, active = at, true
			}
		}
		if !active {
			*slowest = index
			return nil
		}
		*slowest = pos
		if int64(index-pos)*chunk < window {
			return nil
		}
		// The finisher's watch of the delivery records says when a sink
		// moved on; the timer covers a watch that fell behind.
		t := time.NewTimer(windowRecheck)
		select {
		case <-moved:
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return ctx.Err()
		}
		t.Stop()
	}
}

// windowRecheck is how often a read held back by its window looks at the
// deliveries without being woken.
const windowRecheck = 500 * time.Millisecond

// chunkPool recycles chunk buffers between reads, sparing the allocation and
// zeroing of a chunk-sized buffer for every chunk of every file.
type chunkPool struct{ pool sync.Pool }

// get returns a buffer of length n.
func (c *chunkPool) get(n int64) []byte {
	if b, ok := c.pool.Get().(*[]byte); ok && int64(cap(*b)) >= n {
		return (*b)[:n]
	}
	return make([]byte, n)
}

// put recycles b; b must not be used afterwards.
func (c *chunkPool) put(b []byte) {
	if cap(b) > 0 {
		c.pool.Put(&b)
	}
}

// heartbeat marks the manifest as being read every AckWait until stopped,
// so deliveries waiting for chunks can tell a slow source from a read that
// no runner is doing any more.
func (r *Run) heartbeat(ctx context.Context, id string) (stop func()) {
	ctx, cancel := context.WithCancel(ctx)
	go func() {
		t := time.NewTicker(r.e.opts.AckWait)
		defer t.Stop()
		for {
			select {
			case <-t.C:
				// A beat that is not written is written at the next tick.
				_, _ = bus.Update(ctx, r.fb.Store, bus.ManifestKey(id), func(m *bus.Manifest, exists bool) error {
					if m.State != bus.FileIngesting {
						return bus.ErrUnchanged
					}
					m.Updated = time.Now().UTC()
					return nil
				})
			case <-ctx.Done():
				return
			}
		}
	}()
	return cancel
}
