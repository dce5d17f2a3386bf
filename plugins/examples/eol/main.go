// Command eol is an example stage plugin: it converts the line endings of
// text files to LF or CRLF, streaming, so files of any size pass through in
// constant memory.
//
//	go build -o plugins.d/eol ./plugins/examples/eol
//
//	stages:
//	  - eol:
//	      to: crlf
package main

import (
	"context"
	"fmt"
	"io"
	"os"

	"github.com/mftflow/mftflow/pipeline"
	"github.com/mftflow/mftflow/plugins/examples/eol/eol"
	"github.com/mftflow/mftflow/plugins/sdk"
)

// options are the eol stage's config fields.
type options struct {
	To string `config:"to"`
}

func main() {
	r := pipeline.NewRegistry()
	err := r.RegisterStage(pipeline.Spec{
		Name:    "eol",
		Summary: "Converts line endings (LF, CRLF or lone CR) to LF or CRLF.",
		Options: options{},
		Fields: []pipeline.Field{{
			Name: "to", Type: pipeline.TypeString, Enum: []string{"lf", "crlf"}, Default: "lf",
			Doc: "the line ending every line gets",
		}},
	}, func(_ context.Context, c pipeline.Config) (pipeline.Stage, error) {
		opts, err := pipeline.Decode[options](c)
		if err != nil {
			return nil, err
		}
		return pipeline.StageFunc(func(_ context.Context, f pipeline.File, r io.Reader) (pipeline.File, io.Reader, error) {
			f.Size, f.SHA256 = -1, "" // the content changes
			return f, eol.NewReader(r, opts.To == "crlf"), nil
		}), nil
	})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	sdk.Serve(r, sdk.Version("1.0.0"))
}
