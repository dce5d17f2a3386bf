package s3

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/bmatcuk/doublestar/v4"

	"github.com/mftflow/mftflow/pipeline"
)

// SourceConfig configures a Source.
type SourceConfig struct {
	ClientConfig
	// Prefix limits the source to keys below it, as a directory.
	Prefix string `config:"prefix"`
	// Include and Exclude are doublestar globs matched against names
	// (keys relative to Prefix).
	Include []string `config:"include"`
	Exclude []string `config:"exclude"`
	// Watch keeps polling for new objects; false lists once, then Next
	// returns io.EOF.
	Watch bool `config:"watch"`
	// PollInterval between listings in watch mode; 0: DefaultPollInterval.
	PollInterval time.Duration `config:"poll_interval"`
	// After is AfterLeave (default), AfterDelete, AfterMove or AfterTag.
	After string `config:"after"`
	// ArchivePrefix receives moved objects (After = AfterMove).
	ArchivePrefix string `config:"archive_prefix"`
	// AfterTags are added to delivered objects (After = AfterTag).
	AfterTags map[string]string `config:"after_tags"`
}

// Source offers the objects below a prefix. Next is for one goroutine at a
// time; Close may be called from any.
type Source struct {
	cfg    SourceConfig
	prefix string // "" or ending in "/"
	client *s3.Client

	seenMu sync.Mutex      // Reoffer adds to seen from other goroutines
	seen   map[string]bool // File.Key of every object offered
	queue  []pipeline.File
	listed bool

	closeOnce sync.Once
	closed    chan struct{}
}

var errClosed = errors.New("s3 source: closed")

// NewSource checks cfg and returns a Source. It makes no request: the first
// Next lists the bucket and reports problems with a clear error.
func NewSource(ctx context.Context, cfg SourceConfig) (*Source, error) {
	for _, g := range append(append([]string(nil), cfg.Include...), cfg.Exclude...) {
		if !doublestar.ValidatePattern(g) {
			return nil, fmt.Errorf("s3 source: glob %q is not valid", g)
		}
	}
	if cfg.PollInterval <= 0 {
		cfg.PollInterval = DefaultPollInterval
	}
	prefix := dirPrefix(cfg.Prefix)
	switch cfg.After {
	case "":
		cfg.After = AfterLeave
	case AfterLeave, AfterDelete:
	case AfterMove:
		archive := dirPrefix(cfg.ArchivePrefix)
		if archive == "" {
			return nil, errors.New(`s3 source: after is "move" but archive_prefix is empty: set archive_prefix`)
		}
		if strings.HasPrefix(archive, prefix) {
			return nil, fmt.Errorf("s3 source: archive_prefix %q lies below prefix %q: moved objects would be read again", cfg.ArchivePrefix, cfg.Prefix)
		}
	case AfterTag:
		if len(cfg.AfterTags) == 0 {
			return nil, errors.New(`s3 source: after is "tag" but after_tags is empty: set after_tags`)
		}
	default:
		return nil, fmt.Errorf("s3 source: after %q: want %s, %s, %s or %s", cfg.After, AfterLeave, AfterDelete, AfterMove, AfterTag)
	}
	client, err := newClient(ctx, cfg.ClientConfig)
	if err != nil {
		return nil, err
	}
	return &Source{cfg: cfg, prefix: prefix, client: client, seen: map[string]bool{}, closed: make(chan struct{})}, nil
}

// dirPrefix returns p ending in "/", or "".
func dirPrefix(p string) string {
	p = strings.TrimLeft(p, "/")
	if p == "" || strings.HasSuffix(p, "/") {
		return p
	}
	return p + "/"
}

// Close stops the source; Next then returns an error.
func (s *Source) Close() error {
	s.closeOnce.Do(func() { close(s.closed) })
	return nil
}

// Next returns the next object not offered before, oldest first within a
// listing. Without watch it returns io.EOF once the first listing is
// offered; with watch it lists again every poll interval.
func (s *Source) Next(ctx context.Context) (pipeline.Item, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	go func() {
		select {
		case <-s.closed:
			cancel()
		case <-ctx.Done():
		}
	}()
	for {
		select {
		case <-s.closed:
			return nil, errClosed
		default:
		}
		if len(s.queue) > 0 {
			f := s.queue[0]
			s.queue = s.queue[1:]
			return &item{s: s, f: f}, nil
		}
		if s.listed {
			if !s.cfg.Watch {
				return nil, io.EOF
			}
			t := time.NewTimer(s.cfg.PollInterval)
			select {
			case <-t.C:
			case <-s.closed:
				t.Stop()
				return nil, errClosed
			case <-ctx.Done():
				t.Stop()
				return nil, ctx.Err()
			}
		}
		if err := s.list(ctx); err != nil {
			select {
			case <-s.closed:
				return nil, errClosed
			default:
			}
			if ctx.Err() != nil {
				return nil, ctx.Err()
			}
			return nil, err
		}
		s.listed = true
	}
}

