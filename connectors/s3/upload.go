package s3

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"sort"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"

	"github.com/mftflow/mftflow/pipeline"
)

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

// WritePart uploads part p as S3 part p.Number+1, with a CRC32C (or
// Content-MD5) the server checks. A part S3 already held when the upload was
// resumed, with the same size and checksum, is not sent again. The part is
// needed whole before its request starts, for its checksum header: r's own
// slices when r is a *net.Buffers (read, never changed), else a copy (in
// memory up to 16 MiB, in a temporary file above).
func (u *Upload) WritePart(ctx context.Context, p pipeline.Part, r io.Reader) error {
	s := u.s
	if u.gone {
		return pipeline.Lost(fmt.Errorf("s3 sink: s3://%s/%s: the multipart upload %s no longer exists (aborted, or removed by a lifecycle rule): the file must be sent again",
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
