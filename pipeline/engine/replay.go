package engine

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/mftflow/mftflow/pipeline"
	"github.com/mftflow/mftflow/pipeline/bus"
)

// Selector chooses the failed deliveries Replay re-delivers. An empty field
// selects everything: the zero Selector selects every failed delivery of
// the flow.
type Selector struct {
	// Files are file ids (as runner status --json shows them) or file names
	// on the bus (after the stages).
	Files []string
	// Sinks are sink names.
	Sinks []string
}

// Report says what Replay did.
type Report struct {
	Flow string `json:"flow"`
	// Requeued are the deliveries queued again; the flow's runners deliver
	// them from the bus.
	Requeued []ReplayItem `json:"requeued"`
	// Reread are deliveries to be made by reading the file again from its
	// source (its chunks are gone from the bus, or the file was never
	// queued to the sink): the next run of the flow whose source offers
	// the file reads it again for them.
	Reread []ReplayItem `json:"reread"`
	// Refused are the selected deliveries (or files) that were not queued,
	// each with its Reason.
	Refused []ReplayItem `json:"refused"`
}

// Events are the audit trail's records of rep (pipeline.EventReplay): one
// per delivery queued again or to be made by reading the file again, asked
// for by by at time at. Refused deliveries changed nothing and have none.
func (rep Report) Events(by string, at time.Time) []pipeline.Event {
	var evs []pipeline.Event
	for _, items := range [][]ReplayItem{rep.Requeued, rep.Reread} {
		for _, it := range items {
			evs = append(evs, pipeline.Event{Kind: pipeline.EventReplay, Time: at.UTC(), Flow: rep.Flow, FileID: it.File,
				Name: it.Name, Sink: it.Sink, By: by, Detail: it.Reason})
		}
	}
	return evs
}

// ReplayItem is one delivery in a Report. Sink is empty for a selected file
// that was not found.
type ReplayItem struct {
	File   string `json:"file"`           // file id
	Name   string `json:"name,omitempty"` // file name on the bus
	Sink   string `json:"sink,omitempty"`
	Reason string `json:"reason,omitempty"` // why it was refused; empty in Requeued
}

// ReasonPurged is the Reason of a delivery whose file's chunks are gone,
// in Report.Reread.
const ReasonPurged = "chunks purged: the file is read again from its source for it the next time a run of the flow is offered it (set bus.retention to replay from the bus)"

// ReasonNeverQueued is the Reason of a Report.Reread item for a sink the
// file was never queued to.
const ReasonNeverQueued = "never queued to this sink (added since?): the file is read again from its source for it the next time a run of the flow is offered it"

// Replay queues again the failed deliveries of flow chosen by sel, so that
// they are delivered from the chunks still on the bus, without reading the
// source again. For each one it checks that every chunk of the file is on
// the bus, marks the file's manifest so that its outcome is recomputed once
// the delivery ends (the source, already acked, is not told), resets the
// delivery record (state pending, attempts 0, owner and error cleared; the
// parts and resume state it kept stay, so the sink resumes what it had) and
// publishes a new delivery task. A delivery whose chunks are gone, and a
// sink named with a file that was never queued to it, are marked on the
// file's manifest (Manifest.Redeliver) to be made by reading the file
// again from its source, and listed in Report.Reread.
//
// Replay only writes the flow's KV records and publishes tasks: it works
// whether or not a runner of the flow is running. A running runner takes
// the tasks at once; otherwise the next run of the flow does, and does not
// end before they are final. Replaying a delivery that was queued again but
// not started yet queues it again only if its task is lost.
//
// It returns an error when the flow has no state on the server or the
// state cannot be read or written; the Report then holds what was done.
func Replay(ctx context.Context, js jetstream.JetStream, flow string, sel Selector) (rep Report, err error) {
	rep = Report{Flow: flow}
	fs, err := readFlow(ctx, js, flow, true)
	if err != nil {
		return rep, err
	}
	rp, err := openReplayer(ctx, js, flow, &rep)
	if err != nil {
		return rep, err
	}
	codec, err := bus.NewCodec("none") // it decodes any chunk
	if err != nil {
		return rep, err
	}
	rep.Refused = append(rep.Refused, refusedSelection(fs, sel, flow)...)
	ungrouped := map[string]bool{} // groups a member of which became a file of its own
	// rep is the named result, so what the purge refuses reaches the caller.
	defer func() {
		for gid := range ungrouped {
			if err := purgeGroupIfDone(ctx, rp.store, rp.chunks, rp.names, gid); err != nil && ctx.Err() == nil {
				rep.Refused = append(rep.Refused, ReplayItem{Reason: fmt.Sprintf("removing the chunk of group %s, which no file needs any more: %v", gid, err)})
			}
		}
	}()
	for _, f := range fs.Files {
		if err := rp.selected(ctx, f, sel, codec, ungrouped); err != nil {
			return rep, err
		}
	}
	return rep, nil
}

