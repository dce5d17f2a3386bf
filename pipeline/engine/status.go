package engine

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
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
		fs, err := readFlow(ctx, js, f, false)
		if err != nil {
			return nil, err
		}
		out = append(out, fs)
	}
	return out, nil
}

// readFlow reads flow's status; with raw, as stored (errors not redacted,
// a small file's bytes kept), for Replay.
func readFlow(ctx context.Context, js jetstream.JetStream, flow string, raw bool) (FlowStatus, error) {
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
	recs := NewFlowRecords(flow)
	recs.raw = raw
	for key := range keys.Keys() {
		if !StatusKey(key) {
			continue
		}
		var raw json.RawMessage
		rev, err := st.Get(ctx, key, &raw)
		if err != nil {
			return fs, err
		}
		if rev == 0 {
			continue // removed since it was listed
		}
		if err := recs.Put(key, raw); err != nil {
			return fs, err
		}
	}
	return recs.Status(), nil
}

// StatusKey reports whether the record under key in a flow's bucket is one
// a FlowStatus is made of (FlowRecords.Put takes it).
func StatusKey(key string) bool {
	k, ok := bus.ParseKey(key)
	return ok && k.Kind != bus.KeyReplay
}

// FlowRecords holds the records of a flow's KV bucket that its status is
// made of, decoded, and assembles the FlowStatus that ReadStatus returns
// from them. A watcher of the bucket (the console) keeps it up to date with
// Put and Delete as changes come, instead of reading every key again. It is
// not safe for concurrent use.
type FlowRecords struct {
	flow       string
	poll       *bus.Poll
	manifests  map[string]bus.Manifest
	deliveries map[string]map[string]bus.Delivery // by file id and sink
	purged     map[string]bool                    // by group id
	groups     map[string]map[string]bus.GroupDelivery
	raw        bool // keep records as stored (see readFlow)
}

// NewFlowRecords returns an empty FlowRecords for flow.
func NewFlowRecords(flow string) *FlowRecords {
	return &FlowRecords{flow: flow, manifests: map[string]bus.Manifest{}, deliveries: map[string]map[string]bus.Delivery{},
		purged: map[string]bool{}, groups: map[string]map[string]bus.GroupDelivery{}}
}

// Put decodes value, the record stored under key, and keeps it in place of
// the one before. Keys that are no part of a status (see StatusKey) are
// ignored. Errors are kept out of what it holds: they are redacted
// (pipeline.RedactURLs) as they are read, and a small file's bytes are
// dropped.
func (r *FlowRecords) Put(key string, value []byte) error {
	if !StatusKey(key) {
		return nil
	}
	k, _ := bus.ParseKey(key)
	var err error
	switch k.Kind {
	case bus.KeyManifest:
		var m bus.Manifest
		if err = json.Unmarshal(value, &m); err == nil {
			if !r.raw {
				m.Content = nil // a small file's bytes are not status
				m.Error, m.ReadError = pipeline.RedactURLs(m.Error), pipeline.RedactURLs(m.ReadError)
			}
			r.manifests[k.ID] = m
		}
	case bus.KeyDelivery:
		var d bus.Delivery
		if err = json.Unmarshal(value, &d); err == nil {
			if !r.raw {
				d.Error = pipeline.RedactURLs(d.Error)
			}
			put(r.deliveries, k.ID, k.Sink, d)
		}
	case bus.KeyGroup:
		var g bus.Group
		if err = json.Unmarshal(value, &g); err == nil {
			r.purged[k.ID] = g.Purged
		}
	case bus.KeyGroupDelivery:
		var g bus.GroupDelivery
		if err = json.Unmarshal(value, &g); err == nil {
			g.Sink = k.Sink
			put(r.groups, k.ID, k.Sink, g)
		}
	default:
		var p bus.Poll
		if err = json.Unmarshal(value, &p); err == nil {
			r.poll = &p
		}
	}
	if err != nil {
		return fmt.Errorf("decoding %s: %w", key, err)
	}
	return nil
}

func put[V any](m map[string]map[string]V, a, b string, v V) {
	if m[a] == nil {
		m[a] = map[string]V{}
	}
	m[a][b] = v
}

// Delete forgets the record under key.
func (r *FlowRecords) Delete(key string) {
	if !StatusKey(key) {
		return
	}
	k, _ := bus.ParseKey(key)
	switch k.Kind {
	case bus.KeyManifest:
		delete(r.manifests, k.ID)
	case bus.KeyDelivery:
		deleteIn(r.deliveries, k.ID, k.Sink)
	case bus.KeyGroup:
		delete(r.purged, k.ID)
	case bus.KeyGroupDelivery:
		deleteIn(r.groups, k.ID, k.Sink)
	default:
		r.poll = nil
	}
}

func deleteIn[V any](m map[string]map[string]V, a, b string) {
	delete(m[a], b)
	if len(m[a]) == 0 {
		delete(m, a)
	}
}

// Files counts the files the records know of.
func (r *FlowRecords) Files() int { return len(r.manifests) }

// Status assembles the flow's status from the records, as ReadStatus
// returns it: files sorted by name and id, each with its deliveries sorted
// by sink (a file travelling in a group takes them from the group's
// records), and the deliveries counted per sink.
func (r *FlowRecords) Status() FlowStatus {
	fs := FlowStatus{Flow: r.flow}
	if r.poll != nil {
		p := *r.poll
		fs.Poll = &p
	}
	files := make(map[string]*FileStatus, len(r.manifests))
	get := func(id string) *FileStatus {
		if files[id] == nil {
			files[id] = &FileStatus{Manifest: bus.Manifest{ID: id}}
		}
		return files[id]
	}
	for id, m := range r.manifests {
		get(id).Manifest = m
	}
	for id, ds := range r.deliveries {
		f := get(id)
		for _, d := range ds {
			f.Deliveries = append(f.Deliveries, d)
		}
	}
	for _, f := range files {
		if gid := f.Manifest.Group; gid != "" {
			var recs []bus.GroupDelivery
			for _, g := range r.groups[gid] {
				recs = append(recs, g)
			}
			fromGroup(f, recs)
			f.Manifest.Purged = r.purged[gid]
		}
	}
	counts := map[string]*SinkCounts{}
	if len(files) > 0 {
		fs.Files = make([]FileStatus, 0, len(files))
	}
	for _, f := range files {
		slices.SortFunc(f.Deliveries, func(a, b bus.Delivery) int { return strings.Compare(a.Sink, b.Sink) })
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
		if f.Error = failedBeforeDelivery(*f); !r.raw {
			f.Error = pipeline.RedactURLs(f.Error)
		}
		fs.Files = append(fs.Files, *f)
	}
	slices.SortFunc(fs.Files, func(a, b FileStatus) int {
		return cmp.Or(strings.Compare(a.Manifest.Name, b.Manifest.Name), strings.Compare(a.Manifest.ID, b.Manifest.ID))
	})
	for _, c := range counts {
		fs.Sinks = append(fs.Sinks, *c)
	}
	sort.Slice(fs.Sinks, func(i, j int) bool { return fs.Sinks[i].Sink < fs.Sinks[j].Sink })
	return fs
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
