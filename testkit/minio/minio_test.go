package minio

import (
	"net/http"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
)

func TestStartMinIO(t *testing.T) {
	var endpoint string
	t.Run("running", func(t *testing.T) {
		srv := StartMinIO(t)
		endpoint = srv.Endpoint
		if _, err := srv.Client.HeadBucket(t.Context(), &s3.HeadBucketInput{Bucket: aws.String(srv.Bucket)}); err != nil {
			t.Fatalf("the bucket %s: %v", srv.Bucket, err)
		}
		if other := srv.NewBucket(t); other == srv.Bucket {
			t.Error("NewBucket returned the same name twice")
		}
	})
	if endpoint == "" {
		return // skipped: no binary
	}
	// The server stopped with the subtest.
	if resp, err := http.Get(endpoint + "/minio/health/live"); err == nil {
		resp.Body.Close()
		t.Errorf("the server at %s still answers after the test ended", endpoint)
	}
}

func TestBinaryFromEnv(t *testing.T) {
	t.Setenv("MFTFLOW_MINIO", "/opt/minio/bin/minio")
	if got := Binary(); got != "/opt/minio/bin/minio" {
		t.Errorf("Binary() = %q with MFTFLOW_MINIO set", got)
	}
}
