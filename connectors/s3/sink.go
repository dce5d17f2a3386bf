package s3

import (
	"bytes"
	"context"
	"crypto/md5"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"hash/crc32"
	"io"
	"mime"
	"net/http"
	"net/url"
	"os"
	"path"
	"sort"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"

	"github.com/mftflow/mftflow/internal/discard"
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

// objectInfo is what HeadObject says about an existing object.
type objectInfo struct {
	size   int64
	sha256 string
	etag   string
	meta   map[string]string
}

// head returns the object at key, or nil if there is none.
func (s *Sink) head(ctx context.Context, key string) (*objectInfo, error) {
	out, err := s.client.HeadObject(ctx, &s3.HeadObjectInput{Bucket: aws.String(s.cfg.Bucket), Key: aws.String(key)})
	if err != nil {
		if isNotFound(err) {
			return nil, nil
		}
		return nil, s.cfg.wrapErr("HeadObject", key, err)
	}
	return &objectInfo{size: aws.ToInt64(out.ContentLength), sha256: out.Metadata[MetaSHA256], etag: aws.ToString(out.ETag), meta: out.Metadata}, nil
}

// overwriteCheck applies the overwrite policy to an existing object.
func (s *Sink) overwriteCheck(key string, head *objectInfo, f pipeline.File) error {
	if head == nil {
		return nil
	}
	switch s.cfg.Overwrite {
	case OverwriteFail:
		return s.existsErr(key)
	case OverwriteSkip:
		if f.SHA256 != "" && f.Size == head.size && head.sha256 == f.SHA256 {
			return fmt.Errorf("s3://%s/%s already holds this content (size %d, sha256 %.16s…): %w",
				s.cfg.Bucket, key, f.Size, f.SHA256, pipeline.ErrSkip)
		}
	}
	return nil
}

// existsErr is the error of a file whose key is taken, with overwrite fail.
func (s *Sink) existsErr(key string) error {
	return fmt.Errorf("s3 sink: s3://%s/%s exists and overwrite is %q: remove it or change overwrite: %w",
		s.cfg.Bucket, key, OverwriteFail, pipeline.ErrExists)
}

// ifNoneMatch makes a write that creates the object conditional with
// overwrite fail: "*" asks the server to refuse it (412) if the key exists
// when the object is created, so of two writers racing for one key only the
// first wins, which a HeadObject beforehand cannot ensure.
func (s *Sink) ifNoneMatch() *string {
	if s.cfg.Overwrite != OverwriteFail {
		return nil
	}
	return aws.String("*")
}

// isPreconditionFailed reports a conditional write the server refused.
func isPreconditionFailed(err error) bool {
	code, status := errorCode(err)
	return code == "PreconditionFailed" || status == http.StatusPreconditionFailed
}

// lostRace handles an object found under the key at Commit with overwrite
// fail. Another writer got there first, unless an earlier Commit of this
// very upload completed it and its answer was lost (the SDK or the engine
// then tries again). ListParts tells the two apart: the upload of a lost race
// still exists, and is aborted; a completed one does not. (Abort cannot
// tell: MinIO answers success for an unknown upload id.) If ListParts itself
// fails, the race is taken as lost: that is by far the likelier case.
func (u *Upload) lostRace(ctx context.Context, f pipeline.File) error {
	s := u.s
	if u.uploadID == "" {
		return s.existsErr(u.key)
	}
	_, err := s.client.ListParts(ctx, &s3.ListPartsInput{
		Bucket: aws.String(s.cfg.Bucket), Key: aws.String(u.key), UploadId: aws.String(u.uploadID), MaxParts: aws.Int32(1),
	})
	if isCode(err, "NoSuchUpload") {
		u.gone = true
		return u.finishExisting(ctx, f, false)
	}
	if err := u.abort(ctx); err != nil {
		return err
	}
	u.gone = true
	return s.existsErr(u.key)
}

// listParts learns which parts S3 already holds for a resumed upload.
func (u *Upload) listParts(ctx context.Context) error {
	s := u.s
	listed := map[int32]listedPart{}
	p := s3.NewListPartsPaginator(s.client, &s3.ListPartsInput{
		Bucket: aws.String(s.cfg.Bucket), Key: aws.String(u.key), UploadId: aws.String(u.uploadID),
	})
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if isCode(err, "NoSuchUpload") {
			u.gone = true // completed by an earlier Commit, or aborted: Commit tells
			return nil
		}
		if err != nil {
			return s.cfg.wrapErr("ListParts", u.key, err)
		}
		u.fullCRC = page.ChecksumType == types.ChecksumTypeFullObject
		for _, part := range page.Parts {
			listed[aws.ToInt32(part.PartNumber)] = listedPart{
				size: aws.ToInt64(part.Size), etag: aws.ToString(part.ETag), crc32c: aws.ToString(part.ChecksumCRC32C),
			}
		}
	}
	u.listed = listed
	return nil
}