// openReplayer opens the bucket and streams of flow that a replay writes
// to; it reports what it does in rep.
func openReplayer(ctx context.Context, js jetstream.JetStream, flow string, rep *Report) (*replayer, error) {
	n := bus.Names{Flow: flow}
	kv, err := js.KeyValue(ctx, n.Bucket())
	if err != nil {
		return nil, fmt.Errorf("flow %s: %w", flow, err)
	}
	chunks, err := js.Stream(ctx, n.ChunkStream())
	if err != nil {
		return nil, fmt.Errorf("flow %s: opening stream %s: %w", flow, n.ChunkStream(), err)
	}
	tasks, err := js.Stream(ctx, n.TaskStream())
	if err != nil {
		return nil, fmt.Errorf("flow %s: opening stream %s: %w", flow, n.TaskStream(), err)
	}
	return &replayer{js: js, names: n, store: bus.Store{KV: kv}, chunks: chunks, tasks: tasks, rep: rep}, nil
}

// refusedSelection lists the sinks and files sel names that flow (whose
// status is fs) does not have.
func refusedSelection(fs FlowStatus, sel Selector, flow string) []ReplayItem {
	var known []string
	var items []ReplayItem
	for _, c := range fs.Sinks {
		known = append(known, c.Sink)
	}
	for _, want := range sel.Sinks {
		if !slices.Contains(known, want) && len(sel.Files) == 0 {
			items = append(items, ReplayItem{Sink: want,
				Reason: fmt.Sprintf("flow %s has no deliveries to this sink (it has: %s)", flow, strings.Join(known, ", "))})
		}
	}
	for _, want := range sel.Files {
		found := false
		for _, f := range fs.Files {
			found = found || f.Manifest.ID == want || f.Manifest.Name == want
		}
		if !found {
			items = append(items, ReplayItem{File: want, Reason: fmt.Sprintf("no file with this id or name in flow %s", flow)})
		}
	}
	return items
}

// selected replays the deliveries of file f that sel chooses. A file of a
// group becomes a file of its own first (its group goes into ungrouped).
func (rp *replayer) selected(ctx context.Context, f FileStatus, sel Selector, codec *bus.Codec, ungrouped map[string]bool) error {
	m, flow := f.Manifest, rp.names.Flow
	named := len(sel.Files) > 0
	if named && !slices.Contains(sel.Files, m.ID) && !slices.Contains(sel.Files, m.Name) {
		return nil
	}
	chosen := rp.choose(f, sel, named)
	if named && len(f.Deliveries) == 0 {
		reason := unreplayable(m)
		if reason == "" {
			reason = "the file has no deliveries"
		}
		rp.rep.Refused = append(rp.rep.Refused, ReplayItem{File: m.ID, Name: m.Name, Reason: reason})
		return nil
	}
	if named {
		if err := rp.rereadNeverQueued(ctx, f, sel.Sinks); err != nil {
			return err
		}
	}
	if len(chosen) == 0 {
		return nil
	}
	if m.Group != "" {
		nv, err := ungroup(ctx, rp.store, func(g bus.Group) ([]byte, error) { return groupContent(ctx, rp.chunks, codec, rp.names, g) }, m)
		if errors.Is(err, errGroupBusy) {
			for _, d := range chosen {
				rp.rep.Refused = append(rp.rep.Refused, ReplayItem{File: m.ID, Name: m.Name, Sink: d.Sink, Reason: err.Error()})
			}
			return nil
		}
		if err != nil {
			return fmt.Errorf("flow %s: replaying %s: %w", flow, m.Name, err)
		}
		ungrouped[m.Group] = true
		m = nv.V
	}
	if err := rp.file(ctx, m, chosen); err != nil {
		return fmt.Errorf("flow %s: replaying %s: %w", flow, m.Name, err)
	}
	return nil
}

