package engine

import (
	"context"
	"time"

	"github.com/mftflow/mftflow/pipeline"
)

// emit stamps evs with the flow, this runner and the time and hands them to
// the flow's event sinks (Flow.Events), in order. A sink that takes several
// at once (the audit trail) gets them in one call.
func (r *Run) emit(evs ...pipeline.Event) {
	if len(r.flow.Events) == 0 || len(evs) == 0 {
		return
	}
	now := time.Now().UTC()
	for i := range evs {
		evs[i].Flow, evs[i].Runner = r.flow.Name, r.e.opts.RunID
		if evs[i].Time.IsZero() {
			evs[i].Time = now
		}
	}
	for _, s := range r.flow.Events {
		if b, ok := s.(interface{ EmitAll([]pipeline.Event) }); ok {
			b.EmitAll(evs)
			continue
		}
		for _, ev := range evs {
			s.Emit(ev)
		}
	}
}

// emitRead reports a file read onto the bus: renamed by the stages first
// when its name changed.
func (r *Run) emitRead(id, sourceName, name string, size int64, sum string) {
	read := pipeline.Event{Kind: pipeline.EventRead, FileID: id, Name: name, Size: size, SHA256: sum}
	if name == sourceName {
		r.emit(read)
		return
	}
	r.emit(pipeline.Event{Kind: pipeline.EventRenamed, FileID: id, Name: name, Detail: sourceName}, read)
}

// emitFor reports a step of the file whose delivery ctx carries (withFile).
func (s *sinkRun) emitFor(ctx context.Context, ev pipeline.Event) {
	if s.emit == nil {
		return
	}
	ev.FileID, ev.Name = fileOfContext(ctx)
	ev.Sink = s.spec.Name
	s.emit(ev)
}

// locationOf says where up put its file, if the sink says.
func locationOf(up pipeline.Upload) string {
	if l, ok := up.(pipeline.Locator); ok {
		return l.Location()
	}
	return ""
}

// fileOfContext returns the id and name of the file ctx carries.
func fileOfContext(ctx context.Context) (id, name string) {
	f, _ := ctx.Value(spaceFileKey{}).(spaceFile)
	return f.id, f.name
}