// Plan returns the part size and concurrency.
func (u *Upload) Plan() pipeline.PartPlan {
	return pipeline.PartPlan{PartSize: u.partSize, Concurrency: u.s.cfg.Concurrency}
}

// State returns the key, upload id and part size as JSON.
func (u *Upload) State() []byte {
	b, _ := json.Marshal(uploadState{Key: u.key, UploadID: u.uploadID, PartSize: u.partSize})
	return b
}

// partBuffer holds one part so the SDK can read it more than once (to retry
// it): the caller's own slices when it hands them over as *net.Buffers (the
// engine does), else a copy in memory or, for big parts, a temporary file.
type partBuffer struct {
	body   io.ReadSeeker
	file   *os.File
	crc32c string // base64, as S3 reports it
	md5    string // base64, "" unless asked for
	md5hex string
}

func (b *partBuffer) close() {
	if b.file != nil {
		// Only a copy of a part that was sent or given up: a file left
		// behind only takes space.
		discard.Close(b.file)
		_ = os.Remove(b.file.Name())
	}
}

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// bufferPart takes the size bytes of a part from r and computes their
// CRC32C, and their MD5 if withMD5.
func bufferPart(r io.Reader, size int64, withMD5 bool) (*partBuffer, error) {
	if sl, ok := pipeline.SlicesOf(r, 0, size); ok {
		b := &partBuffer{body: sl}
		b.sums(sl.Buffers(), withMD5)
		return b, nil
	}
	b := &partBuffer{}
	var err error
	var n int64
	if size <= memPartMax {
		buf := make([]byte, size)
		var m int
		m, err = io.ReadFull(r, buf)
		n = int64(m)
		if err == io.ErrUnexpectedEOF || err == io.EOF {
			err = nil // reported below, with the sizes
		}
		b.body = bytes.NewReader(buf)
		b.sums([][]byte{buf}, withMD5)
	} else {
		if b.file, err = os.CreateTemp("", "mftflow-s3-part-*"); err != nil {
			return nil, fmt.Errorf("spooling a part: %w", err)
		}
		crc, sum := crc32.New(castagnoli), md5.New()
		to := []io.Writer{b.file, crc}
		if withMD5 {
			to = append(to, sum)
		}
		n, err = io.Copy(io.MultiWriter(to...), io.LimitReader(r, size))
		if err == nil {
			_, err = b.file.Seek(0, io.SeekStart)
		}
		b.body = b.file
		b.crc32c = checksumB64(crc)
		if withMD5 {
			b.setMD5(sum.Sum(nil))
		}
	}
	if err == nil && n != size {
		err = fmt.Errorf("the part reader gave %d bytes, want %d: %w", n, size, io.ErrUnexpectedEOF)
	}
	if err != nil {
		b.close()
		return nil, err
	}
	return b, nil
}

