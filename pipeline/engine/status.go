package engine

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/mftflow/mftflow/pipeline"
	"github.com/mftflow/mftflow/pipeline/bus"
)

// FlowStatus is what the KV state says of one flow.
type FlowStatus struct {
	Flow  string       `json:"flow"`
	Files []FileStatus `json:"files"`
	Sinks []SinkCounts `json:"sinks"`
	// Poll is when a scheduled flow's source is polled next; nil for a
	// flow without a schedule.
	Poll *bus.Poll `json:"poll,omitempty"`
}

// FileStatus is one file's manifest with its deliveries.
type FileStatus struct {
	Manifest   bus.Manifest   `json:"manifest"`
	Deliveries []bus.Delivery `json:"deliveries"`
	// Error says why the file failed before its deliveries: its name was
	// refused or it could not be read. Such a file usually has no delivery
	// to fail (none is queued before the read starts), yet a run counts it
	// failed. Empty for other files: a failed delivery carries its own
	// error.
	Error string `json:"error,omitempty"`
}

// failedBeforeDelivery returns why f failed before any delivery, or "".
func failedBeforeDelivery(f FileStatus) string {
	m := f.Manifest
	failed := m.State == bus.FileFailed ||
		(m.State == bus.FileDone && m.Outcome == pipeline.Failed.String() && len(f.Deliveries) == 0)
	if !failed {
		return ""
	}
	return cmp.Or(m.ReadError, m.Error, "failed before delivery")
}

// SinkCounts counts one sink's deliveries by state.
type SinkCounts struct {
	Sink      string `json:"sink"`
	InFlight  int    `json:"in_flight"`
	Committed int    `json:"committed"`
	Failed    int    `json:"failed"`
	Skipped   int    `json:"skipped"`
}

// ReadStatus reads the state of the named flows (every flow when none is
// named) from their KV buckets. It works while runners are running.
func ReadStatus(ctx context.Context, js jetstream.JetStream, flows ...string) ([]FlowStatus, error) {
	if len(flows) == 0 {
		names := js.KeyValueStoreNames(ctx)
		for n := range names.Name() {
			if f := bus.FlowOfBucket(n); f != "" {
				flows = append(flows, f)
			}
		}
		if err := names.Error(); err != nil {
			return nil, fmt.Errorf("listing flows: %w", err)
		}
		sort.Strings(flows)
	}
	var out []FlowStatus
	for _, f := range flows {
		fs, err := readFlow(ctx, js, f)
		if err != nil {
			return nil, err
		}
		for i := range fs.Files {
			f := &fs.Files[i]
			f.Manifest.Content = nil // a small file's bytes are not status
			// Errors were redacted when recorded; records of older
			// versions were not.
			f.Manifest.Error = pipeline.RedactURLs(f.Manifest.Error)
			f.Manifest.ReadError = pipeline.RedactURLs(f.Manifest.ReadError)
			for j := range f.Deliveries {
				f.Deliveries[j].Error = pipeline.RedactURLs(f.Deliveries[j].Error)
			}
			f.Error = pipeline.RedactURLs(failedBeforeDelivery(*f))
		}
		out = append(out, fs)
	}
	return out, nil
}

