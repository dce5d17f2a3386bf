package pipeline_test

import (
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/mftflow/mftflow/pipeline"
)

func sinkSpecs(names ...string) []pipeline.SinkSpec {
	out := make([]pipeline.SinkSpec, len(names))
	for i, n := range names {
		typ, name, _ := strings.Cut(n, ":") // "type:name", or "type" for an unnamed sink
		out[i] = pipeline.SinkSpec{Name: name, Component: pipeline.Use(typ, nil)}
	}
	return out
}

func sinkNames(f pipeline.Flow) []string {
	var names []string
	for _, s := range f.Sinks {
		names = append(names, s.Name)
	}
	return names
}

func TestFlowWithDefaultsSinkNames(t *testing.T) {
	tests := []struct {
		sinks []pipeline.SinkSpec
		want  []string
	}{
		{sinkSpecs("local"), []string{"local"}},
		{sinkSpecs("local", "local"), []string{"local", "local-2"}},
		{sinkSpecs("local", "s3", "local", "local"), []string{"local", "s3", "local-2", "local-3"}},
		{sinkSpecs("local", "local:local", "local"), []string{"local-2", "local", "local-3"}},
		{sinkSpecs("local:local-2", "local", "local"), []string{"local-2", "local", "local-3"}},
		{sinkSpecs("s3:backup", "s3"), []string{"backup", "s3"}},
	}
	for _, tt := range tests {
		f := pipeline.Flow{Name: "f", Source: pipeline.Use("local", nil), Sinks: tt.sinks}
		got := f.WithDefaults()
		if diff := cmp.Diff(tt.want, sinkNames(got)); diff != "" {
			t.Errorf("sink names (-want +got):\n%s", diff)
		}
		if err := got.Check(); err != nil {
			t.Errorf("Check after WithDefaults: %v", err)
		}
	}
}

func TestFlowWithDefaults(t *testing.T) {
	f := pipeline.Flow{Name: "f", Source: pipeline.Use("local", nil), Sinks: sinkSpecs("local")}
	got := f.WithDefaults()
	want := pipeline.Flow{
		Name:   "f",
		Source: pipeline.Use("local", nil),
		Sinks: []pipeline.SinkSpec{{
			Name: "local", Component: pipeline.Use("local", nil),
			Retry:       pipeline.Retry{Attempts: 5, Initial: time.Second, Max: time.Minute},
			Parallelism: 4, Files: 4,
		}},
		Bus: pipeline.BusSpec{ChunkSize: 1 << 20, Compression: "s2", Files: 4, Readers: 4, Window: 32 << 20},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("WithDefaults (-want +got):\n%s", diff)
	}
	if f.Sinks[0].Name != "" || f.Bus.ChunkSize != 0 {
		t.Errorf("WithDefaults changed the original flow: %+v", f)
	}

	// Settings that are given stay.
	set := pipeline.Flow{Name: "f", Sinks: []pipeline.SinkSpec{{
		Name: "x", Component: pipeline.Use("s3", nil), Parallelism: 16, Files: 1,
		Retry: pipeline.Retry{Attempts: 2, Initial: time.Millisecond, Max: time.Second},
	}}, Bus: pipeline.BusSpec{ChunkSize: 64 << 10, Compression: "none", Files: 1, Readers: 8, Window: 1 << 20, Retention: time.Hour}}
	if diff := cmp.Diff(set, set.WithDefaults()); diff != "" {
		t.Errorf("WithDefaults changed settings that were given (-want +got):\n%s", diff)
	}
}

