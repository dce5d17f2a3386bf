package flowfile

import (
	"context"
	"testing"

	"github.com/mftflow/mftflow/pipeline"
)

// testRegistry returns a registry with fake connectors whose specs cover
// every field type; their constructors are never called.
func testRegistry(t testing.TB) *pipeline.Registry {
	t.Helper()
	reg := pipeline.NewRegistry()
	source := func(context.Context, pipeline.Config) (pipeline.Source, error) { return nil, nil }
	stage := func(context.Context, pipeline.Config) (pipeline.Stage, error) { return nil, nil }
	sink := func(context.Context, pipeline.Config) (pipeline.Sink, error) { return nil, nil }
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(reg.RegisterSource(pipeline.Spec{Name: "local", Rereads: func(pipeline.Config) bool { return false }, Fields: []pipeline.Field{
		{Name: "path", Type: pipeline.TypeString, Required: true},
		{Name: "include", Type: pipeline.TypeStrings},
		{Name: "after", Type: pipeline.TypeString, Enum: []string{"leave", "delete", "move"}, Default: "leave"},
		{Name: "interval", Type: pipeline.TypeDuration},
	}}, source))
	must(reg.RegisterSource(pipeline.Spec{Name: "s3", Fields: []pipeline.Field{
		{Name: "bucket", Type: pipeline.TypeString, Required: true},
		{Name: "access_key", Type: pipeline.TypeString},
		{Name: "secret_key", Type: pipeline.TypeString, Secret: true, Required: true},
	}}, source))
	must(reg.RegisterStage(pipeline.Spec{Name: "match", KeepsContent: true, Fields: []pipeline.Field{
		{Name: "include", Type: pipeline.TypeStrings},
		{Name: "exclude", Type: pipeline.TypeStrings},
		{Name: "min_size", Type: pipeline.TypeSize},
	}}, stage))
	must(reg.RegisterStage(pipeline.Spec{Name: "compress", Fields: []pipeline.Field{
		{Name: "format", Type: pipeline.TypeString, Enum: []string{"gzip", "zstd"}, Default: "gzip"},
		{Name: "level", Type: pipeline.TypeInt},
	}}, stage))
	must(reg.RegisterSink(pipeline.Spec{Name: "local", Fields: []pipeline.Field{
		{Name: "path", Type: pipeline.TypeString, Required: true},
		{Name: "fsync", Type: pipeline.TypeBool},
		{Name: "part_size", Type: pipeline.TypeSize},
		{Name: "overwrite", Type: pipeline.TypeString, Enum: []string{"replace", "skip", "fail"}},
	}}, sink))
	must(reg.RegisterSink(pipeline.Spec{Name: "memory"}, sink))
	must(reg.RegisterSink(pipeline.Spec{Name: "s3", Fields: []pipeline.Field{
		{Name: "bucket", Type: pipeline.TypeString, Required: true},
		{Name: "secret_key", Type: pipeline.TypeString, Secret: true, Required: true},
		{Name: "sse", Type: pipeline.TypeString, Secret: true, Enum: []string{"aes256", "kms"}},
		{Name: "headers", Type: pipeline.TypeStringMap},
		{Name: "part_size", Type: pipeline.TypeSize},
		{Name: "timeout", Type: pipeline.TypeDuration},
	}}, sink))
	return reg
}
