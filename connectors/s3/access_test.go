package s3

import (
	"encoding/json"
	"errors"
	"io"
	"strings"
	"testing"

	"github.com/mftflow/mftflow/pipeline"
	"github.com/mftflow/mftflow/testkit"
	"github.com/mftflow/mftflow/testkit/minio"
)

// allow is an IAM policy granting actions on bucket: ListBucket and
// ListBucketMultipartUploads on the bucket itself, the others on its objects.
func allow(bucket string, actions ...string) string {
	type statement struct {
		Effect   string
		Action   []string
		Resource []string
	}
	var onBucket, onObjects []string
	for _, a := range actions {
		if a == "s3:ListBucket" || a == "s3:ListBucketMultipartUploads" {
			onBucket = append(onBucket, a)
		} else {
			onObjects = append(onObjects, a)
		}
	}
	var st []statement
	if len(onBucket) > 0 {
		st = append(st, statement{"Allow", onBucket, []string{"arn:aws:s3:::" + bucket}})
	}
	if len(onObjects) > 0 {
		st = append(st, statement{"Allow", onObjects, []string{"arn:aws:s3:::" + bucket + "/*"}})
	}
	b, _ := json.Marshal(map[string]any{"Version": "2012-10-17", "Statement": st})
	return string(b)
}

// restricted is a client config for bucket on srv whose credentials may do
// only what policy allows.
func restricted(t *testing.T, srv *minio.Server, policy string) ClientConfig {
	creds := srv.RestrictedCredentials(t, policy)
	c := clientConfig(srv, srv.Bucket)
	c.AccessKeyID, c.SecretAccessKey, c.SessionToken = creds.AccessKeyID, creds.SecretAccessKey, creds.SessionToken
	return c
}

// sinkPolicy is the least a sink needs, as the package documentation says.
var sinkPolicy = []string{"s3:PutObject", "s3:GetObject", "s3:ListBucket", "s3:AbortMultipartUpload", "s3:ListMultipartUploadParts"}

// TestSinkAccessDenied delivers with credentials that lack one permission
// or another, and checks that the error says which call on which object was
// refused and which permission to grant; and that the documented least
// policy is enough.
func TestSinkAccessDenied(t *testing.T) {
	srv := minio.StartMinIO(t)
	content := testkit.RandomContent(31, 2*MinPartSize+10)
	for _, tc := range []struct {
		name      string
		actions   []string
		overwrite string
		want      string // "" for success
	}{
		{
			name:    "read-only credentials",
			actions: []string{"s3:GetObject", "s3:ListBucket"},
			want: `Open("a.bin"): s3 CreateMultipartUpload s3://BUCKET/KEY at ENDPOINT: 403 AccessDenied: ` +
				`access denied: grant these credentials s3:PutObject on bucket "BUCKET" (or check the credentials)`,
		},
		{
			name:    "write-only credentials",
			actions: []string{"s3:PutObject", "s3:AbortMultipartUpload"},
			want: `Commit("a.bin"): s3 HeadObject s3://BUCKET/KEY at ENDPOINT: 403 Forbidden: ` +
				`access denied: grant these credentials s3:GetObject and s3:ListBucket on bucket "BUCKET" (or check the credentials)`,
		},
		{
			name:      "overwrite fail without read access",
			actions:   []string{"s3:PutObject", "s3:AbortMultipartUpload"},
			overwrite: OverwriteFail,
			want: `Open("a.bin"): s3 HeadObject s3://BUCKET/KEY at ENDPOINT: 403 Forbidden: ` +
				`access denied: grant these credentials s3:GetObject and s3:ListBucket on bucket "BUCKET" (or check the credentials)`,
		},
		{
			name:    "the least policy",
			actions: sinkPolicy,
		},
		{
			name:      "the least policy, overwrite fail",
			actions:   sinkPolicy,
			overwrite: OverwriteFail,
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			prefix := strings.ReplaceAll(tc.name, " ", "-")
			s := newTestSink(t, SinkConfig{
				ClientConfig: restricted(t, srv, allow(srv.Bucket, tc.actions...)),
				Prefix:       prefix,
				PartSize:     MinPartSize,
				Overwrite:    tc.overwrite,
			})
			err := testkit.Deliver(t.Context(), s, fileOf("a.bin", content), content)
			if tc.want == "" {
				if err != nil {
					t.Fatal(err)
				}
				got, _ := getObject(t, srv, srv.Bucket, prefix+"/a.bin")
				if size, sha := headSHA(t, srv, srv.Bucket, prefix+"/a.bin"); testkit.SHA256Hex(got) != testkit.SHA256Hex(content) || sha != testkit.SHA256Hex(content) || size != int64(len(content)) {
					t.Errorf("object: %d bytes, sha256 %.16s, metadata %.16s; want %d bytes, %.16s", size, testkit.SHA256Hex(got), sha, len(content), testkit.SHA256Hex(content))
				}
				return
			}
			want := strings.NewReplacer("BUCKET", srv.Bucket, "ENDPOINT", srv.Endpoint, "KEY", prefix+"/a.bin").Replace(tc.want)
			if err == nil || err.Error() != want {
				t.Fatalf("error:\n got  %v\n want %s", err, want)
			}
			if !pipeline.IsPermanent(err) {
				t.Error("access denied is not permanent")
			}
			if e := asError(t, err); e.Status != 403 {
				t.Errorf("Status = %d, want 403", e.Status)
			}
		})
	}
}

