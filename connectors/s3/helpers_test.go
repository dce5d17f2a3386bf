package s3

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"sort"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/mftflow/mftflow/testkit/minio"
)

// clientConfig reaches bucket on srv with explicit static credentials.
func clientConfig(srv *minio.Server, bucket string) ClientConfig {
	return ClientConfig{
		Bucket:          bucket,
		Region:          minio.Region,
		Endpoint:        srv.Endpoint,
		PathStyle:       true,
		AccessKeyID:     minio.AccessKey,
		SecretAccessKey: minio.SecretKey,
	}
}

func newTestSink(t *testing.T, cfg SinkConfig) *Sink {
	t.Helper()
	s, err := NewSink(t.Context(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func getObject(t *testing.T, srv *minio.Server, bucket, key string) ([]byte, bool) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	out, err := srv.Client.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String(bucket), Key: aws.String(key)})
	if err != nil {
		if isNotFound(err) {
			return nil, false
		}
		t.Fatalf("GetObject %s: %v", key, err)
	}
	defer out.Body.Close()
	b, err := io.ReadAll(out.Body)
	if err != nil {
		t.Fatalf("reading %s: %v", key, err)
	}
	return b, true
}

func putObject(t *testing.T, srv *minio.Server, bucket, key string, content []byte) {
	t.Helper()
	_, err := srv.Client.PutObject(t.Context(), &s3.PutObjectInput{
		Bucket: aws.String(bucket), Key: aws.String(key), Body: bytes.NewReader(content), ContentLength: aws.Int64(int64(len(content))),
	})
	if err != nil {
		t.Fatalf("PutObject %s: %v", key, err)
	}
}

// listAll returns every key in bucket, plus "upload:<key>" for each
// multipart upload in progress.
func listAll(t *testing.T, srv *minio.Server, bucket string) []string {
	t.Helper()
	ctx := t.Context()
	var names []string
	p := s3.NewListObjectsV2Paginator(srv.Client, &s3.ListObjectsV2Input{Bucket: aws.String(bucket)})
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			t.Fatalf("ListObjectsV2: %v", err)
		}
		for _, o := range page.Contents {
			names = append(names, aws.ToString(o.Key))
		}
	}
	names = append(names, uploadsInProgress(t, srv, bucket, "")...)
	sort.Strings(names)
	return names
}

func uploadsInProgress(t *testing.T, srv *minio.Server, bucket, prefix string) []string {
	t.Helper()
	out, err := srv.Client.ListMultipartUploads(t.Context(), &s3.ListMultipartUploadsInput{Bucket: aws.String(bucket), Prefix: aws.String(prefix)})
	if err != nil {
		t.Fatalf("ListMultipartUploads: %v", err)
	}
	var names []string
	for _, u := range out.Uploads {
		names = append(names, "upload:"+aws.ToString(u.Key))
	}
	return names
}

// countingTransport counts requests by a predicate.
type countingTransport struct {
	base  http.RoundTripper
	match func(*http.Request) bool
	n     atomic.Int64
}

func (c *countingTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	if c.match(r) {
		c.n.Add(1)
	}
	return c.base.RoundTrip(r)
}

// isUploadPart matches UploadPart requests: PUT with partNumber and uploadId.
func isUploadPart(r *http.Request) bool {
	q := r.URL.Query()
	return r.Method == http.MethodPut && q.Has("partNumber") && q.Has("uploadId")
}

func asError(t *testing.T, err error) *Error {
	t.Helper()
	var e *Error
	if !errors.As(err, &e) {
		t.Fatalf("error %v (%T) is not an *s3.Error", err, err)
	}
	return e
}
