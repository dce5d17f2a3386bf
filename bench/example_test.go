package bench_test

import (
	"context"
	"log"
	"os"

	"github.com/nats-io/nats.go"

	"github.com/mftflow/mftflow/bench"
	"github.com/mftflow/mftflow/connectors/all"
	"github.com/mftflow/mftflow/pipeline/bus"
)

// A program that embeds the engine measures a generated workload at two
// parallelism settings on its own embedded server, in its own process.
func Example() {
	work, err := os.MkdirTemp("", "bench-")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(work)
	srv, err := bus.StartEmbedded(work + "/nats")
	if err != nil {
		log.Fatal(err)
	}
	defer srv.Shutdown()
	nc, err := nats.Connect(srv.URL())
	if err != nil {
		log.Fatal(err)
	}
	defer nc.Close()
	reg, err := all.Registry()
	if err != nil {
		log.Fatal(err)
	}
	cfg := bench.Config{
		Workload: &bench.Workload{Files: 10, Size: 1 << 20, Data: bench.DataRandom},
		Sweep:    bench.Sweep{Parallelisms: []int{1, 4}},
		Warmup:   1,
		Runs:     3,
		WorkDir:  work,
		NATS:     "embedded",
	}
	rep, err := bench.Run(context.Background(), cfg, reg, bench.InProcess{Env: bench.Env{NC: nc, Registry: reg}}, nil)
	if err != nil {
		log.Fatal(err)
	}
	rep.WriteTable(os.Stdout)
}