// choose returns the deliveries of file f that sel chooses and that can be
// replayed: failed ones, and replayed ones not started since. A delivery
// of a named file that is neither is refused.
func (rp *replayer) choose(f FileStatus, sel Selector, named bool) []bus.Delivery {
	m := f.Manifest
	var chosen []bus.Delivery
	for _, d := range f.Deliveries {
		if len(sel.Sinks) > 0 && !slices.Contains(sel.Sinks, d.Sink) {
			continue
		}
		switch {
		case d.State == bus.DeliveryFailed, queuedReplay(d):
			chosen = append(chosen, d)
		case named:
			rp.rep.Refused = append(rp.rep.Refused, ReplayItem{File: m.ID, Name: m.Name, Sink: d.Sink,
				Reason: fmt.Sprintf("not failed: the delivery is %s", d.State)})
		}
	}
	return chosen
}

// rereadNeverQueued marks file f to be read again for the sinks that are
// named and that it was never queued to; a sink that no run of the flow
// had is refused.
func (rp *replayer) rereadNeverQueued(ctx context.Context, f FileStatus, sinks []string) error {
	m, flow := f.Manifest, rp.names.Flow
	var never []string
	for _, s := range sinks {
		if slices.ContainsFunc(f.Deliveries, func(d bus.Delivery) bool { return d.Sink == s }) {
			continue
		}
		// A sink no run of the flow had is a typo until proven
		// otherwise: its task consumer is made by the first run.
		if _, err := rp.tasks.Consumer(ctx, rp.names.Consumer(s)); errors.Is(err, jetstream.ErrConsumerNotFound) {
			rp.rep.Refused = append(rp.rep.Refused, ReplayItem{File: m.ID, Name: m.Name, Sink: s,
				Reason: fmt.Sprintf("no run of flow %s had a sink of this name: run the flow with it first, or correct the name", flow)})
			continue
		} else if err != nil {
			return fmt.Errorf("flow %s: looking up sink %s: %w", flow, s, err)
		}
		never = append(never, s)
	}
	if err := rp.reread(ctx, m, never, ReasonNeverQueued); err != nil {
		return fmt.Errorf("flow %s: replaying %s: %w", flow, m.Name, err)
	}
	return nil
}

// queuedReplay reports whether d was replayed and not started since.
func queuedReplay(d bus.Delivery) bool {
	return d.Replays > 0 && d.State == bus.DeliveryPending && d.Attempts == 0 && d.Owner == ""
}

type replayer struct {
	js     jetstream.JetStream
	names  bus.Names
	store  bus.Store
	chunks jetstream.Stream
	tasks  jetstream.Stream
	rep    *Report
}

