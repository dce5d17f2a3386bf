package engine

import (
	"context"
	"fmt"
	"io"

	"github.com/mftflow/mftflow/pipeline"
)

// rangeReader reads a file's chunks with several range reads at once and
// yields them in order.
type rangeReader struct {
	cancel context.CancelFunc
	order  chan chan rangeResult
}

type rangeResult struct {
	data []byte
	err  error
}

func newRangeReader(ctx context.Context, ro pipeline.RangeOpener, size, from, chunkSize int64, readers int, pool *chunkPool) *rangeReader {
	ctx, cancel := context.WithCancel(ctx)
	rr := &rangeReader{cancel: cancel, order: make(chan chan rangeResult, readers)}
	go func() {
		defer close(rr.order)
		for off := from; off < size; off += chunkSize {
			n := min(chunkSize, size-off)
			res := make(chan rangeResult, 1)
			select {
			case rr.order <- res:
			case <-ctx.Done():
				return
			}
			go func(off, n int64) {
				res <- readRange(ctx, ro, off, n, pool)
			}(off, n)
		}
	}()
	return rr
}

func readRange(ctx context.Context, ro pipeline.RangeOpener, off, n int64, pool *chunkPool) rangeResult {
	rc, err := ro.OpenRange(ctx, off, n)
	if err != nil {
		return rangeResult{err: fmt.Errorf("reading bytes %d-%d: %w", off, off+n-1, err)}
	}
	defer func() { _ = rc.Close() }() // closing what was only read
	buf := pool.get(n)
	if _, err := io.ReadFull(rc, buf); err != nil {
		return rangeResult{err: fmt.Errorf("reading bytes %d-%d: %w (did the file change?)", off, off+n-1, err)}
	}
	return rangeResult{data: buf}
}

// next returns the next chunk, or io.EOF after the last.
func (rr *rangeReader) next() ([]byte, error) {
	res, ok := <-rr.order
	if !ok {
		return nil, io.EOF
	}
	r := <-res
	return r.data, r.err
}

func (rr *rangeReader) close() {
	rr.cancel()
	for res := range rr.order {
		<-res
	}
}
