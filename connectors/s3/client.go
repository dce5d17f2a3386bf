package s3

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/smithy-go"

	"github.com/mftflow/mftflow/pipeline"
)

// Values of ClientConfig.Credentials.
const (
	// CredentialsStatic uses AccessKeyID and SecretAccessKey (and
	// SessionToken, if set) and nothing from the environment.
	CredentialsStatic = "static"
	// CredentialsDefault uses the AWS SDK's default chain: environment
	// variables, shared config and credentials files, SSO, web identity,
	// container and instance roles. Region and endpoint settings in the
	// environment then apply too, unless set here.
	CredentialsDefault = "default"
)

// DefaultRegion is the region used when none is configured. S3-compatible
// servers usually accept any region; MinIO's default is us-east-1.
const DefaultRegion = "us-east-1"

// ClientConfig says how to reach a bucket.
type ClientConfig struct {
	Bucket string `config:"bucket"`
	// Region of the bucket; DefaultRegion if empty.
	Region string `config:"region"`
	// Endpoint is the base URL of an S3-compatible server, such as
	// "http://127.0.0.1:9000". Empty: AWS. User info ("user:pass@") is
	// refused: the SDK would ignore it.
	Endpoint string `config:"endpoint"`
	// PathStyle addresses buckets as ENDPOINT/BUCKET/KEY instead of
	// BUCKET.ENDPOINT/KEY. Most S3-compatible servers need it.
	PathStyle bool `config:"path_style"`
	// Credentials is CredentialsStatic (the default when empty) or
	// CredentialsDefault.
	Credentials     string `config:"credentials"`
	AccessKeyID     string `config:"access_key_id"`
	SecretAccessKey string `config:"secret_access_key"`
	SessionToken    string `config:"session_token"`
	// HTTPClient, if set, sends every request; tests use it to count or
	// break requests. Nil: the SDK's default client.
	HTTPClient *http.Client
	// MaxAttempts bounds the SDK's own retries of one request; 0 means 3.
	// The engine retries failed deliveries on top of that.
	MaxAttempts int
}

func (c ClientConfig) check() error {
	if c.Bucket == "" {
		return errors.New("s3: no bucket given")
	}
	switch c.Credentials {
	case "", CredentialsStatic:
		if c.AccessKeyID == "" || c.SecretAccessKey == "" {
			return errors.New("s3: access_key_id and secret_access_key are required with static credentials; " +
				"set them (for example from ${ENV} in the flow file) or set credentials: default to use the AWS SDK's default chain")
		}
	case CredentialsDefault:
	default:
		return fmt.Errorf("s3: credentials %q: want %q or %q", c.Credentials, CredentialsStatic, CredentialsDefault)
	}
	if c.Endpoint != "" {
		// The SDK drops user info from the endpoint and signs with the
		// access key: a password there would be ignored, then shown in
		// errors. The endpoint is not quoted, lest it carry one.
		if strings.Contains(c.Endpoint, "@") {
			return errors.New("s3: endpoint: remove the user info (user:password@) from the URL: S3 does not use it; " +
				"put the credentials in access_key_id and secret_access_key (or set credentials: default)")
		}
		u, err := url.Parse(c.Endpoint)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return fmt.Errorf("s3: endpoint %q: want a URL such as https://s3.example.com or http://127.0.0.1:9000", c.Endpoint)
		}
	}
	return nil
}

