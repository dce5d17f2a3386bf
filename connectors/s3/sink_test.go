package s3

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/mftflow/mftflow/pipeline"
	"github.com/mftflow/mftflow/testkit"
	"github.com/mftflow/mftflow/testkit/minio"
)

func fileOf(name string, content []byte) pipeline.File {
	return pipeline.File{ID: "id-" + name, Key: name, Name: name, Size: int64(len(content))}
}

func headSHA(t *testing.T, srv *minio.Server, bucket, key string) (int64, string) {
	t.Helper()
	out, err := srv.Client.HeadObject(t.Context(), &s3.HeadObjectInput{Bucket: aws.String(bucket), Key: aws.String(key)})
	if err != nil {
		t.Fatalf("HeadObject %s: %v", key, err)
	}
	return aws.ToInt64(out.ContentLength), out.Metadata[MetaSHA256]
}

// TestResumeUploadsOnlyMissingParts drops an upload half-way, as a crashed
// runner would, and resumes it from State: ListParts tells which parts S3
// holds, and only the others (and a part whose bytes differ) are sent.
func TestResumeUploadsOnlyMissingParts(t *testing.T) {
	srv := minio.StartMinIO(t)
	for _, checksum := range []string{ChecksumCRC32C, ChecksumMD5} {
		t.Run(checksum, func(t *testing.T) { testResume(t, srv, checksum) })
	}
}

func testResume(t *testing.T, srv *minio.Server, checksum string) {
	content := testkit.RandomContent(7, 3*MinPartSize+1000) // 4 parts
	f := fileOf("resume/big.bin", content)
	cfg := SinkConfig{ClientConfig: clientConfig(srv, srv.NewBucket(t)), PartSize: MinPartSize, Checksum: checksum}
	srv = &minio.Server{Endpoint: srv.Endpoint, Bucket: cfg.Bucket, Client: srv.Client}

	first := newTestSink(t, cfg)
	up, err := first.Open(t.Context(), f, nil)
	if err != nil {
		t.Fatal(err)
	}
	testkit.WriteParts(t, up, content, 0, 2)
	// Part 3 lands with wrong bytes of the right size, as if the source had
	// changed under a broken stage: the resumed upload must not keep it.
	wrong := append([]byte(nil), content...)
	copy(wrong[3*MinPartSize:], bytes.Repeat([]byte{'x'}, 1000))
	testkit.WriteParts(t, up, wrong, 3)
	state := up.State()
	// The runner dies here: no Commit, no Abort.

	counter := &countingTransport{base: http.DefaultTransport, match: isUploadPart}
	cfg.HTTPClient = &http.Client{Transport: counter}
	second := newTestSink(t, cfg)
	up2, err := second.Open(t.Context(), f, state)
	if err != nil {
		t.Fatalf("resuming: %v", err)
	}
	if got, want := string(up2.State()), string(state); got != want {
		t.Errorf("resumed State = %s, want %s", got, want)
	}
	// The engine had recorded no part: every part comes again.
	testkit.WriteParts(t, up2, content, 0, 1, 2, 3)
	if got := counter.n.Load(); got != 2 {
		t.Errorf("the resumed upload sent %d parts, want 2 (part 1, missing, and part 3, whose bytes differ)", got)
	}
	f.SHA256 = testkit.SHA256Hex(content)
	if err := up2.Commit(t.Context(), f); err != nil {
		t.Fatal(err)
	}
	got, ok := getObject(t, srv, srv.Bucket, "resume/big.bin")
	if !ok || testkit.SHA256Hex(got) != f.SHA256 {
		t.Fatalf("object sha256 %s (found %v), want %s", testkit.SHA256Hex(got), ok, f.SHA256)
	}
	if size, sha := headSHA(t, srv, srv.Bucket, "resume/big.bin"); size != f.Size || sha != f.SHA256 {
		t.Errorf("object size %d, x-amz-meta-sha256 %q; want %d, %q", size, sha, f.Size, f.SHA256)
	}
	if left := uploadsInProgress(t, srv, srv.Bucket, "resume/"); len(left) != 0 {
		t.Errorf("uploads left in progress: %q", left)
	}

	// A Commit repeated after a crash that followed it succeeds and makes
	// no second copy.
	up3, err := second.Open(t.Context(), f, state)
	if err != nil {
		t.Fatalf("reopening a committed upload: %v", err)
	}
	if err := up3.Commit(t.Context(), f); err != nil {
		t.Fatalf("repeated Commit: %v", err)
	}
}

