package ftps

import (
	"path"
	"testing"

	"github.com/mftflow/mftflow/pipeline"
	"github.com/mftflow/mftflow/testkit"
	"github.com/mftflow/mftflow/testkit/ftpd"
)

// TestSourceSiblings checks that items open the files beside them and that
// the after actions follow a file's companions.
func TestSourceSiblings(t *testing.T) {
	srv := ftpd.Start(t, ftpd.Options{})
	var dir string
	testkit.RunSiblingTests(t, testkit.SiblingHarness{
		New: func(t *testing.T, after string, files map[string][]byte) pipeline.Source {
			dir = srv.FreshDir(t, "siblings")
			for name, content := range files {
				srv.WriteFile(t, path.Join(dir, "in", name), content)
			}
			return newTestSource(t, SourceConfig{ConnConfig: connConfig(srv, TLSExplicit), Directory: srv.Path(dir + "/in"),
				Polling: pipeline.Polling{Recursive: true, After: after, ArchiveDir: srv.Path(dir + "/archive")}})
		},
		Exists:   func(t *testing.T, name string) bool { return srv.Exists(path.Join(dir, "in", name)) },
		Archived: func(t *testing.T, name string) bool { return srv.Exists(path.Join(dir, "archive", name)) },
	})
}