func (b *partBuffer) sums(bufs [][]byte, withMD5 bool) {
	var crc uint32
	var sum hash.Hash
	if withMD5 {
		sum = md5.New()
	}
	for _, p := range bufs {
		crc = crc32.Update(crc, castagnoli, p)
		if sum != nil {
			sum.Write(p)
		}
	}
	var v [4]byte
	binary.BigEndian.PutUint32(v[:], crc)
	b.crc32c = base64.StdEncoding.EncodeToString(v[:])
	if sum != nil {
		b.setMD5(sum.Sum(nil))
	}
}

func (b *partBuffer) setMD5(sum []byte) {
	b.md5 = base64.StdEncoding.EncodeToString(sum)
	b.md5hex = hex.EncodeToString(sum)
}

// md5Hex returns the part's MD5, computing it if it was not asked for.
func (b *partBuffer) md5Hex() (string, error) {
	if b.md5hex == "" {
		sum := md5.New()
		if _, err := b.body.Seek(0, io.SeekStart); err != nil {
			return "", err
		}
		if _, err := io.Copy(sum, b.body); err != nil {
			return "", err
		}
		if _, err := b.body.Seek(0, io.SeekStart); err != nil {
			return "", err
		}
		b.setMD5(sum.Sum(nil))
	}
	return b.md5hex, nil
}

func checksumB64(h hash.Hash32) string {
	var v [4]byte
	binary.BigEndian.PutUint32(v[:], h.Sum32())
	return base64.StdEncoding.EncodeToString(v[:])
}

// WritePart uploads part p as S3 part p.Number+1, with a CRC32C (or
// Content-MD5) the server checks. A part S3 already held when the upload was
// resumed, with the same size and checksum, is not sent again. The part is
// needed whole before its request starts, for its checksum header: r's own
// slices when r is a *net.Buffers (read, never changed), else a copy (in
// memory up to 16 MiB, in a temporary file above).
func (u *Upload) WritePart(ctx context.Context, p pipeline.Part, r io.Reader) error {
	s := u.s
	if u.gone {
		return pipeline.Permanent(fmt.Errorf("s3 sink: s3://%s/%s: the multipart upload %s no longer exists (aborted, or removed by a lifecycle rule): the file must be sent again",
			s.cfg.Bucket, u.key, u.uploadID))
	}
	if p.Size == 0 {
		return nil // an empty file: PutObject at Commit
	}
	if u.uploadID == "" {
		return pipeline.Permanent(fmt.Errorf("s3 sink: s3://%s/%s: a %d-byte part for a file opened as empty", s.cfg.Bucket, u.key, p.Size))
	}
	if p.Number >= MaxParts {
		return pipeline.Permanent(fmt.Errorf("s3 sink: s3://%s/%s: part %d is beyond S3's limit of %d parts of %d bytes: raise unknown_size_part_size",
			s.cfg.Bucket, u.key, p.Number+1, MaxParts, u.partSize))
	}
	buf, err := bufferPart(r, p.Size, s.cfg.Checksum == ChecksumMD5)
	if err != nil {
		return fmt.Errorf("s3 sink: s3://%s/%s part %d: %w", s.cfg.Bucket, u.key, p.Number+1, err)
	}
	defer buf.close()
	num := int32(p.Number + 1)

	u.mu.Lock()
	have, ok := u.listed[num]
	delete(u.listed, num) // only the first write may be skipped: writing again replaces
	u.mu.Unlock()
	if ok && have.size == p.Size {
		same := have.crc32c == buf.crc32c
		if have.crc32c == "" { // sent without a CRC32C: compare the MD5 in its ETag
			sum, err := buf.md5Hex()
			if err != nil {
				return fmt.Errorf("s3 sink: s3://%s/%s part %d: %w", s.cfg.Bucket, u.key, num, err)
			}
			same = strings.Trim(have.etag, `"`) == sum
		}
		if same {
			u.record(types.CompletedPart{PartNumber: aws.Int32(num), ETag: aws.String(have.etag), ChecksumCRC32C: crcOrNil(s, have.crc32c)})
			return nil
		}
	}

	in := &s3.UploadPartInput{
		Bucket:        aws.String(s.cfg.Bucket),
		Key:           aws.String(u.key),
		UploadId:      aws.String(u.uploadID),
		PartNumber:    aws.Int32(num),
		Body:          buf.body,
		ContentLength: aws.Int64(p.Size),
	}
	if s.cfg.Checksum == ChecksumCRC32C {
		in.ChecksumAlgorithm = types.ChecksumAlgorithmCrc32c
		in.ChecksumCRC32C = aws.String(buf.crc32c)
	} else {
		in.ContentMD5 = aws.String(buf.md5)
	}
	// UNSIGNED-PAYLOAD rather than a signed sha256 of the body: the part's
	// checksum, in a signed header, checks the bytes, and neither end hashes
	// them once more. See the package documentation.
	out, err := s.client.UploadPart(ctx, in, s3.WithAPIOptions(v4.SwapComputePayloadSHA256ForUnsignedPayloadMiddleware))
	if err != nil {
		return s.cfg.wrapErr(fmt.Sprintf("UploadPart %d", num), u.key, err)
	}
	u.record(types.CompletedPart{PartNumber: aws.Int32(num), ETag: out.ETag, ChecksumCRC32C: crcOrNil(s, buf.crc32c)})
	return nil
}