// TestSHA256Metadata checks x-amz-meta-sha256 on a small file (known at
// Open through ManifestFirst), a multipart file (added by a copy after
// CompleteMultipartUpload), a file of unknown size and an empty file.
func TestSHA256Metadata(t *testing.T) {
	srv := minio.StartMinIO(t)
	s := newTestSink(t, SinkConfig{
		ClientConfig:  clientConfig(srv, srv.Bucket),
		Prefix:        "out/",
		Key:           "{dir}/{stem}-copy{ext}",
		SmallFileSize: 1 << 20,
		StorageClass:  "REDUCED_REDUNDANCY",
		Tags:          map[string]string{"team": "billing"},
		ContentType:   "application/x-test",
	})
	for _, tc := range []struct {
		name     string
		size     int
		unknown  bool
		manifest bool
	}{
		{"small.csv", 1000, false, true},
		{"dir/big.bin", 2*MinPartSize + 7, false, false},
		{"dir/unknown.bin", MinPartSize + 3, true, false},
		{"empty.txt", 0, false, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			content := testkit.RandomContent(int64(tc.size), tc.size)
			f := fileOf(tc.name, content)
			if tc.unknown {
				f.Size = -1
			}
			if got := s.ManifestFirst(f); got != tc.manifest {
				t.Errorf("ManifestFirst = %v, want %v", got, tc.manifest)
			}
			if err := testkit.Deliver(t.Context(), s, f, content); err != nil {
				t.Fatal(err)
			}
			key, _ := s.Key(f)
			got, _ := getObject(t, srv, srv.Bucket, key)
			if !bytes.Equal(got, content) {
				t.Fatalf("%s: content differs", key)
			}
			size, sha := headSHA(t, srv, srv.Bucket, key)
			if size != int64(len(content)) || sha != testkit.SHA256Hex(content) {
				t.Errorf("%s: size %d, sha256 %q; want %d, %q", key, size, sha, len(content), testkit.SHA256Hex(content))
			}
			head, err := srv.Client.HeadObject(t.Context(), &s3.HeadObjectInput{Bucket: aws.String(srv.Bucket), Key: aws.String(key)})
			if err != nil {
				t.Fatal(err)
			}
			if ct := aws.ToString(head.ContentType); ct != "application/x-test" {
				t.Errorf("%s: content type %q", key, ct)
			}
			if sc := string(head.StorageClass); sc != "REDUCED_REDUNDANCY" {
				t.Errorf("%s: storage class %q", key, sc)
			}
			tags, err := srv.Client.GetObjectTagging(t.Context(), &s3.GetObjectTaggingInput{Bucket: aws.String(srv.Bucket), Key: aws.String(key)})
			if err != nil || len(tags.TagSet) != 1 || aws.ToString(tags.TagSet[0].Value) != "billing" {
				t.Errorf("%s: tags %+v (%v), want team=billing", key, tags, err)
			}
		})
	}
	got := listAll(t, srv, srv.Bucket)
	if strings.Join(got, " ") != "out/dir/big-copy.bin out/dir/unknown-copy.bin out/empty-copy.txt out/small-copy.csv" {
		t.Errorf("bucket holds %q", got)
	}
}

