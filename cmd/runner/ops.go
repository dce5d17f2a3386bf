package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"log/slog"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/mftflow/mftflow/internal/discard"
	"github.com/mftflow/mftflow/ops"
	"github.com/mftflow/mftflow/pipeline"
	"github.com/mftflow/mftflow/pipeline/engine"
)

// opsShutdownGrace bounds how long requests under way may finish when the
// runner ends.
const opsShutdownGrace = 5 * time.Second

// opsConfig is what the --http server serves beside the operations
// endpoints.
type opsConfig struct {
	addr    string
	console *consoleFlags
	// stats gives the counters of this process's runs, runID their run id,
	// for the console.
	stats func() []engine.Stats
	runID string
}

// startOps serves the operations endpoints (and the console, if asked) on
// o.addr (--http) for flows over c; problems gives /readyz the runs' own
// reasons (ops.Options.Problems). It returns the registry the engine puts
// its metrics in and a function that shuts the server down; with no
// address nothing is served, metrics is nil and stop does nothing.
func startOps(o opsConfig, c *natsConn, flows []*pipeline.Flow, log *slog.Logger, problems func() []string) (metrics prometheus.Registerer, stop func(), err error) {
	if o.addr == "" {
		return nil, func() {}, nil
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	var ready []ops.Flow
	for _, f := range flows {
		d := f.WithDefaults() // names the sinks as the engine will
		of := ops.Flow{Name: d.Name}
		for _, s := range d.Sinks {
			of.Sinks = append(of.Sinks, s.Name)
		}
		ready = append(ready, of)
	}
	js, err := jetstream.New(c.nc)
	if err != nil {
		return nil, nil, err
	}
	con, err := o.console.open(js, o.stats, o.runID, log)
	if err != nil {
		return nil, nil, err
	}
	closeConsole := func() {
		if con != nil {
			discard.Close(con)
		}
	}
	tlsCfg, err := o.console.tls()
	if err != nil {
		closeConsole()
		return nil, nil, err
	}
	oo := ops.Options{Conn: c.nc, Flows: ready, Gatherer: reg, Logger: log, Problems: problems}
	if con != nil {
		oo.Console = con
	}
	h, err := ops.NewHandler(oo)
	if err != nil {
		closeConsole()
		return nil, nil, err
	}
	srv, err := ops.ListenTLS(o.addr, h, tlsCfg, log)
	if err != nil {
		closeConsole()
		return nil, nil, fmt.Errorf("--http %s: %v; choose another address or stop what listens there", o.addr, err)
	}
	paths := "/healthz /readyz /metrics /status"
	if con != nil {
		paths += " " + ops.ConsolePath + "/"
		o.console.warnPlain(o.addr, log)
	}
	log.Info("operations endpoints listening", "url", serverURL(srv.Addr(), tlsCfg != nil), "paths", paths)
	return reg, func() {
		ctx, cancel := context.WithTimeout(context.Background(), opsShutdownGrace)
		defer cancel()
		closeConsole() // ends the event streams, so that shutting down does not wait for them
		if err := srv.Shutdown(ctx); err != nil {
			log.Warn("operations endpoints did not shut down cleanly", "err", err)
		}
	}, nil
}

// newRunID makes this process's engine run id, as the engine would.
func newRunID() string {
	b := make([]byte, 6)
	rand.Read(b)
	return hex.EncodeToString(b)
}