// list queues every wanted object not offered before.
func (s *Source) list(ctx context.Context) error {
	var found []pipeline.File
	p := s3.NewListObjectsV2Paginator(s.client, &s3.ListObjectsV2Input{
		Bucket: aws.String(s.cfg.Bucket),
		Prefix: aws.String(s.prefix),
	})
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return s.cfg.wrapErr("ListObjectsV2", s.prefix, err)
		}
		s.seenMu.Lock()
		for _, o := range page.Contents {
			if f, ok := s.wanted(o); ok && !s.seen[f.Key] {
				found = append(found, f)
			}
		}
		s.seenMu.Unlock()
	}
	sort.SliceStable(found, func(i, j int) bool {
		if !found[i].ModTime.Equal(found[j].ModTime) {
			return found[i].ModTime.Before(found[j].ModTime)
		}
		return found[i].Name < found[j].Name
	})
	s.seenMu.Lock()
	for _, f := range found {
		s.seen[f.Key] = true
	}
	s.seenMu.Unlock()
	s.queue = append(s.queue, found...)
	return nil
}

// wanted describes o as a File if the source takes it.
func (s *Source) wanted(o types.Object) (pipeline.File, bool) {
	key := aws.ToString(o.Key)
	name := strings.TrimPrefix(key, s.prefix)
	if name == "" || strings.HasSuffix(key, "/") {
		return pipeline.File{}, false // the prefix itself, or a folder marker
	}
	if !pipeline.Included(s.cfg.Include, s.cfg.Exclude, name) {
		return pipeline.File{}, false
	}
	etag := strings.Trim(aws.ToString(o.ETag), `"`)
	return pipeline.File{
		Key:     key + "|" + etag,
		Name:    name,
		Size:    aws.ToInt64(o.Size),
		ModTime: aws.ToTime(o.LastModified),
		Attrs:   map[string]string{"s3.bucket": s.cfg.Bucket, "s3.key": key, "s3.etag": etag},
	}, true
}

// item is one object offered by a Source.
type item struct {
	s *Source
	f pipeline.File
}

func (it *item) File() pipeline.File { return it.f }

func (it *item) key() string  { return it.f.Attrs["s3.key"] }
func (it *item) etag() string { return it.f.Attrs["s3.etag"] }

// Open reads the object, only the version that was listed (If-Match on its
// ETag): an object replaced since gives a permanent error naming it, and
// the new version is offered by a later listing.
func (it *item) Open(ctx context.Context) (io.ReadCloser, error) {
	return it.get(ctx, nil)
}

// OpenRange reads length bytes at offset with a range GET. Safe for
// concurrent use.
func (it *item) OpenRange(ctx context.Context, offset, length int64) (io.ReadCloser, error) {
	if length == 0 {
		return io.NopCloser(bytes.NewReader(nil)), nil
	}
	r := fmt.Sprintf("bytes=%d-%d", offset, offset+length-1)
	return it.get(ctx, &r)
}

func (it *item) get(ctx context.Context, rng *string) (io.ReadCloser, error) {
	s := it.s
	if it.f.Size == 0 {
		return io.NopCloser(bytes.NewReader(nil)), nil
	}
	in := &s3.GetObjectInput{Bucket: aws.String(s.cfg.Bucket), Key: aws.String(it.key()), Range: rng}
	if e := it.etag(); e != "" {
		in.IfMatch = aws.String(`"` + e + `"`)
	}
	out, err := s.client.GetObject(ctx, in)
	if err != nil {
		return nil, s.cfg.wrapErr("GetObject", it.key(), err)
	}
	return out.Body, nil
}

// AckRemoves reports whether Ack with s deletes or moves the object: for
// Passed with "after: delete" or "after: move". It implements
// pipeline.AckRemover.
func (it *item) AckRemoves(s pipeline.Status) bool {
	return s == pipeline.Passed && (it.s.cfg.After == AfterDelete || it.s.cfg.After == AfterMove)
}