func readFlow(ctx context.Context, js jetstream.JetStream, flow string) (FlowStatus, error) {
	fs := FlowStatus{Flow: flow}
	kv, err := js.KeyValue(ctx, bus.Names{Flow: flow}.Bucket())
	if errors.Is(err, jetstream.ErrBucketNotFound) {
		return fs, fmt.Errorf("flow %q has no state on this server", flow)
	}
	if err != nil {
		return fs, fmt.Errorf("flow %s: %w", flow, err)
	}
	st := bus.Store{KV: kv}
	keys, err := kv.ListKeys(ctx)
	if errors.Is(err, jetstream.ErrNoKeysFound) {
		return fs, nil
	}
	if err != nil {
		return fs, fmt.Errorf("flow %s: listing keys: %w", flow, err)
	}
	files := map[string]*FileStatus{}
	groups := map[string][]bus.GroupDelivery{} // by group id
	purged := map[string]bool{}                // by group id
	get := func(id string) *FileStatus {
		if files[id] == nil {
			files[id] = &FileStatus{Manifest: bus.Manifest{ID: id}}
		}
		return files[id]
	}
	for key := range keys.Keys() {
		parts := strings.SplitN(key, ".", 3)
		switch {
		case key == bus.PollKey:
			fs.Poll = &bus.Poll{}
			if _, err := st.Get(ctx, key, fs.Poll); err != nil {
				return fs, err
			}
		case parts[0] == "file" && len(parts) == 2:
			f := get(parts[1])
			if _, err := st.Get(ctx, key, &f.Manifest); err != nil {
				return fs, err
			}
		case parts[0] == "dlv" && len(parts) == 3:
			var d bus.Delivery
			if _, err := st.Get(ctx, key, &d); err != nil {
				return fs, err
			}
			f := get(parts[1])
			f.Deliveries = append(f.Deliveries, d)
		case parts[0] == "grp" && len(parts) == 2:
			var g bus.Group
			if _, err := st.Get(ctx, key, &g); err != nil {
				return fs, err
			}
			purged[parts[1]] = g.Purged
		case parts[0] == "gdlv" && len(parts) == 3:
			var g bus.GroupDelivery
			if _, err := st.Get(ctx, key, &g); err != nil {
				return fs, err
			}
			g.Sink = parts[2]
			groups[parts[1]] = append(groups[parts[1]], g)
		}
	}
	for _, f := range files {
		if f.Manifest.Group != "" {
			fromGroup(f, groups[f.Manifest.Group])
			f.Manifest.Purged = purged[f.Manifest.Group]
		}
	}
	counts := map[string]*SinkCounts{}
	for _, f := range files {
		sort.Slice(f.Deliveries, func(i, j int) bool { return f.Deliveries[i].Sink < f.Deliveries[j].Sink })
		for _, d := range f.Deliveries {
			c := counts[d.Sink]
			if c == nil {
				c = &SinkCounts{Sink: d.Sink}
				counts[d.Sink] = c
			}
			switch d.State {
			case bus.DeliveryCommitted:
				c.Committed++
			case bus.DeliveryFailed:
				c.Failed++
			case bus.DeliverySkipped:
				c.Skipped++
			default:
				c.InFlight++
			}
		}
		fs.Files = append(fs.Files, *f)
	}
	sort.Slice(fs.Files, func(i, j int) bool {
		a, b := fs.Files[i].Manifest, fs.Files[j].Manifest
		if a.Name != b.Name {
			return a.Name < b.Name
		}
		return a.ID < b.ID
	})
	for _, c := range counts {
		fs.Sinks = append(fs.Sinks, *c)
	}
	sort.Slice(fs.Sinks, func(i, j int) bool { return fs.Sinks[i].Sink < fs.Sinks[j].Sink })
	return fs, nil
}

// fromGroup fills in the deliveries of a file that travels in a group from
// the group's records (a sink without one yet has the file pending), and
// its outcome once they are final.
func fromGroup(f *FileStatus, recs []bus.GroupDelivery) {
	m := &f.Manifest
	final := true
	for _, s := range m.Sinks {
		d := bus.Delivery{File: m.ID, Sink: s, Name: m.Name, State: bus.DeliveryPending}
		for _, g := range recs {
			if g.Sink == s {
				d = g.Delivery(m.ID, m.Name)
			}
		}
		final = final && bus.Final(d.State)
		f.Deliveries = append(f.Deliveries, d)
	}
	if final {
		out := outcomeOf(f.Deliveries)
		m.State, m.Outcome, m.Error = bus.FileDone, out.Status.String(), out.Message
	}
}
