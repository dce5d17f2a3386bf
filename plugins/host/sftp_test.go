package host_test

import (
	"context"
	"maps"
	"path"
	"testing"

	"github.com/mftflow/mftflow/connectors/sftp"
	"github.com/mftflow/mftflow/pipeline"
	"github.com/mftflow/mftflow/testkit"
	"github.com/mftflow/mftflow/testkit/sshd"
)

// remoteConformanceOverRPC runs the conformance suites over RPC on the
// plugin connector name of reg, configured by base and a new empty
// directory of served for each subtest.
func remoteConformanceOverRPC(t *testing.T, reg *pipeline.Registry, name string, served testkit.UserDir, base map[string]any) {
	config := func(t *testing.T) (map[string]any, string) {
		dir := served.FreshDir(t, "d")
		cfg := maps.Clone(base)
		cfg["directory"] = served.Path(dir)
		return cfg, dir
	}
	t.Run("sink", func(t *testing.T) {
		var dir string
		testkit.RunSinkTests(t, testkit.SinkHarness{
			New: func(t *testing.T) pipeline.Sink {
				var cfg map[string]any
				cfg, dir = config(t)
				cfg["part_size"] = "64KiB"
				sk, err := reg.NewSink(context.Background(), name, cfg)
				if err != nil {
					t.Fatal(err)
				}
				return sk
			},
			Read: func(t *testing.T, file string) ([]byte, bool) { return served.ReadFile(t, path.Join(dir, file)) },
			List: func(t *testing.T) []string { return served.List(t, dir) },
		})
	})
	t.Run("source", func(t *testing.T) {
		var (
			dir string
			cfg map[string]any
		)
		newSource := func(t *testing.T) pipeline.Source {
			src, err := reg.NewSource(context.Background(), name, cfg)
			if err != nil {
				t.Fatal(err)
			}
			return src
		}
		testkit.RunSourceTests(t, testkit.SourceHarness{
			New: func(t *testing.T, files map[string][]byte) pipeline.Source {
				cfg, dir = config(t)
				cfg["recursive"], cfg["watch"] = true, false
				for file, content := range files {
					served.WriteFile(t, path.Join(dir, file), content)
				}
				return newSource(t)
			},
			Finite:      true,
			AfterPassed: testkit.KeepsFile,
			Exists:      func(t *testing.T, file string) bool { return served.Exists(path.Join(dir, file)) },
			Reopen: func(t *testing.T) pipeline.Source {
				src := newSource(t)
				t.Cleanup(func() { src.Close() })
				return src
			},
		})
	})
}

// The SFTP plugin passes the conformance suites unchanged over RPC, against
// a real OpenSSH server.
func TestSFTPPluginConformanceOverRPC(t *testing.T) {
	srv := sshd.Start(t)
	reg, err := load(t, pluginsDir(t, "sftp"), nil)
	if err != nil {
		t.Fatal(err)
	}
	remoteConformanceOverRPC(t, reg, "sftp", srv.UserDir, map[string]any{
		"host": srv.Host, "port": srv.Port, "user": srv.User,
		"private_key": srv.ClientKey, "known_hosts": srv.KnownHostsFile,
	})
}

// remoteSiblingsOverRPC runs the sibling suite over RPC on the plugin
// source name of reg, configured by base, in a new directory of served for
// each subtest: items open the files beside them, a missing one is
// fs.ErrNotExist on this side, and the outcome's attributes reach the
// plugin's Ack, which applies the after action to the companions they list.
func remoteSiblingsOverRPC(t *testing.T, reg *pipeline.Registry, name string, served testkit.UserDir, base map[string]any) {
	var dir string
	testkit.RunSiblingTests(t, testkit.SiblingHarness{
		New: func(t *testing.T, after string, files map[string][]byte) pipeline.Source {
			dir = served.FreshDir(t, "s")
			for file, content := range files {
				served.WriteFile(t, path.Join(dir, "in", file), content)
			}
			cfg := maps.Clone(base)
			cfg["directory"], cfg["archive_dir"] = served.Path(dir+"/in"), served.Path(dir+"/archive")
			cfg["recursive"], cfg["watch"], cfg["stable_for"], cfg["after"] = true, false, "0s", after
			src, err := reg.NewSource(context.Background(), name, cfg)
			if err != nil {
				t.Fatal(err)
			}
			return src
		},
		Exists:   func(t *testing.T, file string) bool { return served.Exists(path.Join(dir, "in", file)) },
		Archived: func(t *testing.T, file string) bool { return served.Exists(path.Join(dir, "archive", file)) },
	})
}

// The SFTP plugin's items open the files beside them and have their
// companions follow the after action over RPC, as they do in process.
func TestSFTPPluginSiblingsOverRPC(t *testing.T) {
	srv := sshd.Start(t)
	reg, err := load(t, pluginsDir(t, "sftp"), nil)
	if err != nil {
		t.Fatal(err)
	}
	base := map[string]any{
		"host": srv.Host, "port": srv.Port, "user": srv.User,
		"private_key": srv.ClientKey, "known_hosts": srv.KnownHostsFile,
	}
	t.Run("abilities", func(t *testing.T) {
		inProcess := pipeline.NewRegistry()
		if err := sftp.Register(inProcess); err != nil {
			t.Fatal(err)
		}
		dir := srv.FreshDir(t, "a")
		srv.WriteFile(t, path.Join(dir, "a.txt"), []byte("a"))
		cfg := maps.Clone(base)
		cfg["directory"], cfg["watch"], cfg["stable_for"] = srv.Path(dir), false, "0s"
		sameAbilities(t, firstItem(t, reg, "sftp", cfg), firstItem(t, inProcess, "sftp", cfg))
	})
	remoteSiblingsOverRPC(t, reg, "sftp", srv.UserDir, base)
}
