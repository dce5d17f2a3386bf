package main

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"path"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/spf13/cobra"

	"github.com/mftflow/mftflow/pipeline"
	"github.com/mftflow/mftflow/pipeline/audit"
)

type auditOptions struct {
	flow, file, name string
	since            time.Time
	sinceText        string
	asJSON           bool
}

func newAuditCmd(g *globalOptions) *cobra.Command {
	o := &auditOptions{}
	cmd := &cobra.Command{
		Use:   "audit --flow NAME [--file ID | --name GLOB] [--since TIME]",
		Short: "Show files' timelines from a flow's audit trail; verify or export it",
		Example: `  runner audit --flow orders --name 'invoices/*.csv' --since 24h
  runner audit verify --flow orders
  runner audit export --flow orders --since 2026-12-01T00:00:00Z > orders-audit.jsonl`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			return withTrail(g, o, func(ctx context.Context, js jetstream.JetStream) error {
				return timeline(ctx, js, g.stdout, o)
			})
		},
	}
	flags := func(c *cobra.Command) {
		c.Flags().StringVar(&o.flow, "flow", "", "the flow (required)")
		c.Flags().StringVar(&o.sinceText, "since", "", "only records stored since this time (RFC 3339) or this long ago (24h)")
	}
	flags(cmd)
	cmd.Flags().StringVar(&o.file, "file", "", "only the file with this id")
	cmd.Flags().StringVar(&o.name, "name", "", "only files whose name matches this glob (* stays in a directory)")
	cmd.Flags().BoolVar(&o.asJSON, "json", false, "print the events as JSON lines")

	verify := &cobra.Command{
		Use:   "verify --flow NAME",
		Short: "Walk the audit trail's hash chain and report the first broken link",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			return withTrail(g, o, func(ctx context.Context, js jetstream.JetStream) error {
				return verifyTrail(ctx, js, g.stdout, o.flow)
			})
		},
	}
	export := &cobra.Command{
		Use:   "export --flow NAME [--since TIME]",
		Short: "Write the audit trail's events as JSON lines (for a SIEM)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			o.asJSON = true
			return withTrail(g, o, func(ctx context.Context, js jetstream.JetStream) error {
				return timeline(ctx, js, g.stdout, o)
			})
		},
	}
	flags(verify)
	flags(export)
	cmd.AddCommand(verify, export)
	return cmd
}

// withTrail checks the options, connects and calls fn.
func withTrail(g *globalOptions, o *auditOptions, fn func(context.Context, jetstream.JetStream) error) error {
	if o.flow == "" {
		return &exitError{exitErr, "audit needs --flow NAME (\"runner status\" lists the flows)"}
	}
	if o.sinceText != "" {
		t, err := parseSince(o.sinceText, time.Now())
		if err != nil {
			return &exitError{exitErr, err.Error()}
		}
		o.since = t
	}
	if o.name != "" {
		if _, err := path.Match(o.name, ""); err != nil {
			return &exitError{exitErr, fmt.Sprintf("--name %q is not a valid glob: close every \"[\"", o.name)}
		}
	}
	c, js, err := connectJetStream(g)
	if err != nil {
		return err
	}
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	if err := fn(ctx, js); err != nil {
		if e, ok := err.(*exitError); ok {
			return e
		}
		return &exitError{exitErr, fmt.Sprintf("audit trail of flow %s on %s: %v", o.flow, c.where, err)}
	}
	return nil
}

// parseSince reads an RFC 3339 time or a duration before now.
func parseSince(s string, now time.Time) (time.Time, error) {
	if t, err := time.Parse(time.RFC3339, s); err == nil {
		return t, nil
	}
	if d, err := time.ParseDuration(s); err == nil && d >= 0 {
		return now.Add(-d), nil
	}
	return time.Time{}, fmt.Errorf("--since %q: want a time such as 2026-12-01T08:00:00Z or a duration such as 24h", s)
}

func (o *auditOptions) wants(ev pipeline.Event) bool {
	if o.file != "" && ev.FileID != o.file {
		return false
	}
	if o.name != "" {
		ok, _ := path.Match(o.name, ev.Name)
		return ok
	}
	return true
}

// timeline prints the chosen events in the order they were stored: as
// JSON lines, or grouped by file, each file's steps in order.
func timeline(ctx context.Context, js jetstream.JetStream, w io.Writer, o *auditOptions) error {
	var order []string
	byFile := map[string][]pipeline.Event{}
	enc := json.NewEncoder(w)
	var werr error
	err := audit.Walk(ctx, js, o.flow, o.since, func(s audit.Stored) bool {
		for _, ev := range s.Events {
			if !o.wants(ev) {
				continue
			}
			if o.asJSON {
				werr = enc.Encode(struct {
					Record uint64 `json:"record"`
					pipeline.Event
				}{s.Index, ev.ForJSON()})
				continue
			}
			if _, seen := byFile[ev.FileID]; !seen {
				order = append(order, ev.FileID)
			}
			byFile[ev.FileID] = append(byFile[ev.FileID], ev)
		}
		return werr == nil
	})
	if err != nil || werr != nil || o.asJSON {
		return cmp.Or(err, werr)
	}
	p := &printer{w: w}
	for _, id := range order {
		evs := byFile[id]
		p.printf("%s  %s\n", nameOf(evs), id)
		for _, ev := range evs {
			p.printf("  %s  %-14s %s\n", ev.Time.Local().Format("2006-01-02 15:04:05.000"), ev.Kind, audit.Describe(ev))
		}
	}
	return p.err
}

// nameOf returns a file's name in its first event that has one.
func nameOf(evs []pipeline.Event) string {
	for _, ev := range evs {
		if ev.Name != "" {
			return shownName(ev.Name)
		}
	}
	return "(no name)"
}

// verifyTrail walks the chain and says whether it holds.
func verifyTrail(ctx context.Context, js jetstream.JetStream, w io.Writer, flow string) error {
	rep, err := audit.Verify(ctx, js, flow)
	if err != nil {
		return err
	}
	p := &printer{w: w}
	if rep.Broken != "" {
		p.printf("audit trail of flow %s: BROKEN after %d records: %s\n", flow, rep.Records-1, rep.Broken)
		return &exitError{exitFailed, "the audit trail's chain is broken; see above"}
	}
	if rep.Records == 0 {
		p.printf("audit trail of flow %s: empty\n", flow)
		return p.err
	}
	p.printf("audit trail of flow %s: %d records, chain intact\n", flow, rep.Records)
	if rep.First > 1 {
		p.printf("records 1 to %d aged out (or were removed from the head): the chain is proven from record %d\n", rep.First-1, rep.First)
	}
	p.printf("head: record %d, sha256 %s (keep it elsewhere to prove later that nothing before it changed)\n", rep.Head, rep.HeadHash)
	return p.err
}
