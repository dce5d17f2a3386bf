package s3

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"mime"
	"net/url"
	"path"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"

	"github.com/mftflow/mftflow/pipeline"
)

// Limits of S3 multipart uploads.
const (
	// MinPartSize is the smallest part S3 accepts, but for the last one.
	MinPartSize = 5 << 20
	// MaxParts is the most parts one upload may have.
	MaxParts = 10000
	// MaxCopySize is the largest object CopyObject can copy in one call.
	MaxCopySize = 5 << 30
)

// MetaSHA256 is the user metadata key (x-amz-meta-sha256) that holds the hex
// sha256 of an object's content.
const MetaSHA256 = "sha256"

// memPartMax is the largest part buffered in memory; larger parts are
// spooled to a temporary file so memory stays bounded. A variable for tests.
var memPartMax int64 = 16 << 20

// copyLimit is MaxCopySize; a variable for tests.
var copyLimit int64 = MaxCopySize

// SinkConfig configures a Sink.
type SinkConfig struct {
	ClientConfig
	// Prefix is prepended to every key, with a "/" between them.
	Prefix string `config:"prefix"`
	// Key is the template of each object's key below Prefix; see
	// pipeline.ExpandName. Empty: "{name}".
	Key string `config:"key"`
	// PartSize is the multipart part size; at least MinPartSize, raised for
	// big files so no file needs more than MaxParts parts.
	PartSize int64 `config:"part_size"`
	// UnknownSizePartSize is the part size of files whose size is unknown at
	// Open (after a compressing stage): MaxParts × this is the largest such
	// file that can be sent.
	UnknownSizePartSize int64 `config:"unknown_size_part_size"`
	// SmallFileSize: files of known size up to this are opened only once
	// their sha256 is known (pipeline.ManifestFirst), so the object is
	// created with its sha256 metadata and needs no copy afterwards.
	SmallFileSize int64 `config:"small_file_size"`
	// Concurrency is how many parts of one file are sent at once; 0 uses the
	// flow's parallelism for the sink.
	Concurrency int `config:"concurrency"`
	// StorageClass such as "STANDARD_IA"; empty: the bucket's default.
	StorageClass string `config:"storage_class"`
	// SSE is "", "AES256" or "aws:kms"; KMSKeyID goes with "aws:kms".
	SSE      string `config:"sse"`
	KMSKeyID string `config:"kms_key_id"`
	// ContentType of every object; empty: guessed from the key's extension.
	ContentType string `config:"content_type"`
	// Tags are set on every object.
	Tags map[string]string `config:"tags"`
	// Overwrite is OverwriteReplace (default), OverwriteSkip or OverwriteFail.
	Overwrite string `config:"overwrite"`
	// Checksum is ChecksumCRC32C (default) or ChecksumMD5: how each part is
	// checked by the server.
	Checksum string `config:"checksum"`
}

// Sink writes files as S3 objects. It is safe for concurrent use.
type Sink struct {
	cfg    SinkConfig
	client *s3.Client
	now    func() time.Time
}

// NewSink checks cfg and returns a Sink. It makes no request: problems with
// credentials or the bucket show up, with a clear error, on the first file.
func NewSink(ctx context.Context, cfg SinkConfig) (*Sink, error) {
	if cfg.Key == "" {
		cfg.Key = "{name}"
	}
	if err := pipeline.CheckTemplate(cfg.Key); err != nil {
		return nil, fmt.Errorf("s3 sink: key: %w", err)
	}
	if cfg.PartSize <= 0 {
		cfg.PartSize = DefaultPartSize
	}
	cfg.PartSize = max(cfg.PartSize, MinPartSize)
	if cfg.UnknownSizePartSize <= 0 {
		cfg.UnknownSizePartSize = DefaultUnknownSizePartSize
	}
	cfg.UnknownSizePartSize = max(cfg.UnknownSizePartSize, cfg.PartSize)
	if cfg.SmallFileSize < 0 {
		cfg.SmallFileSize = 0
	}
	switch cfg.Overwrite {
	case "":
		cfg.Overwrite = OverwriteReplace
	case OverwriteReplace, OverwriteSkip, OverwriteFail:
	default:
		return nil, fmt.Errorf("s3 sink: overwrite %q: want %s, %s or %s", cfg.Overwrite, OverwriteReplace, OverwriteSkip, OverwriteFail)
	}
	switch cfg.Checksum {
	case "":
		cfg.Checksum = ChecksumCRC32C
	case ChecksumCRC32C, ChecksumMD5:
	default:
		return nil, fmt.Errorf("s3 sink: checksum %q: want %s or %s", cfg.Checksum, ChecksumCRC32C, ChecksumMD5)
	}
	switch cfg.SSE {
	case "", SSEAES256:
		if cfg.KMSKeyID != "" {
			return nil, errors.New(`s3 sink: kms_key_id is set but sse is not "aws:kms"`)
		}
	case SSEKMS:
	default:
		return nil, fmt.Errorf("s3 sink: sse %q: want %q or %q", cfg.SSE, SSEAES256, SSEKMS)
	}
	if strings.HasPrefix(cfg.Prefix, "/") {
		return nil, fmt.Errorf("s3 sink: prefix %q: keys do not start with a slash; drop it", cfg.Prefix)
	}
	client, err := newClient(ctx, cfg.ClientConfig)
	if err != nil {
		return nil, err
	}
	return &Sink{cfg: cfg, client: client, now: time.Now}, nil
}

