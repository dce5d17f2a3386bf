package host

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/mftflow/mftflow/pipeline"
	pb "github.com/mftflow/mftflow/plugins/internal/pluginpb"
	"github.com/mftflow/mftflow/plugins/internal/wire"
)

// Plugin is a plugin binary and the connectors it provides.
type Plugin struct {
	Path    string
	Version string
	Specs   []pipeline.Spec
}

// Discover reads the specs of every plugin in dir. Hidden files and
// directories are ignored; every other file must be a plugin. Problems are
// reported together, one per file, and the good plugins are returned with
// them. A directory that does not exist holds no plugins.
func Discover(ctx context.Context, dir string, log *slog.Logger) ([]Plugin, error) {
	entries, err := os.ReadDir(dir)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("plugins directory: %w", err)
	}
	var (
		plugins []Plugin
		errs    []error
	)
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), ".") || e.IsDir() {
			continue
		}
		path, err := filepath.Abs(filepath.Join(dir, e.Name()))
		if err == nil {
			var p Plugin
			if p, err = describe(ctx, path, log); err == nil {
				plugins = append(plugins, p)
				continue
			}
		}
		errs = append(errs, err)
	}
	return plugins, errors.Join(errs...)
}

// describe starts the plugin at path, reads its specs and stops it.
func describe(ctx context.Context, path string, log *slog.Logger) (Plugin, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return Plugin{}, fmt.Errorf("plugin %s: %w", path, err)
	}
	if !fi.Mode().IsRegular() || fi.Mode().Perm()&0o111 == 0 {
		return Plugin{}, fmt.Errorf("plugin %s: not executable (mode %s): make it executable (chmod +x) or move it out of the plugins directory", path, fi.Mode())
	}
	s, err := start(path, nil, nil, log)
	if err != nil {
		return Plugin{}, err
	}
	defer s.client.Kill()
	resp, err := pb.NewPluginClient(s.conn).Describe(ctx, &pb.DescribeRequest{})
	if err != nil {
		return Plugin{}, fmt.Errorf("plugin %s: describing its connectors: %w", path, wire.ErrorFromStatus(err))
	}
	p := Plugin{Path: path, Version: resp.Version}
	if len(resp.Connectors) == 0 {
		return Plugin{}, fmt.Errorf("plugin %s: provides no connectors: register at least one in the registry passed to sdk.Serve", path)
	}
	for _, m := range resp.Connectors {
		spec := wire.SpecFromPB(m)
		switch spec.Kind {
		case pipeline.KindSource, pipeline.KindStage, pipeline.KindSink:
		default:
			return Plugin{}, fmt.Errorf("plugin %s: connector %q has unknown kind %q", path, spec.Name, spec.Kind)
		}
		if _, clash := spec.Field(PinField); clash {
			return Plugin{}, fmt.Errorf("plugin %s: connector %q declares the field %q, which the runner reserves", path, spec.Name, PinField)
		}
		spec.Origin = path
		p.Specs = append(p.Specs, spec)
	}
	sort.Slice(p.Specs, func(i, j int) bool { return p.Specs[i].Name < p.Specs[j].Name })
	return p, nil
}

// PinField is the config field every plugin connector gets: the sha256 the
// plugin binary must have.
const PinField = "plugin_sha256"

var pinDoc = `pin the plugin binary: "sha256:<hex>" (sha256sum of the file); the runner refuses to start a binary that differs`

// Register adds the connectors of plugins to r. A plugin whose spec is
// invalid or whose connector name is taken is reported by path; the others
// are still added.
func Register(r *pipeline.Registry, plugins []Plugin, log *slog.Logger) error {
	var errs []error
	for _, pl := range plugins {
		for _, spec := range pl.Specs {
			if err := register(r, pl, spec, log); err != nil {
				errs = append(errs, fmt.Errorf("plugin %s: %w", pl.Path, err))
			}
		}
	}
	return errors.Join(errs...)
}

func register(r *pipeline.Registry, pl Plugin, spec pipeline.Spec, log *slog.Logger) error {
	if taken, ok := r.Lookup(spec.Kind, spec.Name); ok {
		owner := fmt.Sprintf("the built-in %s %q", spec.Kind, spec.Name)
		if taken.Origin != "" && taken.Origin != "built-in" {
			owner = fmt.Sprintf("the %s %q of plugin %s", spec.Kind, spec.Name, taken.Origin)
		}
		return fmt.Errorf("%s %q clashes with %s: rename the connector in the plugin", spec.Kind, spec.Name, owner)
	}
	spec.Fields = append(spec.Fields, pipeline.Field{Name: PinField, Type: pipeline.TypeString, Doc: pinDoc})
	if pl.Version != "" {
		spec.Summary = strings.TrimSpace(spec.Summary + " (plugin version " + pl.Version + ")")
	}
	newProcess := func(c pipeline.Config) (*process, error) {
		values := c.Values()
		pin, err := parsePin(spec.Name, values[PinField].(string))
		if err != nil {
			return nil, err
		}
		delete(values, PinField)
		config, err := wire.ConfigToPB(values)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", spec.Name, err)
		}
		return &process{path: pl.Path, pin: pin, log: log, kind: spec.Kind, name: spec.Name, config: config}, nil
	}
	// The process starts now, so that a bad config or a binary that does
	// not match its pin is reported when the flow starts.
	started := func(ctx context.Context, c pipeline.Config) (*process, error) {
		p, err := newProcess(c)
		if err != nil {
			return nil, err
		}
		if _, _, err := p.conn(ctx); err != nil {
			return nil, err
		}
		return p, nil
	}
	var err error
	switch spec.Kind {
	case pipeline.KindSource:
		err = r.RegisterSource(spec, func(ctx context.Context, c pipeline.Config) (pipeline.Source, error) {
			p, err := started(ctx, c)
			if err != nil {
				return nil, err
			}
			return &source{p}, nil
		})
	case pipeline.KindStage:
		err = r.RegisterStage(spec, func(ctx context.Context, c pipeline.Config) (pipeline.Stage, error) {
			p, err := started(ctx, c)
			if err != nil {
				return nil, err
			}
			return &stage{p}, nil
		})
	default:
		err = r.RegisterSink(spec, func(ctx context.Context, c pipeline.Config) (pipeline.Sink, error) {
			p, err := started(ctx, c)
			if err != nil {
				return nil, err
			}
			return &sink{p}, nil
		})
	}
	if err != nil {
		return fmt.Errorf("invalid spec: %w", err)
	}
	return nil
}

// parsePin parses a plugin_sha256 value; "" is no pin.
func parsePin(connector, v string) ([]byte, error) {
	if v == "" {
		return nil, nil
	}
	hexSum, ok := strings.CutPrefix(v, "sha256:")
	sum, err := hex.DecodeString(hexSum)
	if !ok || err != nil || len(sum) != 32 {
		return nil, &pipeline.FieldError{Connector: connector, Field: PinField, Err: errors.New(`want "sha256:" and 64 hex digits, as sha256sum prints them`)}
	}
	return sum, nil
}
