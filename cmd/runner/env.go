package main

import (
	"fmt"
	"strings"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
)

// envName is the environment variable that sets a flag: MFTFLOW_ and the
// flag's name in capitals, dashes as underscores (--nats-url:
// MFTFLOW_NATS_URL).
func envName(flag string) string {
	return "MFTFLOW_" + strings.ToUpper(strings.ReplaceAll(flag, "-", "_"))
}

// flagsFromEnv sets every flag of cmd not given on the command line from
// its environment variable, and --nats-url also from NATS_URL as the nats
// CLI reads it. The command line wins over the environment.
func flagsFromEnv(cmd *cobra.Command, lookup func(string) (string, bool)) error {
	var err error
	cmd.Flags().VisitAll(func(f *pflag.Flag) {
		if err != nil || f.Changed || f.Name == "help" || f.Name == "version" {
			return
		}
		names := []string{envName(f.Name)}
		if f.Name == "nats-url" {
			names = append(names, "NATS_URL")
		}
		for _, name := range names {
			v, ok := lookup(name)
			if !ok || v == "" {
				continue // an empty variable is taken as unset
			}
			if serr := f.Value.Set(v); serr != nil {
				err = fmt.Errorf("%s=%q: %v (it sets --%s)", name, v, serr, f.Name)
			}
			return
		}
	})
	return err
}