// file replays the chosen deliveries of the file m.
func (rp *replayer) file(ctx context.Context, m bus.Manifest, chosen []bus.Delivery) error {
	refuse := func(reason string) {
		for _, d := range chosen {
			rp.rep.Refused = append(rp.rep.Refused, ReplayItem{File: m.ID, Name: m.Name, Sink: d.Sink, Reason: reason})
		}
	}
	if reason := unreplayable(m); reason != "" {
		refuse(reason)
		return nil
	}
	ok, err := rp.chunksOnBus(ctx, m)
	if err != nil {
		return err
	}
	if m.Purged || !ok {
		return rp.reread(ctx, m, sinksOf(chosen), ReasonPurged)
	}
	// Mark the file before touching its deliveries: from here on chunks
	// are not removed (purging marks the manifest first and skips marked
	// files), and whoever finishes the file recomputes its outcome.
	purged := false
	if _, err := bus.Update(ctx, rp.store, bus.ManifestKey(m.ID), func(cur *bus.Manifest, exists bool) error {
		purged = false
		if !exists || cur.Purged {
			purged = true
			return bus.ErrUnchanged
		}
		cur.Replaying = true
		return nil
	}); err != nil {
		return err
	}
	if purged {
		return rp.reread(ctx, m, sinksOf(chosen), ReasonPurged)
	}
	if _, err := rp.store.KV.Put(ctx, bus.ReplayKey(m.ID), []byte(m.Name)); err != nil {
		return fmt.Errorf("marking the replay: %w", err)
	}
	for _, d := range chosen {
		if err := rp.delivery(ctx, m, d); err != nil {
			return err
		}
	}
	return nil
}

// reread marks file m to be read again for sinks the next time its source
// offers it, and reports them in Report.Reread with reason.
func (rp *replayer) reread(ctx context.Context, m bus.Manifest, sinks []string, reason string) error {
	if len(sinks) == 0 {
		return nil
	}
	if _, err := bus.Update(ctx, rp.store, bus.ManifestKey(m.ID), func(cur *bus.Manifest, exists bool) error {
		if !exists {
			return bus.ErrUnchanged
		}
		for _, s := range sinks {
			if !slices.Contains(cur.Redeliver, s) {
				cur.Redeliver = append(cur.Redeliver, s)
			}
		}
		return nil
	}); err != nil {
		return fmt.Errorf("marking the file to be read again: %w", err)
	}
	for _, s := range sinks {
		rp.rep.Reread = append(rp.rep.Reread, ReplayItem{File: m.ID, Name: m.Name, Sink: s, Reason: reason})
	}
	return nil
}

func sinksOf(ds []bus.Delivery) []string {
	var out []string
	for _, d := range ds {
		out = append(out, d.Sink)
	}
	return out
}

// unreplayable says why the file m cannot be delivered from the bus, or "".
func unreplayable(m bus.Manifest) string {
	switch {
	case m.State == bus.FileIngesting:
		return "the file is still being read from the source; its delivery is retried by the run reading it"
	case m.ReadError != "" || m.State == bus.FileFailed || m.Chunks == 0:
		msg := "the file was never read completely from the source"
		if m.ReadError != "" {
			msg += " (" + m.ReadError + ")"
		}
		return msg + "; it is read again when the source offers it again"
	}
	return ""
}

// chunksOnBus reports whether every chunk of m is still on the bus: the
// subject holds at least m.Chunks messages and its first one is chunk 0.
// Chunks are only ever removed from the start of a file (as sinks write
// them) or all at once, so with chunk 0 there, the rest is there too; a
// chunk published again after a crash may add to the count, hence "at
// least". A delivery still checks every chunk as it reads them.
func (rp *replayer) chunksOnBus(ctx context.Context, m bus.Manifest) (bool, error) {
	if m.Inline {
		return int64(len(m.Content)) == m.Size, nil // the bytes are in the record
	}
	subject := rp.names.ChunkSubject(m.ID)
	info, err := rp.chunks.Info(ctx, jetstream.WithSubjectFilter(subject))
	if err != nil {
		return false, fmt.Errorf("reading stream %s: %w", rp.names.ChunkStream(), err)
	}
	if info.State.Subjects[subject] < uint64(m.Chunks) {
		return false, nil
	}
	first, err := rp.chunks.GetMsg(ctx, 1, jetstream.WithGetMsgSubject(subject))
	if errors.Is(err, jetstream.ErrMsgNotFound) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("reading the first chunk of %s: %w", m.Name, err)
	}
	return first.Header.Get(bus.HeaderIndex) == "0", nil
}