// Close releases nothing; it exists for pipeline.Sink.
func (s *Sink) Close() error { return nil }

// ManifestFirst asks the engine to open small files of known size only once
// their sha256 is known: waiting costs little for them, and it lets the
// object be created with its sha256 metadata (and an overwrite policy of
// skip decide before sending anything).
func (s *Sink) ManifestFirst(f pipeline.File) bool {
	return f.Size >= 0 && f.Size <= s.cfg.SmallFileSize
}

// Key returns the object key for f, as Open would name it now.
func (s *Sink) Key(f pipeline.File) (string, error) {
	name, err := pipeline.ExpandName(s.cfg.Key, f, s.now().UTC())
	if err != nil {
		return "", pipeline.Permanent(fmt.Errorf("s3 sink: bucket %q: %v: fix the key setting", s.cfg.Bucket, err))
	}
	bad := func(why string) (string, error) {
		return "", fmt.Errorf("s3 sink: bucket %q: key template %q gives %s for file %q: fix the key setting: %w",
			s.cfg.Bucket, s.cfg.Key, why, f.Name, pipeline.ErrBadName)
	}
	if name == "" {
		return bad("an empty key")
	}
	clean, err := pipeline.CleanName(name)
	if err != nil {
		why := strings.TrimPrefix(err.Error(), fmt.Sprintf("file name %q: ", name))
		why = strings.TrimSuffix(why, ": "+pipeline.ErrBadName.Error())
		return bad(fmt.Sprintf("the unusable key %q (%s)", name, why))
	}
	key := clean
	if p := strings.TrimSuffix(s.cfg.Prefix, "/"); p != "" {
		key = p + "/" + clean
	}
	switch {
	case len(key) > 1024:
		return bad(fmt.Sprintf("a key of %d bytes (S3 allows 1024)", len(key)))
	case !utf8.ValidString(key):
		return "", pipeline.CheckUTF8Name(key, fmt.Sprintf("an S3 key (bucket %q)", s.cfg.Bucket))
	}
	return key, nil
}

// partSizeFor is the part size for a file of size bytes (-1: unknown).
func (s *Sink) partSizeFor(size int64) int64 {
	ps := s.cfg.PartSize
	if size < 0 {
		return s.cfg.UnknownSizePartSize
	}
	if need := (size + MaxParts - 1) / MaxParts; need > ps {
		ps = (need + 1<<20 - 1) >> 20 << 20 // whole MiB
	}
	return ps
}

// uploadState is what Upload.State returns, as JSON.
type uploadState struct {
	Key      string `json:"key"`
	UploadID string `json:"upload_id,omitempty"`
	PartSize int64  `json:"part_size"`
}

// listedPart is a part S3 already held when an upload was resumed.
type listedPart struct {
	size   int64
	etag   string
	crc32c string
}

// Upload is one file being written as an S3 multipart upload. Its methods
// are safe for concurrent use.
type Upload struct {
	s        *Sink
	key      string
	uploadID string // "" for an empty file, sent with PutObject at Commit
	partSize int64

	mu     sync.Mutex
	parts  map[int32]types.CompletedPart // by S3 part number (1-based)
	listed map[int32]listedPart          // held by S3 when resumed
	gone   bool                          // resumed, but the upload no longer exists
	// fullCRC: the server keeps a CRC32C of the whole object (checksum type
	// FULL_OBJECT), and Commit sends the one it expects.
	fullCRC bool
}