func crcOrNil(s *Sink, crc string) *string {
	if s.cfg.Checksum != ChecksumCRC32C || crc == "" {
		return nil
	}
	return aws.String(crc)
}

func (u *Upload) record(p types.CompletedPart) {
	u.mu.Lock()
	u.parts[aws.ToInt32(p.PartNumber)] = p
	u.mu.Unlock()
}

// Location is the object's address, s3://BUCKET/KEY; it implements
// pipeline.Locator.
func (u *Upload) Location() string { return "s3://" + u.s.cfg.Bucket + "/" + u.key }

// Commit completes the multipart upload, checks the object's size with
// HeadObject and, when the sha256 was not known at Open, writes it into the
// object's metadata (see the package documentation). A Commit repeated after
// a crash that followed CompleteMultipartUpload finds the upload gone and
// succeeds if the object holds the file's size (and sha256, when recorded).
func (u *Upload) Commit(ctx context.Context, f pipeline.File) error {
	s := u.s
	if u.gone {
		return u.finishExisting(ctx, f, false)
	}
	if s.cfg.Overwrite != OverwriteReplace {
		head, err := s.head(ctx, u.key)
		if err != nil {
			return err
		}
		if err := s.overwriteCheck(u.key, head, f); err != nil {
			switch {
			case errors.Is(err, pipeline.ErrSkip):
				_ = u.abort(ctx)
			case errors.Is(err, pipeline.ErrExists):
				return u.lostRace(ctx, f)
			}
			return err
		}
	}
	if f.Size == 0 {
		if err := u.putEmpty(ctx, f); err != nil {
			return err
		}
		return u.abort(ctx)
	}
	parts, err := u.completedParts(f.Size)
	if err != nil {
		return err
	}
	in := &s3.CompleteMultipartUploadInput{
		Bucket:          aws.String(s.cfg.Bucket),
		Key:             aws.String(u.key),
		UploadId:        aws.String(u.uploadID),
		MultipartUpload: &types.CompletedMultipartUpload{Parts: parts},
		IfNoneMatch:     s.ifNoneMatch(),
	}
	if u.fullCRC {
		crc, err := wholeCRC32C(parts, u.partSize, f.Size)
		if err != nil {
			return pipeline.Permanent(fmt.Errorf("s3 sink: s3://%s/%s: %w", s.cfg.Bucket, u.key, err))
		}
		in.ChecksumType = types.ChecksumTypeFullObject
		in.ChecksumCRC32C = aws.String(crc)
	}
	_, err = s.client.CompleteMultipartUpload(ctx, in)
	if isCode(err, "NoSuchUpload") {
		return u.finishExisting(ctx, f, false) // an earlier Commit completed it, or not
	}
	if s.cfg.Overwrite == OverwriteFail && isPreconditionFailed(err) {
		return u.lostRace(ctx, f)
	}
	if err != nil {
		return s.cfg.wrapErr("CompleteMultipartUpload", u.key, err)
	}
	return u.finishExisting(ctx, f, true)
}