// delivery resets one delivery record and queues its task.
func (rp *replayer) delivery(ctx context.Context, m bus.Manifest, d bus.Delivery) error {
	key := bus.DeliveryKey(m.ID, d.Sink)
	var skip string
	rec, err := bus.Update(ctx, rp.store, key, func(cur *bus.Delivery, exists bool) error {
		skip = ""
		switch {
		case !exists:
			skip = "the delivery record is gone"
			return bus.ErrUnchanged
		case queuedReplay(*cur):
			return bus.ErrUnchanged // reset before; its task may be lost
		case cur.State != bus.DeliveryFailed:
			skip = fmt.Sprintf("not failed: the delivery is %s", cur.State)
			return bus.ErrUnchanged
		}
		// A fresh retry budget under a new owner. Done, Prefix, Resume and
		// PartSize stay: the sink resumes whatever they still describe.
		cur.State, cur.Attempts, cur.Failures, cur.Owner, cur.Error = bus.DeliveryPending, 0, 0, "", ""
		cur.Replays++
		cur.Updated = time.Now().UTC()
		return nil
	})
	if err != nil {
		return err
	}
	item := ReplayItem{File: m.ID, Name: m.Name, Sink: d.Sink}
	if skip != "" {
		item.Reason = skip
		rp.rep.Refused = append(rp.rep.Refused, item)
		return nil
	}
	if d.State != bus.DeliveryFailed {
		// Queued by an earlier replay and not started: queue it again only
		// if no task for the sink is waiting, or it would be delivered twice
		// at once (harmless, but wasted).
		queued, err := rp.tasksWaiting(ctx, d.Sink)
		if err != nil {
			return err
		}
		if queued {
			item.Reason = "already queued by an earlier replay; waiting for a runner of the flow"
			rp.rep.Refused = append(rp.rep.Refused, item)
			return nil
		}
	}
	// A fresh message id: the task of the first delivery (and of an earlier
	// replay) would otherwise be taken for a duplicate.
	msgID := fmt.Sprintf("%s.%d.%s.replay%d", m.ID, m.Epoch, d.Sink, rec.Replays)
	if _, err := rp.js.Publish(ctx, rp.names.TaskSubject(d.Sink), []byte(m.ID), jetstream.WithMsgID(msgID),
		jetstream.WithExpectStream(rp.names.TaskStream())); err != nil {
		return fmt.Errorf("queueing the delivery to %s: %w (run the replay again)", d.Sink, err)
	}
	rp.rep.Requeued = append(rp.rep.Requeued, item)
	return nil
}

// tasksWaiting reports whether any task for sink is on the task stream,
// taken or not.
func (rp *replayer) tasksWaiting(ctx context.Context, sink string) (bool, error) {
	subject := rp.names.TaskSubject(sink)
	info, err := rp.tasks.Info(ctx, jetstream.WithSubjectFilter(subject))
	if err != nil {
		return false, fmt.Errorf("reading stream %s: %w", rp.names.TaskStream(), err)
	}
	return info.State.Subjects[subject] > 0, nil
}

// ownerID names one attempt at a delivery. Replays are part of it so that an
// attempt after a replay never takes the name of one before it.
func ownerID(run string, d *bus.Delivery) string { return attemptName(run, d.Replays, d.Attempts) }

// attemptName names attempt attempts (after replays replays) by run run.
func attemptName(run string, replays, attempts int) string {
	if replays > 0 {
		return run + "/" + strconv.Itoa(replays) + "." + strconv.Itoa(attempts)
	}
	return run + "/" + strconv.Itoa(attempts)
}