func TestFlowCheck(t *testing.T) {
	good := func() pipeline.Flow {
		return pipeline.Flow{Name: "orders_in-2", Source: pipeline.Use("local", nil), Sinks: sinkSpecs("local:a", "s3:b")}
	}
	tests := []struct {
		desc   string
		change func(*pipeline.Flow)
		want   []string
	}{
		{"good", func(*pipeline.Flow) {}, nil},
		{"source from Go", func(f *pipeline.Flow) { f.Source = pipeline.Component{Instance: 1} }, nil},
		{"bad name", func(f *pipeline.Flow) { f.Name = "my flow" }, []string{`flow name "my flow": use 1 to 64 letters, digits, '-' or '_'`}},
		{"empty name", func(f *pipeline.Flow) { f.Name = "" }, []string{`flow name "": use 1 to 64 letters, digits, '-' or '_'`}},
		{"long name", func(f *pipeline.Flow) { f.Name = strings.Repeat("a", 65) }, []string{`flow name "` + strings.Repeat("a", 65) + `": use 1 to 64 letters, digits, '-' or '_'`}},
		{"no source", func(f *pipeline.Flow) { f.Source = pipeline.Component{} }, []string{`flow "orders_in-2" has no source`}},
		{"no sinks", func(f *pipeline.Flow) { f.Sinks = nil }, []string{`flow "orders_in-2" has no sinks: add at least one under sinks`}},
		{"bad sink name", func(f *pipeline.Flow) { f.Sinks[0].Name = "a.b" }, []string{`sink name "a.b": use 1 to 64 letters, digits, '-' or '_'`}},
		{"sink twice", func(f *pipeline.Flow) { f.Sinks[1].Name = "a" }, []string{`sink name "a" is used twice: give each sink its own name`}},
		{"negative sink settings", func(f *pipeline.Flow) { f.Sinks[1].Parallelism = -1 }, []string{`sink "b": parallelism, files and retry settings must not be negative`}},
		{"small chunks", func(f *pipeline.Flow) { f.Bus.ChunkSize = 1000 }, []string{`bus chunk_size 1000: must be at least 4KiB`}},
		{"negative chunks", func(f *pipeline.Flow) { f.Bus.ChunkSize = -1 }, []string{`bus chunk_size -1: must be at least 4KiB`}},
		{"4KiB chunks", func(f *pipeline.Flow) { f.Bus.ChunkSize = 4096 }, nil},
		{"compression", func(f *pipeline.Flow) { f.Bus.Compression = "lz4" }, []string{`bus compression "lz4": want one of s2, zstd, none`}},
		{"negative bus", func(f *pipeline.Flow) { f.Bus.Retention = -time.Second }, []string{`bus files, readers, window, retention and retention_size must not be negative`}},
		{"negative retention size", func(f *pipeline.Flow) { f.Bus.RetentionSize = -1 }, []string{`bus files, readers, window, retention and retention_size must not be negative`}},
		{"rates", func(f *pipeline.Flow) {
			f.Rate = pipeline.Rate{Slots: []pipeline.RateSlot{{Start: 9 * time.Hour}, {Start: 8 * time.Hour, Limit: 1 << 20}}}
			f.Sinks[0].Rate = pipeline.Rate{Slots: []pipeline.RateSlot{{Limit: 100}}}
			f.Sinks[1].Rate = pipeline.Rate{Slots: []pipeline.RateSlot{{Start: 25 * time.Hour, Limit: 1 << 20}}}
		}, []string{
			`sink "a": rate: slot 1: 100 bytes/s: want 0 (no limit) or at least 1KiB/s`,
			`sink "b": rate: slot 1 starts at 25h0m0s: want a whole minute within the day`,
			`flow "orders_in-2": rate: slot 2 starts at 8h0m0s, not after slot 1: put the slots in order`,
		}},
		{"positions", func(f *pipeline.Flow) {
			f.Pos = pipeline.Pos{File: "flow.yaml", Line: 1, Column: 1}
			f.Name = "x y"
			f.Sinks[1].Name = "a"
			f.Sinks[1].Pos = pipeline.Pos{File: "flow.yaml", Line: 12, Column: 5}
			f.Bus.Compression = "gzip"
		}, []string{
			`flow.yaml:1:1: flow name "x y": use 1 to 64 letters, digits, '-' or '_'`,
			`flow.yaml:12:5: sink name "a" is used twice: give each sink its own name`,
			`flow.yaml:1:1: bus compression "gzip": want one of s2, zstd, none`,
		}},
	}
	for _, tt := range tests {
		f := good()
		tt.change(&f)
		err := f.Check()
		var got []string
		if err != nil {
			got = strings.Split(err.Error(), "\n")
		}
		if diff := cmp.Diff(tt.want, got); diff != "" {
			t.Errorf("%s: errors (-want +got):\n%s", tt.desc, diff)
		}
	}
}

// Check skips every sink without a name, so a flow checked before
// WithDefaults does not see an unnamed sink's negative settings.
func TestFlowCheckUnnamedSink(t *testing.T) {
	f := pipeline.Flow{Name: "f", Source: pipeline.Use("local", nil), Sinks: sinkSpecs("local")}
	f.Sinks[0].Parallelism = -1
	if err := f.Check(); err == nil {
		t.Error("Check accepts a negative parallelism on a sink that has no name yet")
	}
}

func TestPosString(t *testing.T) {
	for _, tt := range []struct {
		p    pipeline.Pos
		want string
	}{
		{pipeline.Pos{}, ""},
		{pipeline.Pos{File: "f.yaml", Line: 3, Column: 7}, "f.yaml:3:7"},
		{pipeline.Pos{Line: 3, Column: 7}, ":3:7"},
	} {
		if got := tt.p.String(); got != tt.want {
			t.Errorf("%#v.String() = %q, want %q", tt.p, got, tt.want)
		}
	}
}