// Open starts a multipart upload for f or, with resume state from
// Upload.State, continues one: ListParts says which parts S3 already holds,
// and WritePart skips those whose size and checksum match. With overwrite
// fail an existing object fails the file (pipeline.ErrExists); with skip an
// existing object of the same size and sha256 skips it (pipeline.ErrSkip),
// decided here when the sha256 is known and at Commit otherwise.
func (s *Sink) Open(ctx context.Context, f pipeline.File, resume []byte) (pipeline.Upload, error) {
	if len(resume) > 0 {
		var st uploadState
		if err := json.Unmarshal(resume, &st); err != nil || st.Key == "" || st.PartSize <= 0 {
			return nil, pipeline.Permanent(fmt.Errorf("s3 sink: resuming %q: unreadable resume state %q", f.Name, resume))
		}
		u := &Upload{s: s, key: st.Key, uploadID: st.UploadID, partSize: st.PartSize, parts: map[int32]types.CompletedPart{}}
		if st.UploadID != "" {
			if err := u.listParts(ctx); err != nil {
				return nil, err
			}
		}
		return u, nil
	}
	key, err := s.Key(f)
	if err != nil {
		return nil, err
	}
	if s.cfg.Overwrite != OverwriteReplace {
		head, err := s.head(ctx, key)
		if err != nil {
			return nil, err
		}
		if err := s.overwriteCheck(key, head, f); err != nil {
			return nil, err
		}
	}
	u := &Upload{s: s, key: key, partSize: s.partSizeFor(f.Size), parts: map[int32]types.CompletedPart{}}
	if f.Size == 0 {
		return u, nil
	}
	in := &s3.CreateMultipartUploadInput{
		Bucket:       aws.String(s.cfg.Bucket),
		Key:          aws.String(key),
		ContentType:  aws.String(s.contentType(key)),
		Metadata:     map[string]string{},
		StorageClass: types.StorageClass(s.cfg.StorageClass),
	}
	if f.SHA256 != "" {
		in.Metadata[MetaSHA256] = f.SHA256
	}
	if s.cfg.Checksum == ChecksumCRC32C {
		in.ChecksumAlgorithm = types.ChecksumAlgorithmCrc32c
		in.ChecksumType = types.ChecksumTypeFullObject
	}
	s.applySSE(&in.ServerSideEncryption, &in.SSEKMSKeyId)
	if t := s.tagging(nil); t != "" {
		in.Tagging = aws.String(t)
	}
	out, err := s.client.CreateMultipartUpload(ctx, in)
	if err != nil {
		return nil, s.cfg.wrapErr("CreateMultipartUpload", key, err)
	}
	u.uploadID = aws.ToString(out.UploadId)
	// A server that does not know FULL_OBJECT does not say it back, and then
	// gets no whole-object CRC32C it would take for a composite one.
	u.fullCRC = out.ChecksumType == types.ChecksumTypeFullObject
	return u, nil
}

func (s *Sink) applySSE(sse *types.ServerSideEncryption, kms **string) {
	if s.cfg.SSE == "" {
		return
	}
	*sse = types.ServerSideEncryption(s.cfg.SSE)
	if s.cfg.KMSKeyID != "" {
		*kms = aws.String(s.cfg.KMSKeyID)
	}
}

func (s *Sink) contentType(key string) string {
	if s.cfg.ContentType != "" {
		return s.cfg.ContentType
	}
	if t := mime.TypeByExtension(path.Ext(key)); t != "" {
		return t
	}
	return "application/octet-stream"
}

// tagging encodes the configured tags plus extra as a URL query.
func (s *Sink) tagging(extra map[string]string) string {
	v := url.Values{}
	for k, e := range s.cfg.Tags {
		v.Set(k, e)
	}
	for k, e := range extra {
		v.Set(k, e)
	}
	return v.Encode()
}

var (
	_ pipeline.Sink          = (*Sink)(nil)
	_ pipeline.ManifestFirst = (*Sink)(nil)
	_ pipeline.Upload        = (*Upload)(nil)
)