func TestOverwritePolicies(t *testing.T) {
	srv := minio.StartMinIO(t)
	content := testkit.RandomContent(3, 2000)
	other := testkit.RandomContent(4, 2000)
	putObject(t, srv, srv.Bucket, "a.bin", content)

	// fail: an existing object fails the file, permanently.
	s := newTestSink(t, SinkConfig{ClientConfig: clientConfig(srv, srv.Bucket), Overwrite: OverwriteFail, SmallFileSize: 1 << 20})
	err := testkit.Deliver(t.Context(), s, fileOf("a.bin", content), content)
	if !errors.Is(err, pipeline.ErrExists) || !pipeline.IsPermanent(err) {
		t.Fatalf("overwrite fail: %v, want ErrExists", err)
	}
	want := fmt.Sprintf(`Open("a.bin"): s3 sink: s3://%s/a.bin exists and overwrite is "fail": remove it or change overwrite: target already exists`, srv.Bucket)
	if err.Error() != want {
		t.Errorf("got  %s\nwant %s", err, want)
	}

	// skip: the same content (without sha256 metadata yet, so sent and
	// checked at Commit), then a skip once the sha256 is recorded.
	s = newTestSink(t, SinkConfig{ClientConfig: clientConfig(srv, srv.Bucket), Overwrite: OverwriteSkip, SmallFileSize: 1 << 20})
	if err := testkit.Deliver(t.Context(), s, fileOf("a.bin", content), content); err != nil {
		t.Fatalf("skip, object without sha256 metadata: %v", err)
	}
	f := fileOf("a.bin", content)
	f.SHA256 = testkit.SHA256Hex(content) // as the engine gives it to a ManifestFirst sink
	if _, err := s.Open(t.Context(), f, nil); !errors.Is(err, pipeline.ErrSkip) {
		t.Fatalf("skip, same size and sha256: Open returned %v, want ErrSkip", err)
	}
	// Other content of the same size replaces the object.
	if err := testkit.Deliver(t.Context(), s, fileOf("a.bin", other), other); err != nil {
		t.Fatalf("skip, other content: %v", err)
	}
	if got, _ := getObject(t, srv, srv.Bucket, "a.bin"); !bytes.Equal(got, other) {
		t.Error("skip with other content did not replace the object")
	}
}

func TestPartSizing(t *testing.T) {
	s := &Sink{cfg: SinkConfig{PartSize: MinPartSize, UnknownSizePartSize: DefaultUnknownSizePartSize}}
	for _, tc := range []struct {
		size, want int64
	}{
		{-1, DefaultUnknownSizePartSize},
		{0, MinPartSize},
		{1 << 30, MinPartSize},
		{MaxParts * MinPartSize, MinPartSize},
		{MaxParts*MinPartSize + 1, 6 << 20},
		{5 << 40, 525 << 20}, // 5 TiB, S3's largest object
	} {
		got := s.partSizeFor(tc.size)
		if got != tc.want {
			t.Errorf("partSizeFor(%d) = %d, want %d", tc.size, got, tc.want)
		}
		if tc.size > 0 && (tc.size+got-1)/got > MaxParts {
			t.Errorf("partSizeFor(%d) = %d needs more than %d parts", tc.size, got, MaxParts)
		}
	}
}

