package engine

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"sync"
	"time"

	"github.com/mftflow/mftflow/pipeline"
	"github.com/mftflow/mftflow/pipeline/bus"
)

// choosePayload decides how the run's files travel (bus.payload), from what
// its source and stages can do and whether other runners may share the bus.
func (r *Run) choosePayload() error {
	can := pipeline.Rereads{SharedBus: !r.e.opts.SoleRunner}
	if rr, ok := r.source.(pipeline.Rereader); ok {
		can.HereOnly = !rr.RereadsAnywhere()
	} else {
		can.Source = r.flow.Source.Type
		can.Why = "cannot read a file again by its key (it hands files out once, or has no range reads)"
		if reg := r.e.opts.Registry; reg != nil && r.flow.Source.Type != "" {
			if spec, ok := reg.Lookup(pipeline.KindSource, r.flow.Source.Type); ok && spec.HandsOutOnce() {
				can.Why = "hands each file out once: a file taken from it cannot be read again"
			}
		}
	}
	for i, st := range r.stages {
		if ck, ok := st.(pipeline.ContentKeeper); !ok || !ck.KeepsContent() {
			can.Stage = fmt.Sprintf("%d (%s)", i+1, r.flow.Stages[i].Type)
			break
		}
	}
	payload, err := r.flow.Bus.PayloadFor(can)
	if err != nil {
		return fmt.Errorf("flow %s: %w", r.flow.Name, err)
	}
	r.byReference = payload == pipeline.PayloadReference
	if r.byReference {
		r.log.Info("files travel by reference: the bus carries where their bytes are", "on_change", r.onChange())
	}
	return nil
}

// onChange is the flow's bus.on_change, defaulted.
func (r *Run) onChange() string {
	if r.flow.Bus.OnChange == "" {
		return pipeline.ChangeFail
	}
	return r.flow.Bus.OnChange
}

// payloadName is what status shows for a file read with this run's mode.
func (r *Run) payloadName() string {
	if r.byReference {
		return pipeline.PayloadReference
	}
	return ""
}

// chunkOf returns what goes on the bus for chunk index of a file: its bytes,
// or by reference where they are.
func (r *Run) chunkOf(index int, data []byte, last bool) bus.Chunk {
	if r.byReference {
		return bus.RefTo(index, data, last)
	}
	return bus.Chunk{Index: index, Data: data, Last: last}
}

// sourceReads reads the bytes of files delivered by reference from the
// source, opened again once per delivery attempt.
type sourceReads struct {
	r  *Run
	m  *bus.Manifest
	mu sync.Mutex
	ro pipeline.RangeOpener
}

// opener opens the file again at its source, once.
func (sr *sourceReads) opener(ctx context.Context) (pipeline.RangeOpener, error) {
	sr.mu.Lock()
	defer sr.mu.Unlock()
	if sr.ro != nil {
		return sr.ro, nil
	}
	rr, ok := sr.r.source.(pipeline.Rereader)
	if !ok {
		return nil, pipeline.Permanent(fmt.Errorf("%s travelled by reference, but this runner's source cannot read a file again: run the flow with a source that can", sr.m.Name))
	}
	ro, err := rr.Reopen(ctx, sr.m.Key)
	if err != nil {
		return nil, fmt.Errorf("opening %s again at its source: %w", sr.m.Name, err)
	}
	sr.ro = ro
	return ro, nil
}

// read returns the bytes of the references refs, which are consecutive
// chunks of the file, checked against the CRC-32C each was read with.
func (sr *sourceReads) read(ctx context.Context, refs []bus.Chunk) ([]byte, error) {
	ro, err := sr.opener(ctx)
	if err != nil {
		return nil, err
	}
	off, n := int64(refs[0].Index)*sr.m.ChunkSize, 0
	for _, c := range refs {
		n += c.Len
	}
	rc, err := ro.OpenRange(ctx, off, int64(n))
	if err != nil {
		return nil, fmt.Errorf("reading %s again at its source: %w", sr.m.Name, err)
	}
	defer func() { _ = rc.Close() }() // closing what was only read
	buf := sr.r.parts.get(int64(n))
	if _, err := io.ReadFull(rc, buf); err != nil {
		sr.r.parts.put(buf)
		if errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF) {
			err = fmt.Errorf("%w: it ends before byte %d", pipeline.ErrChanged, off+int64(n))
		}
		return nil, fmt.Errorf("reading %s again at its source: %w", sr.m.Name, err)
	}
	at := 0
	for _, c := range refs {
		if err := c.Verify(buf[at : at+c.Len]); err != nil {
			sr.r.parts.put(buf)
			return nil, fmt.Errorf("reading %s again at its source: %w", sr.m.Name, err)
		}
		at += c.Len
	}
	return buf, nil
}

