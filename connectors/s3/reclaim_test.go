package s3

import (
	"slices"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/mftflow/mftflow/pipeline"
	"github.com/mftflow/mftflow/testkit/minio"
)

// TestReclaimAbortsOnlyTheKeysUploadsSince leaves uploads of a key and of a
// key that starts with it, and checks that Reclaim aborts those of the key
// begun since the time given, and nothing else.
func TestReclaimAbortsOnlyTheKeysUploadsSince(t *testing.T) {
	srv := minio.StartMinIO(t)
	sink := newTestSink(t, SinkConfig{ClientConfig: clientConfig(srv, srv.Bucket), Prefix: "out"})
	for _, key := range []string{"out/a.bin", "out/a.bin", "out/a.bin.2"} {
		if _, err := srv.Client.CreateMultipartUpload(t.Context(), &s3.CreateMultipartUploadInput{Bucket: aws.String(srv.Bucket), Key: aws.String(key)}); err != nil {
			t.Fatal(err)
		}
	}
	f := pipeline.File{Name: "a.bin", Size: 10}
	// Begun before the delivery's first attempt (beyond the clock's slack):
	// another delivery's, left alone.
	if err := sink.Reclaim(t.Context(), f, time.Now().Add(2*clockSkew)); err != nil {
		t.Fatal(err)
	}
	if got := uploads(t, srv); !slices.Equal(got, []string{"upload:out/a.bin", "upload:out/a.bin", "upload:out/a.bin.2"}) {
		t.Fatalf("after a Reclaim since later: uploads %q; want all three", got)
	}
	if err := sink.Reclaim(t.Context(), f, time.Now().Add(-time.Hour)); err != nil {
		t.Fatal(err)
	}
	if got := uploads(t, srv); !slices.Equal(got, []string{"upload:out/a.bin.2"}) {
		t.Fatalf("after a Reclaim since an hour ago: uploads %q; want only out/a.bin.2's", got)
	}
}

// uploads lists the uploads in progress of both keys: MinIO lists those of
// one object name at a time.
func uploads(t *testing.T, srv *minio.Server) []string {
	return append(uploadsInProgress(t, srv, srv.Bucket, "out/a.bin"), uploadsInProgress(t, srv, srv.Bucket, "out/a.bin.2")...)
}