func TestSinkErrors(t *testing.T) {
	srv := minio.StartMinIO(t)
	content := []byte("some content")
	closed := closedPort(t)
	for _, tc := range []struct {
		name      string
		change    func(c *SinkConfig)
		file      string
		want      string
		code      string
		permanent bool
	}{
		{
			name:   "wrong secret",
			change: func(c *SinkConfig) { c.SecretAccessKey = "not-the-secret" },
			want: `Open("a.bin"): s3 CreateMultipartUpload s3://BUCKET/a.bin at ENDPOINT: 403 SignatureDoesNotMatch: ` +
				`the request signature does not match: check secret_access_key (and that region matches the bucket's)`,
			code: "SignatureDoesNotMatch", permanent: true,
		},
		{
			name:   "unknown access key",
			change: func(c *SinkConfig) { c.AccessKeyID = "nobody" },
			want: `Open("a.bin"): s3 CreateMultipartUpload s3://BUCKET/a.bin at ENDPOINT: 403 InvalidAccessKeyId: ` +
				`the server does not know this access key id: check access_key_id`,
			code: "InvalidAccessKeyId", permanent: true,
		},
		{
			name:   "missing bucket",
			change: func(c *SinkConfig) { c.Bucket = "no-such-bucket" },
			want: `Open("a.bin"): s3 CreateMultipartUpload s3://no-such-bucket/a.bin at ENDPOINT: 404 NoSuchBucket: ` +
				`bucket "no-such-bucket" does not exist: create it or fix the bucket setting`,
			code: "NoSuchBucket", permanent: true,
		},
		{
			name:   "endpoint that does not answer",
			change: func(c *SinkConfig) { c.Endpoint, c.MaxAttempts = closed, 1 },
			want: `Open("a.bin"): s3 CreateMultipartUpload s3://BUCKET/a.bin at ` + closed + `: ` +
				`the endpoint does not answer: check endpoint, and that the server runs and is reachable`,
			permanent: false,
		},
		{
			name:   "empty key",
			change: func(c *SinkConfig) { c.Key = "{attr.missing}" },
			want: `Open("a.bin"): s3 sink: bucket "BUCKET": key template "{attr.missing}" gives an empty key for file "a.bin": ` +
				`fix the key setting: unsafe file name`,
			permanent: true,
		},
		{
			name:   "key leaving the prefix",
			change: func(c *SinkConfig) { c.Prefix, c.Key = "out", "../{name}" },
			want: `Open("a.bin"): s3 sink: bucket "BUCKET": key template "../{name}" gives the unusable key "../a.bin" ` +
				`(contains ".." and would escape the target directory) for file "a.bin": fix the key setting: unsafe file name`,
			permanent: true,
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := SinkConfig{ClientConfig: clientConfig(srv, srv.Bucket)}
			tc.change(&cfg)
			s := newTestSink(t, cfg)
			err := testkit.Deliver(t.Context(), s, fileOf("a.bin", content), content)
			if err == nil {
				t.Fatal("no error")
			}
			want := strings.NewReplacer("BUCKET", srv.Bucket, "ENDPOINT", srv.Endpoint).Replace(tc.want)
			msg := err.Error()
			if tc.code == "" && tc.permanent == false {
				// The network error's own text follows in parentheses.
				msg, _, _ = strings.Cut(msg, " (")
			}
			if msg != want {
				t.Errorf("error:\n got  %s\n want %s", msg, want)
			}
			if got := pipeline.IsPermanent(err); got != tc.permanent {
				t.Errorf("IsPermanent = %v, want %v", got, tc.permanent)
			}
			if tc.code != "" {
				if e := asError(t, err); e.Code != tc.code {
					t.Errorf("Code = %q, want %q", e.Code, tc.code)
				}
			}
		})
	}

	// A template that cannot work is refused at once.
	_, err := NewSink(t.Context(), SinkConfig{ClientConfig: clientConfig(srv, srv.Bucket), Key: "{nope}"})
	if want := `s3 sink: key: name template "{nope}": unknown placeholder {nope}`; err == nil || !strings.HasPrefix(err.Error(), want[:40]) {
		t.Errorf("unknown placeholder: %v", err)
	}
	// So are missing credentials.
	_, err = NewSink(t.Context(), SinkConfig{ClientConfig: ClientConfig{Bucket: "b"}})
	if want := "s3: access_key_id and secret_access_key are required with static credentials; set them (for example from ${ENV} in the flow file) or set credentials: default to use the AWS SDK's default chain"; err == nil || err.Error() != want {
		t.Errorf("missing credentials: %v", err)
	}
}

// closedPort returns the URL of a port on 127.0.0.1 where nothing listens.
func closedPort(t *testing.T) string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	return "http://" + addr
}

