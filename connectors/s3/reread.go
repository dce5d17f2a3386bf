package s3

import (
	"context"
	"fmt"
	"io"
	"io/fs"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"

	"github.com/mftflow/mftflow/pipeline"
)

// Reopen returns range reads of the object offered with key (its key and
// ETag), as it was then: each range is a GET with If-Match on that ETag, so
// an object replaced or removed since fails with an error matching
// pipeline.ErrChanged. It implements pipeline.Rereader.
func (s *Source) Reopen(ctx context.Context, key string) (pipeline.RangeOpener, error) {
	obj, etag, ok := cutKey(key)
	if !ok {
		return nil, pipeline.Permanent(fmt.Errorf("s3 source: %q is not a key this source gave (want key|etag)", key))
	}
	f := pipeline.File{Key: key, Name: strings.TrimPrefix(obj, s.prefix), Size: -1,
		Attrs: map[string]string{"s3.bucket": s.cfg.Bucket, "s3.key": obj, "s3.etag": etag}}
	return rereadItem{&item{s: s, f: f}}, nil
}

// Reoffer returns the object offered with key as it is now (its present
// ETag), which this source will not offer again. It implements
// pipeline.Rereader.
func (s *Source) Reoffer(ctx context.Context, key string) (pipeline.Item, error) {
	obj, _, ok := cutKey(key)
	if !ok {
		return nil, pipeline.Permanent(fmt.Errorf("s3 source: %q is not a key this source gave (want key|etag)", key))
	}
	head, err := s.client.HeadObject(ctx, &s3.HeadObjectInput{Bucket: aws.String(s.cfg.Bucket), Key: aws.String(obj)})
	if err != nil {
		if isNotFound(err) {
			return nil, fmt.Errorf("s3 source: s3://%s/%s is gone: %w", s.cfg.Bucket, obj, fs.ErrNotExist)
		}
		return nil, s.cfg.wrapErr("HeadObject", obj, err)
	}
	f, _ := s.wanted(types.Object{Key: aws.String(obj), ETag: head.ETag, Size: head.ContentLength, LastModified: head.LastModified})
	s.seenMu.Lock()
	s.seen[f.Key] = true
	s.seenMu.Unlock()
	return &item{s: s, f: f}, nil
}

// RereadsAnywhere reports true: an object store answers every host alike.
// It implements pipeline.Rereader.
func (s *Source) RereadsAnywhere() bool { return true }

// cutKey splits a File.Key of this source into object key and ETag.
func cutKey(key string) (obj, etag string, ok bool) {
	i := strings.LastIndexByte(key, '|')
	if i <= 0 {
		return "", "", false
	}
	return key[:i], key[i+1:], true
}

// rereadItem reads an object again for a delivery: a failed If-Match or a
// missing object means it changed since it was read.
type rereadItem struct{ *item }

func (r rereadItem) OpenRange(ctx context.Context, offset, length int64) (io.ReadCloser, error) {
	rc, err := r.item.OpenRange(ctx, offset, length)
	if err != nil && (isNotFound(err) || isCode(err, "PreconditionFailed")) {
		return nil, pipeline.Permanent(fmt.Errorf("s3://%s/%s is no longer the version read (ETag %s): %w", r.s.cfg.Bucket, r.key(), r.etag(), pipeline.ErrChanged))
	}
	return rc, err
}
