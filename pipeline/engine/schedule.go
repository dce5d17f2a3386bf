package engine

import (
	"context"
	"fmt"
	"maps"
	"time"

	"github.com/mftflow/mftflow/pipeline"
	"github.com/mftflow/mftflow/pipeline/bus"
)

// sourceBuilder returns how the run builds its source. A run that takes
// only the files there now (Once, or a schedule's cron ticks) builds it
// with watch: false, which every polling source declares.
func (r *Run) sourceBuilder(reg *pipeline.Registry, src pipeline.Component) (func(context.Context) (pipeline.Source, error), error) {
	cfg := src.Config
	if r.flow.Once || r.timetable != nil && r.timetable.Cron() {
		spec, ok := reg.Lookup(pipeline.KindSource, src.Type)
		if _, watches := spec.Field("watch"); ok && !watches {
			return nil, fmt.Errorf("cannot take only the files there now (run --once, or a schedule with cron): the source has no watch field to turn off")
		}
		cfg = maps.Clone(cfg)
		if cfg == nil {
			cfg = map[string]any{}
		}
		cfg["watch"] = false
	}
	return func(ctx context.Context) (pipeline.Source, error) { return reg.NewSource(ctx, src.Type, cfg) }, nil
}

// sessions polls the source on the run's timetable: at each cron tick a
// source of its own offers the files there then, which are delivered
// before the next tick; without cron the source polls as configured while
// a window is open. Once takes one session now and ends the run.
func (r *Run) sessions() {
	for first := true; ; first = false {
		var until time.Time
		if !r.flow.Once {
			var at time.Time
			at, until = r.timetable.Next(time.Now())
			if at.IsZero() {
				r.fail(fmt.Errorf("flow %s: %w", r.flow.Name, pipeline.ErrNeverOpens))
				return
			}
			r.notePoll(at, until)
			if !r.sleepUntil(at) {
				return
			}
		}
		perTick := r.flow.Once || r.timetable.Cron()
		if perTick && !first {
			if err := r.renewSource(); err != nil {
				r.fail(fmt.Errorf("flow %s: source: %w", r.flow.Name, err))
				return
			}
		}
		end := r.drain(until)
		if perTick {
			r.files.Wait() // the tick's files are settled before its source closes
		}
		if end || r.flow.Once {
			return
		}
	}
}

// renewSource closes the source of the last tick and builds the next one.
func (r *Run) renewSource() error {
	if err := r.source.Close(); err != nil {
		r.log.Warn("closing the source of the last poll", "err", err)
	}
	s, err := r.sessionSource(r.hard)
	if err != nil {
		return err
	}
	r.source = s
	return nil
}

// sleepUntil waits until at; false when the run stops first.
func (r *Run) sleepUntil(at time.Time) bool {
	t := time.NewTimer(time.Until(at))
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-r.stopping.Done():
		return false
	}
}

// notePoll records the next poll for runner status.
func (r *Run) notePoll(at, until time.Time) {
	r.log.Info("next poll", "at", at, "until", until)
	_, err := bus.Update(r.hard, r.fb.Store, bus.PollKey, func(p *bus.Poll, _ bool) error {
		*p = bus.Poll{Next: at.UTC(), Until: until.UTC(), Run: r.e.opts.RunID}
		return nil
	})
	if err != nil {
		r.log.Warn("recording the next poll", "err", err)
	}
}