// newClient builds the SDK client. With static credentials nothing is read
// from the environment or shared config files, so what the flow says is
// exactly what is used.
func newClient(ctx context.Context, c ClientConfig) (*s3.Client, error) {
	if err := c.check(); err != nil {
		return nil, err
	}
	region := c.Region
	if region == "" {
		region = DefaultRegion
	}
	attempts := c.MaxAttempts
	if attempts <= 0 {
		attempts = 3
	}
	var cfg aws.Config
	if c.Credentials == CredentialsDefault {
		opts := []func(*config.LoadOptions) error{config.WithRetryMaxAttempts(attempts)}
		if c.Region != "" {
			opts = append(opts, config.WithRegion(c.Region))
		}
		if c.HTTPClient != nil {
			opts = append(opts, config.WithHTTPClient(c.HTTPClient))
		}
		var err error
		if cfg, err = config.LoadDefaultConfig(ctx, opts...); err != nil {
			return nil, fmt.Errorf("s3: loading the AWS SDK's default configuration: %w", err)
		}
		if cfg.Region == "" {
			cfg.Region = region
		}
	} else {
		cfg = aws.Config{
			Region:           region,
			Credentials:      credentials.NewStaticCredentialsProvider(c.AccessKeyID, c.SecretAccessKey, c.SessionToken),
			RetryMaxAttempts: attempts,
		}
		if c.HTTPClient != nil {
			cfg.HTTPClient = c.HTTPClient
		}
	}
	// Checksums are asked for explicitly where they are wanted, and range
	// reads of multipart objects carry no whole-object checksum to check.
	cfg.RequestChecksumCalculation = aws.RequestChecksumCalculationWhenRequired
	cfg.ResponseChecksumValidation = aws.ResponseChecksumValidationWhenRequired
	return s3.NewFromConfig(cfg, func(o *s3.Options) {
		if c.Endpoint != "" {
			o.BaseEndpoint = aws.String(c.Endpoint)
		}
		o.UsePathStyle = c.PathStyle
	}), nil
}

// Error is a failed S3 request. It names the call, the object and what to do.
// Permanent reports whether retrying can help: wrong credentials, a missing
// bucket and denied access cannot; server errors, throttling and network
// failures can.
type Error struct {
	Op       string // the S3 call, such as "CreateMultipartUpload"
	Bucket   string
	Key      string // "" for bucket-wide calls
	Endpoint string // "" for AWS
	Status   int    // HTTP status; 0 when no answer came
	Code     string // S3 error code such as "NoSuchBucket"; "" if none
	Hint     string // what to do about it
	Err      error
	perm     bool
}

func (e *Error) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "s3 %s s3://%s/%s", e.Op, e.Bucket, e.Key)
	if e.Endpoint != "" {
		fmt.Fprintf(&b, " at %s", pipeline.RedactURLs(e.Endpoint))
	}
	b.WriteString(": ")
	switch {
	case e.Status != 0 && e.Code != "":
		fmt.Fprintf(&b, "%d %s", e.Status, e.Code)
	case e.Status != 0:
		fmt.Fprintf(&b, "HTTP %d", e.Status)
	case e.Code != "":
		b.WriteString(e.Code)
	}
	if e.Hint != "" {
		if e.Status != 0 || e.Code != "" {
			b.WriteString(": ")
		}
		b.WriteString(e.Hint)
	}
	if e.Err != nil && (e.Status == 0 || e.Hint == "") {
		fmt.Fprintf(&b, " (%v)", e.Err)
	}
	return b.String()
}

func (e *Error) Unwrap() error { return e.Err }

// Permanent reports whether retrying the request cannot help.
func (e *Error) Permanent() bool { return e.perm }

// Is makes the loss of a multipart upload (NoSuchUpload; InvalidPart at
// its completion: parts it held are gone) pipeline.ErrUploadLost, so the
// file is sent afresh.
func (e *Error) Is(target error) bool {
	return target == pipeline.ErrUploadLost && (e.Code == "NoSuchUpload" || e.Code == "InvalidPart" && e.Op == "CompleteMultipartUpload")
}

// errorCode returns the S3 error code and HTTP status of err, if any.
func errorCode(err error) (code string, status int) {
	var api smithy.APIError
	if errors.As(err, &api) {
		code = api.ErrorCode()
	}
	var re *awshttp.ResponseError
	if errors.As(err, &re) {
		status = re.HTTPStatusCode()
	}
	return code, status
}

// isCode reports whether err is an S3 error with one of the codes.
func isCode(err error, codes ...string) bool {
	code, _ := errorCode(err)
	for _, c := range codes {
		if code == c {
			return true
		}
	}
	return false
}

// isNotFound reports a missing object (HEAD answers 404 with no body).
func isNotFound(err error) bool {
	code, status := errorCode(err)
	return code == "NoSuchKey" || code == "NotFound" || (status == http.StatusNotFound && code != "NoSuchBucket" && code != "NoSuchUpload")
}

