package engine

import (
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/mftflow/mftflow/pipeline"
	"github.com/mftflow/mftflow/pipeline/bus"
)

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