// completedParts lists every part of a file of size bytes, in order, and
// fails if one was never written.
func (u *Upload) completedParts(size int64) ([]types.CompletedPart, error) {
	u.mu.Lock()
	defer u.mu.Unlock()
	n := int32((size + u.partSize - 1) / u.partSize)
	parts := make([]types.CompletedPart, 0, n)
	for i := int32(1); i <= n; i++ {
		p, ok := u.parts[i]
		if !ok {
			l, listed := u.listed[i]
			if !listed {
				return nil, pipeline.Permanent(fmt.Errorf("s3 sink: s3://%s/%s: part %d of %d was never written", u.s.cfg.Bucket, u.key, i, n))
			}
			p = types.CompletedPart{PartNumber: aws.Int32(i), ETag: aws.String(l.etag), ChecksumCRC32C: crcOrNil(u.s, l.crc32c)}
		}
		parts = append(parts, p)
	}
	sort.Slice(parts, func(i, j int) bool { return *parts[i].PartNumber < *parts[j].PartNumber })
	return parts, nil
}

// putEmpty writes a 0-byte object.
func (u *Upload) putEmpty(ctx context.Context, f pipeline.File) error {
	return u.s.putObject(ctx, u.key, f, nil)
}

// LocationOf is where WriteWhole puts f, s3://BUCKET/KEY; it implements
// pipeline.WholeLocator.
func (s *Sink) LocationOf(f pipeline.File) string {
	key, err := s.Key(f)
	if err != nil {
		return ""
	}
	return "s3://" + s.cfg.Bucket + "/" + key
}

// WriteWhole writes file f, whose bytes are data, with one PutObject and
// the checks Open and Commit make under the overwrite policy
// (pipeline.WholeWriter).
func (s *Sink) WriteWhole(ctx context.Context, f pipeline.File, data []byte) error {
	if int64(len(data)) != f.Size {
		return pipeline.Permanent(fmt.Errorf("s3 sink: %q: %d bytes handed over for a file of %d", f.Name, len(data), f.Size))
	}
	key, err := s.Key(f)
	if err != nil {
		return err
	}
	if s.cfg.Overwrite != OverwriteReplace {
		head, err := s.head(ctx, key)
		if err != nil {
			return err
		}
		if err := s.overwriteCheck(key, head, f); err != nil {
			return err
		}
	}
	return s.putObject(ctx, key, f, data)
}

// putObject writes data under key in one request, with its checksum and
// f's sha256 in the object's metadata.
func (s *Sink) putObject(ctx context.Context, key string, f pipeline.File, data []byte) error {
	in := &s3.PutObjectInput{
		Bucket:        aws.String(s.cfg.Bucket),
		Key:           aws.String(key),
		Body:          bytes.NewReader(data),
		ContentLength: aws.Int64(int64(len(data))),
		ContentType:   aws.String(s.contentType(key)),
		Metadata:      map[string]string{MetaSHA256: f.SHA256},
		StorageClass:  types.StorageClass(s.cfg.StorageClass),
	}
	if f.SHA256 == "" {
		in.Metadata = nil
	}
	if len(data) > 0 {
		b := &partBuffer{}
		b.sums([][]byte{data}, s.cfg.Checksum == ChecksumMD5)
		if s.cfg.Checksum == ChecksumCRC32C {
			in.ChecksumAlgorithm = types.ChecksumAlgorithmCrc32c
			in.ChecksumCRC32C = aws.String(b.crc32c)
		} else {
			in.ContentMD5 = aws.String(b.md5)
		}
	}
	s.applySSE(&in.ServerSideEncryption, &in.SSEKMSKeyId)
	if t := s.tagging(nil); t != "" {
		in.Tagging = aws.String(t)
	}
	in.IfNoneMatch = s.ifNoneMatch()
	// Unsigned payload, as for parts: the checksum in a signed header
	// checks the bytes.
	_, err := s.client.PutObject(ctx, in, s3.WithAPIOptions(v4.SwapComputePayloadSHA256ForUnsignedPayloadMiddleware))
	if s.cfg.Overwrite == OverwriteFail && isPreconditionFailed(err) {
		return s.existsErr(key)
	}
	return s.cfg.wrapErr("PutObject", key, err)
}

