package main

import (
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/mftflow/mftflow/pipeline"
	"github.com/mftflow/mftflow/pipeline/bus"
)

var busSyncUsage = "when the embedded NATS server flushes its store to stable storage: always (every write), an interval, or auto (always when a flow's source hands each file out once, else every " +
	bus.DefaultSyncInterval.String() + ", nats-server's default)"

// busSyncFlag is --bus-sync: when the embedded server flushes its JetStream
// store to stable storage. The zero value is "auto".
type busSyncFlag struct {
	set  bool // always or an interval was given
	sync bus.Sync
}

func (f *busSyncFlag) String() string {
	if !f.set {
		return "auto"
	}
	return f.sync.String()
}

func (f *busSyncFlag) Type() string { return "auto|always|DURATION" }

func (f *busSyncFlag) Set(s string) error {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "auto":
		*f = busSyncFlag{}
		return nil
	case "always":
		*f = busSyncFlag{set: true, sync: bus.Sync{Always: true}}
		return nil
	}
	d, err := time.ParseDuration(s)
	if err != nil || d <= 0 {
		return fmt.Errorf("want auto, always or a duration such as 10s or %s", bus.DefaultSyncInterval)
	}
	*f = busSyncFlag{set: true, sync: bus.Sync{Interval: d}}
	return nil
}

// embeddedSync resolves --bus-sync for an embedded server running flows:
// auto means always when a flow's source hands each file out once (its
// chunks on the bus are then the only copy until the sinks commit, so the
// bus must not lose them to a power cut), else nats-server's default
// interval (a power cut loses at most that much of the bus's state, and
// sources that still hold their files offer them again). why says which,
// for the log.
func embeddedSync(f busSyncFlag, reg *pipeline.Registry, flows []*pipeline.Flow) (s bus.Sync, why string) {
	if f.set {
		return f.sync, "--bus-sync"
	}
	for _, fl := range flows {
		if spec, ok := reg.Lookup(pipeline.KindSource, fl.Source.Type); ok && spec.HandsOutOnce() {
			return bus.Sync{Always: true}, fmt.Sprintf("auto: the source %s of flow %s hands each file out once", fl.Source.Type, fl.Name)
		}
	}
	return bus.Sync{}, "auto: every flow's source keeps its files until they are delivered"
}

// embeddedOptions are the options of the embedded server for flows (none
// for commands that run no flow), logged at debug.
func embeddedOptions(g *globalOptions, reg *pipeline.Registry, flows []*pipeline.Flow) []bus.EmbeddedOption {
	s, why := embeddedSync(g.busSync, reg, flows)
	if g.logger != nil {
		g.logger.Debug("embedded NATS server store sync", slog.String("sync", s.String()), slog.String("why", why))
	}
	return []bus.EmbeddedOption{bus.WithSync(s)}
}
