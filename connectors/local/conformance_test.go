package local

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/mftflow/mftflow/pipeline"
	"github.com/mftflow/mftflow/testkit"
)

func TestSourceConformance(t *testing.T) {
	var dir string
	var cfg SourceConfig
	testkit.RunSourceTests(t, testkit.SourceHarness{
		New: func(t *testing.T, files map[string][]byte) pipeline.Source {
			asText := make(map[string]string, len(files))
			for name, b := range files {
				asText[name] = string(b)
			}
			var src *Source
			src, dir = newTestSource(t, asText, func(c *SourceConfig) {
				c.Ignore = nil
				cfg = *c
			})
			return src
		},
		Finite:      true,
		AfterPassed: testkit.KeepsFile,
		Exists: func(t *testing.T, name string) bool {
			_, err := os.Stat(filepath.Join(dir, filepath.FromSlash(name)))
			return err == nil
		},
		Reopen: func(t *testing.T) pipeline.Source {
			src, err := NewSource(context.Background(), cfg)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { src.Close() })
			return src
		},
	})
}

func TestSourceSiblings(t *testing.T) {
	var dir, archive string
	testkit.RunSiblingTests(t, testkit.SiblingHarness{
		New: func(t *testing.T, after string, files map[string][]byte) pipeline.Source {
			asText := make(map[string]string, len(files))
			for name, b := range files {
				asText[name] = string(b)
			}
			archive = t.TempDir()
			var src *Source
			src, dir = newTestSource(t, asText, func(c *SourceConfig) {
				c.Ignore = nil
				c.After, c.ArchiveDir = after, archive
			})
			return src
		},
		Exists: func(t *testing.T, name string) bool {
			_, err := os.Stat(filepath.Join(dir, filepath.FromSlash(name)))
			return err == nil
		},
		Archived: func(t *testing.T, name string) bool {
			_, err := os.Stat(filepath.Join(archive, filepath.FromSlash(name)))
			return err == nil
		},
	})
}

func TestSinkConformance(t *testing.T) {
	var dir string
	testkit.RunSinkTests(t, testkit.SinkHarness{
		New: func(t *testing.T) pipeline.Sink {
			dir = t.TempDir()
			// Small parts keep the suite quick; the part logic is the same.
			return newTestSink(t, SinkConfig{Path: dir, Name: "{name}", Overwrite: OverwriteReplace, PartSize: 64 << 10})
		},
		Read: func(t *testing.T, name string) ([]byte, bool) {
			b, err := os.ReadFile(filepath.Join(dir, filepath.FromSlash(name)))
			return b, err == nil
		},
		List: func(t *testing.T) []string { return testkit.ListFiles(dir) },
	})
}
