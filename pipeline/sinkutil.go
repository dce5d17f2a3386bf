package pipeline

import (
	"cmp"
	"context"
	"io"
	"slices"
)

// ByteRanges is a sorted set of disjoint byte ranges [start, end) of a file.
// Sinks that write parts at offsets use it to know whether a file has holes,
// for example after their temporary copy was lost in a restart and only the
// parts written since are there. It marshals to JSON as [[start, end], ...].
type ByteRanges [][2]int64

// Add returns the set with [offset, offset+n) added, merging neighbours.
func (r ByteRanges) Add(offset, n int64) ByteRanges {
	iv := [2]int64{offset, offset + n}
	if n <= 0 {
		return r
	}
	out := make(ByteRanges, 0, len(r)+1)
	for _, e := range r {
		if e[1] < iv[0] || e[0] > iv[1] {
			out = append(out, e)
		} else {
			iv = [2]int64{min(e[0], iv[0]), max(e[1], iv[1])}
		}
	}
	out = append(out, iv)
	slices.SortFunc(out, func(a, b [2]int64) int { return cmp.Compare(a[0], b[0]) })
	return out
}

// Covers reports whether the set holds every byte of [0, size).
func (r ByteRanges) Covers(size int64) bool {
	return size <= 0 || len(r) > 0 && r[0][0] == 0 && r[0][1] >= size
}

// ContextReader returns a reader of r that fails with ctx's error once ctx
// ends, so that a long copy from a part's reader (which does not see the
// context) stops when its WritePart is cancelled.
func ContextReader(ctx context.Context, r io.Reader) io.Reader { return ctxReader{ctx, r} }

type ctxReader struct {
	ctx context.Context
	r   io.Reader
}

func (c ctxReader) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.r.Read(p)
}
