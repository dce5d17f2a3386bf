package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"sort"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/spf13/cobra"

	"github.com/mftflow/mftflow/pipeline"
	"github.com/mftflow/mftflow/pipeline/bus"
	"github.com/mftflow/mftflow/pipeline/engine"
	"github.com/mftflow/mftflow/pipeline/notify"
	"github.com/mftflow/mftflow/pipeline/sla"
)

type statusOptions struct {
	asJSON bool
	failed bool
	flows  []string
}

func newStatusCmd(g *globalOptions) *cobra.Command {
	o := &statusOptions{}
	cmd := &cobra.Command{
		Use:   "status",
		Short: "Show the delivery state of flows",
		Long: `Status reads the flows' state from JetStream: for each flow and sink, how many
deliveries are in flight, committed, failed and skipped. --failed lists every
failed delivery with its error, and every file that failed before delivery
(its name was refused, or it could not be read) with sink "-".

It reads from --nats-url when given; else from the runner using the data
directory, if one is running; else it opens the data directory's store itself.`,
		Example: `  runner status
  runner status --failed --flow orders
  runner status --json --nats-url nats://n1:4222`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			return showStatus(g, o)
		},
	}
	f := cmd.Flags()
	f.BoolVar(&o.asJSON, "json", false, "print the state as JSON")
	f.BoolVar(&o.failed, "failed", false, "list failed deliveries, and files that failed before delivery (a refused name, a failed read)")
	f.StringSliceVar(&o.flows, "flow", nil, "show only this flow (repeat or separate with commas)")
	return cmd
}

