package main

import (
	"fmt"
	"strings"

	"github.com/spf13/cobra"
)

func newValidateCmd(g *globalOptions) *cobra.Command {
	return &cobra.Command{
		Use:   "validate FLOW.yaml...",
		Short: "Check flow files without running them",
		Long: `Validate loads each flow file as "run" would, checking its YAML, its flow
settings and every connector's config, but connects to nothing and changes
nothing. It prints "FILE: ok" for each good file and each problem of a bad one
as FILE:LINE:COL: message on stderr. Exit status 1 if any file is invalid.`,
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
			for _, r := range loadFlows(reg, args) {
				if r.err != nil {
					fmt.Fprintln(g.stderr, strings.TrimRight(r.err.Error(), "\n"))
					bad = true
					continue
				}
				fmt.Fprintf(g.stdout, "%s: ok\n", r.path)
			}
			if bad {
				return &exitError{code: exitErr}
			}
			return nil
		},
	}
}