// wrapErr turns an SDK error into an *Error with a hint, marking what
// retrying cannot fix as permanent. Context errors pass through unchanged.
func (c ClientConfig) wrapErr(op, key string, err error) error {
	if err == nil {
		return nil
	}
	// The SDK's messages may quote request URLs: none leaves with user info.
	err = pipeline.RedactErr(err)
	if errors.Is(err, context.Canceled) {
		return fmt.Errorf("s3 %s s3://%s/%s: %w", op, c.Bucket, key, err)
	}
	code, status := errorCode(err)
	e := &Error{Op: op, Bucket: c.Bucket, Key: key, Endpoint: c.Endpoint, Status: status, Code: code, Err: err}
	where := "the endpoint"
	if c.Endpoint == "" {
		where = "AWS S3"
	}
	switch {
	case code == "InvalidAccessKeyId":
		e.perm = true
		e.Hint = "the server does not know this access key id: check access_key_id"
	case code == "SignatureDoesNotMatch":
		e.perm = true
		e.Hint = "the request signature does not match: check secret_access_key (and that region matches the bucket's)"
	case code == "ExpiredToken" || code == "InvalidToken" || code == "TokenRefreshRequired":
		e.perm = true
		e.Hint = "the session token is expired or invalid: renew the credentials"
	case code == "NoSuchBucket":
		e.perm = true
		e.Hint = fmt.Sprintf("bucket %q does not exist: create it or fix the bucket setting", c.Bucket)
	case code == "AccessDenied" || code == "AllAccessDisabled" || status == http.StatusForbidden:
		e.perm = true
		e.Hint = fmt.Sprintf("access denied: grant these credentials %s on bucket %q (or check the credentials)", permissionOf(op), c.Bucket)
	case code == "NoSuchUpload":
		e.perm = true
		e.Hint = "the multipart upload no longer exists (aborted, or removed by a lifecycle rule): the file must be sent again"
	case code == "PreconditionFailed" || status == http.StatusPreconditionFailed:
		e.perm = true
		e.Hint = "the object changed since it was listed"
	case code == "InvalidArgument" || code == "InvalidRequest" || code == "EntityTooSmall" || code == "InvalidPart" ||
		code == "InvalidPartOrder" || code == "KeyTooLongError" || code == "InvalidBucketName" || code == "InvalidStorageClass":
		e.perm = true
		e.Hint = "the server refused the request: check the sink's settings"
	case code == "PermanentRedirect" || code == "AuthorizationHeaderMalformed" || status == http.StatusMovedPermanently:
		e.perm = true
		e.Hint = "the bucket is in another region: set region to the bucket's region"
	case isNotFound(err) || code == "NoSuchKey":
		e.perm = true
		e.Hint = "no such object"
	case status == http.StatusBadRequest:
		e.perm = true
		e.Hint = "the server refused the request"
	case status >= 500 || code == "SlowDown" || code == "Throttling" || code == "ThrottlingException" ||
		code == "RequestTimeout" || code == "RequestTimeTooSkewed" || status == http.StatusTooManyRequests:
		e.Hint = "the server is busy or failing: will retry"
	case status == 0:
		// No answer at all: a refused connection, a timeout, DNS.
		e.Hint = fmt.Sprintf("%s does not answer: check endpoint, and that the server runs and is reachable", where)
	}
	return e
}

// permissionOf names the IAM actions an S3 call needs. op may carry more
// words after the call's name ("UploadPart 3").
func permissionOf(op string) string {
	call, _, _ := strings.Cut(op, " ")
	switch call {
	case "PutObject", "CreateMultipartUpload", "UploadPart", "CompleteMultipartUpload":
		return "s3:PutObject"
	case "CopyObject":
		return "s3:GetObject and s3:PutObject"
	case "HeadObject":
		// Without ListBucket a missing object answers 403, not 404.
		return "s3:GetObject and s3:ListBucket"
	case "ListObjectsV2":
		return "s3:ListBucket"
	case "ListParts":
		return "s3:ListMultipartUploadParts"
	}
	return "s3:" + call // GetObject, DeleteObject, AbortMultipartUpload, tagging calls
}
