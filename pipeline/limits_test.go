package pipeline_test

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/mftflow/mftflow/pipeline"
)

// A flow built in Go gets the bounds of a flow file from Check, which
// engine.Start calls.
func TestFlowCheckLimits(t *testing.T) {
	good := func() pipeline.Flow {
		return pipeline.Flow{Name: "f", Source: pipeline.Use("local", nil), Sinks: sinkSpecs("local:a", "s3:b")}
	}
	tests := []struct {
		desc   string
		change func(*pipeline.Flow)
		want   []string
	}{
		{"at the limits", func(f *pipeline.Flow) {
			f.Sinks[0].Files, f.Sinks[0].Parallelism = pipeline.MaxSinkFiles, pipeline.MaxParallelism
			f.Sinks[0].Retry = pipeline.Retry{Attempts: pipeline.MaxAttempts, Initial: pipeline.MaxBackoff, Max: pipeline.MaxBackoff}
			f.Bus = pipeline.BusSpec{ChunkSize: pipeline.MaxChunkSize, Files: pipeline.MaxBusFiles, Readers: pipeline.MaxReaders, Window: pipeline.MaxWindow}
		}, nil},
		{"sink files", func(f *pipeline.Flow) { f.Sinks[0].Files = 1_000_000_000 }, []string{
			`sinks[0].files: 1000000000 is above the limit of 256 files delivered at once per sink; lower it`,
		}},
		{"sink settings", func(f *pipeline.Flow) {
			f.Sinks[1].Pos = pipeline.Pos{File: "f.yaml", Line: 9, Column: 5}
			f.Sinks[1].Parallelism = 65
			f.Sinks[1].Retry = pipeline.Retry{Attempts: 1001, Initial: 25 * time.Hour, Max: 48 * time.Hour}
		}, []string{
			`f.yaml:9:5: sinks[1].parallelism: 65 is above the limit of 64 parts of one file written at once; lower it`,
			`f.yaml:9:5: sinks[1].retry.attempts: 1001 is above the limit of 1000 attempts per delivery; lower it`,
			`f.yaml:9:5: sinks[1].retry.initial: 25h0m0s is above the limit of 24h0m0s; lower it`,
			`f.yaml:9:5: sinks[1].retry.max: 48h0m0s is above the limit of 24h0m0s; lower it`,
		}},
		{"bus", func(f *pipeline.Flow) {
			f.Bus = pipeline.BusSpec{ChunkSize: 64<<20 + 1, Files: 257, Readers: 65, Window: 1<<40 + 1<<30}
		}, []string{
			`bus.chunk_size: 67108865 is above the limit of 64MiB per bus message; lower it`,
			`bus.files: 257 is above the limit of 256 files read from the source at once; lower it`,
			`bus.readers: 65 is above the limit of 64 range reads of one file at once; lower it`,
			`bus.window: 1025GiB is above the limit of 1TiB of reading ahead of the slowest sink; lower it`,
		}},
		{"sinks and stages", func(f *pipeline.Flow) {
			f.Pos = pipeline.Pos{File: "f.yaml", Line: 1, Column: 1}
			for i := len(f.Sinks); i <= pipeline.MaxSinks; i++ {
				f.Sinks = append(f.Sinks, pipeline.SinkSpec{Name: fmt.Sprintf("s%d", i), Component: pipeline.Use("local", nil)})
			}
			f.Stages = make([]pipeline.Component, pipeline.MaxStages+1)
		}, []string{
			`f.yaml:1:1: sinks: 65 is above the limit of 64 sinks per flow; split the fan-out into several flows`,
			`f.yaml:1:1: stages: 65 is above the limit of 64 stages per flow; combine stages or split the flow`,
		}},
	}
	for _, tt := range tests {
		f := good()
		tt.change(&f)
		var got []string
		if err := f.Check(); err != nil {
			got = strings.Split(err.Error(), "\n")
		}
		if diff := cmp.Diff(tt.want, got); diff != "" {
			t.Errorf("%s: errors (-want +got):\n%s", tt.desc, diff)
		}
	}
}

func TestLimitErrorIsFound(t *testing.T) {
	f := pipeline.Flow{Name: "f", Source: pipeline.Use("local", nil), Sinks: sinkSpecs("local:a")}
	f.Sinks[0].Files = 1000
	var le *pipeline.LimitError
	if err := f.Check(); !errors.As(err, &le) {
		t.Fatalf("Check: %v, want a *LimitError", err)
	}
	if le.Setting != "sinks[0].files" || le.Value != 1000 || le.Limit != pipeline.MaxSinkFiles {
		t.Errorf("LimitError %+v", le)
	}
}

func TestExactSize(t *testing.T) {
	for n, want := range map[int64]string{
		0: "0", 1000: "1000", 4096: "4KiB", 8<<20 - 1024: "8191KiB", 64 << 20: "64MiB", 5 << 30: "5GiB", 1 << 40: "1TiB", 1<<40 + 1: "1099511627777",
	} {
		if got := pipeline.ExactSize(n); got != want {
			t.Errorf("ExactSize(%d) = %q, want %q", n, got, want)
		}
	}
}
