package engine

import (
	"context"
	"errors"
	"sort"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/mftflow/mftflow/pipeline"
	"github.com/mftflow/mftflow/pipeline/bus"
)

// retention is the state of a run whose flow keeps chunks after delivery
// (bus.retention or bus.retention_size).
type retention struct {
	kick chan struct{} // a file finished: check the size bound soon
	mu   sync.Mutex    // one pass at a time
}

// startJanitor starts removing chunks as the flow's retention says.
func (r *Run) startJanitor() {
	r.retention = &retention{kick: make(chan struct{}, 1)}
	go r.janitor()
}

// kickJanitor asks for a pass soon; with a size bound, every finished file
// may have pushed the kept chunks over it.
func (r *Run) kickJanitor() {
	if r.retention == nil || r.flow.Bus.RetentionSize <= 0 {
		return
	}
	select {
	case r.retention.kick <- struct{}{}:
	default:
	}
}

// janitor applies the retention every minute (or every bus.retention, if
// shorter) and whenever a file finishes under a size bound, until the run
// ends.
func (r *Run) janitor() {
	every := time.Minute
	if d := r.flow.Bus.Retention; d > 0 {
		every = min(d, every)
	}
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-t.C:
		case <-r.retention.kick:
		case <-r.stopping.Done():
			return
		case <-r.hard.Done():
			return
		}
		r.applyRetention(r.hard)
		// A pass reads every manifest: at most one a second, however fast
		// files finish.
		select {
		case <-time.After(time.Second):
		case <-r.stopping.Done():
			return
		case <-r.hard.Done():
			return
		}
	}
}

// applyRetention removes the chunks of finished files that the flow no
// longer keeps: those of files every sink committed once bus.retention has
// passed since they finished, then, while the chunks of finished files
// exceed bus.retention_size, those of the files that finished first (files
// every sink committed before files with a failed delivery). Files with a
// replay under way keep theirs. Several runners of a flow may do this at
// once: removing chunks twice is harmless.
func (r *Run) applyRetention(ctx context.Context) {
	if r.retention == nil {
		return
	}
	r.retention.mu.Lock()
	defer r.retention.mu.Unlock()
	keys, err := r.fb.Store.KV.ListKeysFiltered(ctx, "file.*")
	if errors.Is(err, jetstream.ErrNoKeysFound) {
		return
	}
	if err != nil {
		r.log.Warn("applying bus retention: listing files", "err", err)
		return
	}
	defer func() { _ = keys.Stop() }() // a listing cut short only ends early
	candidates, total := r.retained(ctx, keys.Keys())
	limit := r.flow.Bus.RetentionSize
	if limit <= 0 || total <= limit {
		return
	}
	sortForPurge(candidates)
	for _, c := range candidates {
		if total <= limit {
			break
		}
		if r.purgeFile(c.id) {
			total -= c.size
		}
	}
}

// held is a finished file whose chunks the bus retains.
type held struct {
	id        string
	size      int64
	finished  time.Time
	committed bool
}

// retained reads the manifests under keys, purges the chunks of files
// older than the retention time, and returns the files whose chunks the
// bus still holds and may purge (not under replay), with the bytes of all
// it holds.
func (r *Run) retained(ctx context.Context, keys <-chan string) (candidates []held, total int64) {
	ttl := r.flow.Bus.Retention
	for key := range keys {
		var m bus.Manifest
		if _, err := r.fb.Store.Get(ctx, key, &m); err != nil {
			continue
		}
		// Files not read completely (Chunks 0) are not counted: rejected
		// files have no chunks, and a failed read is read afresh.
		if m.ID == "" || m.Purged || m.State != bus.FileDone || m.Chunks == 0 {
			continue
		}
		committed := m.Outcome == pipeline.Passed.String() || m.Outcome == pipeline.Skipped.String()
		if ttl > 0 && committed && !m.Replaying && time.Since(m.Finished) >= ttl {
			r.purgeFile(m.ID)
			continue
		}
		total += max(m.Size, 0)
		if !m.Replaying {
			candidates = append(candidates, held{m.ID, max(m.Size, 0), m.Finished, committed})
		}
	}
	return candidates, total
}

// sortForPurge orders files to purge first those every sink committed,
// then the oldest; ties go by id.
func sortForPurge(candidates []held) {
	sort.Slice(candidates, func(i, j int) bool {
		a, b := candidates[i], candidates[j]
		if a.committed != b.committed {
			return a.committed
		}
		if !a.finished.Equal(b.finished) {
			return a.finished.Before(b.finished)
		}
		return a.id < b.id
	})
}

// purgeFile removes every chunk of a finished file and records it. The
// manifest is marked first, so a replay that marked the file before (or
// sees the mark) never counts on chunks about to go; it reports whether the
// chunks were removed.
func (r *Run) purgeFile(id string) bool {
	marked, inline := false, false
	_, err := bus.Update(r.hard, r.fb.Store, bus.ManifestKey(id), func(m *bus.Manifest, exists bool) error {
		marked = false
		if !exists || m.Purged || m.Replaying {
			return bus.ErrUnchanged
		}
		m.Purged, m.Content, marked, inline = true, nil, true, m.Inline
		return nil
	})
	if err != nil || !marked {
		return false
	}
	if inline {
		return true // its bytes went with the record
	}
	return r.removeChunks(id)
}

// removeChunks removes file id's chunks, marked purged in its manifest
// before; when that fails, the mark is taken back so a later pass tries
// again.
func (r *Run) removeChunks(id string) bool {
	if err := r.fb.Chunks.Purge(r.hard, jetstream.WithPurgeSubject(r.fb.ChunkSubject(id))); err != nil {
		r.log.Warn("removing delivered chunks", "id", id, "err", err)
		// Not removed: say so, so that a later pass tries again.
		_, err := bus.Update(r.hard, r.fb.Store, bus.ManifestKey(id), func(m *bus.Manifest, exists bool) error {
			if !exists || !m.Purged {
				return bus.ErrUnchanged
			}
			m.Purged = false
			return nil
		})
		if err != nil {
			r.log.Warn("taking back the purge mark of chunks not removed", "id", id, "err", err)
		}
		return false
	}
	return true
}
