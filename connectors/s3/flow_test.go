package s3_test

import (
	"context"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awss3 "github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/mftflow/mftflow/connectors/local"
	"github.com/mftflow/mftflow/connectors/s3"
	"github.com/mftflow/mftflow/pipeline"
	"github.com/mftflow/mftflow/pipeline/engine"
	"github.com/mftflow/mftflow/pipeline/flowfile"
	"github.com/mftflow/mftflow/pipeline/stages"
	"github.com/mftflow/mftflow/testkit"
	"github.com/mftflow/mftflow/testkit/minio"
)

func registry(t *testing.T) *pipeline.Registry {
	t.Helper()
	reg := pipeline.NewRegistry()
	if err := local.Register(reg); err != nil {
		t.Fatal(err)
	}
	if err := s3.Register(reg); err != nil {
		t.Fatal(err)
	}
	if err := stages.Register(reg); err != nil {
		t.Fatal(err)
	}
	return reg
}

// s3Config is the flow-file config of bucket on srv.
func s3Config(srv *minio.Server, extra map[string]any) map[string]any {
	c := map[string]any{
		"bucket":            srv.Bucket,
		"endpoint":          srv.Endpoint,
		"path_style":        true,
		"region":            minio.Region,
		"access_key_id":     minio.AccessKey,
		"secret_access_key": minio.SecretKey,
	}
	for k, v := range extra {
		c[k] = v
	}
	return c
}

func flowFiles() map[string][]byte {
	return map[string][]byte{
		"empty.dat":       {},
		"one.txt":         []byte("1"),
		"dir/chunked.bin": testkit.RandomContent(1, 3<<20+17),
		"dir/sub/big.bin": testkit.RandomContent(2, 13<<20+5), // several range reads, several 5 MiB parts
	}
}

func run(t *testing.T, f pipeline.Flow) *engine.Run {
	t.Helper()
	return testkit.RunFlow(t, registry(t), f)
}

func readDir(t *testing.T, dir string) map[string][]byte {
	t.Helper()
	got := map[string][]byte{}
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		b, err := os.ReadFile(p)
		got[filepath.ToSlash(rel)] = b
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return got
}

func checkSame(t *testing.T, got, want map[string][]byte) {
	t.Helper()
	if len(got) != len(want) {
		t.Errorf("got %d files, want %d", len(got), len(want))
	}
	for name, w := range want {
		g, ok := got[name]
		if !ok {
			t.Errorf("%s: missing", name)
		} else if testkit.SHA256Hex(g) != testkit.SHA256Hex(w) {
			t.Errorf("%s: %d bytes, sha256 %.16s; want %d bytes, %.16s", name, len(g), testkit.SHA256Hex(g), len(w), testkit.SHA256Hex(w))
		}
	}
}

