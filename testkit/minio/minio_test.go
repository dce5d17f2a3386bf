package minio

import (
	"errors"
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/smithy-go"
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

// TestRestrictedCredentials: credentials limited to reading one bucket can
// read it and cannot write to it nor read another.
func TestRestrictedCredentials(t *testing.T) {
	srv := StartMinIO(t)
	other := srv.NewBucket(t)
	for _, b := range []string{srv.Bucket, other} {
		if _, err := srv.Client.PutObject(t.Context(), &s3.PutObjectInput{
			Bucket: aws.String(b), Key: aws.String("a.txt"), Body: strings.NewReader("a"),
		}); err != nil {
			t.Fatal(err)
		}
	}
	policy := fmt.Sprintf(`{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":["s3:GetObject"],"Resource":["arn:aws:s3:::%s/*"]}]}`, srv.Bucket)
	creds := srv.RestrictedCredentials(t, policy)
	if creds.AccessKeyID == AccessKey || creds.SessionToken == "" {
		t.Fatalf("credentials %q with session token %q are not temporary ones", creds.AccessKeyID, creds.SessionToken)
	}
	client := s3.NewFromConfig(aws.Config{
		Region:      Region,
		Credentials: credentials.NewStaticCredentialsProvider(creds.AccessKeyID, creds.SecretAccessKey, creds.SessionToken),
	}, func(o *s3.Options) {
		o.BaseEndpoint = aws.String(srv.Endpoint)
		o.UsePathStyle = true
	})
	get := func(bucket string) error {
		out, err := client.GetObject(t.Context(), &s3.GetObjectInput{Bucket: aws.String(bucket), Key: aws.String("a.txt")})
		if err == nil {
			out.Body.Close()
		}
		return err
	}
	if err := get(srv.Bucket); err != nil {
		t.Errorf("reading the allowed bucket: %v", err)
	}
	if err := get(other); !isAccessDenied(err) {
		t.Errorf("reading another bucket: %v, want AccessDenied", err)
	}
	_, err := client.PutObject(t.Context(), &s3.PutObjectInput{
		Bucket: aws.String(srv.Bucket), Key: aws.String("b.txt"), Body: strings.NewReader("b"),
	})
	if !isAccessDenied(err) {
		t.Errorf("writing: %v, want AccessDenied", err)
	}
}

func isAccessDenied(err error) bool {
	var api smithy.APIError
	return errors.As(err, &api) && api.ErrorCode() == "AccessDenied"
}
