package engine

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/mftflow/mftflow/pipeline"
	"github.com/mftflow/mftflow/pipeline/bus"
)

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
