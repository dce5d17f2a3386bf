// Command localfs serves the built-in local source and sink as a plugin,
// named "localfs". It is the yardstick of the plugin layer: the same
// connector built in and behind the process boundary, side by side in
// benchmarks and in the plugin crash test.
//
//	go build -o plugins.d/localfs ./plugins/examples/localfs
package main

import (
	"context"
	"fmt"
	"os"

	"github.com/mftflow/mftflow/connectors/local"
	"github.com/mftflow/mftflow/pipeline"
	"github.com/mftflow/mftflow/plugins/sdk"
)

func main() {
	if err := serve(); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}

func serve() error {
	builtin := pipeline.NewRegistry()
	if err := local.Register(builtin); err != nil {
		return err
	}
	r := pipeline.NewRegistry()
	src, _ := builtin.Lookup(pipeline.KindSource, "local")
	src.Name, src.Origin = "localfs", ""
	err := r.RegisterSource(src, func(ctx context.Context, c pipeline.Config) (pipeline.Source, error) {
		return builtin.NewSource(ctx, "local", c.Values())
	})
	if err != nil {
		return err
	}
	sink, _ := builtin.Lookup(pipeline.KindSink, "local")
	sink.Name, sink.Origin = "localfs", ""
	err = r.RegisterSink(sink, func(ctx context.Context, c pipeline.Config) (pipeline.Sink, error) {
		return builtin.NewSink(ctx, "local", c.Values())
	})
	if err != nil {
		return err
	}
	sdk.Serve(r, sdk.Version("1.0.0"))
	return nil
}
