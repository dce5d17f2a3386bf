package main

import (
	"encoding/json"
	"fmt"
	"io"
	"sort"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/mftflow/mftflow/pipeline"
)

func newConnectorsCmd(g *globalOptions) *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "connectors",
		Short: "List every source, stage and sink with its config fields",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			reg, err := g.registry(cmd.Context())
			if err != nil {
				return &exitError{exitErr, err.Error()}
			}
			if asJSON {
				return writeSpecsJSON(g.stdout, reg)
			}
			return writeSpecs(g.stdout, reg)
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the specs as a JSON array")
	return cmd
}

var kinds = []struct {
	kind    pipeline.Kind
	heading string
}{
	{pipeline.KindSource, "SOURCES"},
	{pipeline.KindStage, "STAGES"},
	{pipeline.KindSink, "SINKS"},
}

// writeSpecs prints each connector's name and summary followed by a table
// of its fields.
func writeSpecs(w io.Writer, reg *pipeline.Registry) error {
	p := &printer{w: w}
	for i, k := range kinds {
		if i > 0 {
			p.println()
		}
		p.printf("%s\n", k.heading)
		specs := reg.Specs(k.kind)
		if len(specs) == 0 {
			p.printf("\n  (none)\n")
		}
		for _, s := range specs {
			p.println()
			name := s.Name
			if s.Origin != "" && s.Origin != "built-in" {
				name += " (" + s.Origin + ")"
			}
			p.printf("%s: %s\n", name, s.Summary)
			if len(s.Fields) == 0 {
				p.println("  no config fields")
				continue
			}
			t := table(w)
			t.println("  FIELD\tTYPE\tDEFAULT\tREQUIRED\tVALUES\tDOC")
			for _, f := range s.Fields {
				req := "no"
				if f.Required {
					req = "yes"
				}
				doc := oneLine(f.Doc)
				if f.Secret {
					doc += " (secret)"
				}
				t.printf("  %s\t%s\t%s\t%s\t%s\t%s\n", f.Name, f.Type, formatDefault(f), req, orDash(strings.Join(f.Enum, "|")), doc)
			}
			if err := t.flush(); err != nil {
				return err
			}
		}
	}
	return p.err
}

// formatDefault prints a field's default as a user would write it in a flow file.
func formatDefault(f pipeline.Field) string {
	switch d := f.Default.(type) {
	case nil:
		return "-"
	case string:
		if d == "" {
			return `""`
		}
		return d
	case time.Duration:
		return d.String()
	case []string:
		return "[" + strings.Join(d, ", ") + "]"
	case map[string]string:
		keys := make([]string, 0, len(d))
		for k := range d {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for i, k := range keys {
			keys[i] = k + ": " + d[k]
		}
		return "{" + strings.Join(keys, ", ") + "}"
	}
	return fmt.Sprint(f.Default)
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func oneLine(s string) string { return strings.Join(strings.Fields(s), " ") }

// specJSON and fieldJSON are the JSON form of pipeline.Spec and Field.
type specJSON struct {
	Name    string      `json:"name"`
	Kind    string      `json:"kind"`
	Summary string      `json:"summary"`
	Origin  string      `json:"origin"`
	Fields  []fieldJSON `json:"fields"`
}

type fieldJSON struct {
	Name     string   `json:"name"`
	Type     string   `json:"type"`
	Doc      string   `json:"doc"`
	Default  any      `json:"default,omitempty"`
	Required bool     `json:"required"`
	Enum     []string `json:"enum,omitempty"`
	Secret   bool     `json:"secret,omitempty"`
}

func writeSpecsJSON(w io.Writer, reg *pipeline.Registry) error {
	out := []specJSON{}
	for _, k := range kinds {
		for _, s := range reg.Specs(k.kind) {
			origin := s.Origin
			if origin == "" {
				origin = "built-in"
			}
			sj := specJSON{Name: s.Name, Kind: string(s.Kind), Summary: s.Summary, Origin: origin, Fields: []fieldJSON{}}
			for _, f := range s.Fields {
				def := f.Default
				if d, ok := def.(time.Duration); ok {
					def = d.String()
				}
				sj.Fields = append(sj.Fields, fieldJSON{
					Name: f.Name, Type: string(f.Type), Doc: f.Doc, Default: def,
					Required: f.Required, Enum: f.Enum, Secret: f.Secret,
				})
			}
			out = append(out, sj)
		}
	}
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(out)
}