func showStatus(g *globalOptions, o *statusOptions) error {
	c, js, err := connectJetStream(g)
	if err != nil {
		return err
	}
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	flows, err := engine.ReadStatus(ctx, js, o.flows...)
	if err != nil {
		return &exitError{exitErr, fmt.Sprintf("reading state from %s: %v", c.where, err)}
	}
	var missing []string
	for _, name := range o.flows {
		found := false
		for _, fs := range flows {
			found = found || fs.Flow == name
		}
		if !found {
			missing = append(missing, fmt.Sprintf("%q", name))
		}
	}
	if len(missing) > 0 {
		return &exitError{exitErr, fmt.Sprintf("no state for flow %s in %s", strings.Join(missing, ", "), c.where)}
	}
	if o.failed {
		for i := range flows {
			flows[i].Files = failedFiles(flows[i].Files)
		}
	}
	reports, err := withObservers(ctx, js, flows)
	if err != nil {
		return &exitError{exitErr, fmt.Sprintf("reading state from %s: %v", c.where, err)}
	}
	if o.asJSON {
		enc := json.NewEncoder(g.stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(reports)
	}
	if len(flows) == 0 {
		_, err := fmt.Fprintf(g.stdout, "no flows in %s\n", c.where)
		return err
	}
	return writeStatus(g.stdout, reports, o.failed)
}

// failedFiles keeps the files with a failed delivery or that failed before
// delivery.
func failedFiles(files []engine.FileStatus) []engine.FileStatus {
	var out []engine.FileStatus
	for _, f := range files {
		keep := f.Error != ""
		for _, d := range f.Deliveries {
			keep = keep || d.State == bus.DeliveryFailed
		}
		if keep {
			out = append(out, f)
		}
	}
	return out
}

// writeStatus prints, per flow, a line counting its files, a table of its
// sinks and, when listFailed is set, its failed deliveries.
func writeStatus(w io.Writer, flows []flowReport, listFailed bool) error {
	p := &printer{w: w}
	for i, fr := range flows {
		fs := fr.FlowStatus
		if i > 0 {
			p.println()
		}
		if !listFailed {
			p.printf("flow %s: %s\n", fs.Flow, fileCounts(fs.Files))
		} else {
			p.printf("flow %s\n", fs.Flow)
		}
		if poll := fs.Poll; poll != nil {
			p.printf("  next poll %s", poll.Next.Local().Format(time.RFC3339))
			if !poll.Until.IsZero() {
				p.printf(" (until %s)", poll.Until.Local().Format(time.RFC3339))
			}
			p.println()
		}
		writeObservers(p, fr)
		t := table(w)
		t.println("  SINK\tIN FLIGHT\tCOMMITTED\tFAILED\tSKIPPED")
		var failed []string
		deliveries := 0
		for _, s := range fs.Sinks {
			t.printf("  %s\t%d\t%d\t%d\t%d\n", s.Sink, s.InFlight, s.Committed, s.Failed, s.Skipped)
			deliveries += s.Failed
		}
		if err := t.flush(); err != nil {
			return err
		}
		if !listFailed {
			if deliveries > 0 {
				failed = append(failed, plural(int64(deliveries), "failed delivery", "failed deliveries"))
			}
			if n := failedBefore(fs.Files); n > 0 {
				failed = append(failed, plural(n, "file", "files")+" failed before delivery")
			}
			if len(failed) > 0 {
				p.printf("  %s; list with \"runner status --failed --flow %s\"\n", strings.Join(failed, ", "), fs.Flow)
			}
			continue
		}
		rows := failedRows(fs.Files)
		if len(rows) == 0 {
			p.println("  no failed deliveries or files")
			continue
		}
		p.println()
		t = table(w)
		t.println("  FILE\tSINK\tATTEMPTS\tERROR")
		for _, r := range rows {
			t.printf("  %s\t%s\t%s\t%s\n", r.file, r.sink, r.attempts, r.err)
		}
		if err := t.flush(); err != nil {
			return err
		}
	}
	return p.err
}

// failedBefore counts the files that failed before delivery.
func failedBefore(files []engine.FileStatus) int64 {
	var n int64
	for _, f := range files {
		if f.Error != "" {
			n++
		}
	}
	return n
}

// fileCounts summarises files by manifest state: "12 files (10 done, 2 in
// progress)". Files that failed before delivery are counted apart; files
// whose chunks carry references (bus.payload) are counted at the end.
func fileCounts(files []engine.FileStatus) string {
	var done, skipped, failed, active, byRef int64
	for _, f := range files {
		if f.Manifest.Payload == pipeline.PayloadReference {
			byRef++
		}
		switch {
		case f.Error != "":
			failed++
		case f.Manifest.State == bus.FileDone:
			done++
		case f.Manifest.State == bus.FileSkipped:
			skipped++
		default:
			active++
		}
	}
	var parts []string
	for _, p := range []struct {
		n    int64
		what string
	}{{done, "done"}, {active, "in progress"}, {skipped, "skipped"}, {failed, "failed before delivery"}} {
		if p.n > 0 {
			parts = append(parts, fmt.Sprintf("%d %s", p.n, p.what))
		}
	}
	s := plural(int64(len(files)), "file", "files")
	if len(parts) > 0 {
		s += " (" + strings.Join(parts, ", ") + ")"
	}
	if byRef > 0 {
		s += fmt.Sprintf(", %d read by reference", byRef)
	}
	return s
}

type failedRow struct{ file, sink, attempts, err string }

// failedRows lists failed deliveries, and files that failed before
// delivery (sink "-"), sorted by file name and sink.
func failedRows(files []engine.FileStatus) []failedRow {
	var rows []failedRow
	for _, f := range files {
		name := shownName(f.Manifest.Name)
		if f.Error != "" {
			rows = append(rows, failedRow{name, "-", "-", oneLine(pipeline.RedactURLs(f.Error))})
		}
		for _, d := range f.Deliveries {
			if d.State != bus.DeliveryFailed {
				continue
			}
			n := name
			if n == "" {
				n = shownName(d.Name)
			}
			rows = append(rows, failedRow{n, d.Sink, fmt.Sprint(d.Attempts), oneLine(pipeline.RedactURLs(d.Error))})
		}
	}
	sort.SliceStable(rows, func(i, j int) bool {
		if rows[i].file != rows[j].file {
			return rows[i].file < rows[j].file
		}
		return rows[i].sink < rows[j].sink
	})
	return rows
}

// shownName is a file name for a table: quoted when it holds a tab, a
// newline, another unprintable character or a byte that is not UTF-8 (a
// refused name may hold any).
func shownName(name string) string {
	if !utf8.ValidString(name) {
		return strconv.Quote(name)
	}
	for _, r := range name {
		if !unicode.IsPrint(r) {
			return strconv.Quote(name)
		}
	}
	return name
}

// flowReport is a flow's status with its arrival SLAs and notifications.
type flowReport struct {
	engine.FlowStatus
	SLA    []sla.Status          `json:"sla,omitempty"`
	Notify []notify.TargetStatus `json:"notify,omitempty"`
}

// withObservers adds each flow's SLA and notification state to its status.
func withObservers(ctx context.Context, js jetstream.JetStream, flows []engine.FlowStatus) ([]flowReport, error) {
	out := make([]flowReport, 0, len(flows))
	for _, fs := range flows {
		r := flowReport{FlowStatus: fs}
		kv, err := js.KeyValue(ctx, bus.Names{Flow: fs.Flow}.Bucket())
		if err != nil {
			return nil, err
		}
		r.SLA, err = sla.ReadFlowStatus(ctx, kv, time.Now())
		if err != nil {
			return nil, fmt.Errorf("flow %s: arrival SLAs: %w", fs.Flow, err)
		}
		if r.Notify, err = notify.Inspect(ctx, js, fs.Flow); err != nil {
			return nil, fmt.Errorf("flow %s: notifications: %w", fs.Flow, err)
		}
		out = append(out, r)
	}
	return out, nil
}

// writeObservers prints a line per expectation and per notification target.
func writeObservers(p *printer, r flowReport) {
	at := func(t time.Time) string { return t.Local().Format(time.RFC3339) }
	for _, s := range r.SLA {
		p.printf("  expect %s (%s): %s", s.Name, s.Files, s.State)
		if s.State == sla.StateMissed {
			p.printf(" the deadline %s (%d of %d arrived); a late file clears it", at(s.MissedDeadline), s.MissedArrived, s.Expected)
		}
		if !s.Deadline.IsZero() {
			p.printf("; %d of %d by %s", s.Arrived, s.Expected, at(s.Deadline))
		}
		p.println()
	}
	for _, n := range r.Notify {
		p.printf("  notify %s %s: %d pending", n.Channel, n.Endpoint, n.Pending)
		if n.Failing {
			p.printf(", failing since %s (%d attempts): %s", at(n.Since), n.Failures, n.LastError)
		}
		if n.GivenUp > 0 {
			p.printf(", %d given up", n.GivenUp)
		}
		p.println()
	}
}