// finishExisting checks the completed object and records its sha256. ours
// says this call completed it; otherwise the object found under the key may
// be another writer's (our upload completed by a run that died before
// recording it, then replaced), and without a sha256 of its own it is read
// and hashed before ours is written on it.
func (u *Upload) finishExisting(ctx context.Context, f pipeline.File, ours bool) error {
	s := u.s
	head, err := s.head(ctx, u.key)
	if err != nil {
		return err
	}
	switch {
	case head == nil:
		return pipeline.Permanent(fmt.Errorf("s3 sink: s3://%s/%s: the multipart upload is gone and no object is there: the file must be sent again",
			s.cfg.Bucket, u.key))
	case head.size != f.Size:
		return pipeline.Permanent(fmt.Errorf("s3 sink: s3://%s/%s: the object holds %d bytes after CompleteMultipartUpload, want %d",
			s.cfg.Bucket, u.key, head.size, f.Size))
	case f.SHA256 == "" || head.sha256 == f.SHA256:
		return nil
	case head.sha256 != "":
		return pipeline.Permanent(fmt.Errorf("s3 sink: s3://%s/%s: the object's sha256 metadata is %s, want %s",
			s.cfg.Bucket, u.key, head.sha256, f.SHA256))
	}
	tagged := f.Size > copyLimit || archived(s.cfg.StorageClass)
	if !ours && tagged {
		// Its sha256 goes in a tag; recorded before the crash, maybe.
		out, err := s.client.GetObjectTagging(ctx, &s3.GetObjectTaggingInput{Bucket: aws.String(s.cfg.Bucket), Key: aws.String(u.key)})
		if err != nil {
			return s.cfg.wrapErr("GetObjectTagging", u.key, err)
		}
		for _, t := range out.TagSet {
			if aws.ToString(t.Key) == MetaSHA256 && aws.ToString(t.Value) == f.SHA256 {
				return nil
			}
		}
	}
	// An archived object cannot be read before a restore: it is taken on
	// its size, as before the hash check.
	if !ours && !archived(s.cfg.StorageClass) {
		sum, err := s.objectSHA256(ctx, u.key, head.etag)
		if err != nil {
			return err
		}
		if sum != f.SHA256 {
			return pipeline.Permanent(fmt.Errorf("s3 sink: s3://%s/%s: the upload is gone and the object under the key is not this file (its content has sha256 %s, want %s): another writer replaced it; send the file again",
				s.cfg.Bucket, u.key, sum, f.SHA256))
		}
	}
	return u.recordSHA256(ctx, f, head)
}

// optional is v as an optional field: nil when empty.
func optional(v string) *string {
	if v == "" {
		return nil
	}
	return &v
}

