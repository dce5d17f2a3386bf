package flowfile

import (
	"errors"
	"os"
	"testing"

	"github.com/mftflow/mftflow/pipeline"
)

// FuzzParse checks that Parse never panics, that a nil error comes with a
// flow that passes Check and whose configs its connectors accept, and that
// errors are well formed: each with a position, sorted, the same on a
// second run.
func FuzzParse(f *testing.F) {
	full, err := os.ReadFile("testdata/full.yaml")
	if err != nil {
		f.Fatal(err)
	}
	f.Add(string(full))
	for _, tt := range errorCases {
		f.Add(tt.in)
	}
	for _, tt := range notifyErrorCases {
		f.Add(tt.in)
	}
	f.Add(lines("name: x", srcOK, notifySinks, "notify: [{on: failed, sinks: [partner], webhook: {url: 'http://h', secret: '${SECRET}'}},",
		"  {on: [passed, sla_met], email: {server: 'localhost:2525', tls: none, from: a@b.c, to: d@e.f}}]"))
	f.Add(lines("name: x", "source: {local: {path: ${IN:./in}}}", "sinks: [{local: {path: '${OUT}', part_size: ${SIZE}}, retry: {attempts: ${N}}}]"))
	f.Add(lines("name: x", "source: {local: &l {path: a}}", "sinks:", "  - local: {<<: *l, fsync: true}", "  - local: *l", "    name: b"))
	f.Add(lines("name: x", "source: {s3: {bucket: b, secret_key: k}}", "stages: [match: {include: a}, compress: ~]", "sinks: [memory: {}]", "bus: {chunk_size: 4KiB, compression: none, retention: 1s}"))
	f.Add(lines("name: x", "source: {local: {path: in}}", "sinks: [memory: {}]", "schedule: {time_zone: Europe/Berlin}",
		`expect: [{name: o, files: "o-*.csv", by: "Mon-Fri 06:00", count: 2, warn_before: 30m, holidays: [12-25]}, {files: "*.xml", by: "cron: 0 6 * * 1-5"}]`))

	reg := testRegistry(f)
	lookup := env(map[string]string{"IN": "/in", "OUT": "/out", "SIZE": "5MiB", "N": "3", "SECRET": "hunter2"})
	f.Fuzz(func(t *testing.T, in string) {
		flow, err := Parse("fuzz.yaml", []byte(in), reg, lookup)
		if err == nil {
			checkParsed(t, reg, flow)
			return
		}
		if flow != nil {
			t.Errorf("Parse returned a flow with its error")
		}
		var all Errors
		if !errors.As(err, &all) || len(all) == 0 {
			t.Fatalf("error is not a non-empty Errors: %#v", err)
		}
		for i, e := range all {
			if e.Pos.File != "fuzz.yaml" || e.Pos.Line < 1 || e.Pos.Column < 1 || e.Msg == "" {
				t.Errorf("malformed error %#v", e)
			}
			if i > 0 {
				prev := all[i-1].Pos
				if e.Pos.Line < prev.Line || (e.Pos.Line == prev.Line && e.Pos.Column < prev.Column) {
					t.Errorf("errors not sorted: %v before %v", prev, e.Pos)
				}
			}
		}
		_, again := Parse("fuzz.yaml", []byte(in), reg, lookup)
		if again == nil || again.Error() != err.Error() {
			t.Errorf("second Parse differs:\n%v\nthen:\n%v", err, again)
		}
	})
}

// FuzzParseChecks is FuzzParse over connectors with Check and Place
// functions and with a chunk size limit: Parse must not panic, and a flow
// it accepts must pass every check it runs (the spec checks, the limits,
// CheckPlaces), so that "runner validate" and "runner run" agree.
func FuzzParseChecks(f *testing.F) {
	for _, tt := range checkCases {
		f.Add(tt.in)
	}
	f.Add(lines("name: x", "source: {dir: {path: '${IN:in}'}}", "stages: [pick: {regex: 'a+'}]",
		"sinks: [{dir: {path: out, name: 'a/{name}'}, files: 256}, {dir: {path: out/b}, retry: {attempts: 1000}}]",
		"bus: {chunk_size: 1MiB, files: 256, readers: 64, window: 1TiB}"))
	reg := checkRegistry(f)
	opts := Options{Lookup: env(map[string]string{"IN": "in", "EMPTY": ""}), Chunk: ChunkLimit{Max: 1 << 20, Why: "(w)", Fix: "f"}}
	f.Fuzz(func(t *testing.T, in string) {
		flow, err := ParseWith("fuzz.yaml", []byte(in), reg, opts)
		if err != nil {
			var all Errors
			if !errors.As(err, &all) || len(all) == 0 {
				t.Fatalf("error is not a non-empty Errors: %#v", err)
			}
			for _, e := range all {
				if e.Pos.File != "fuzz.yaml" || e.Pos.Line < 1 || e.Pos.Column < 1 || e.Msg == "" {
					t.Errorf("malformed error %#v", e)
				}
			}
			return
		}
		checkParsed(t, reg, flow)
		if err := reg.CheckPlaces(*flow); err != nil {
			t.Errorf("accepted flow fails CheckPlaces: %v", err)
		}
		if flow.Bus.ChunkSize > opts.Chunk.Max {
			t.Errorf("accepted chunk_size %d above the limit", flow.Bus.ChunkSize)
		}
		spec := func(k pipeline.Kind, c pipeline.Component) {
			s, _ := reg.Lookup(k, c.Type)
			if s.Check == nil {
				return
			}
			cfg, err := pipeline.ParseConfig(s, c.Config)
			if err == nil {
				err = s.Check(cfg)
			}
			if err != nil {
				t.Errorf("accepted %s %q fails its Check: %v", k, c.Type, err)
			}
		}
		spec(pipeline.KindSource, flow.Source)
		for _, s := range flow.Stages {
			spec(pipeline.KindStage, s)
		}
		for _, s := range flow.Sinks {
			spec(pipeline.KindSink, s.Component)
		}
	})
}
