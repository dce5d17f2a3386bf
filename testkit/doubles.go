package testkit

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync/atomic"
	"time"

	"github.com/mftflow/mftflow/pipeline"
)

// ErrInjected is the error the doubles inject when given a nil error. It is
// retryable: pipeline.IsPermanent reports false for it.
var ErrInjected = errors.New("testkit: injected failure")

// ShortReader returns a reader that reads from r but returns at most a few
// bytes (1 to 7, in turn) per Read, like testing/iotest.OneByteReader but
// less slow. Code that assumes one Read fills its buffer breaks on it.
func ShortReader(r io.Reader) io.Reader { return &shortReader{r: r} }

type shortReader struct {
	r io.Reader
	i int
}

func (s *shortReader) Read(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	n := 1 + s.i%7
	s.i++
	return s.r.Read(p[:min(n, len(p))])
}

// ShortReads wraps src so that the readers its items' Open and OpenRange
// return give at most a few bytes per Read (see ShortReader). Items implement
// pipeline.RangeOpener exactly when src's do. Next, Ack and Close pass through.
func ShortReads(src pipeline.Source) pipeline.Source { return &shortSource{src} }

type shortSource struct{ pipeline.Source }

func (s *shortSource) Next(ctx context.Context) (pipeline.Item, error) {
	it, err := s.Source.Next(ctx)
	if err != nil || it == nil {
		return it, err
	}
	if ro, ok := it.(pipeline.RangeOpener); ok {
		return &shortRangeItem{shortItem{it}, ro}, nil
	}
	return &shortItem{it}, nil
}

type shortItem struct{ pipeline.Item }

func (it *shortItem) Open(ctx context.Context) (io.ReadCloser, error) {
	return shortReadCloser(it.Item.Open(ctx))
}

type shortRangeItem struct {
	shortItem
	ro pipeline.RangeOpener
}

func (it *shortRangeItem) OpenRange(ctx context.Context, offset, length int64) (io.ReadCloser, error) {
	return shortReadCloser(it.ro.OpenRange(ctx, offset, length))
}

func shortReadCloser(rc io.ReadCloser, err error) (io.ReadCloser, error) {
	if err != nil {
		return nil, err
	}
	return struct {
		io.Reader
		io.Closer
	}{ShortReader(rc), rc}, nil
}

// FailingReader returns a reader that yields the first after bytes of data
// (all of data if it is shorter), then fails every Read with err, or with
// ErrInjected if err is nil: a connection cut half-way through a body.
func FailingReader(data []byte, after int, err error) io.Reader {
	if err == nil {
		err = ErrInjected
	}
	return &failingReader{data: data[:max(0, min(after, len(data)))], err: err}
}

type failingReader struct {
	data []byte
	err  error
}

func (r *failingReader) Read(p []byte) (int, error) {
	if len(r.data) == 0 {
		return 0, r.err
	}
	n := copy(p, r.data)
	r.data = r.data[n:]
	return n, nil
}

// sinkWrapper passes everything through to the wrapped sink; the doubles
// override what they change. It keeps the ManifestFirst ability: a wrapper
// that reports false is the same as one without the method.
type sinkWrapper struct {
	pipeline.Sink
	writePart func(ctx context.Context, u pipeline.Upload, p pipeline.Part, r io.Reader) error
}

func (w *sinkWrapper) ManifestFirst(f pipeline.File) bool {
	mf, ok := w.Sink.(pipeline.ManifestFirst)
	return ok && mf.ManifestFirst(f)
}

func (w *sinkWrapper) Open(ctx context.Context, f pipeline.File, resume []byte) (pipeline.Upload, error) {
	u, err := w.Sink.Open(ctx, f, resume)
	if err != nil || u == nil {
		return u, err
	}
	return &uploadWrapper{Upload: u, sink: w}, nil
}

// uploadWrapper passes Plan, State, Commit and Abort through and routes
// WritePart to its sink wrapper.
type uploadWrapper struct {
	pipeline.Upload
	sink *sinkWrapper
}

func (u *uploadWrapper) WritePart(ctx context.Context, p pipeline.Part, r io.Reader) error {
	return u.sink.writePart(ctx, u.Upload, p, r)
}

