package ops_test

import (
	"log"
	"net/http"

	"github.com/nats-io/nats.go"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/mftflow/mftflow/ops"
	"github.com/mftflow/mftflow/pipeline/engine"
)

// An application embedding the engine gives it a registry and mounts the
// operations endpoints on its own server.
func ExampleNewHandler() {
	nc, err := nats.Connect(nats.DefaultURL)
	if err != nil {
		log.Fatal(err)
	}
	reg := prometheus.NewRegistry()
	eng, err := engine.New(nc, engine.Options{Metrics: reg})
	if err != nil {
		log.Fatal(err)
	}
	_ = eng // eng.Start(ctx, flow) for each flow

	h, err := ops.NewHandler(ops.Options{
		Conn:     nc,
		Flows:    []ops.Flow{{Name: "orders", Sinks: []string{"archive"}}},
		Gatherer: reg,
	})
	if err != nil {
		log.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.Handle("/ops/", http.StripPrefix("/ops", h))
	log.Fatal(http.ListenAndServe("127.0.0.1:9090", mux))
}
