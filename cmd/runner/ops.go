package main

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/mftflow/mftflow/ops"
	"github.com/mftflow/mftflow/pipeline"
)

// opsShutdownGrace bounds how long requests under way may finish when the
// runner ends.
const opsShutdownGrace = 5 * time.Second

// startOps serves the operations endpoints on addr (--http) for flows over
// c; problems gives /readyz the runs' own reasons (ops.Options.Problems).
// It returns the registry the engine puts its metrics in and a function
// that shuts the server down; with addr empty nothing is served, metrics is
// nil and stop does nothing.
func startOps(addr string, c *natsConn, flows []*pipeline.Flow, log *slog.Logger, problems func() []string) (metrics prometheus.Registerer, stop func(), err error) {
	if addr == "" {
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
	h, err := ops.NewHandler(ops.Options{Conn: c.nc, Flows: ready, Gatherer: reg, Logger: log, Problems: problems})
	if err != nil {
		return nil, nil, err
	}
	srv, err := ops.Listen(addr, h, log)
	if err != nil {
		return nil, nil, fmt.Errorf("--http %s: %v; choose another address or stop what listens there", addr, err)
	}
	log.Info("operations endpoints listening", "url", "http://"+srv.Addr(), "paths", "/healthz /readyz /metrics /status")
	return reg, func() {
		ctx, cancel := context.WithTimeout(context.Background(), opsShutdownGrace)
		defer cancel()
		if err := srv.Shutdown(ctx); err != nil {
			log.Warn("operations endpoints did not shut down cleanly", "err", err)
		}
	}, nil
}
