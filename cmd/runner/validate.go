package main

import (
	"fmt"
	"strings"

	"github.com/spf13/cobra"

	"github.com/mftflow/mftflow/pipeline"
	"github.com/mftflow/mftflow/pipeline/bus"
	"github.com/mftflow/mftflow/pipeline/flowfile"
)

func newValidateCmd(g *globalOptions) *cobra.Command {
	return &cobra.Command{
		Use:   "validate FLOW.yaml...",
		Short: "Check flow files without running them",
		Long: `Validate loads each flow file as "run" would, checking its YAML, its flow
settings and every connector's config, but connects to nothing and changes
nothing. It prints "FILE: ok" for each good file and each problem of a bad one
as FILE:LINE:COL: message on stderr. Exit status 1 if any file is invalid.

Beyond types, it finds what would make "run" fail or misbehave: regular
expressions that do not compile, unknown {placeholders} in name templates,
levels out of range, a local source directory that does not exist, a required
field that ${VAR:} left empty, counts above their limits, two sinks writing
into one place, and a sink writing where the source reads. Without
--nats-url, bus.chunk_size must also fit the embedded NATS server's
max_payload; with --nats-url the server's own max_payload is checked when
"run" connects.`,
		Args: func(cmd *cobra.Command, args []string) error {
			if len(args) == 0 {
				return &exitError{exitErr, "validate needs at least one flow file: runner validate FLOW.yaml..."}
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			reg, err := g.registry(cmd.Context())
			if err != nil {
				return &exitError{exitErr, err.Error()}
			}
			bad := false
			for _, r := range loadFlows(g, reg, args) {
				if r.err != nil {
					warnf(g.stderr, "%s\n", strings.TrimRight(r.err.Error(), "\n"))
					bad = true
					continue
				}
				if _, err := fmt.Fprintf(g.stdout, "%s: ok\n", r.path); err != nil {
					return err
				}
			}
			if bad {
				return &exitError{code: exitErr}
			}
			return nil
		},
	}
}

// flowOptions are the checks of flow files that depend on the runner's
// flags. Without --nats-url the flows run on the embedded NATS server, so
// a chunk must fit its max_payload; an external server's is learnt only by
// connecting, which "run" does (the engine refuses a chunk_size that does
// not fit, and lowers the default to fit).
func flowOptions(g *globalOptions) flowfile.Options {
	if g.nats.url != "" {
		return flowfile.Options{}
	}
	return flowfile.Options{Chunk: flowfile.ChunkLimit{
		Max: bus.EmbeddedMaxPayload - bus.HeaderRoom,
		Why: fmt.Sprintf("(the embedded NATS server's max_payload of %s, less %s for headers)",
			pipeline.ExactSize(bus.EmbeddedMaxPayload), pipeline.ExactSize(bus.HeaderRoom)),
		Fix: "lower it, or run against a NATS server with a larger max_payload (--nats-url)",
	}}
}
