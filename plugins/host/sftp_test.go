package host_test

import (
	"context"
	"fmt"
	"path"
	"sync/atomic"
	"testing"

	"github.com/mftflow/mftflow/pipeline"
	"github.com/mftflow/mftflow/testkit"
	"github.com/mftflow/mftflow/testkit/sshd"
)

var sftpDirs atomic.Int64

// sftpConfig is the config of the sftp plugin's connectors for srv, in a
// new empty directory whose name it returns.
func sftpConfig(t *testing.T, srv *sshd.Server) (map[string]any, string) {
	dir := fmt.Sprintf("d%d", sftpDirs.Add(1))
	srv.Mkdir(t, dir)
	return map[string]any{
		"host": srv.Host, "port": srv.Port, "user": srv.User,
		"private_key": srv.ClientKey, "known_hosts": srv.KnownHostsFile,
		"directory": srv.Path(dir),
	}, dir
}

// The SFTP plugin passes the conformance suites unchanged over RPC, against
// a real OpenSSH server.
func TestSFTPPluginConformanceOverRPC(t *testing.T) {
	srv := sshd.Start(t)
	reg, err := load(t, pluginsDir(t, "sftp"), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Run("sink", func(t *testing.T) {
		var dir string
		testkit.RunSinkTests(t, testkit.SinkHarness{
			New: func(t *testing.T) pipeline.Sink {
				var cfg map[string]any
				cfg, dir = sftpConfig(t, srv)
				cfg["part_size"] = "64KiB"
				sk, err := reg.NewSink(context.Background(), "sftp", cfg)
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
			src, err := reg.NewSource(context.Background(), "sftp", cfg)
			if err != nil {
				t.Fatal(err)
			}
			return src
		}
		testkit.RunSourceTests(t, testkit.SourceHarness{
			New: func(t *testing.T, files map[string][]byte) pipeline.Source {
				cfg, dir = sftpConfig(t, srv)
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