// TestSourceAccessDenied reads with credentials that lack one permission or
// another: listing, reading, and deleting after delivery.
func TestSourceAccessDenied(t *testing.T) {
	srv := minio.StartMinIO(t)
	putObject(t, srv, srv.Bucket, "in/a.txt", []byte("a"))
	type step int
	const (
		list step = iota
		open
		ack
	)
	for _, tc := range []struct {
		name    string
		actions []string
		fails   step
		want    string
	}{
		{
			name:    "no list access",
			actions: []string{"s3:GetObject"},
			fails:   list,
			want: `s3 ListObjectsV2 s3://BUCKET/in/ at ENDPOINT: 403 AccessDenied: ` +
				`access denied: grant these credentials s3:ListBucket on bucket "BUCKET" (or check the credentials)`,
		},
		{
			name:    "no read access",
			actions: []string{"s3:ListBucket"},
			fails:   open,
			want: `s3 GetObject s3://BUCKET/in/a.txt at ENDPOINT: 403 AccessDenied: ` +
				`access denied: grant these credentials s3:GetObject on bucket "BUCKET" (or check the credentials)`,
		},
		{
			name:    "no delete access",
			actions: []string{"s3:ListBucket", "s3:GetObject"},
			fails:   ack,
			want: `s3 DeleteObject s3://BUCKET/in/a.txt at ENDPOINT: 403 AccessDenied: ` +
				`access denied: grant these credentials s3:DeleteObject on bucket "BUCKET" (or check the credentials)`,
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			src := newTestSource(t, SourceConfig{
				ClientConfig: restricted(t, srv, allow(srv.Bucket, tc.actions...)),
				Prefix:       "in",
				After:        AfterDelete,
			})
			err := func() error {
				it, err := src.Next(t.Context())
				if err != nil || tc.fails == list {
					return err
				}
				rc, err := it.Open(t.Context())
				if err != nil || tc.fails == open {
					return err
				}
				if b, err := io.ReadAll(rc); err != nil || string(b) != "a" {
					t.Fatalf("read %q, %v", b, err)
				}
				rc.Close()
				return it.Ack(t.Context(), pipeline.Outcome{Status: pipeline.Passed})
			}()
			want := strings.NewReplacer("BUCKET", srv.Bucket, "ENDPOINT", srv.Endpoint).Replace(tc.want)
			if err == nil || err.Error() != want {
				t.Fatalf("error:\n got  %v\n want %s", err, want)
			}
			var e *Error
			if !pipeline.IsPermanent(err) || !errors.As(err, &e) || e.Code != "AccessDenied" {
				t.Errorf("error %#v: want a permanent *Error with code AccessDenied", err)
			}
			if _, ok := getObject(t, srv, srv.Bucket, "in/a.txt"); !ok {
				t.Error("in/a.txt is gone")
			}
		})
	}
}
