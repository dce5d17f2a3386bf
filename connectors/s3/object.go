package s3

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"sort"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"

	"github.com/mftflow/mftflow/internal/discard"
	"github.com/mftflow/mftflow/pipeline"
)

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
		return pipeline.Lost(fmt.Errorf("s3 sink: s3://%s/%s: the multipart upload is gone and no object is there: the file must be sent again",
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
