// Command busceiling measures the raw JetStream ceiling (bench.Ceiling) on
// an embedded server started as the runner starts its own
// (bus.StartEmbedded), in a process of its own: the benchmarks run it as
// they run the runner, so its wall time and peak RSS compare with the
// runner's, and the server's memory stays out of the benchmark process
// (whose peak RSS Linux would count in every child it starts later).
//
//	busceiling -data DIR -chunk-size 1048576 -bytes 1073741824
//
// It prints the bytes moved, the seconds from the first publish to the
// last message read back, and MB/s.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"

	"github.com/nats-io/nats.go"

	"github.com/mftflow/mftflow/bench"
	"github.com/mftflow/mftflow/pipeline"
	"github.com/mftflow/mftflow/pipeline/bus"
)

func main() {
	if err := run(os.Args[1:], os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "busceiling:", err)
		os.Exit(1)
	}
}

func run(args []string, out io.Writer) error {
	fs := flag.NewFlagSet("busceiling", flag.ContinueOnError)
	data := fs.String("data", "", "directory for the embedded server's store (required)")
	chunk := fs.Int64("chunk-size", pipeline.DefaultChunkSize, "bytes per message")
	total := fs.Int64("bytes", 0, "bytes to move (required)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *data == "" || *total <= 0 {
		return errors.New("-data and -bytes are required: busceiling -data DIR -bytes N [-chunk-size N]")
	}
	srv, err := bus.StartEmbedded(*data)
	if err != nil {
		return err
	}
	defer srv.Shutdown()
	nc, err := nats.Connect(srv.URL())
	if err != nil {
		return fmt.Errorf("connecting to the embedded NATS server: %w", err)
	}
	defer nc.Close()
	m, err := bench.Ceiling(context.Background(), nc, "ceiling", *chunk, *total, nil)
	if err != nil {
		return err
	}
	_, err = fmt.Fprintf(out, "%d bytes in %.3fs: %.1f MB/s\n", m.Bytes, m.Seconds, m.MBps())
	return err
}
