package host_test

import (
	"context"
	"fmt"
	"path"
	"sync/atomic"
	"testing"

	"github.com/mftflow/mftflow/pipeline"
	"github.com/mftflow/mftflow/testkit"
	"github.com/mftflow/mftflow/testkit/ftpd"
)

var ftpsDirs atomic.Int64

// ftpsConfig is the config of the ftps plugin's connectors for srv, in a
// new empty directory whose name it returns.
func ftpsConfig(t *testing.T, srv *ftpd.Server) (map[string]any, string) {
	dir := fmt.Sprintf("d%d", ftpsDirs.Add(1))
	srv.Mkdir(t, dir)
	return map[string]any{
		"host": srv.Host, "port": srv.Port, "user": srv.User, "password": srv.Password,
		"ca_file": srv.CAFile, "directory": srv.Path(dir), "disable_tls13": true,
	}, dir
}

// The FTPS plugin passes the conformance suites unchanged over RPC, against
// a real vsftpd.
func TestFTPSPluginConformanceOverRPC(t *testing.T) {
	srv := ftpd.Start(t, ftpd.Options{})
	reg, err := load(t, pluginsDir(t, "ftps"), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Run("sink", func(t *testing.T) {
		var dir string
		testkit.RunSinkTests(t, testkit.SinkHarness{
			New: func(t *testing.T) pipeline.Sink {
				var cfg map[string]any
				cfg, dir = ftpsConfig(t, srv)
				cfg["part_size"] = "64KiB"
				sk, err := reg.NewSink(context.Background(), "ftps", cfg)
				if err != nil {
					t.Fatal(err)
				}
				return sk
			},
			Read: func(t *testing.T, name string) ([]byte, bool) { return srv.ReadFile(t, path.Join(dir, name)) },
			List: func(t *testing.T) []string { return srv.List(t, dir) },
		})
	})
	t.Run("source", func(t *testing.T) {
		var (
			dir string
			cfg map[string]any
		)
		newSource := func(t *testing.T) pipeline.Source {
			src, err := reg.NewSource(context.Background(), "ftps", cfg)
			if err != nil {
				t.Fatal(err)
			}
			return src
		}
		testkit.RunSourceTests(t, testkit.SourceHarness{
			New: func(t *testing.T, files map[string][]byte) pipeline.Source {
				cfg, dir = ftpsConfig(t, srv)
				cfg["recursive"], cfg["watch"] = true, false
				for name, content := range files {
					srv.WriteFile(t, path.Join(dir, name), content)
				}
				return newSource(t)
			},
			Finite:      true,
			AfterPassed: testkit.KeepsFile,
			Exists:      func(t *testing.T, name string) bool { return srv.Exists(path.Join(dir, name)) },
			Reopen: func(t *testing.T) pipeline.Source {
				src := newSource(t)
				t.Cleanup(func() { src.Close() })
				return src
			},
		})
	})
}
