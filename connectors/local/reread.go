package local

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/mftflow/mftflow/pipeline"
)

// Reopen returns range reads of the file offered with key, as it was then:
// a range opened after the file changed or vanished fails with an error
// matching pipeline.ErrChanged. It implements pipeline.Rereader.
func (s *Source) Reopen(ctx context.Context, key string) (pipeline.RangeOpener, error) {
	f, err := fileOfKey(key)
	if err != nil {
		return nil, err
	}
	return rereadItem{&item{src: s, abs: s.abs(f.Name), file: f}}, nil
}

// Reoffer returns the file offered with key as it is now, with the key of
// its present version, which this source will not offer again. It
// implements pipeline.Rereader.
func (s *Source) Reoffer(ctx context.Context, key string) (pipeline.Item, error) {
	old, err := fileOfKey(key)
	if err != nil {
		return nil, err
	}
	abs := s.abs(old.Name)
	info, err := os.Stat(abs)
	if err != nil {
		return nil, fmt.Errorf("reading %s again: %w", abs, err)
	}
	if !info.Mode().IsRegular() {
		return nil, fmt.Errorf("reading %s again: not a regular file any more: %w", abs, fs.ErrNotExist)
	}
	c := candidate{rel: old.Name, abs: abs, size: info.Size(), mtime: info.ModTime()}
	s.markOffered(c.key())
	return &item{src: s, abs: abs, file: pipeline.File{Key: c.key(), Name: c.rel, Size: c.size, ModTime: c.mtime}}, nil
}

// RereadsAnywhere reports whether the flow declared the path shared by every
// runner's host. It implements pipeline.Rereader.
func (s *Source) RereadsAnywhere() bool { return s.cfg.Shared }

func (s *Source) abs(rel string) string { return filepath.Join(s.root, filepath.FromSlash(rel)) }

func (s *Source) wasOffered(key string) bool {
	s.offeredMu.Lock()
	defer s.offeredMu.Unlock()
	_, ok := s.offered[key]
	return ok
}

func (s *Source) markOffered(key string) {
	s.offeredMu.Lock()
	s.offered[key] = struct{}{}
	s.offeredMu.Unlock()
}

// fileOfKey reads back what candidate.key wrote: name|size|mtime, the name
// possibly holding "|" itself.
func fileOfKey(key string) (pipeline.File, error) {
	rest, nanos, ok1 := cutLast(key)
	name, size, ok2 := cutLast(rest)
	n, err1 := strconv.ParseInt(size, 10, 64)
	t, err2 := strconv.ParseInt(nanos, 10, 64)
	if !ok1 || !ok2 || err1 != nil || err2 != nil || name == "" {
		return pipeline.File{}, pipeline.Permanent(fmt.Errorf("local source: %q is not a key this source gave (want name|size|mtime)", key))
	}
	return pipeline.File{Key: key, Name: name, Size: n, ModTime: time.Unix(0, t)}, nil
}

func cutLast(s string) (before, after string, ok bool) {
	i := strings.LastIndexByte(s, '|')
	if i < 0 {
		return s, "", false
	}
	return s[:i], s[i+1:], true
}

// rereadItem reads a file again for a delivery: one that vanished since has
// changed as much as one rewritten.
type rereadItem struct{ *item }

func (r rereadItem) OpenRange(ctx context.Context, offset, length int64) (io.ReadCloser, error) {
	rc, err := r.item.OpenRange(ctx, offset, length)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, pipeline.Permanent(&changedError{fmt.Sprintf("%s vanished from the source", r.abs)})
	}
	return rc, err
}