// partData returns a part's bytes: the chunks' own, or for references the
// bytes read from the source, with a function that gives their buffer back
// once written.
func (sr *sourceReads) partData(ctx context.Context, chunks []bus.Chunk) (net.Buffers, func(), error) {
	refs := 0
	for _, c := range chunks {
		if c.Ref {
			refs++
		}
	}
	switch refs {
	case 0:
		data := make(net.Buffers, 0, len(chunks))
		for _, c := range chunks {
			data = append(data, c.Data)
		}
		return data, func() {}, nil
	case len(chunks):
		buf, err := sr.read(ctx, chunks)
		if err != nil {
			return nil, nil, err
		}
		return net.Buffers{buf}, func() { sr.r.parts.put(buf) }, nil
	}
	// A read resumed under another bus.payload: read each kind alone.
	return sr.mixed(ctx, chunks)
}

// mixed reads a part whose chunks are partly references (a read resumed
// after bus.payload changed), one chunk at a time.
func (sr *sourceReads) mixed(ctx context.Context, chunks []bus.Chunk) (net.Buffers, func(), error) {
	var (
		data net.Buffers
		bufs [][]byte
	)
	done := func() {
		for _, b := range bufs {
			sr.r.parts.put(b)
		}
	}
	for _, c := range chunks {
		if !c.Ref {
			data = append(data, c.Data)
			continue
		}
		b, err := sr.read(ctx, []bus.Chunk{c})
		if err != nil {
			done()
			return nil, nil, err
		}
		bufs = append(bufs, b)
		data = append(data, b)
	}
	return data, done, nil
}

// noteChanged records on file id's manifest that its source changed during
// the transfer, for the runner that holds the file to read it again
// (bus.on_change: reread) or to say so in its outcome.
func (r *Run) noteChanged(id string, cause error) {
	noted := false
	_, err := bus.Update(r.hard, r.fb.Store, bus.ManifestKey(id), func(m *bus.Manifest, exists bool) error {
		if !exists || m.Changed != "" {
			return bus.ErrUnchanged
		}
		m.Changed = pipeline.RedactURLs(cause.Error())
		m.Updated = time.Now().UTC()
		noted = true
		return nil
	})
	if err != nil {
		r.log.Warn("recording that a file changed at its source", "id", id, "err", err)
	}
	if noted {
		r.metrics.changed.Inc()
	}
}

// countRead counts a file read completely onto the bus, by its payload.
func (r *Run) countRead(m bus.Manifest) {
	r.metrics.readFiles.Inc()
	if m.Payload == pipeline.PayloadReference {
		r.metrics.referenceFiles.Inc()
	}
}

// maxRereads bounds how often one file is read again because it changed
// during its transfer: a file written without pause fails after that.
const maxRereads = 3

// changedDuring reports whether file id changed at its source during the
// transfer just finished, with what was seen.
func (r *Run) changedDuring(id string) (string, bool) {
	var m bus.Manifest
	if _, err := r.fb.Store.Get(r.hard, bus.ManifestKey(id), &m); err != nil {
		return "", false
	}
	return m.Changed, m.Changed != ""
}

