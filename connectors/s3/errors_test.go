package s3

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"syscall"
	"testing"

	"github.com/mftflow/mftflow/pipeline"
	"github.com/mftflow/mftflow/testkit"
)

// TestErrorMapping answers every request with one S3 error and checks the
// message and whether the error is retried.
func TestErrorMapping(t *testing.T) {
	for _, tc := range []struct {
		status    int
		code      string
		permanent bool
		hint      string
	}{
		{403, "AccessDenied", true, `access denied: grant these credentials s3:PutObject on bucket "b" (or check the credentials)`},
		{403, "InvalidAccessKeyId", true, "the server does not know this access key id: check access_key_id"},
		{404, "NoSuchBucket", true, `bucket "b" does not exist: create it or fix the bucket setting`},
		{301, "PermanentRedirect", true, "the bucket is in another region: set region to the bucket's region"},
		{500, "InternalError", false, "the server is busy or failing: will retry"},
		{503, "SlowDown", false, "the server is busy or failing: will retry"},
		{429, "TooManyRequests", false, "the server is busy or failing: will retry"},
	} {
		t.Run(tc.code, func(t *testing.T) {
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Type", "application/xml")
				w.WriteHeader(tc.status)
				fmt.Fprintf(w, `<?xml version="1.0" encoding="UTF-8"?><Error><Code>%s</Code><Message>test</Message><RequestId>1</RequestId></Error>`, tc.code)
			}))
			t.Cleanup(srv.Close)
			s := newTestSink(t, SinkConfig{ClientConfig: ClientConfig{
				Bucket: "b", Endpoint: srv.URL, PathStyle: true, AccessKeyID: "id", SecretAccessKey: "secret", MaxAttempts: 1,
			}})
			err := testkit.Deliver(t.Context(), s, fileOf("a.bin", []byte("x")), []byte("x"))
			want := fmt.Sprintf(`Open("a.bin"): s3 CreateMultipartUpload s3://b/a.bin at %s: %d %s: %s`, srv.URL, tc.status, tc.code, tc.hint)
			if err == nil || err.Error() != want {
				t.Errorf("got  %v\nwant %s", err, want)
			}
			if got := pipeline.IsPermanent(err); got != tc.permanent {
				t.Errorf("IsPermanent = %v, want %v", got, tc.permanent)
			}
			if e := asError(t, err); e.Status != tc.status || e.Code != tc.code || !strings.Contains(e.Error(), e.Hint) {
				t.Errorf("error fields %+v", e)
			}
		})
	}
}

// An endpoint with user info is refused, and the message does not repeat
// it: the SDK would ignore the user info, and errors would show it.
func TestEndpointUserInfoRefused(t *testing.T) {
	const want = "s3: endpoint: remove the user info (user:password@) from the URL: S3 does not use it; " +
		"put the credentials in access_key_id and secret_access_key (or set credentials: default)"
	cc := ClientConfig{Bucket: "b", Endpoint: "http://user:topsecret@127.0.0.1:9000", PathStyle: true,
		AccessKeyID: "id", SecretAccessKey: "secret"}
	if _, err := NewSink(t.Context(), SinkConfig{ClientConfig: cc}); err == nil || err.Error() != want {
		t.Errorf("NewSink: %v\nwant %s", err, want)
	}
	if _, err := NewSource(t.Context(), SourceConfig{ClientConfig: cc}); err == nil || err.Error() != want {
		t.Errorf("NewSource: %v\nwant %s", err, want)
	}
}

// Errors name the endpoint and quote the SDK's messages, which may hold
// request URLs: neither shows a password.
func TestErrorRedactsURLs(t *testing.T) {
	cc := ClientConfig{Bucket: "b", Endpoint: "http://user:topsecret@127.0.0.1:1"}
	sdkErr := fmt.Errorf(`request send failed, Put "http://user:topsecret@127.0.0.1:1/b/k": %w`, syscall.ECONNREFUSED)
	err := cc.wrapErr("PutObject", "k", sdkErr)
	want := `s3 PutObject s3://b/k at http://user:xxxxx@127.0.0.1:1: the endpoint does not answer: check endpoint, ` +
		`and that the server runs and is reachable (request send failed, Put "http://user:xxxxx@127.0.0.1:1/b/k": connection refused)`
	if err.Error() != want {
		t.Errorf("got  %v\nwant %s", err, want)
	}
	if e := asError(t, err); !errors.Is(e, syscall.ECONNREFUSED) || e.Permanent() {
		t.Errorf("the error lost its cause or became permanent: %+v", e)
	}
	cancelled := cc.wrapErr("PutObject", "k", fmt.Errorf(`Put "http://user:topsecret@127.0.0.1:1/b/k": %w`, context.Canceled))
	if strings.Contains(cancelled.Error(), "topsecret") || !errors.Is(cancelled, context.Canceled) {
		t.Errorf("cancelled: %v", cancelled)
	}
}
