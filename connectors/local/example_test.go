package local_test

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/mftflow/mftflow/connectors/local"
	"github.com/mftflow/mftflow/pipeline"
)

// Reading every file of a directory once and writing it to another, doing by
// hand what the engine does with parts and acks.
func Example() {
	in, _ := os.MkdirTemp("", "outbox")
	out, _ := os.MkdirTemp("", "inbox")
	defer os.RemoveAll(in)
	defer os.RemoveAll(out)
	os.WriteFile(filepath.Join(in, "report.csv"), []byte("id,total\n1,42\n"), 0o666)

	ctx := context.Background()
	c := local.DefaultSourceConfig(in)
	c.Watch = false // finish once the files present are offered
	c.StableFor = 0 // the file is complete already
	c.After = local.AfterDelete
	src, err := local.NewSource(ctx, c)
	if err != nil {
		panic(err)
	}
	defer src.Close()
	sink, err := local.NewSink(local.SinkConfig{Path: out, Name: "{stem}-copy{ext}"})
	if err != nil {
		panic(err)
	}
	defer sink.Close()

	for {
		item, err := src.Next(ctx)
		if err == io.EOF {
			break
		}
		if err != nil {
			panic(err)
		}
		f := item.File()
		r, _ := item.Open(ctx)
		up, err := sink.Open(ctx, f, nil)
		if err != nil {
			panic(err)
		}
		// One part holds this small file; the engine writes bigger ones in parallel parts.
		if err := up.WritePart(ctx, pipeline.Part{Size: f.Size, Last: true}, r); err != nil {
			panic(err)
		}
		r.Close()
		if err := up.Commit(ctx, f); err != nil {
			panic(err)
		}
		if err := item.Ack(ctx, pipeline.Outcome{Status: pipeline.Passed}); err != nil {
			panic(err)
		}
	}
	copied, _ := os.ReadFile(filepath.Join(out, "report-copy.csv"))
	_, err = os.Stat(filepath.Join(in, "report.csv"))
	fmt.Printf("%q, source deleted: %v\n", copied, os.IsNotExist(err))
	// Output: "id,total\n1,42\n", source deleted: true
}