// reread ends the version of a file that changed during its transfer and
// returns the file as it is now at the source, to be handled as a new
// version: under a new key, the old version is finished as skipped; under
// the same key (the bytes changed, not the size or time), the file's
// records are reset, committed deliveries too. ok is false when it cannot:
// the caller finishes the file as it is.
func (r *Run) reread(item pipeline.Item, id, why string, rereads int, log logger) (next pipeline.Item, ok bool) {
	rr, can := r.source.(pipeline.Rereader)
	if !can || rereads >= maxRereads || r.stopping.Err() != nil {
		return nil, false
	}
	next, err := rr.Reoffer(r.hard, item.File().Key)
	if err != nil {
		log.Warn("the file changed at its source during the transfer and cannot be read again", "err", err)
		return nil, false
	}
	log.Warn("the file changed at its source during the transfer: reading it again as a new version", "changed", why)
	if next.File().Key == item.File().Key {
		var m bus.Manifest
		if _, err := r.fb.Store.Get(r.hard, bus.ManifestKey(id), &m); err != nil {
			log.Error("reading manifest", "err", err)
			return nil, false
		}
		if err := r.reset(id, m, true); err != nil {
			log.Error("resetting a file to read it again", "err", err)
			return nil, false
		}
		return next, true
	}
	out := pipeline.Outcome{Status: pipeline.Skipped, RunID: r.e.opts.RunID,
		Message: fmt.Sprintf("changed at its source during the transfer (%s); read again as a new version", why)}
	r.finishFile(item, id, out, nil, log)
	return next, true
}

// keepersOnly runs the stages of a flow whose files travel by reference,
// which change only a file's metadata (pipeline.ContentKeeper), with a
// reader that yields nothing: the bytes are read from the source as they are.
func (r *Run) keepersOnly(ctx context.Context, f pipeline.File) (pipeline.File, error) {
	for i, st := range r.stages {
		var err error
		if f, _, err = st.Process(ctx, f, strings.NewReader("")); err != nil {
			if errors.Is(err, pipeline.ErrSkip) {
				return f, err
			}
			return f, fmt.Errorf("stage %d (%s): %w", i+1, r.flow.Stages[i].Type, err)
		}
	}
	return f, nil
}

// finishOrReread finishes a file with outcome out, unless it did not pass
// because a sink lost what earlier attempts wrote (the file is read again),
// or because it changed at its source during the transfer and the flow
// reads such files again (bus.on_change: reread): then its new version is
// handled in its place.
func (r *Run) finishOrReread(item pipeline.Item, id string, out pipeline.Outcome, known *bus.Versioned[bus.Manifest], rereads int, log logger) {
	if _, lost := r.lost.LoadAndDelete(id); lost && out.Status != pipeline.Passed && r.readAgain(id, rereads, log) {
		r.handleAgain(item, rereads+1)
		return
	}
	if out.Status != pipeline.Passed && r.onChange() == pipeline.ChangeReread {
		if why, ok := r.changedDuring(id); ok {
			if next, ok := r.reread(item, id, why, rereads, log); ok {
				r.handleAgain(next, rereads+1)
				return
			}
		}
	}
	r.finishFile(item, id, out, known, log)
}

// readAgain readies a file a sink lost the upload of (pipeline.Lost) to be
// read again from its source, as the next run would: the deliveries that
// did not commit are reset, so they start afresh. It says whether it did.
func (r *Run) readAgain(id string, rereads int, log logger) bool {
	if !r.mayReadAgain(rereads) {
		return false
	}
	var m bus.Manifest
	if _, err := r.fb.Store.Get(r.hard, bus.ManifestKey(id), &m); err != nil {
		log.Error("reading manifest", "err", err)
		return false
	}
	if err := r.resetFile(id, m); err != nil {
		log.Error("resetting a file to read it again", "err", err)
		return false
	}
	log.Warn("a sink lost what earlier attempts wrote: reading the file again from its source")
	return true
}

// mayReadAgain says whether a file read rereads times already may be read
// again in this run.
func (r *Run) mayReadAgain(rereads int) bool {
	return rereads < maxRereads && r.stopping.Err() == nil
}

// handleAgain handles a new version of a file in the goroutine that handled
// the one before, once an ingest slot is free.
func (r *Run) handleAgain(item pipeline.Item, rereads int) {
	if r.ingestSlots.Acquire(r.stopping, 1) != nil {
		return // not acked: the source offers it to the next run
	}
	r.files.Add(1)
	r.handleVersion(item, rereads)
}