// objectSHA256 reads the object at key, as it was at etag, and returns the
// hex sha256 of its content.
func (s *Sink) objectSHA256(ctx context.Context, key, etag string) (string, error) {
	out, err := s.client.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String(s.cfg.Bucket), Key: aws.String(key), IfMatch: optional(etag)})
	if err != nil {
		return "", s.cfg.wrapErr("GetObject", key, err)
	}
	defer discard.Close(out.Body)
	h := sha256.New()
	if _, err := io.Copy(h, out.Body); err != nil {
		return "", s.cfg.wrapErr("GetObject", key, err)
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// recordSHA256 adds the sha256 to a completed object: objects up to 5 GiB
// are copied onto themselves with the new metadata (a server-side copy);
// larger ones, which CopyObject cannot copy in one call, and objects in an
// archive storage class, which cannot be copied before a restore, get it as
// the object tag "sha256" instead.
func (u *Upload) recordSHA256(ctx context.Context, f pipeline.File, head *objectInfo) error {
	s := u.s
	if f.Size > copyLimit || archived(s.cfg.StorageClass) {
		_, err := s.client.PutObjectTagging(ctx, &s3.PutObjectTaggingInput{
			Bucket:  aws.String(s.cfg.Bucket),
			Key:     aws.String(u.key),
			Tagging: &types.Tagging{TagSet: tagSet(s.cfg.Tags, map[string]string{MetaSHA256: f.SHA256})},
		})
		return s.cfg.wrapErr("PutObjectTagging", u.key, err)
	}
	meta := map[string]string{}
	for k, v := range head.meta {
		meta[k] = v
	}
	meta[MetaSHA256] = f.SHA256
	in := &s3.CopyObjectInput{
		Bucket:            aws.String(s.cfg.Bucket),
		Key:               aws.String(u.key),
		CopySource:        aws.String(copySource(s.cfg.Bucket, u.key)),
		CopySourceIfMatch: optional(head.etag), // the object checked, not one written since
		MetadataDirective: types.MetadataDirectiveReplace,
		Metadata:          meta,
		ContentType:       aws.String(s.contentType(u.key)),
		StorageClass:      types.StorageClass(s.cfg.StorageClass),
	}
	s.applySSE(&in.ServerSideEncryption, &in.SSEKMSKeyId)
	_, err := s.client.CopyObject(ctx, in)
	return s.cfg.wrapErr("CopyObject", u.key, err)
}

// copySource is the x-amz-copy-source of bucket/key: URL-encoded, slashes kept.
func copySource(bucket, key string) string {
	parts := strings.Split(key, "/")
	for i, p := range parts {
		parts[i] = url.PathEscape(p)
	}
	return bucket + "/" + strings.Join(parts, "/")
}

// archived reports a storage class whose objects CopyObject cannot read.
func archived(class string) bool {
	return class == string(types.StorageClassGlacier) || class == string(types.StorageClassDeepArchive)
}

func tagSet(maps ...map[string]string) []types.Tag {
	all := map[string]string{}
	for _, m := range maps {
		for k, v := range m {
			all[k] = v
		}
	}
	keys := make([]string, 0, len(all))
	for k := range all {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	tags := make([]types.Tag, len(keys))
	for i, k := range keys {
		tags[i] = types.Tag{Key: aws.String(k), Value: aws.String(all[k])}
	}
	return tags
}

// Abort aborts the multipart upload, so S3 drops its parts. Nothing was
// ever visible under the key. An upload already gone is not an error.
func (u *Upload) Abort(ctx context.Context, cause error) error {
	return u.abort(ctx)
}

func (u *Upload) abort(ctx context.Context) error {
	if u.uploadID == "" || u.gone {
		return nil
	}
	s := u.s
	_, err := s.client.AbortMultipartUpload(ctx, &s3.AbortMultipartUploadInput{
		Bucket: aws.String(s.cfg.Bucket), Key: aws.String(u.key), UploadId: aws.String(u.uploadID),
	})
	if err != nil && !isCode(err, "NoSuchUpload") {
		return s.cfg.wrapErr("AbortMultipartUpload", u.key, err)
	}
	return nil
}

var (
	_ pipeline.Sink          = (*Sink)(nil)
	_ pipeline.ManifestFirst = (*Sink)(nil)
	_ pipeline.Upload        = (*Upload)(nil)
)
