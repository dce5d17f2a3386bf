// Command embed runs an mftflow flow inside a Go program: files from a local
// directory go through the program's own Go stage (which upper-cases CSV
// headers) into another directory, on an embedded NATS server.
//
//	go run ./examples/embed -in examples/inbox -out /tmp/embed-out
//
// Ctrl-C stops it cleanly; run it again and it resumes where it stopped.
package main

import (
	"bufio"
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"path"
	"strings"
	"syscall"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/mftflow/mftflow/connectors/all"
	"github.com/mftflow/mftflow/pipeline"
	"github.com/mftflow/mftflow/pipeline/bus"
	"github.com/mftflow/mftflow/pipeline/engine"
)

func main() {
	in := flag.String("in", "examples/inbox", "directory to read")
	out := flag.String("out", "out-embed", "directory to write")
	data := flag.String("data", ".mftflow-embed", "state directory of the embedded NATS server")
	flag.Parse()
	if err := run(*in, *out, *data); err != nil {
		fmt.Fprintln(os.Stderr, "embed:", err)
		os.Exit(1)
	}
}

// upperHeader is this program's own stage: it upper-cases the first line of
// CSV files and passes everything else through. It streams: only the first
// line is held in memory.
func upperHeader(ctx context.Context, f pipeline.File, r io.Reader) (pipeline.File, io.Reader, error) {
	if path.Ext(f.Name) != ".csv" {
		return f, r, nil
	}
	br := bufio.NewReader(r)
	first, err := br.ReadString('\n')
	if err != nil && err != io.EOF {
		return f, nil, err
	}
	f.Size = -1 // unchanged in fact, but a stage need not know
	return f.WithAttr("header", "upper"), io.MultiReader(strings.NewReader(strings.ToUpper(first)), br), nil
}

func run(in, out, data string) error {
	log := slog.New(slog.NewTextHandler(os.Stderr, nil))
	srv, err := bus.StartEmbedded(data)
	if err != nil {
		return err
	}
	defer srv.Shutdown()
	nc, err := nats.Connect(srv.URL(), nats.InProcessServer(srv)) // no socket in between
	if err != nil {
		return err
	}
	defer nc.Close()

	reg, err := all.Registry()
	if err != nil {
		return err
	}
	eng, err := engine.New(nc, engine.Options{Registry: reg, Logger: log})
	if err != nil {
		return err
	}
	flow := pipeline.Flow{
		Name: "embed",
		Source: pipeline.Use("local", map[string]any{
			"path": in, "watch": false, "stable_for": "0s", "after": "leave",
		}),
		Stages: []pipeline.Component{pipeline.StageOf(pipeline.StageFunc(upperHeader))},
		Sinks: []pipeline.SinkSpec{{
			Name:      "out",
			Component: pipeline.Use("local", map[string]any{"path": out}),
		}},
	}
	ctx, cancel := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer cancel()
	run, err := eng.Start(ctx, flow)
	if err != nil {
		return err
	}
	go func() {
		<-ctx.Done() // Ctrl-C: stop taking files, checkpoint the rest
		stopCtx, done := context.WithTimeout(context.Background(), 30*time.Second)
		defer done()
		_ = run.Stop(stopCtx) // Wait returns the same error
	}()
	if err := run.Wait(); err != nil {
		return err
	}
	s := run.Stats()
	fmt.Printf("%d files passed, %d skipped, %d failed; %s read\n", s.FilesPassed, s.FilesSkipped, s.FilesFailed+s.FilesMixed, pipeline.FormatSize(s.BytesRead))
	return nil
}