// settleReplay recomputes the outcome of a finished file with a replayed
// delivery once every delivery is final again, and records it. The source
// is not acked again (it was acked when the file first finished); chunks
// the flow does not retain are removed as for any finished file.
func (r *Run) settleReplay(id string) {
	ctx := r.hard
	// The marker is read before the manifest: a replay marks the manifest
	// first, so a marker removed below by its revision is never one put
	// after the manifest was read.
	marker, err := r.fb.Store.KV.Get(ctx, bus.ReplayKey(id))
	if err != nil && !errors.Is(err, jetstream.ErrKeyNotFound) {
		return
	}
	unmark := func() {
		if marker == nil {
			return
		}
		if err := r.fb.Store.KV.Delete(ctx, bus.ReplayKey(id), jetstream.LastRevision(marker.Revision())); err != nil {
			r.log.Debug("removing replay marker", "id", id, "err", err)
		}
	}
	var m bus.Manifest
	if _, err := r.fb.Store.Get(ctx, bus.ManifestKey(id), &m); err != nil {
		return
	}
	if !m.Replaying {
		unmark()
		return
	}
	if m.State != bus.FileDone {
		return
	}
	out, final, err := r.finisher.outcome(ctx, id, m.Sinks)
	if err != nil || !final {
		return
	}
	settled := false
	m, err = bus.Update(ctx, r.fb.Store, bus.ManifestKey(id), func(m *bus.Manifest, exists bool) error {
		settled = false
		if !exists || !m.Replaying || m.State != bus.FileDone {
			return bus.ErrUnchanged
		}
		now := time.Now().UTC()
		m.Replaying, m.Outcome, m.Error, m.Finished, m.Updated = false, out.Status.String(), out.Message, now, now
		settled = true
		return nil
	})
	if err != nil {
		r.log.Warn("recording the outcome of a replayed file", "id", id, "err", err)
		return
	}
	if !m.Replaying {
		unmark()
	}
	if !settled {
		return
	}
	if r.countOutcome(id, out.Status) {
		r.stats.seen.Add(1)
	}
	r.log.Info("replayed file finished (the source is not told again)", "id", id, "file", m.Name, "outcome", out.Status.String())
	r.purgeFinished(m, out.Status)
}

// endReplays waits, before a run ends by itself, for the replayed
// deliveries of finished files that this run's sinks can take, so that a
// run started to deliver a replay does not end before it. A replayed
// delivery whose task was lost (the replay stopped between resetting the
// record and queueing the task) is queued again.
func (r *Run) endReplays() {
	ctx := r.stopping
	if ctx.Err() != nil {
		return
	}
	keys, err := r.fb.Store.KV.ListKeysFiltered(ctx, "replay.*")
	if errors.Is(err, jetstream.ErrNoKeysFound) {
		return
	}
	if err != nil {
		r.log.Warn("listing replayed files", "err", err)
		return
	}
	var ids []string
	for k := range keys.Keys() {
		if key, ok := bus.ParseKey(k); ok && key.Kind == bus.KeyReplay {
			ids = append(ids, key.ID)
		}
	}
	_ = keys.Stop() // every key was read
	mine := r.sinkNames()
	rp := &replayer{js: r.fb.JS, names: r.fb.Names, store: r.fb.Store, chunks: r.fb.Chunks, tasks: r.fb.Tasks, rep: &Report{}}
	for _, id := range ids {
		var m bus.Manifest
		if _, err := r.fb.Store.Get(ctx, bus.ManifestKey(id), &m); err != nil {
			return
		}
		if !m.Replaying {
			r.settleReplay(id) // removes a marker left behind
			continue
		}
		if m.State != bus.FileDone || len(missing(m.Sinks, mine)) > 0 {
			continue // the run reading it finishes it, or another flow definition has the sinks
		}
		for _, s := range m.Sinks {
			var d bus.Delivery
			if _, err := r.fb.Store.Get(ctx, bus.DeliveryKey(id, s), &d); err != nil {
				return
			}
			if queuedReplay(d) {
				if err := rp.delivery(ctx, m, d); err != nil {
					r.log.Warn("queueing a replayed delivery again", "id", id, "sink", s, "err", err)
				}
			}
		}
		if _, err := r.finisher.wait(ctx, id, m.Sinks); err != nil {
			return // stopping
		}
		r.settleReplay(id)
	}
}

// settleBeforeEnd runs when a run is about to end by itself (its source is
// exhausted and every file it took is final): it waits for replayed
// deliveries and applies the flow's retention one last time, so that what
// the run leaves on the bus is within bus.retention_size.
func (r *Run) settleBeforeEnd() {
	if r.stopping.Err() != nil {
		return // stopped: the next run carries on
	}
	r.endReplays()
	r.applyRetention(r.hard)
}
