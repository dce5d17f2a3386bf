package engine

import (
	"encoding/json"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/mftflow/mftflow/pipeline"
	"github.com/mftflow/mftflow/pipeline/bus"
)

// janitor removes the chunks of files every sink committed once the flow's
// retention has passed since they finished. Chunks of failed or partly
// failed files stay for replay.
func (r *Run) janitor() {
	every := min(r.flow.Bus.Retention, time.Minute)
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-t.C:
			r.purgeExpired()
		case <-r.stopping.Done():
			return
		}
	}
}

func (r *Run) purgeExpired() {
	keys, err := r.fb.Store.KV.ListKeysFiltered(r.stopping, "file.*")
	if err != nil {
		return
	}
	defer keys.Stop()
	for key := range keys.Keys() {
		e, err := r.fb.Store.KV.Get(r.stopping, key)
		if err != nil {
			continue
		}
		var m bus.Manifest
		if json.Unmarshal(e.Value(), &m) != nil || m.Purged || m.State != bus.FileDone ||
			m.Outcome != pipeline.Passed.String() || time.Since(m.Finished) < r.flow.Bus.Retention {
			continue
		}
		r.purgeFile(m.ID)
	}
}

// purgeFile removes every chunk of a finished file and records it.
func (r *Run) purgeFile(id string) {
	if err := r.fb.Chunks.Purge(r.hard, jetstream.WithPurgeSubject(r.fb.ChunkSubject(id))); err != nil {
		r.log.Warn("removing delivered chunks", "id", id, "err", err)
		return
	}
	bus.Update(r.hard, r.fb.Store, bus.ManifestKey(id), func(m *bus.Manifest, exists bool) error {
		if !exists {
			return bus.ErrUnchanged
		}
		m.Purged = true
		return nil
	})
}
