package main

import (
	"context"
	"errors"
	"fmt"

	"github.com/mftflow/mftflow/connectors/all"
	"github.com/mftflow/mftflow/pipeline"
	"github.com/mftflow/mftflow/plugins/host"
)

// defaultPluginsDir is where the runner looks for plugin binaries unless
// --plugins-dir says otherwise. It may be absent.
const defaultPluginsDir = "./plugins.d"

// registry returns every built-in connector plus the plugins of
// --plugins-dir. A plugin that cannot be loaded is an error naming its file.
func (g *globalOptions) registry(ctx context.Context) (*pipeline.Registry, error) {
	reg, err := all.Registry()
	if err != nil {
		return nil, err
	}
	plugins, derr := host.Discover(ctx, g.pluginsDir, g.logger)
	rerr := host.Register(reg, plugins, g.logger)
	if err := errors.Join(derr, rerr); err != nil {
		return nil, fmt.Errorf("loading plugins from %s (--plugins-dir):\n%w", g.pluginsDir, err)
	}
	return reg, nil
}