// TestFlowS3ToLocal moves objects from MinIO to a directory through the
// engine and NATS JetStream, reading big objects with parallel range GETs,
// and deletes them from the bucket once delivered.
func TestFlowS3ToLocal(t *testing.T) {
	srv := minio.StartMinIO(t)
	files := flowFiles()
	for name, content := range files {
		_, err := srv.Client.PutObject(t.Context(), &awss3.PutObjectInput{
			Bucket: aws.String(srv.Bucket), Key: aws.String("inbox/" + name), Body: bytesReader(content),
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	out := t.TempDir()
	run(t, pipeline.Flow{
		Name:   "s3-to-local",
		Source: pipeline.Use("s3", s3Config(srv, map[string]any{"prefix": "inbox", "watch": false, "after": "delete"})),
		Sinks:  []pipeline.SinkSpec{{Name: "out", Component: pipeline.Use("local", map[string]any{"path": out})}},
	})
	checkSame(t, readDir(t, out), files)
	left, err := srv.Client.ListObjectsV2(t.Context(), &awss3.ListObjectsV2Input{Bucket: aws.String(srv.Bucket)})
	if err != nil {
		t.Fatal(err)
	}
	if len(left.Contents) != 0 {
		t.Errorf("%d objects left in the bucket after delivery with after: delete", len(left.Contents))
	}
}

// TestFlowLocalToS3 moves files from a directory to MinIO, one sink with
// the file sizes known, one behind a compress/decompress pair (sizes
// unknown at Open), and checks content and sha256 metadata.
func TestFlowLocalToS3(t *testing.T) {
	srv := minio.StartMinIO(t)
	files := flowFiles()
	in := t.TempDir()
	for name, content := range files {
		p := filepath.Join(in, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, content, 0o644); err != nil {
			t.Fatal(err)
		}
		old := time.Now().Add(-time.Minute)
		os.Chtimes(p, old, old)
	}
	for _, tc := range []struct {
		prefix string
		stages []pipeline.Component
	}{
		{"known", nil},
		{"unknown", []pipeline.Component{
			pipeline.Use("compress", map[string]any{"format": "zstd"}),
			pipeline.Use("decompress", nil),
		}},
	} {
		run(t, pipeline.Flow{
			Name:   "local-to-s3-" + tc.prefix,
			Source: pipeline.Use("local", map[string]any{"path": in, "watch": false, "stable_for": "0s"}),
			Stages: tc.stages,
			Sinks: []pipeline.SinkSpec{{
				Name:      "s3",
				Component: pipeline.Use("s3", s3Config(srv, map[string]any{"prefix": tc.prefix, "part_size": "5MiB", "small_file_size": "1MiB"})),
			}},
		})
		for name, want := range files {
			key := tc.prefix + "/" + name
			obj, err := srv.Client.GetObject(t.Context(), &awss3.GetObjectInput{Bucket: aws.String(srv.Bucket), Key: aws.String(key)})
			if err != nil {
				t.Errorf("%s: %v", key, err)
				continue
			}
			got := readAll(t, obj)
			if testkit.SHA256Hex(got) != testkit.SHA256Hex(want) {
				t.Errorf("%s: %d bytes, want %d, content differs", key, len(got), len(want))
			}
			if sha := obj.Metadata[s3.MetaSHA256]; sha != testkit.SHA256Hex(want) {
				t.Errorf("%s: x-amz-meta-sha256 %q, want %q", key, sha, testkit.SHA256Hex(want))
			}
		}
	}
}

// TestFlowFileS3ToS3 parses a flow file whose credentials come from ${ENV}
// references and runs it: objects below one prefix are copied, through the
// bus, below another.
func TestFlowFileS3ToS3(t *testing.T) {
	srv := minio.StartMinIO(t)
	files := flowFiles()
	for name, content := range files {
		_, err := srv.Client.PutObject(t.Context(), &awss3.PutObjectInput{
			Bucket: aws.String(srv.Bucket), Key: aws.String("from/" + name), Body: bytesReader(content),
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	yaml := `name: s3-to-s3
source:
  s3:
    bucket: ${BUCKET}
    endpoint: ${ENDPOINT}
    path_style: true
    access_key_id: ${S3_KEY}
    secret_access_key: ${S3_SECRET}
    prefix: from
    watch: false
sinks:
  - name: copy
    s3:
      bucket: ${BUCKET}
      endpoint: ${ENDPOINT}
      path_style: true
      access_key_id: ${S3_KEY}
      secret_access_key: ${S3_SECRET}
      prefix: to
      part_size: 5MiB
      tags: {origin: mftflow}
`
	env := map[string]string{"BUCKET": srv.Bucket, "ENDPOINT": srv.Endpoint, "S3_KEY": minio.AccessKey, "S3_SECRET": minio.SecretKey}
	lookup := func(k string) (string, bool) { v, ok := env[k]; return v, ok }
	flow, err := flowfile.Parse("flow.yaml", []byte(yaml), registry(t), lookup)
	if err != nil {
		t.Fatal(err)
	}
	run(t, *flow)
	for name, want := range files {
		obj, err := srv.Client.GetObject(t.Context(), &awss3.GetObjectInput{Bucket: aws.String(srv.Bucket), Key: aws.String("to/" + name)})
		if err != nil {
			t.Errorf("to/%s: %v", name, err)
			continue
		}
		if got := readAll(t, obj); testkit.SHA256Hex(got) != testkit.SHA256Hex(want) {
			t.Errorf("to/%s: content differs", name)
		}
	}

	// A typo is reported with its position, and a secret is never echoed.
	bad := strings.Replace(yaml, "      prefix: to\n", "      prefix: to\n      overwrite: sometimes\n", 1)
	bad = strings.Replace(bad, "    secret_access_key: ${S3_SECRET}\n    prefix: from", "    secret_access_key: [hunter2]\n    prefix: from", 1)
	_, err = flowfile.Parse("flow.yaml", []byte(bad), registry(t), lookup)
	if err == nil {
		t.Fatal("a bad flow file parsed")
	}
	msg := err.Error()
	for _, want := range []string{`overwrite`, `want one of replace, skip, fail, got "sometimes"`, `secret_access_key`} {
		if !strings.Contains(msg, want) {
			t.Errorf("error %q does not mention %q", msg, want)
		}
	}
	if strings.Contains(msg, "hunter2") {
		t.Errorf("error %q shows the secret", msg)
	}
}

// TestFlowRetriedDeliveryResumes fails part 2 more often than the engine
// retries a part within one attempt, then the first Commit, so the engine
// retries the delivery twice: each retry reopens the same multipart upload
// from its resume state (ListParts), and the object ends byte-identical with
// each part sent about once.
func TestFlowRetriedDeliveryResumes(t *testing.T) {
	srv := minio.StartMinIO(t)
	content := testkit.RandomContent(11, 5*s3.MinPartSize+99) // 6 parts
	in := t.TempDir()
	if err := os.WriteFile(filepath.Join(in, "big.bin"), content, 0o644); err != nil {
		t.Fatal(err)
	}
	var uploads, lists atomic.Int64
	httpClient := &http.Client{Transport: roundTripFunc(func(r *http.Request) (*http.Response, error) {
		q := r.URL.Query()
		switch {
		case r.Method == http.MethodPut && q.Has("partNumber"):
			uploads.Add(1)
		case r.Method == http.MethodGet && q.Has("uploadId"):
			lists.Add(1)
		}
		return http.DefaultTransport.RoundTrip(r)
	})}
	sink, err := s3.NewSink(t.Context(), s3.SinkConfig{
		ClientConfig: s3.ClientConfig{
			Bucket: srv.Bucket, Endpoint: srv.Endpoint, PathStyle: true, Region: minio.Region,
			AccessKeyID: minio.AccessKey, SecretAccessKey: minio.SecretKey, HTTPClient: httpClient,
		},
		PartSize:    s3.MinPartSize,
		Concurrency: 2,
	})
	if err != nil {
		t.Fatal(err)
	}
	spec := pipeline.SinkOf("s3", &flakySink{Sink: sink})
	spec.Retry = pipeline.Retry{Attempts: 10, Initial: 20 * time.Millisecond, Max: 100 * time.Millisecond}
	r := run(t, pipeline.Flow{
		Name:   "retried",
		Source: pipeline.Use("local", map[string]any{"path": in, "watch": false, "stable_for": "0s"}),
		Sinks:  []pipeline.SinkSpec{spec},
	})
	obj, err := srv.Client.GetObject(t.Context(), &awss3.GetObjectInput{Bucket: aws.String(srv.Bucket), Key: aws.String("big.bin")})
	if err != nil {
		t.Fatal(err)
	}
	if got := readAll(t, obj); testkit.SHA256Hex(got) != testkit.SHA256Hex(content) {
		t.Fatalf("object differs: %d bytes, want %d", len(got), len(content))
	}
	t.Logf("UploadPart requests: %d for 6 parts; ListParts requests: %d; stats %+v", uploads.Load(), lists.Load(), r.Stats())
	if lists.Load() < 2 {
		t.Error("no retry resumed the upload with ListParts")
	}
	if r.Stats().Sinks[0].Retries < 2 {
		t.Errorf("the delivery was retried %d times, want 2", r.Stats().Sinks[0].Retries)
	}
	if uploads.Load() > 7 {
		t.Errorf("%d UploadPart requests for 6 parts: retries sent parts again", uploads.Load())
	}
}

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

// flakySink fails part 2 three times (a whole attempt's part retries) and the
// first Commit, with retryable errors.
type flakySink struct {
	pipeline.Sink
	partFails, commitFails atomic.Int64
}

func (s *flakySink) Open(ctx context.Context, f pipeline.File, resume []byte) (pipeline.Upload, error) {
	u, err := s.Sink.Open(ctx, f, resume)
	if err != nil {
		return nil, err
	}
	return &flakyUpload{Upload: u, s: s}, nil
}

type flakyUpload struct {
	pipeline.Upload
	s *flakySink
}

func (u *flakyUpload) WritePart(ctx context.Context, p pipeline.Part, r io.Reader) error {
	if p.Number == 2 && u.s.partFails.Add(1) <= 3 {
		return fmt.Errorf("part 2: %w", testkit.ErrInjected)
	}
	return u.Upload.WritePart(ctx, p, r)
}

func (u *flakyUpload) Commit(ctx context.Context, f pipeline.File) error {
	if u.s.commitFails.Add(1) == 1 {
		return fmt.Errorf("commit: %w", testkit.ErrInjected)
	}
	return u.Upload.Commit(ctx, f)
}

// TestFlowRangeReads: the engine reads a big object with several range GETs
// at once.
func TestFlowRangeReads(t *testing.T) {
	srv := minio.StartMinIO(t)
	content := testkit.RandomContent(21, 9<<20+3)
	if _, err := srv.Client.PutObject(t.Context(), &awss3.PutObjectInput{
		Bucket: aws.String(srv.Bucket), Key: aws.String("big.bin"), Body: bytesReader(content),
	}); err != nil {
		t.Fatal(err)
	}
	var ranges atomic.Int64
	src, err := s3.NewSource(t.Context(), s3.SourceConfig{
		ClientConfig: s3.ClientConfig{
			Bucket: srv.Bucket, Endpoint: srv.Endpoint, PathStyle: true, Region: minio.Region,
			AccessKeyID: minio.AccessKey, SecretAccessKey: minio.SecretKey,
			HTTPClient: &http.Client{Transport: roundTripFunc(func(r *http.Request) (*http.Response, error) {
				if r.Method == http.MethodGet && r.Header.Get("Range") != "" {
					ranges.Add(1)
				}
				return http.DefaultTransport.RoundTrip(r)
			})},
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	out := t.TempDir()
	run(t, pipeline.Flow{
		Name:   "ranges",
		Source: pipeline.SourceOf(src),
		Sinks:  []pipeline.SinkSpec{{Name: "out", Component: pipeline.Use("local", map[string]any{"path": out})}},
	})
	checkSame(t, readDir(t, out), map[string][]byte{"big.bin": content})
	if ranges.Load() < 2 {
		t.Errorf("%d range GETs for a 9 MiB object", ranges.Load())
	}
	t.Logf("%d range GETs", ranges.Load())
}

// TestFlowRoundTrip sends a directory to MinIO with one flow (local → S3)
// and brings it back with a second (S3 → stages → local): every file,
// the empty one and one of several multipart parts included, ends
// byte-identical. The second flow renames the files and runs them through a
// zstd compress/decompress pair, and moves the objects below done/ once
// delivered.
func TestFlowRoundTrip(t *testing.T) {
	srv := minio.StartMinIO(t)
	files := flowFiles()
	files["dir/sub/parts.bin"] = testkit.RandomContent(3, 3*s3.MinPartSize+12345) // 4 parts of 5 MiB
	in := t.TempDir()
	for name, content := range files {
		p := filepath.Join(in, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, content, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	var parts, puts atomic.Int64
	countParts := func(r *http.Request) (*http.Response, error) {
		switch {
		case r.Method == http.MethodPut && r.URL.Query().Has("partNumber"):
			parts.Add(1)
		case r.Method == http.MethodPut && r.Header.Get("X-Amz-Copy-Source") == "":
			puts.Add(1)
		}
		return http.DefaultTransport.RoundTrip(r)
	}
	sink, err := s3.NewSink(t.Context(), s3.SinkConfig{
		ClientConfig: s3.ClientConfig{
			Bucket: srv.Bucket, Endpoint: srv.Endpoint, PathStyle: true, Region: minio.Region,
			AccessKeyID: minio.AccessKey, SecretAccessKey: minio.SecretKey,
			HTTPClient: &http.Client{Transport: roundTripFunc(countParts)},
		},
		Prefix:        "trip",
		PartSize:      s3.MinPartSize,
		SmallFileSize: 1 << 20,
	})
	if err != nil {
		t.Fatal(err)
	}
	run(t, pipeline.Flow{
		Name:   "there",
		Source: pipeline.Use("local", map[string]any{"path": in, "watch": false, "stable_for": "0s"}),
		Sinks:  []pipeline.SinkSpec{pipeline.SinkOf("s3", sink)},
	})
	// 1 + 3 + 4 parts, at least; the empty file and one.txt travel in a
	// group, each written with one PutObject.
	if n := parts.Load(); n < 8 {
		t.Errorf("%d UploadPart requests, want at least 8", n)
	}
	if n := puts.Load(); n < 2 {
		t.Errorf("%d PutObject requests, want at least 2", n)
	}
	for name, want := range files {
		head, err := srv.Client.HeadObject(t.Context(), &awss3.HeadObjectInput{Bucket: aws.String(srv.Bucket), Key: aws.String("trip/" + name)})
		if err != nil {
			t.Fatalf("trip/%s: %v", name, err)
		}
		if sha := head.Metadata[s3.MetaSHA256]; sha != testkit.SHA256Hex(want) || aws.ToInt64(head.ContentLength) != int64(len(want)) {
			t.Errorf("trip/%s: %d bytes, x-amz-meta-sha256 %q; want %d, %q", name, aws.ToInt64(head.ContentLength), sha, len(want), testkit.SHA256Hex(want))
		}
	}

	out := t.TempDir()
	run(t, pipeline.Flow{
		Name: "back",
		Source: pipeline.Use("s3", s3Config(srv, map[string]any{
			"prefix": "trip", "watch": false, "after": "move", "archive_prefix": "done",
		})),
		Stages: []pipeline.Component{
			pipeline.Use("rename", map[string]any{"name": "back/{name}"}),
			pipeline.Use("compress", map[string]any{"format": "zstd"}),
			pipeline.Use("decompress", nil),
		},
		Sinks: []pipeline.SinkSpec{{Name: "out", Component: pipeline.Use("local", map[string]any{"path": out})}},
	})
	want := map[string][]byte{}
	for name, content := range files {
		want["back/"+name] = content
	}
	checkSame(t, readDir(t, out), want)

	// Every object was moved below done/ once delivered.
	var keys []string
	p := awss3.NewListObjectsV2Paginator(srv.Client, &awss3.ListObjectsV2Input{Bucket: aws.String(srv.Bucket)})
	for p.HasMorePages() {
		page, err := p.NextPage(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		for _, o := range page.Contents {
			keys = append(keys, aws.ToString(o.Key))
		}
	}
	if len(keys) != len(files) {
		t.Errorf("bucket holds %q, want the %d files below done/", keys, len(files))
	}
	for _, k := range keys {
		if !strings.HasPrefix(k, "done/") {
			t.Errorf("%s was not moved below done/", k)
		}
	}
}
