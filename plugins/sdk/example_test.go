package sdk_test

import (
	"context"
	"io"
	"strings"

	"github.com/mftflow/mftflow/pipeline"
	"github.com/mftflow/mftflow/plugins/sdk"
)

// A whole plugin: a stage that upper-cases file names. Built into a binary
// in the runner's plugins directory, flow files use it as "upper".
func Example() {
	r := pipeline.NewRegistry()
	err := r.RegisterStage(pipeline.Spec{
		Name:    "upper",
		Summary: "Upper-cases file names.",
	}, func(ctx context.Context, c pipeline.Config) (pipeline.Stage, error) {
		return pipeline.StageFunc(func(ctx context.Context, f pipeline.File, r io.Reader) (pipeline.File, io.Reader, error) {
			f.Name = strings.ToUpper(f.Name)
			return f, r, nil
		}), nil
	})
	if err != nil {
		panic(err)
	}
	sdk.Serve(r, sdk.Version("1.0.0"))
}