func TestServerSideEncryption(t *testing.T) {
	srv := minio.StartMinIO(t)
	for _, tc := range []struct{ sse, kms string }{{SSEAES256, ""}, {SSEKMS, minio.KMSKeyID}} {
		t.Run(tc.sse, func(t *testing.T) {
			s := newTestSink(t, SinkConfig{ClientConfig: clientConfig(srv, srv.Bucket), Prefix: tc.sse[:3], PartSize: MinPartSize, SSE: tc.sse, KMSKeyID: tc.kms})
			for _, size := range []int{100, 2*MinPartSize + 1} {
				content := testkit.RandomContent(int64(size), size)
				f := fileOf(fmt.Sprintf("f%d.bin", size), content)
				if err := testkit.Deliver(t.Context(), s, f, content); err != nil {
					t.Fatal(err)
				}
				key, _ := s.Key(f)
				got, _ := getObject(t, srv, srv.Bucket, key)
				if !bytes.Equal(got, content) {
					t.Fatalf("%s: content differs", key)
				}
				head, err := srv.Client.HeadObject(t.Context(), &s3.HeadObjectInput{Bucket: aws.String(srv.Bucket), Key: aws.String(key)})
				if err != nil {
					t.Fatal(err)
				}
				if string(head.ServerSideEncryption) != tc.sse || head.Metadata[MetaSHA256] != testkit.SHA256Hex(content) {
					t.Errorf("%s: encryption %q, sha256 %q", key, head.ServerSideEncryption, head.Metadata[MetaSHA256])
				}
				if tc.kms != "" && !strings.HasSuffix(aws.ToString(head.SSEKMSKeyId), tc.kms) {
					t.Errorf("%s: KMS key %q, want %q", key, aws.ToString(head.SSEKMSKeyId), tc.kms)
				}
			}
		})
	}
}

// TestSpooledParts sends parts above the in-memory limit through temporary
// files, and leaves none behind.
func TestSpooledParts(t *testing.T) {
	srv := minio.StartMinIO(t)
	tmp := t.TempDir()
	t.Setenv("TMPDIR", tmp)
	old := memPartMax
	memPartMax = 1 << 20
	t.Cleanup(func() { memPartMax = old })
	s := newTestSink(t, SinkConfig{ClientConfig: clientConfig(srv, srv.Bucket), PartSize: MinPartSize})
	content := testkit.RandomContent(9, 2*MinPartSize+5)
	f := fileOf("spooled.bin", content)
	if err := testkit.Deliver(t.Context(), s, f, content); err != nil {
		t.Fatal(err)
	}
	if got, _ := getObject(t, srv, srv.Bucket, "spooled.bin"); !bytes.Equal(got, content) {
		t.Error("content differs")
	}
	if left, _ := os.ReadDir(tmp); len(left) != 0 {
		t.Errorf("temporary files left: %v", left)
	}
}

func TestTooManyParts(t *testing.T) {
	u := &Upload{s: &Sink{cfg: SinkConfig{ClientConfig: ClientConfig{Bucket: "b"}}}, key: "k", uploadID: "u", partSize: 64 << 20}
	err := u.WritePart(t.Context(), pipeline.Part{Number: MaxParts, Offset: MaxParts * 64 << 20, Size: 1}, strings.NewReader("x"))
	want := "s3 sink: s3://b/k: part 10001 is beyond S3's limit of 10000 parts of 67108864 bytes: raise unknown_size_part_size"
	if err == nil || err.Error() != want || !pipeline.IsPermanent(err) {
		t.Errorf("got %v, want %s (permanent)", err, want)
	}
}

// TestUnsignedPayload: parts go with UNSIGNED-PAYLOAD, checked by their
// CRC32C, also over plain HTTP, which MinIO accepts.
func TestUnsignedPayload(t *testing.T) {
	srv := minio.StartMinIO(t)
	var unsigned atomic.Int64
	client := &http.Client{Transport: roundTrip(func(r *http.Request) (*http.Response, error) {
		if isUploadPart(r) && r.Header.Get("X-Amz-Content-Sha256") == "UNSIGNED-PAYLOAD" {
			unsigned.Add(1)
		}
		return http.DefaultTransport.RoundTrip(r)
	})}
	cfg := clientConfig(srv, srv.Bucket)
	cfg.HTTPClient = client
	s := newTestSink(t, SinkConfig{ClientConfig: cfg, PartSize: MinPartSize})
	content := testkit.RandomContent(12, 2*MinPartSize+3)
	if err := testkit.Deliver(t.Context(), s, fileOf("u.bin", content), content); err != nil {
		t.Fatal(err)
	}
	if got, _ := getObject(t, srv, srv.Bucket, "u.bin"); !bytes.Equal(got, content) {
		t.Error("content differs")
	}
	if unsigned.Load() != 3 {
		t.Errorf("%d of 3 parts went unsigned", unsigned.Load())
	}
}

