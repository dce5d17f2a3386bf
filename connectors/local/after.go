package local

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"
	"time"

	"github.com/mftflow/mftflow/internal/discard"
	"github.com/mftflow/mftflow/pipeline"
)

// AckRemoves reports whether Ack with s deletes or moves the file: for
// Passed with "after: delete" or "after: move". It implements
// pipeline.AckRemover.
func (it *item) AckRemoves(s pipeline.Status) bool {
	return s == pipeline.Passed && (it.src.cfg.After == AfterDelete || it.src.cfg.After == AfterMove)
}

// Ack applies the source's after action when o.Status is Passed and does
// nothing otherwise. It is idempotent: a file already deleted or moved is not
// an error. A file that changed since it was offered is left in place and
// reported.
func (it *item) Ack(ctx context.Context, o pipeline.Outcome) error {
	if o.Status != pipeline.Passed {
		return nil
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	companions, err := pipeline.Companions(o, it.file.Name)
	if err != nil {
		return err
	}
	if it.src.cfg.After != AfterDelete && it.src.cfg.After != AfterMove {
		return nil
	}
	it.mu.Lock()
	defer it.mu.Unlock()
	if len(companions) > 0 {
		// Companions go first, so that a crash between leaves the file
		// to be offered, and acked, again; a changed file keeps them.
		if _, err := it.present("checking"); err != nil {
			return err
		}
	}
	for _, c := range companions {
		if err := it.src.companionAfter(c); err != nil {
			return err
		}
	}
	if it.src.cfg.After == AfterDelete {
		return it.delete()
	}
	return it.move()
}

// companionAfter applies the after action to a file's companion (see
// pipeline.Companions), if it is still there.
func (s *Source) companionAfter(name string) error {
	abs := filepath.Join(s.root, filepath.FromSlash(name))
	if _, err := os.Lstat(abs); errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if s.cfg.After == AfterDelete {
		if err := os.Remove(abs); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return fsError(fmt.Errorf("deleting %s after delivery of its file: %w", abs, err))
		}
		return nil
	}
	dst := filepath.Join(s.archive, filepath.FromSlash(name))
	if err := os.MkdirAll(filepath.Dir(dst), 0o777); err != nil {
		return fsError(fmt.Errorf("archiving %s: creating directory %s: %w", abs, filepath.Dir(dst), err))
	}
	if _, err := moveNoClobber(abs, dst); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fsError(fmt.Errorf("archiving %s to %s: %w", abs, s.archive, err))
	}
	return nil
}

// present reports whether the offered file is still there, and fails if it
// is there but changed.
func (it *item) present(doing string) (bool, error) {
	if _, err := os.Lstat(it.abs); errors.Is(err, fs.ErrNotExist) {
		return false, nil
	} else if err != nil {
		return false, fsError(fmt.Errorf("%s %s after delivery: %w", doing, it.abs, err))
	}
	info, err := os.Stat(it.abs)
	if err == nil {
		err = it.sameAsOffered(info)
	}
	if err != nil {
		return true, pipeline.Permanent(fmt.Errorf("%s %s after delivery: %w; left it in place", doing, it.abs, err))
	}
	return true, nil
}

func (it *item) delete() error {
	there, err := it.present("deleting")
	if err != nil {
		return err
	}
	if there {
		if err := os.Remove(it.abs); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return fsError(fmt.Errorf("deleting %s after delivery: %w", it.abs, err))
		}
	}
	if t := it.src.cfg.Trigger; t != "" {
		if err := os.Remove(it.abs + t); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return fsError(fmt.Errorf("deleting trigger file %s after delivery: %w", it.abs+t, err))
		}
	}
	return nil
}

func (it *item) move() error {
	there, err := it.present("archiving")
	if err != nil {
		return err
	}
	dst := filepath.Join(it.src.archive, filepath.FromSlash(it.file.Name))
	mkdir := func() error {
		if err := os.MkdirAll(filepath.Dir(dst), 0o777); err != nil {
			return fsError(fmt.Errorf("archiving %s: creating directory %s: %w", it.abs, filepath.Dir(dst), err))
		}
		return nil
	}
	if there {
		if err := mkdir(); err != nil {
			return err
		}
		if dst, err = moveNoClobber(it.abs, dst); err != nil {
			return fsError(fmt.Errorf("archiving %s to %s: %w", it.abs, it.src.archive, err))
		}
	}
	if t := it.src.cfg.Trigger; t != "" {
		if _, err := os.Lstat(it.abs + t); err == nil {
			if err := mkdir(); err != nil {
				return err
			}
			if _, err := moveNoClobber(it.abs+t, dst+t); err != nil {
				return fsError(fmt.Errorf("archiving trigger file %s to %s: %w", it.abs+t, it.src.archive, err))
			}
		}
	}
	return nil
}

// maxSuffix bounds the names tried for one file ("x-1.csv" ... ).
const maxSuffix = 10000

// moveNoClobber moves src to dst, or to dst with a suffix if dst is taken,
// and returns where it went. It never replaces an existing file: each name
// is claimed as the sink claims its target (claim), and across file systems
// the file is copied.
func moveNoClobber(src, dst string) (string, error) {
	srcInfo, err := os.Lstat(src)
	if err != nil {
		return "", err
	}
	for n := 0; n < maxSuffix; n++ {
		cand := pipeline.WithSuffix(dst, n)
		taken, err := claim(src, cand, srcInfo)
		switch {
		case taken:
			continue
		case errors.Is(err, syscall.EXDEV):
			return cand, copyAcross(src, cand, srcInfo)
		case err != nil:
			return "", err
		}
		return cand, nil
	}
	return "", fmt.Errorf("no free name for %s after %d tries", dst, maxSuffix)
}

// copyAcross moves src to dst on another file system: a copy into a hidden
// temporary file next to dst, flushed, renamed into place, then src removed.
func copyAcross(src, dst string, info fs.FileInfo) (err error) {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer discard.Close(in)
	tmp, err := os.CreateTemp(filepath.Dir(dst), ".mftflow-archive-*.tmp")
	if err != nil {
		return err
	}
	defer func() {
		if err != nil {
			_ = tmp.Close() // the copy failed: it is removed
			_ = os.Remove(tmp.Name())
		}
	}()
	if _, err = io.Copy(tmp, in); err != nil {
		return err
	}
	if err = tmp.Chmod(info.Mode().Perm()); err != nil {
		return err
	}
	if err = tmp.Sync(); err != nil {
		return err
	}
	if err = tmp.Close(); err != nil {
		return err
	}
	if err = os.Chtimes(tmp.Name(), time.Time{}, info.ModTime()); err != nil {
		return err
	}
	if err = os.Rename(tmp.Name(), dst); err != nil {
		return err
	}
	return os.Remove(src)
}

// fsError marks errors that retrying cannot fix as permanent.
func fsError(err error) error {
	if errors.Is(err, fs.ErrPermission) || errors.Is(err, syscall.EROFS) {
		return pipeline.Permanent(err)
	}
	return err
}
