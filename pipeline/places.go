package pipeline

import (
	"errors"
	"fmt"
	"path"
	"strings"
)

// Place is where a source reads or a sink writes, as far as its config
// tells without connecting anywhere.
type Place struct {
	// Store names the storage, so that only places in one store are
	// compared: "file" for the local file system, "s3 ENDPOINT BUCKET" for
	// an S3 bucket.
	Store string
	// Dir is the directory, slash-separated and clean, below which the
	// connector reads or writes: "/data/out" for a local directory,
	// "in/2024" (or "" for the whole bucket) for an S3 prefix. A sink's Dir
	// includes the literal directories its name template starts with.
	Dir string
	// Text describes the place in messages: "local directory /data/out".
	Text string
	// Skips, for a source, reports whether it reads nothing below rel, a
	// directory relative to Dir (slash-separated, never ""): excluded,
	// ignored, or deeper than a source that does not descend. nil: a source
	// reads everything below Dir.
	Skips func(rel string) bool
}

// within reports whether dir is base or lies below it, and the part of dir
// below base ("" when they are equal).
func within(dir, base string) (rel string, ok bool) {
	switch {
	case dir == base:
		return "", true
	case base == "" || base == "/":
		return strings.TrimPrefix(dir, "/"), true
	case strings.HasPrefix(dir, base+"/"):
		return dir[len(base)+1:], true
	}
	return "", false
}

// TemplateDir returns the literal directories a name template starts
// with: "out/{date}/{name}" gives "out", "{name}" and "x{name}" give "".
// A template whose literal part would leave its directory ("../x") gives "".
func TemplateDir(tmpl string) string {
	lit := tmpl
	if i := strings.IndexByte(lit, '{'); i >= 0 {
		lit = lit[:i]
	}
	i := strings.LastIndexByte(lit, '/')
	if i < 0 {
		return ""
	}
	d := path.Clean("/" + lit[:i])
	for _, el := range strings.Split(lit[:i], "/") {
		if el == ".." {
			return ""
		}
	}
	return strings.TrimPrefix(d, "/")
}

// placed is a component with its place, for CheckPlaces.
type placed struct {
	what  string // `sink "a"` or "the source"
	pos   Pos
	place Place
}

func (p placed) at() string {
	if s := p.pos.String(); s != "" {
		return " (" + s + ")"
	}
	return ""
}

// CheckPlaces refuses a flow whose sinks would overwrite each other's files
// or feed its source: two sinks writing into one directory or one inside the
// other (local directories, S3 bucket prefixes), and a sink writing into the
// directory its source reads, unless the source skips it (exclude patterns,
// ignore patterns, a source that does not descend into subdirectories).
// Components built in Go (Instance) and connectors without Spec.Place are
// not checked; neither are configs the spec refuses (ParseConfig reports
// those). Each problem is reported at the position of the later sink, like
// Flow.Check, and names the other component with its position.
func (r *Registry) CheckPlaces(f Flow) error {
	find := func(k Kind, c Component) (Place, bool) {
		if c.Instance != nil || c.Type == "" {
			return Place{}, false
		}
		spec, ok := r.Lookup(k, c.Type)
		if !ok || spec.Place == nil {
			return Place{}, false
		}
		cfg, err := ParseConfig(spec, c.Config)
		if err != nil {
			return Place{}, false
		}
		return spec.Place(cfg)
	}
	var errs []error
	add := func(p Pos, format string, args ...any) {
		msg := fmt.Sprintf(format, args...)
		if s := p.String(); s != "" {
			msg = s + ": " + msg
		}
		errs = append(errs, errors.New(msg))
	}
	const clash = "the two would overwrite each other's files and deliveries would fail with parts missing"
	src, srcOK := find(KindSource, f.Source)
	source := placed{what: "the source", pos: f.Source.Pos, place: src}
	var sinks []placed
	named := f.WithDefaults().Sinks // named as in status output
	if len(named) > MaxSinks {
		named = named[:MaxSinks] // Check refuses the flow; keep this quadratic loop small
	}
	for _, s := range named {
		p, ok := find(KindSink, s.Component)
		if !ok {
			continue
		}
		this := placed{what: fmt.Sprintf("sink %q", s.Name), pos: s.Pos, place: p}
		for _, other := range sinks {
			if other.place.Store != p.Store {
				continue
			}
			switch _, below := within(p.Dir, other.place.Dir); {
			case p.Dir == other.place.Dir:
				add(this.pos, "%s writes into %s, as %s does%s: %s; give each sink its own place",
					this.what, p.Text, other.what, other.at(), clash)
			case below:
				add(this.pos, "%s writes into %s, inside %s of %s%s: %s; give each sink its own place, not one inside the other",
					this.what, p.Text, other.place.Text, other.what, other.at(), clash)
			default:
				if _, above := within(other.place.Dir, p.Dir); above {
					add(this.pos, "%s writes into %s, which holds %s of %s%s: %s; give each sink its own place, not one inside the other",
						this.what, p.Text, other.place.Text, other.what, other.at(), clash)
				}
			}
		}
		sinks = append(sinks, this)
		if !srcOK || src.Store != p.Store {
			continue
		}
		rel, below := within(p.Dir, src.Dir)
		if !below || (rel != "" && src.Skips != nil && src.Skips(rel)) {
			continue
		}
		fix := "write elsewhere"
		if rel != "" {
			fix += fmt.Sprintf(", or exclude it from the source (exclude: [%q])", rel+"/**")
		}
		add(this.pos, "%s writes into %s, which %s reads%s: every file delivered would be read again, in a loop; %s",
			this.what, p.Text, source.what, source.at(), fix)
	}
	return errors.Join(errs...)
}