type roundTrip func(*http.Request) (*http.Response, error)

func (f roundTrip) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

// TestSHA256TagAboveCopyLimit: objects CopyObject cannot copy in one call get
// the sha256 as a tag, next to the configured tags.
func TestSHA256TagAboveCopyLimit(t *testing.T) {
	srv := minio.StartMinIO(t)
	old := copyLimit
	copyLimit = MinPartSize
	t.Cleanup(func() { copyLimit = old })
	s := newTestSink(t, SinkConfig{ClientConfig: clientConfig(srv, srv.Bucket), PartSize: MinPartSize, Tags: map[string]string{"team": "billing"}})
	content := testkit.RandomContent(13, MinPartSize+1)
	if err := testkit.Deliver(t.Context(), s, fileOf("tagged.bin", content), content); err != nil {
		t.Fatal(err)
	}
	tags, err := srv.Client.GetObjectTagging(t.Context(), &s3.GetObjectTaggingInput{Bucket: aws.String(srv.Bucket), Key: aws.String("tagged.bin")})
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	for _, tag := range tags.TagSet {
		got[aws.ToString(tag.Key)] = aws.ToString(tag.Value)
	}
	if len(got) != 2 || got["team"] != "billing" || got[MetaSHA256] != testkit.SHA256Hex(content) {
		t.Errorf("tags %v, want team=billing and sha256=%s", got, testkit.SHA256Hex(content))
	}
}

// A Commit that finds its upload gone (completed by a run that died before it
// recorded the sha256) writes the sha256 on the object under the key only if
// that object holds the file: one another writer put there meanwhile is
// refused, never stamped as ours.
func TestResumedCommitChecksTheObject(t *testing.T) {
	srv := minio.StartMinIO(t)
	bucket := srv.NewBucket(t)
	cfg := SinkConfig{ClientConfig: clientConfig(srv, bucket), PartSize: MinPartSize}
	content := testkit.RandomContent(51, MinPartSize+9) // two parts
	for _, replaced := range []bool{false, true} {
		t.Run(fmt.Sprintf("replaced=%v", replaced), func(t *testing.T) {
			f := fileOf(fmt.Sprintf("gone-%v.bin", replaced), content)
			f.SHA256 = testkit.SHA256Hex(content)
			s := newTestSink(t, cfg)
			up, err := s.Open(t.Context(), f, nil)
			if err != nil {
				t.Fatal(err)
			}
			testkit.WriteParts(t, up, content, 0, 1)
			state := up.State()
			if err := up.Commit(t.Context(), f); err != nil {
				t.Fatal(err)
			}
			// The object as that run left it: without the sha256 (it died
			// before recording it), or replaced by another writer.
			if replaced {
				other := bytes.Repeat([]byte{'x'}, len(content))
				if _, err := srv.Client.PutObject(t.Context(), &s3.PutObjectInput{Bucket: aws.String(bucket), Key: aws.String(f.Name), Body: bytes.NewReader(other)}); err != nil {
					t.Fatal(err)
				}
			} else if _, err := srv.Client.CopyObject(t.Context(), &s3.CopyObjectInput{Bucket: aws.String(bucket), Key: aws.String(f.Name),
				CopySource: aws.String(bucket + "/" + f.Name), MetadataDirective: "REPLACE", Metadata: map[string]string{}}); err != nil {
				t.Fatal(err)
			}
			if _, sha := headSHA(t, srv, bucket, f.Name); sha != "" {
				t.Fatalf("setting up: the object still has sha256 %q", sha)
			}

			again, err := newTestSink(t, cfg).Open(t.Context(), f, state)
			if err != nil {
				t.Fatal(err)
			}
			err = again.Commit(t.Context(), f)
			_, sha := headSHA(t, srv, bucket, f.Name)
			if !replaced {
				if err != nil || sha != f.SHA256 {
					t.Fatalf("Commit: %v, object sha256 %q; want success and %s recorded", err, sha, f.SHA256)
				}
				return
			}
			want := fmt.Sprintf("s3 sink: s3://%s/%s: the upload is gone and the object under the key is not this file (its content has sha256 %s, want %s): another writer replaced it; send the file again",
				bucket, f.Name, testkit.SHA256Hex(bytes.Repeat([]byte{'x'}, len(content))), f.SHA256)
			if err == nil || err.Error() != want || !pipeline.IsPermanent(err) || sha != "" {
				t.Fatalf("Commit: %v (permanent %v), object sha256 %q;\nwant the permanent error %q and no sha256 written", err, pipeline.IsPermanent(err), sha, want)
			}
		})
	}
}

