package bench

import (
	"fmt"
	"maps"
	"path/filepath"
	"strings"

	"github.com/mftflow/mftflow/pipeline"
	"github.com/mftflow/mftflow/pipeline/flowfile"
)

// Kinds of Job.
const (
	JobFlow    = "flow"    // run the flow once at a point
	JobCeiling = "ceiling" // measure the bus alone at a chunk size
)

// Job is one measured run. It is plain data, so that it can be handed to a
// child process as JSON.
type Job struct {
	Kind string `json:"kind"`
	// FlowFile is the flow file whose source, stages and sinks the run uses;
	// "" for a synthetic workload into a local directory (Output).
	FlowFile string `json:"flow_file,omitempty"`
	// Input, when set, is the directory of a generated workload: it replaces
	// the flow's source.
	Input string `json:"input,omitempty"`
	// Output is the directory of the local sink used when there is no flow
	// file. The bench creates it, and removes it after the run.
	Output string `json:"output,omitempty"`
	Point  Point  `json:"point"`
	// Name is the run's flow name: new for every run, so that no file is
	// found already delivered by an earlier one.
	Name string `json:"name"`
	// Bytes is how much a ceiling job moves.
	Bytes int64 `json:"bytes,omitempty"`
}

// outputDir is the subdirectory a local sink of a flow file writes a run's
// files to, under its path.
func outputDir(run string) string { return "mftflow-bench-" + run }

// LoadFlow reads the flow a job runs, or returns the default flow (one
// local sink writing to output) when path is "".
func LoadFlow(path, output string, reg *pipeline.Registry) (pipeline.Flow, error) {
	if path == "" {
		return pipeline.Flow{
			Name:  "bench",
			Sinks: []pipeline.SinkSpec{{Name: "out", Component: pipeline.Use("local", map[string]any{"path": output})}},
		}, nil
	}
	f, err := flowfile.Load(path, reg)
	if err != nil {
		return pipeline.Flow{}, err
	}
	return *f, nil
}

// CheckFlow reports what keeps f from being benchmarked: a source that
// cannot be read again on every run (unless synthetic replaces it), and
// sinks that have no part_size setting when the sweep sets one.
func CheckFlow(f pipeline.Flow, reg *pipeline.Registry, synthetic bool, s Sweep) error {
	var problems []string
	if !synthetic {
		src := f.Source
		spec, ok := reg.Lookup(pipeline.KindSource, src.Type)
		switch {
		case !ok:
			problems = append(problems, fmt.Sprintf("unknown source connector %q", src.Type))
		default:
			if spec.HandsOutOnce() {
				problems = append(problems, fmt.Sprintf("source %s hands each file out once, so it cannot be read again on every run: use --files and --size for a generated workload sent to this flow's sinks", src.Type))
			}
			if fld, ok := spec.Field("after"); ok {
				after, set := src.Config["after"]
				if !set {
					after = fld.Default
				}
				if s, _ := after.(string); s != "leave" {
					problems = append(problems, fmt.Sprintf("source %s has \"after: %v\": the first run would take the files away; set \"after: leave\" for the bench", src.Type, after))
				}
			}
		}
	}
	if len(s.PartSizes) > 0 {
		for _, k := range f.WithDefaults().Sinks {
			spec, ok := reg.Lookup(pipeline.KindSink, k.Type)
			if !ok {
				continue // the flow file loader reported it
			}
			if _, ok := spec.Field("part_size"); !ok {
				problems = append(problems, fmt.Sprintf("--part-size: sink %q (%s) has no part_size setting; leave --part-size out", k.Name, k.Type))
			}
		}
	}
	if len(problems) == 0 {
		return nil
	}
	where := f.Pos.File
	if where == "" {
		where = "flow " + f.Name
	}
	return fmt.Errorf("%s cannot be benchmarked:\n  %s", where, strings.Join(problems, "\n  "))
}

// BasePoint is the point f runs at as written: its chunk size, compression
// and the first sink's parallelism, with defaults applied. PartSize is 0:
// the sinks' own.
func BasePoint(f pipeline.Flow) Point {
	d := f.WithDefaults()
	p := Point{ChunkSize: d.Bus.ChunkSize, Compression: d.Bus.Compression, Parallelism: pipeline.DefaultParallelism, Payload: d.Bus.Payload}
	if p.Payload == "" {
		p.Payload = pipeline.PayloadBytes
	}
	if len(d.Sinks) > 0 {
		p.Parallelism = d.Sinks[0].Parallelism
	}
	return p
}

// Prepare turns the flow a job names into the flow it runs: the job's name
// and point applied, the generated workload as its source, watching turned
// off, and local sinks writing under a subdirectory of their own. It
// returns the directories the run creates, for removal afterwards.
func (j Job) Prepare(reg *pipeline.Registry) (pipeline.Flow, []string, error) {
	f, err := LoadFlow(j.FlowFile, j.Output, reg)
	if err != nil {
		return f, nil, err
	}
	var created []string
	if j.FlowFile == "" {
		created = append(created, j.Output)
	}
	f.Name = j.Name
	if j.Input != "" {
		// Shared: this process is the generated flow's only runner, so its
		// files may be read by reference even over an external server.
		f.Source = pipeline.Use("local", map[string]any{
			"path": j.Input, "watch": false, "stable_for": "0s", "after": "leave", "recursive": false, "shared": true,
		})
	} else {
		cfg := maps.Clone(f.Source.Config)
		if cfg == nil {
			cfg = map[string]any{}
		}
		if spec, ok := reg.Lookup(pipeline.KindSource, f.Source.Type); ok {
			if _, ok := spec.Field("watch"); ok {
				cfg["watch"] = false
			}
			if _, ok := spec.Field("stable_for"); ok {
				cfg["stable_for"] = "0s"
			}
		}
		f.Source.Config = cfg
	}
	p := j.Point
	if p.ChunkSize > 0 {
		f.Bus.ChunkSize = p.ChunkSize
	}
	if p.Compression != "" {
		f.Bus.Compression = p.Compression
	}
	if p.Payload != "" {
		f.Bus.Payload = p.Payload
	}
	f.Sinks = append([]pipeline.SinkSpec(nil), f.Sinks...)
	for i := range f.Sinks {
		k := &f.Sinks[i]
		cfg := maps.Clone(k.Config)
		if cfg == nil {
			cfg = map[string]any{}
		}
		if p.Parallelism > 0 {
			k.Parallelism = p.Parallelism
		}
		if p.PartSize > 0 {
			cfg["part_size"] = p.PartSize
		}
		if k.Type == "local" && j.FlowFile != "" {
			tmpl, _ := cfg["name"].(string)
			if tmpl == "" {
				tmpl = "{name}"
			}
			cfg["name"] = outputDir(j.Name) + "/" + tmpl
			if path, _ := cfg["path"].(string); path != "" {
				created = append(created, filepath.Join(path, outputDir(j.Name)))
			}
		}
		k.Config = cfg
	}
	return f, created, nil
}