// Ack applies the after action for Passed, to the object's companions
// (pipeline.Companions) and then to the object, and does nothing otherwise. It is
// idempotent: an object already deleted or moved is not an error. An
// object replaced since it was listed is left alone.
func (it *item) Ack(ctx context.Context, o pipeline.Outcome) error {
	s := it.s
	if o.Status != pipeline.Passed || s.cfg.After == AfterLeave {
		return nil
	}
	companions, err := pipeline.Companions(o, it.f.Name)
	if err != nil {
		return err
	}
	if len(companions) > 0 {
		// Companions go first, so that a crash between leaves the file
		// to be offered, and acked, again.
		if _, err := s.unchanged(ctx, it.key(), it.etag()); err != nil {
			return err
		}
	}
	for _, c := range companions {
		if err := s.after(ctx, s.prefix+c, c, ""); err != nil {
			return err
		}
	}
	return s.after(ctx, it.key(), it.f.Name, it.etag())
}

// unchanged reports whether the object at key is there; an error when it
// is, but not the version etag (when set).
func (s *Source) unchanged(ctx context.Context, key, etag string) (bool, error) {
	head, err := s.client.HeadObject(ctx, &s3.HeadObjectInput{Bucket: aws.String(s.cfg.Bucket), Key: aws.String(key)})
	switch {
	case err != nil && isNotFound(err):
		return false, nil
	case err != nil:
		return false, s.cfg.wrapErr("HeadObject", key, err)
	case etag != "" && strings.Trim(aws.ToString(head.ETag), `"`) != etag:
		return true, fmt.Errorf("s3 source: s3://%s/%s changed since it was delivered; left in place", s.cfg.Bucket, key)
	}
	return true, nil
}

// after applies the after action to the object at key, called name below
// the prefix, if it is there and, when etag is set, still that version.
func (s *Source) after(ctx context.Context, key, name, etag string) error {
	if here, err := s.unchanged(ctx, key, etag); !here || err != nil {
		return err // gone: deleted or moved by an earlier Ack
	}
	switch s.cfg.After {
	case AfterDelete:
		return s.delete(ctx, key)
	case AfterMove:
		dst := dirPrefix(s.cfg.ArchivePrefix) + name
		in := &s3.CopyObjectInput{
			Bucket:     aws.String(s.cfg.Bucket),
			Key:        aws.String(dst),
			CopySource: aws.String(copySource(s.cfg.Bucket, key)),
		}
		if etag != "" {
			in.CopySourceIfMatch = aws.String(`"` + etag + `"`)
		}
		if _, err := s.client.CopyObject(ctx, in); err != nil {
			return s.cfg.wrapErr("CopyObject to "+dst+" from", key, err)
		}
		return s.delete(ctx, key)
	case AfterTag:
		tags, err := s.client.GetObjectTagging(ctx, &s3.GetObjectTaggingInput{Bucket: aws.String(s.cfg.Bucket), Key: aws.String(key)})
		if err != nil {
			return s.cfg.wrapErr("GetObjectTagging", key, err)
		}
		have := map[string]string{}
		for _, t := range tags.TagSet {
			have[aws.ToString(t.Key)] = aws.ToString(t.Value)
		}
		_, err = s.client.PutObjectTagging(ctx, &s3.PutObjectTaggingInput{
			Bucket:  aws.String(s.cfg.Bucket),
			Key:     aws.String(key),
			Tagging: &types.Tagging{TagSet: tagSet(have, s.cfg.AfterTags)},
		})
		return s.cfg.wrapErr("PutObjectTagging", key, err)
	}
	return nil
}

func (s *Source) delete(ctx context.Context, key string) error {
	_, err := s.client.DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: aws.String(s.cfg.Bucket), Key: aws.String(key)})
	if err != nil && !isNotFound(err) {
		return s.cfg.wrapErr("DeleteObject", key, err)
	}
	return nil
}

// OpenSibling reads another object below the prefix by its name there,
// such as the checksum file beside this one; it implements
// pipeline.SiblingOpener. A missing object gives an error matching
// fs.ErrNotExist.
func (it *item) OpenSibling(ctx context.Context, name string) (io.ReadCloser, error) {
	s := it.s
	if err := pipeline.CheckSourceName(name); err != nil {
		return nil, pipeline.Permanent(err)
	}
	key := s.prefix + name
	out, err := s.client.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String(s.cfg.Bucket), Key: aws.String(key)})
	if err != nil && isNotFound(err) {
		return nil, fmt.Errorf("s3://%s/%s: %w", s.cfg.Bucket, key, fs.ErrNotExist)
	} else if err != nil {
		return nil, s.cfg.wrapErr("GetObject", key, err)
	}
	return out.Body, nil
}

var (
	_ pipeline.Source        = (*Source)(nil)
	_ pipeline.Item          = (*item)(nil)
	_ pipeline.RangeOpener   = (*item)(nil)
	_ pipeline.AckRemover    = (*item)(nil)
	_ pipeline.SiblingOpener = (*item)(nil)
)
