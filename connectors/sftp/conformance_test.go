package sftp

import (
	"context"
	"path"
	"testing"

	"github.com/mftflow/mftflow/pipeline"
	"github.com/mftflow/mftflow/testkit"
	"github.com/mftflow/mftflow/testkit/sshd"
)

func TestSinkConformance(t *testing.T) {
	srv := sshd.Start(t)
	var dir string
	testkit.RunSinkTests(t, testkit.SinkHarness{
		New: func(t *testing.T) pipeline.Sink {
			dir = srv.FreshDir(t, "sink")
			// Small parts keep the suite quick; the part logic is the same.
			return newTestSink(t, SinkConfig{ConnConfig: connConfig(srv), Directory: srv.Path(dir), PartSize: 64 << 10})
		},
		Read: func(t *testing.T, name string) ([]byte, bool) {
			return srv.ReadFile(t, path.Join(dir, name))
		},
		List: func(t *testing.T) []string {
			return srv.List(t, dir)
		},
	})
}

func TestSourceConformance(t *testing.T) {
	srv := sshd.Start(t)
	var dir string
	var cfg SourceConfig
	testkit.RunSourceTests(t, testkit.SourceHarness{
		New: func(t *testing.T, files map[string][]byte) pipeline.Source {
			dir = srv.FreshDir(t, "source")
			for name, content := range files {
				srv.WriteFile(t, path.Join(dir, name), content)
			}
			// A file outside the directory is never offered.
			srv.WriteFile(t, "elsewhere.txt", []byte("not below the directory"))
			cfg = SourceConfig{ConnConfig: connConfig(srv), Directory: srv.Path(dir), Polling: pipeline.Polling{Recursive: true}}
			return newTestSource(t, cfg)
		},
		Finite:      true,
		AfterPassed: testkit.KeepsFile,
		Exists: func(t *testing.T, name string) bool {
			return srv.Exists(path.Join(dir, name))
		},
		Reopen: func(t *testing.T) pipeline.Source {
			src, err := NewSource(context.Background(), cfg)
			if err != nil {
				t.Fatal(err)
			}
			return src
		},
	})
}