// WriteWhole puts a small file in one request, with what Open and Commit
// would give the object, and the overwrite policies' checks.
func TestWriteWhole(t *testing.T) {
	srv := minio.StartMinIO(t)
	for _, checksum := range []string{ChecksumCRC32C, ChecksumMD5} {
		s := newTestSink(t, SinkConfig{ClientConfig: clientConfig(srv, srv.Bucket), Prefix: checksum + "/",
			StorageClass: "REDUCED_REDUNDANCY", Tags: map[string]string{"team": "billing"}, Checksum: checksum})
		for _, size := range []int{0, 1, 4096, 32 << 10} {
			content := testkit.RandomContent(int64(size), size)
			f := fileOf(fmt.Sprintf("w%d.edi", size), content)
			f.SHA256 = testkit.SHA256Hex(content)
			if err := s.WriteWhole(t.Context(), f, content); err != nil {
				t.Fatalf("%s %s: %v", checksum, f.Name, err)
			}
			key, _ := s.Key(f)
			if got, _ := getObject(t, srv, srv.Bucket, key); !bytes.Equal(got, content) {
				t.Errorf("%s: content differs", key)
			}
			if n, sha := headSHA(t, srv, srv.Bucket, key); n != int64(size) || sha != f.SHA256 {
				t.Errorf("%s: size %d, sha256 %q; want %d, %q", key, n, sha, size, f.SHA256)
			}
			head, err := srv.Client.HeadObject(t.Context(), &s3.HeadObjectInput{Bucket: aws.String(srv.Bucket), Key: aws.String(key)})
			if err != nil || string(head.StorageClass) != "REDUCED_REDUNDANCY" || aws.ToString(head.ContentType) != s.contentType(key) {
				t.Errorf("%s: head %+v, %v", key, head, err)
			}
		}
	}
	content := testkit.RandomContent(5, 100)
	f := fileOf("exists.bin", content)
	f.SHA256 = testkit.SHA256Hex(content)
	putObject(t, srv, srv.Bucket, "exists.bin", content)
	fail := newTestSink(t, SinkConfig{ClientConfig: clientConfig(srv, srv.Bucket), Overwrite: OverwriteFail})
	if err := fail.WriteWhole(t.Context(), f, content); !errors.Is(err, pipeline.ErrExists) || !pipeline.IsPermanent(err) {
		t.Errorf("overwrite fail, object there: %v, want ErrExists", err)
	}
	skip := newTestSink(t, SinkConfig{ClientConfig: clientConfig(srv, srv.Bucket), Overwrite: OverwriteSkip})
	if err := skip.WriteWhole(t.Context(), f, content); err != nil {
		t.Errorf("overwrite skip, object without sha256: %v, want it written", err)
	}
	if err := skip.WriteWhole(t.Context(), f, content); !errors.Is(err, pipeline.ErrSkip) {
		t.Errorf("overwrite skip, same object: %v, want ErrSkip", err)
	}
	if err := skip.WriteWhole(t.Context(), f, content[:99]); err == nil || !pipeline.IsPermanent(err) {
		t.Errorf("99 bytes for a file of 100: %v, want a permanent error", err)
	}
}
