// Package minio starts a real MinIO server for tests of S3 code.
//
// The server binary is not a Go dependency of the module: scripts/minio.sh
// builds a pinned version into bin/minio. StartMinIO finds it through the
// MFTFLOW_MINIO environment variable, then bin/minio below the module root,
// then PATH, and skips the test with a message saying how to get it when
// there is none.
//
// The root user's credentials pass every permission check, so tests of
// denied access use Server.RestrictedCredentials: temporary credentials
// limited by an IAM policy.
package minio

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/sts"

	"github.com/mftflow/mftflow/internal/discard"
	"github.com/mftflow/mftflow/testkit"
)

// Credentials of every server StartMinIO starts.
const (
	AccessKey = "mftflow-test"
	SecretKey = "mftflow-test-secret"
	Region    = "us-east-1"
	// KMSKeyID is the only key of the server's built-in KMS.
	KMSKeyID = "mftflow-test-key"
)

// kmsKey is KMSKeyID's 32-byte key, base64: fixed, as the data is throwaway.
const kmsKey = "bWZ0Zmxvdy10ZXN0LWtleS0zMi1ieXRlcy1sb25nISE="

// Server is a running MinIO server.
type Server struct {
	// Endpoint is the server's base URL, such as "http://127.0.0.1:40123".
	Endpoint string
	// Bucket was created empty for the test.
	Bucket string
	// Dir holds the server's data.
	Dir string
	// Client talks to the server as the root user, configured explicitly
	// (nothing is read from the environment).
	Client *s3.Client
}

// Binary returns the path of the MinIO server binary, or "" if there is none.
func Binary() string { return testkit.FindBinary("MFTFLOW_MINIO", "minio") }

// StartMinIO starts a MinIO server on 127.0.0.1 with random ports and data
// in a temporary directory, waits until it answers, creates an empty bucket
// and stops the server when t ends. Without a MinIO binary it skips t.
func StartMinIO(t testing.TB) *Server {
	t.Helper()
	bin := Binary()
	if bin == "" {
		t.Skip("MinIO not found: run scripts/minio.sh (builds bin/minio) or set MFTFLOW_MINIO")
	}
	var lastErr error
	for range 3 { // a port taken between picking and binding: try again
		srv, err := start(t, bin)
		if err == nil {
			return srv
		}
		lastErr = err
	}
	t.Fatalf("starting MinIO (%s): %v", bin, lastErr)
	return nil
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer discard.Close(l)
	return l.Addr().(*net.TCPAddr).Port, nil
}

// syncBuffer keeps the server's output for error messages.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.b.Len() > 64<<10 {
		return len(p), nil
	}
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func start(t testing.TB, bin string) (*Server, error) {
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	console, err := freePort()
	if err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp("", "mftflow-minio-")
	if err != nil {
		return nil, err
	}
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	cmd := exec.Command(bin, "server", "--quiet", "--address", addr, "--console-address", fmt.Sprintf("127.0.0.1:%d", console), dir)
	cmd.Env = append(minimalEnv(),
		"MINIO_ROOT_USER="+AccessKey,
		"MINIO_ROOT_PASSWORD="+SecretKey,
		"MINIO_BROWSER=off",
		"MINIO_UPDATE=off",
		"MINIO_CI_CD=1",
		// A built-in KMS key enables server-side encryption: SSE-S3
		// (AES256) and SSE-KMS with key id KMSKeyID.
		"MINIO_KMS_SECRET_KEY="+KMSKeyID+":"+kmsKey,
	)
	out := &syncBuffer{}
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		_ = os.RemoveAll(dir) // a temporary directory: one left behind only takes space
		return nil, err
	}
	exited := make(chan struct{})
	go func() { _ = cmd.Wait(); close(exited) }() // exited is the news; the output says why
	stop := func() {
		_ = cmd.Process.Kill() // fails only when it has exited already
		<-exited
		_ = os.RemoveAll(dir) // a temporary directory: one left behind only takes space
	}
	endpoint := "http://" + addr
	if err := waitReady(endpoint, exited, 60*time.Second); err != nil {
		stop()
		return nil, fmt.Errorf("%w; server output:\n%s", err, out.String())
	}
	t.Cleanup(stop)
	srv := &Server{Endpoint: endpoint, Dir: dir, Client: NewClient(endpoint, AccessKey, SecretKey, nil)}
	srv.Bucket = srv.NewBucket(t)
	return srv, nil
}

