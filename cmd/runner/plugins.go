package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"

	"github.com/mftflow/mftflow/connectors/all"
	"github.com/mftflow/mftflow/pipeline"
	"github.com/mftflow/mftflow/plugins/host"
)

// pluginsDirName is the plugins directory the runner looks for, unless
// --plugins-dir names one: beside its own executable (where `make plugins`
// puts the shipped SFTP and FTPS connectors) and in the working directory.
const pluginsDirName = "plugins.d"

// registry returns every built-in connector plus the plugins found. A
// plugin that cannot be loaded is an error naming its file.
func (g *globalOptions) registry(ctx context.Context) (*pipeline.Registry, error) {
	reg, err := all.Registry()
	if err != nil {
		return nil, err
	}
	var plugins []host.Plugin
	for _, dir := range g.pluginsDirs() {
		found, err := host.Discover(ctx, dir, g.logger)
		if err != nil {
			return nil, g.pluginsError(dir, err)
		}
		plugins = append(plugins, found...)
	}
	if err := host.Register(reg, plugins, g.logger); err != nil {
		return nil, g.pluginsError("", err) // each error names its plugin's path
	}
	return reg, nil
}

// pluginsDirs lists the directories plugins are loaded from: --plugins-dir
// alone when given, else the default ones that exist, each once.
func (g *globalOptions) pluginsDirs() []string {
	if g.pluginsDir != "" {
		return []string{g.pluginsDir}
	}
	var dirs []string
	var seen []os.FileInfo
	candidates := []string{pluginsDirName}
	if exe, err := os.Executable(); err == nil {
		if exe, err = filepath.EvalSymlinks(exe); err == nil {
			candidates = append([]string{filepath.Join(filepath.Dir(exe), pluginsDirName)}, candidates...)
		}
	}
	for _, dir := range candidates {
		fi, err := os.Stat(dir)
		if err != nil || !fi.IsDir() {
			continue
		}
		dup := false
		for _, s := range seen {
			dup = dup || os.SameFile(s, fi)
		}
		if !dup {
			seen = append(seen, fi)
			dirs = append(dirs, dir)
		}
	}
	return dirs
}

func (g *globalOptions) pluginsError(dir string, err error) error {
	if g.pluginsDir != "" {
		return fmt.Errorf("loading plugins from %s (--plugins-dir):\n%w", g.pluginsDir, err)
	}
	if dir == "" {
		return fmt.Errorf("loading plugins:\n%w", err)
	}
	return fmt.Errorf("loading plugins from %s:\n%w", dir, err)
}
