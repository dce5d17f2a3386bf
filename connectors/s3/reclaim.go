package s3

import (
	"context"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/mftflow/mftflow/pipeline"
)

// clockSkew is how far the server's clock may lag the runner's: an upload
// the server stamps up to this long before since is still taken as begun
// after it.
const clockSkew = time.Minute

// Reclaim aborts the multipart uploads of f's object key begun since then:
// those of an earlier attempt that died before its upload id was recorded.
// Uploads of other keys, and of this key begun before, are left alone; a
// delivery of another file to this very key begun meanwhile would lose its
// upload and try again. It implements pipeline.Reclaimer.
func (s *Sink) Reclaim(ctx context.Context, f pipeline.File, since time.Time) error {
	key, err := s.Key(f)
	if err != nil {
		return err
	}
	p := s3.NewListMultipartUploadsPaginator(s.client, &s3.ListMultipartUploadsInput{Bucket: aws.String(s.cfg.Bucket), Prefix: aws.String(key)})
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return s.cfg.wrapErr("ListMultipartUploads", key, err)
		}
		for _, up := range page.Uploads {
			if aws.ToString(up.Key) != key || aws.ToTime(up.Initiated).Before(since.Add(-clockSkew)) {
				continue
			}
			u := &Upload{s: s, key: key, uploadID: aws.ToString(up.UploadId)}
			if err := u.abort(ctx); err != nil {
				return err
			}
		}
	}
	return nil
}

var _ pipeline.Reclaimer = (*Sink)(nil)
