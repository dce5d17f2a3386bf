package s3

import (
	"context"
	"testing"

	"github.com/mftflow/mftflow/pipeline"
	"github.com/mftflow/mftflow/testkit"
	"github.com/mftflow/mftflow/testkit/minio"
)

func TestSinkConformance(t *testing.T) {
	srv := minio.StartMinIO(t)
	var bucket string
	testkit.RunSinkTests(t, testkit.SinkHarness{
		New: func(t *testing.T) pipeline.Sink {
			bucket = srv.NewBucket(t)
			// The smallest part S3 allows keeps the suite's files small.
			return newTestSink(t, SinkConfig{ClientConfig: clientConfig(srv, bucket), PartSize: MinPartSize, SmallFileSize: DefaultSmallFileSize})
		},
		Read: func(t *testing.T, name string) ([]byte, bool) {
			return getObject(t, srv, bucket, name)
		},
		List: func(t *testing.T) []string {
			return listAll(t, srv, bucket)
		},
	})
}

func TestSourceConformance(t *testing.T) {
	srv := minio.StartMinIO(t)
	var cfg SourceConfig
	testkit.RunSourceTests(t, testkit.SourceHarness{
		New: func(t *testing.T, files map[string][]byte) pipeline.Source {
			bucket := srv.NewBucket(t)
			for name, content := range files {
				putObject(t, srv, bucket, "in/"+name, content)
			}
			// An object outside the prefix is never offered.
			putObject(t, srv, bucket, "elsewhere.txt", []byte("not below the prefix"))
			cfg = SourceConfig{ClientConfig: clientConfig(srv, bucket), Prefix: "in", Watch: false}
			src, err := NewSource(t.Context(), cfg)
			if err != nil {
				t.Fatal(err)
			}
			return src
		},
		Finite:      true,
		AfterPassed: testkit.KeepsFile,
		Exists: func(t *testing.T, name string) bool {
			_, ok := getObject(t, srv, cfg.Bucket, "in/"+name)
			return ok
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

func TestSourceSiblings(t *testing.T) {
	srv := minio.StartMinIO(t)
	var bucket string
	testkit.RunSiblingTests(t, testkit.SiblingHarness{
		New: func(t *testing.T, after string, files map[string][]byte) pipeline.Source {
			bucket = srv.NewBucket(t)
			for name, content := range files {
				putObject(t, srv, bucket, "in/"+name, content)
			}
			src, err := NewSource(t.Context(), SourceConfig{ClientConfig: clientConfig(srv, bucket), Prefix: "in", After: after, ArchivePrefix: "archive"})
			if err != nil {
				t.Fatal(err)
			}
			return src
		},
		Exists: func(t *testing.T, name string) bool {
			_, ok := getObject(t, srv, bucket, "in/"+name)
			return ok
		},
		Archived: func(t *testing.T, name string) bool {
			_, ok := getObject(t, srv, bucket, "archive/"+name)
			return ok
		},
	})
}