// minimalEnv passes the server only what it needs from the test's
// environment: never AWS_* or MINIO_* settings meant for something else.
func minimalEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		if strings.HasPrefix(kv, "PATH=") || strings.HasPrefix(kv, "HOME=") || strings.HasPrefix(kv, "TMPDIR=") {
			env = append(env, kv)
		}
	}
	return env
}

func waitReady(endpoint string, exited <-chan struct{}, limit time.Duration) error {
	deadline := time.Now().Add(limit)
	client := &http.Client{Timeout: 2 * time.Second}
	for time.Now().Before(deadline) {
		select {
		case <-exited:
			return errors.New("the server exited")
		default:
		}
		resp, err := client.Get(endpoint + "/minio/health/ready")
		if err == nil {
			discard.Close(resp.Body)
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	return fmt.Errorf("not ready at %s after %v", endpoint, limit)
}

// NewClient returns an S3 client for endpoint with static credentials,
// path-style addressing and region us-east-1, configured explicitly.
// httpClient may be nil.
func NewClient(endpoint, accessKey, secretKey string, httpClient *http.Client) *s3.Client {
	cfg := aws.Config{
		Region:                     Region,
		Credentials:                credentials.NewStaticCredentialsProvider(accessKey, secretKey, ""),
		RequestChecksumCalculation: aws.RequestChecksumCalculationWhenRequired,
		ResponseChecksumValidation: aws.ResponseChecksumValidationWhenRequired,
	}
	if httpClient != nil {
		cfg.HTTPClient = httpClient
	}
	return s3.NewFromConfig(cfg, func(o *s3.Options) {
		o.BaseEndpoint = aws.String(endpoint)
		o.UsePathStyle = true
	})
}

// NewBucket creates an empty bucket with a random name and returns the name.
func (s *Server) NewBucket(t testing.TB) string {
	t.Helper()
	var b [6]byte
	rand.Read(b[:])
	name := "test-" + hex.EncodeToString(b[:])
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := s.Client.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String(name)}); err != nil {
		t.Fatalf("creating bucket %s on MinIO: %v", name, err)
	}
	return name
}

// RestrictedCredentials returns temporary credentials that may do only what
// policy (an IAM policy document, JSON) allows, for tests of denied access:
// the root user's own credentials bypass every policy. They come from STS
// AssumeRole against the server with policy as the session policy, and last
// an hour. The STS client is configured explicitly, like NewClient.
func (s *Server) RestrictedCredentials(t testing.TB, policy string) aws.Credentials {
	t.Helper()
	client := sts.New(sts.Options{
		Region:       Region,
		BaseEndpoint: aws.String(s.Endpoint),
		Credentials:  credentials.NewStaticCredentialsProvider(AccessKey, SecretKey, ""),
	})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	out, err := client.AssumeRole(ctx, &sts.AssumeRoleInput{
		// MinIO ignores the role and takes the session policy; the SDK
		// requires both fields.
		RoleArn:         aws.String("arn:minio:iam:::role/mftflow-test"),
		RoleSessionName: aws.String("mftflow-test"),
		Policy:          aws.String(policy),
		DurationSeconds: aws.Int32(3600),
	})
	if err != nil {
		t.Fatalf("STS AssumeRole on MinIO at %s with a session policy: %v", s.Endpoint, err)
	}
	c := out.Credentials
	return aws.Credentials{
		AccessKeyID:     aws.ToString(c.AccessKeyId),
		SecretAccessKey: aws.ToString(c.SecretAccessKey),
		SessionToken:    aws.ToString(c.SessionToken),
		CanExpire:       true,
		Expires:         aws.ToTime(c.Expiration),
	}
}
