package local

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/mftflow/mftflow/internal/discard"
	"github.com/mftflow/mftflow/pipeline"
)

// item is one offered file.
type item struct {
	src  *Source
	abs  string
	file pipeline.File
	mu   sync.Mutex // serialises Acks
}

func (it *item) File() pipeline.File { return it.file }

// Open opens the file. It fails if the file vanished or changed since it was
// offered; the changed version is offered again as a new file.
func (it *item) Open(ctx context.Context) (io.ReadCloser, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	return it.open()
}

// OpenRange opens length bytes of the file from offset, each call with its
// own file descriptor. A range past the end of the file is cut short.
func (it *item) OpenRange(ctx context.Context, offset, length int64) (io.ReadCloser, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if offset < 0 || length < 0 {
		return nil, fmt.Errorf("reading %s: invalid range of %d bytes at offset %d", it.abs, length, offset)
	}
	f, err := it.open()
	if err != nil {
		return nil, err
	}
	return &sectionReadCloser{SectionReader: io.NewSectionReader(f, offset, length), f: f}, nil
}

type sectionReadCloser struct {
	*io.SectionReader
	f *os.File
}

func (r *sectionReadCloser) Close() error { return r.f.Close() }

func (it *item) open() (*os.File, error) {
	f, err := os.Open(it.abs)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, pipeline.Permanent(fmt.Errorf("opening %s: the file vanished after it was listed: %w", it.abs, err))
		}
		return nil, fsError(fmt.Errorf("opening %s: %w", it.abs, err))
	}
	info, err := f.Stat()
	if err != nil {
		discard.Close(f)
		return nil, fmt.Errorf("opening %s: %w", it.abs, err)
	}
	if err := it.sameAsOffered(info); err != nil {
		discard.Close(f)
		return nil, pipeline.Permanent(fmt.Errorf("opening %s: %w", it.abs, err))
	}
	return f, nil
}

func (it *item) sameAsOffered(info fs.FileInfo) error {
	if info.Size() == it.file.Size && info.ModTime().Equal(it.file.ModTime) {
		return nil
	}
	return &changedError{fmt.Sprintf("the file changed since it was offered (it had %d bytes modified %s, now %d bytes modified %s)",
		it.file.Size, it.file.ModTime.Format(time.RFC3339Nano), info.Size(), info.ModTime().Format(time.RFC3339Nano))}
}

// changedError reports a file that is not the version offered any more; it
// matches pipeline.ErrChanged.
type changedError struct{ msg string }

func (e *changedError) Error() string { return e.msg }

func (e *changedError) Is(target error) bool { return target == pipeline.ErrChanged }

// OpenSibling opens another file of the source by its name relative to the
// source root, such as the checksum file beside this one; it implements
// pipeline.SiblingOpener. A missing file gives an error matching
// fs.ErrNotExist.
func (it *item) OpenSibling(ctx context.Context, name string) (io.ReadCloser, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if err := pipeline.CheckSourceName(name); err != nil {
		return nil, pipeline.Permanent(err)
	}
	abs := filepath.Join(it.src.root, filepath.FromSlash(name))
	f, err := os.Open(abs)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, err
	} else if err != nil {
		return nil, fsError(err)
	}
	return f, nil
}
