package main

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"io"
	"os"
	"path/filepath"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/mftflow/mftflow/pipeline/bus"
	"github.com/mftflow/mftflow/testkit/minio"
)

// TestSIGKILLMidMultipartUploadResumes kills the runner in the middle of a
// 256 MiB multipart upload to a real MinIO, restarts it, and checks that
// the object ends byte-identical with its sha256 in the metadata, that the
// upload went on from the parts S3 already had (ListParts), and that no
// part recorded as written before the kill was written again.
func TestSIGKILLMidMultipartUploadResumes(t *testing.T) {
	if testing.Short() {
		t.Skip("moves 256 MiB; skipped with -short")
	}
	srv := minio.StartMinIO(t)
	const size, partSize = 256 << 20, 8 << 20
	const parts = size / partSize
	dir := t.TempDir()
	in, data := filepath.Join(dir, "in"), filepath.Join(dir, "data")
	os.MkdirAll(in, 0o755)
	want := writeRandomFile(t, filepath.Join(in, "big.bin"), size)
	flow := writeFile(t, dir, "s3crash.yaml", localFlowHead("s3crash", in)+`  - name: bucket
    parallelism: 2
    s3:
      bucket: `+srv.Bucket+`
      endpoint: `+srv.Endpoint+`
      path_style: true
      region: `+minio.Region+`
      access_key_id: `+minio.AccessKey+`
      secret_access_key: `+minio.SecretKey+`
      part_size: 8MiB
bus:
  compression: none
`)
	args := []string{"run", "--data", data, "--progress", "none", "--log-level", "debug", flow}
	doneAtKill, _ := killMidDelivery(t, args, data, "s3crash")

	ctx := context.Background()
	uploads, err := srv.Client.ListMultipartUploads(ctx, &s3.ListMultipartUploadsInput{Bucket: aws.String(srv.Bucket)})
	if err != nil || len(uploads.Uploads) != 1 {
		t.Fatalf("after the kill: %v multipart uploads (%v); want the one in progress", len(uploads.Uploads), err)
	}
	held, err := srv.Client.ListParts(ctx, &s3.ListPartsInput{Bucket: aws.String(srv.Bucket), Key: uploads.Uploads[0].Key, UploadId: uploads.Uploads[0].UploadId})
	if err != nil || len(held.Parts) < doneAtKill {
		t.Fatalf("after the kill S3 holds %d parts (%v); want at least the %d recorded", len(held.Parts), err, doneAtKill)
	}

	stdout, stderr, code := runRunner(t, dir, args...)
	if code != 0 {
		t.Fatalf("second run exited %d\nstdout:\n%s\nstderr:\n%s", code, stdout, stderr)
	}
	obj, err := srv.Client.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String(srv.Bucket), Key: aws.String("big.bin")})
	if err != nil {
		t.Fatal(err)
	}
	h := sha256.New()
	n, err := io.Copy(h, obj.Body)
	obj.Body.Close()
	if err != nil || n != size || hex.EncodeToString(h.Sum(nil)) != want {
		t.Fatalf("object: %d bytes, sha256 %x, %v; want %d bytes, %s", n, h.Sum(nil), err, int64(size), want)
	}
	if got := obj.Metadata["sha256"]; got != want {
		t.Errorf("object metadata sha256 %q, want %s", got, want)
	}
	left, err := srv.Client.ListMultipartUploads(ctx, &s3.ListMultipartUploadsInput{Bucket: aws.String(srv.Bucket)})
	if err != nil || len(left.Uploads) != 0 {
		t.Errorf("%d multipart uploads left (%v); want none", len(left.Uploads), err)
	}
	list, err := srv.Client.ListObjectsV2(ctx, &s3.ListObjectsV2Input{Bucket: aws.String(srv.Bucket)})
	if err != nil || len(list.Contents) != 1 {
		t.Errorf("bucket holds %d objects (%v); want exactly big.bin", len(list.Contents), err)
	}

	m, d := finalState(t, data, "s3crash")
	if m.State != bus.FileDone || m.Outcome != "passed" || m.SourceRead != size {
		t.Errorf("manifest: state %s outcome %s, source read %d; want done, passed, %d (read once over both runs)", m.State, m.Outcome, m.SourceRead, int64(size))
	}
	if d.State != bus.DeliveryCommitted || d.Resumed < doneAtKill || d.Writes != parts || d.Attempts != 2 {
		t.Errorf("delivery: state %s, %d parts resumed, %d part writes, %d attempts; want committed, at least %d resumed, exactly %d writes, 2 attempts",
			d.State, d.Resumed, d.Writes, d.Attempts, doneAtKill, parts)
	}
	t.Logf("killed with %d of %d parts recorded and %d held by S3; second run resumed %d parts, %d writes in all",
		doneAtKill, parts, len(held.Parts), d.Resumed, d.Writes)
}