// FailEveryNth wraps s so that every nth WritePart call, counted across all
// uploads of the sink, fails with err without reaching s; err nil means
// ErrInjected (retryable). FailEveryNth(s, 1, err) fails every WritePart.
// Open, Plan, State, Commit, Abort and Close pass through. It panics if n < 1.
func FailEveryNth(s pipeline.Sink, n int, err error) pipeline.Sink {
	if n < 1 {
		panic(fmt.Sprintf("testkit.FailEveryNth: n is %d, want at least 1", n))
	}
	if err == nil {
		err = ErrInjected
	}
	var calls atomic.Int64
	return &sinkWrapper{Sink: s, writePart: func(ctx context.Context, u pipeline.Upload, p pipeline.Part, r io.Reader) error {
		if calls.Add(1)%int64(n) == 0 {
			return fmt.Errorf("writing part %d: %w", p.Number, err)
		}
		return u.WritePart(ctx, p, r)
	}}
}

// FailParts wraps s so that each WritePart fails with what fail returns
// for its part, without reaching s; nil lets the part through. fail is
// called for every WritePart, concurrently: a disk that fills up and is
// freed again. Everything else passes through.
func FailParts(s pipeline.Sink, fail func(pipeline.Part) error) pipeline.Sink {
	return &sinkWrapper{Sink: s, writePart: func(ctx context.Context, u pipeline.Upload, p pipeline.Part, r io.Reader) error {
		if err := fail(p); err != nil {
			return fmt.Errorf("writing part %d: %w", p.Number, err)
		}
		return u.WritePart(ctx, p, r)
	}}
}

// FailAlways wraps s so that every Open fails with err, or ErrInjected if err
// is nil; nothing reaches s but Close. Give it
// pipeline.Permanent(errors.New("disk on fire")) to test a delivery that
// fails at once. For uploads that open but fail every part, use
// FailEveryNth(s, 1, err).
func FailAlways(s pipeline.Sink, err error) pipeline.Sink {
	if err == nil {
		err = ErrInjected
	}
	return &failOpenSink{sinkWrapper{Sink: s}, err}
}

type failOpenSink struct {
	sinkWrapper
	err error
}

func (s *failOpenSink) Open(ctx context.Context, f pipeline.File, resume []byte) (pipeline.Upload, error) {
	return nil, fmt.Errorf("opening %q: %w", f.Name, s.err)
}

// Stall wraps s so that each WritePart first waits d, or until its context
// ends (then returning the context's error without reaching s): a slow or
// hung server. Everything else passes through.
func Stall(s pipeline.Sink, d time.Duration) pipeline.Sink {
	return &sinkWrapper{Sink: s, writePart: func(ctx context.Context, u pipeline.Upload, p pipeline.Part, r io.Reader) error {
		t := time.NewTimer(d)
		defer t.Stop()
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-t.C:
		}
		return u.WritePart(ctx, p, r)
	}}
}

// CountReads wraps s so that read is called with the number of bytes of
// every read s makes of a part, once the bytes are read (concurrently, as
// s reads parts): what the engine handed the sink, and when. The reader s
// gets is a plain io.Reader. Everything else passes through.
func CountReads(s pipeline.Sink, read func(n int)) pipeline.Sink {
	return &sinkWrapper{Sink: s, writePart: func(ctx context.Context, u pipeline.Upload, p pipeline.Part, r io.Reader) error {
		return u.WritePart(ctx, p, &countingReader{r: r, read: read})
	}}
}

type countingReader struct {
	r    io.Reader
	read func(int)
}

func (c *countingReader) Read(b []byte) (int, error) {
	n, err := c.r.Read(b)
	c.read(n)
	return n, err
}

var (
	_ pipeline.Sink          = (*sinkWrapper)(nil)
	_ pipeline.ManifestFirst = (*sinkWrapper)(nil)
	_ pipeline.Upload        = (*uploadWrapper)(nil)
	_ pipeline.Source        = (*shortSource)(nil)
	_ pipeline.RangeOpener   = (*shortRangeItem)(nil)
)
