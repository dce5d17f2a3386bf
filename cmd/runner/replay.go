package main

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/user"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/spf13/cobra"

	"github.com/mftflow/mftflow/pipeline/audit"
	"github.com/mftflow/mftflow/pipeline/engine"
)

type replayOptions struct {
	flow      string
	sinks     []string
	files     []string
	allFailed bool
	asJSON    bool
	by        string
}

func newReplayCmd(g *globalOptions) *cobra.Command {
	o := &replayOptions{}
	cmd := &cobra.Command{
		Use:   "replay --flow NAME (--all-failed | --file ID...) [--sink NAME]",
		Short: "Deliver failed deliveries again from the chunks kept on the bus",
		Long: `Replay queues failed deliveries of a flow again. They are delivered from the
file's chunks on the bus: the source is not read again, nor told again (it was
told the file's outcome when the file first finished; "runner status" shows the
outcome after the replay).

Replay only queues: a runner running the flow delivers the files at once; if
none is running, the next "runner run" of the flow does, and does not end
before they are delivered (or fail again).

A replay needs every chunk of the file on the bus. By default chunks are
removed as the sinks write them, so a delivery that failed after other sinks
(or itself) had written parts cannot be replayed; set bus.retention (a
duration) or bus.retention_size (a size) in the flow file to keep chunks for
replay. Deliveries that cannot be replayed are listed with the reason.

Choose deliveries with --all-failed (every failed delivery of the flow) or
--file (a file id from "runner status --json", or a file name; repeat it), and
narrow either to sinks with --sink.

It connects like "runner status": to --nats-url when given; else to the runner
using the data directory, if one is running; else it opens the data
directory's store itself.

Exit status: 0 when every chosen delivery was queued, 3 when some could not be
replayed, 1 on any other error.`,
		Example: `  runner replay --flow orders --all-failed
  runner replay --flow orders --sink partner --all-failed
  runner replay --flow orders --file 2f1c0e9a64b1d7c3e2a8f4b6d0c1e5a7 --file report.csv
  runner replay --flow orders --all-failed --nats-url nats://n1:4222`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			switch {
			case o.flow == "":
				return &exitError{exitErr, "replay needs --flow NAME (\"runner status\" lists the flows)"}
			case len(o.files) == 0 && !o.allFailed:
				return &exitError{exitErr, "say which deliveries to replay: --all-failed, or --file ID (repeat it for several files)"}
			case len(o.files) > 0 && o.allFailed:
				return &exitError{exitErr, "--file and --all-failed exclude each other: --all-failed already takes every failed delivery"}
			}
			return replay(g, o)
		},
	}
	f := cmd.Flags()
	f.StringVar(&o.flow, "flow", "", "the flow whose deliveries to replay (required)")
	f.StringSliceVar(&o.sinks, "sink", nil, "replay only deliveries to this sink (repeat or separate with commas)")
	f.StringArrayVar(&o.files, "file", nil, "replay this file's failed deliveries: its id or its name (repeat for several)")
	f.BoolVar(&o.allFailed, "all-failed", false, "replay every failed delivery of the flow")
	f.BoolVar(&o.asJSON, "json", false, "print the report as JSON")
	f.StringVar(&o.by, "by", defaultActor(), "who asks, for the flow's audit trail")
	return cmd
}

func replay(g *globalOptions, o *replayOptions) error {
	c, js, err := connectJetStream(g)
	if err != nil {
		return err
	}
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	rep, err := engine.Replay(ctx, js, o.flow, engine.Selector{Files: o.files, Sinks: o.sinks})
	if aerr := auditReplay(ctx, js, o.flow, o.by, rep); aerr != nil && err == nil {
		err = aerr
	}
	if o.asJSON {
		if rep.Requeued == nil {
			rep.Requeued = []engine.ReplayItem{}
		}
		if rep.Refused == nil {
			rep.Refused = []engine.ReplayItem{}
		}
		if rep.Reread == nil {
			rep.Reread = []engine.ReplayItem{}
		}
		enc := json.NewEncoder(g.stdout)
		enc.SetIndent("", "  ")
		if jerr := enc.Encode(rep); jerr != nil && err == nil {
			err = jerr
		}
	} else if werr := writeReplay(g.stdout, rep, o.allFailed); werr != nil && err == nil {
		err = werr
	}
	if err != nil {
		return &exitError{exitErr, fmt.Sprintf("replaying on %s: %v", c.where, err)}
	}
	if len(rep.Refused) > 0 {
		return &exitError{exitFailed, fmt.Sprintf("%s not replayed; see above", plural(int64(len(rep.Refused)), "delivery", "deliveries"))}
	}
	return nil
}

// writeReplay prints what was queued and what was not, and why.
func writeReplay(w io.Writer, rep engine.Report, allFailed bool) error {
	p := &printer{w: w}
	if len(rep.Requeued) == 0 && len(rep.Refused) == 0 && len(rep.Reread) == 0 {
		if allFailed {
			p.printf("flow %s: no failed deliveries to replay\n", rep.Flow)
		}
		return p.err
	}
	section := func(items []engine.ReplayItem, head, last string, lastOf func(engine.ReplayItem) string) {
		if len(items) == 0 || p.err != nil {
			return
		}
		p.printf("flow %s: %s %s\n", rep.Flow, plural(int64(len(items)), "delivery", "deliveries"), head)
		t := table(w)
		t.printf("  FILE\tSINK\t%s\n", last)
		for _, it := range items {
			name, sink := cmp.Or(it.Name, it.File, "-"), cmp.Or(it.Sink, "-")
			t.printf("  %s\t%s\t%s\n", name, sink, oneLine(lastOf(it)))
		}
		p.err = t.flush()
	}
	why := func(it engine.ReplayItem) string { return it.Reason }
	section(rep.Requeued, `queued again; the flow's runner delivers them from the bus (a running one at once, else the next "runner run")`,
		"ID", func(it engine.ReplayItem) string { return it.File })
	section(rep.Reread, "to be made by reading the file again from its source: run the flow again (a source keeps a file whose delivery failed)", "WHY", why)
	section(rep.Refused, "not replayed", "REASON", why)
	return p.err
}

// auditReplay adds the replays in rep to the flow's audit trail, if it
// has one, with who asked.
func auditReplay(ctx context.Context, js jetstream.JetStream, flow, by string, rep engine.Report) error {
	return audit.Append(ctx, js, flow, "replay", rep.Events(by, time.Now()))
}

// defaultActor names the user running the command: user@host.
func defaultActor() string {
	name := "unknown"
	if u, err := user.Current(); err == nil {
		name = u.Username
	}
	if h, err := os.Hostname(); err == nil {
		name += "@" + h
	}
	return name
}
