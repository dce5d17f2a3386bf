package engine

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/mftflow/mftflow/pipeline"
	"github.com/mftflow/mftflow/pipeline/bus"
)

// ackRemoves reports whether acking item as passed removes the file from
// its source.
func ackRemoves(item pipeline.Item) bool {
	rm, ok := item.(pipeline.AckRemover)
	return ok && rm.AckRemoves(pipeline.Passed)
}

// flushCommitted makes sink s's copy of file m durable before its commit is
// recorded, when the source removes the file once delivered: a commit on
// record, which a later run trusts, is then never one a power cut can take
// back.
func flushCommitted(ctx context.Context, s *sinkRun, m bus.Manifest) error {
	fl, ok := s.sink.(pipeline.Flusher)
	if !m.SourceRemoves || !ok {
		return nil
	}
	if err := fl.Flush(ctx); err != nil {
		return fmt.Errorf("making %s durable on sink %s: %w", m.Name, s.spec.Name, err)
	}
	return nil
}

// flushBeforeAck makes the sinks' copies of a file durable before an Ack
// that removes the file from its source (pipeline.AckRemover): it calls
// Flush on every sink of this run that implements pipeline.Flusher and
// committed the file (every such sink when the outcome does not say which,
// as when a file finished by an earlier run is acked again), all at once.
//
// It returns false when a flush failed or was cut short. The caller must
// then skip the Ack: acking Passed would remove a file whose only copies may
// not survive a power cut, and acking Failed would misreport a file that
// was delivered. Left unacked, the file stays at the source and is offered
// again after a restart; the next run finds it done and flushes again
// before acking it.
func (r *Run) flushBeforeAck(item pipeline.Item, out pipeline.Outcome, log logger) bool {
	rm, ok := item.(pipeline.AckRemover)
	if !ok || !rm.AckRemoves(out.Status) {
		return true
	}
	var flushers []*sinkRun
	for _, s := range r.sinks {
		if _, ok := s.sink.(pipeline.Flusher); !ok {
			continue
		}
		if len(out.Sinks) > 0 {
			if res, ok := out.Sinks[s.spec.Name]; !ok || !res.Committed {
				continue
			}
		} else if out.Status == pipeline.Failed || out.Status == pipeline.Skipped {
			continue // no sink holds the file
		}
		flushers = append(flushers, s)
	}
	if len(flushers) == 0 {
		return true
	}
	start := time.Now()
	errs := make([]error, len(flushers))
	var wg sync.WaitGroup
	for i, s := range flushers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = s.sink.(pipeline.Flusher).Flush(r.hard)
		}()
	}
	wg.Wait()
	durable := true
	for i, err := range errs {
		switch {
		case err == nil:
		case r.hard.Err() != nil:
			durable = false
			log.Warn("stopped while a sink flushed its copy; the source is acked on the next run",
				"sink", flushers[i].spec.Name, "outcome", out.Status.String())
		default:
			durable = false
			log.Error("sink could not make its copy durable; the source is not acked, so the file stays there and is offered again after a restart",
				"sink", flushers[i].spec.Name, "outcome", out.Status.String(), "err", err)
		}
	}
	if durable {
		r.log.Debug("sinks flushed before the source removes the file", "file", item.File().Name, "sinks", len(flushers), "took", time.Since(start))
	}
	return durable
}
