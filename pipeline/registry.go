package pipeline

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"sync"
)

// Kind is what a connector provides.
type Kind string

const (
	KindSource Kind = "source"
	KindStage  Kind = "stage"
	KindSink   Kind = "sink"
)

// Spec documents a connector: its name, what it does and its config fields.
// The runner's "connectors" and "validate" commands are built from specs.
type Spec struct {
	Name    string
	Kind    Kind
	Summary string
	Fields  []Field
	// Options, when set, is a value of the struct a connector decodes its
	// config into (see Decode): registration fails unless its `config` tags
	// and Fields match one to one, with matching Go types.
	Options any
	// Origin says where the connector comes from: "built-in" or a plugin path.
	Origin string
	// Check, when set, checks a parsed config for what the field types do
	// not say: a regular expression that does not compile, an unknown
	// placeholder in a template, a level out of range, a directory that
	// does not exist. It must not change anything nor connect anywhere
	// (reading the local file system is fine): "runner validate" calls it.
	// Problems with one field are *FieldError values (several joined with
	// errors.Join), so a flow file can point at the field's value.
	Check func(Config) error
	// Place, when set, tells where the connector reads or writes with this
	// config, as far as the config says. "runner validate" uses it to
	// refuse two sinks that write into one place and a sink that writes
	// where the source reads (see Registry.CheckPlaces). ok is false when
	// the config does not say.
	Place func(Config) (p Place, ok bool)
	// Rereads, on a source whose connector can read a file again by its key
	// (Rereader), tells whether it can with this config on every host (true)
	// or only on this one (false). nil: the source cannot, and its files
	// travel by bytes (bus.payload).
	Rereads func(Config) (anywhere bool)
	// KeepsContent is set on a stage that never changes nor reads a file's
	// bytes (ContentKeeper), which allows bus.payload reference.
	KeepsContent bool
	// Queue is set on a source that hands each file out once, as a queue
	// does (the Thru pickup); see HandsOutOnce.
	Queue bool
}

// Field returns the field called name.
func (s Spec) Field(name string) (Field, bool) {
	for _, f := range s.Fields {
		if f.Name == name {
			return f, true
		}
	}
	return Field{}, false
}

// Constructors build a connector from its parsed config.
type (
	SourceConstructor func(ctx context.Context, c Config) (Source, error)
	StageConstructor  func(ctx context.Context, c Config) (Stage, error)
	SinkConstructor   func(ctx context.Context, c Config) (Sink, error)
)

type entry struct {
	spec   Spec
	source SourceConstructor
	stage  StageConstructor
	sink   SinkConstructor
}

// Registry maps connector names to specs and constructors. The zero value is
// not usable; call NewRegistry. A Registry is safe for concurrent use. Tests
// build their own; the runner builds one with every built-in connector.
type Registry struct {
	mu      sync.RWMutex
	entries map[Kind]map[string]entry
}

// NewRegistry returns an empty registry.
func NewRegistry() *Registry {
	return &Registry{entries: map[Kind]map[string]entry{}}
}

func (r *Registry) add(e entry) error {
	if err := e.spec.validate(); err != nil {
		return err
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	byName := r.entries[e.spec.Kind]
	if byName == nil {
		byName = map[string]entry{}
		r.entries[e.spec.Kind] = byName
	}
	if old, dup := byName[e.spec.Name]; dup {
		return fmt.Errorf("registering %s %q from %s: the name is taken by %s", e.spec.Kind, e.spec.Name, originOf(e.spec), originOf(old.spec))
	}
	byName[e.spec.Name] = e
	return nil
}

func originOf(s Spec) string {
	if s.Origin == "" {
		return "built-in"
	}
	return s.Origin
}

// RegisterSource adds a source connector. It fails if the name is taken or the
// spec is invalid.
func (r *Registry) RegisterSource(s Spec, c SourceConstructor) error {
	s.Kind = KindSource
	return r.add(entry{spec: s, source: c})
}

// RegisterStage adds a stage.
func (r *Registry) RegisterStage(s Spec, c StageConstructor) error {
	s.Kind = KindStage
	return r.add(entry{spec: s, stage: c})
}

// RegisterSink adds a sink connector.
func (r *Registry) RegisterSink(s Spec, c SinkConstructor) error {
	s.Kind = KindSink
	return r.add(entry{spec: s, sink: c})
}

// Lookup returns the spec of the connector of kind k called name.
func (r *Registry) Lookup(k Kind, name string) (Spec, bool) {
	r.mu.RLock()
	defer r.mu.RUnlock()
	e, ok := r.entries[k][name]
	return e.spec, ok
}

// Specs returns every spec of kind k, sorted by name.
func (r *Registry) Specs(k Kind) []Spec {
	r.mu.RLock()
	defer r.mu.RUnlock()
	specs := make([]Spec, 0, len(r.entries[k]))
	for _, e := range r.entries[k] {
		specs = append(specs, e.spec)
	}
	sort.Slice(specs, func(i, j int) bool { return specs[i].Name < specs[j].Name })
	return specs
}

// Names returns the names of every connector of kind k, sorted.
func (r *Registry) Names(k Kind) []string {
	specs := r.Specs(k)
	names := make([]string, len(specs))
	for i, s := range specs {
		names[i] = s.Name
	}
	return names
}

// UnknownError is returned for a connector name the registry does not know.
type UnknownError struct {
	Kind  Kind
	Name  string
	Known []string
}

func (e *UnknownError) Error() string {
	known := "none"
	if len(e.Known) > 0 {
		known = strings.Join(e.Known, ", ")
	}
	return fmt.Sprintf("unknown %s connector %q (known: %s)", e.Kind, e.Name, known)
}

func (r *Registry) get(k Kind, name string) (entry, error) {
	r.mu.RLock()
	e, ok := r.entries[k][name]
	r.mu.RUnlock()
	if !ok {
		return entry{}, &UnknownError{Kind: k, Name: name, Known: r.Names(k)}
	}
	return e, nil
}

// NewSource parses raw against the source's spec and builds it.
func (r *Registry) NewSource(ctx context.Context, name string, raw map[string]any) (Source, error) {
	e, c, err := r.parse(KindSource, name, raw)
	if err != nil {
		return nil, err
	}
	return e.source(ctx, c)
}

// NewStage parses raw against the stage's spec and builds it.
func (r *Registry) NewStage(ctx context.Context, name string, raw map[string]any) (Stage, error) {
	e, c, err := r.parse(KindStage, name, raw)
	if err != nil {
		return nil, err
	}
	return e.stage(ctx, c)
}

// NewSink parses raw against the sink's spec and builds it.
func (r *Registry) NewSink(ctx context.Context, name string, raw map[string]any) (Sink, error) {
	e, c, err := r.parse(KindSink, name, raw)
	if err != nil {
		return nil, err
	}
	return e.sink(ctx, c)
}

func (r *Registry) parse(k Kind, name string, raw map[string]any) (entry, Config, error) {
	e, err := r.get(k, name)
	if err != nil {
		return entry{}, Config{}, err
	}
	c, err := ParseConfig(e.spec, raw)
	if err != nil {
		return entry{}, Config{}, err
	}
	return e, c, nil
}
