package sftp

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"path"
	"sync"
	"time"

	"github.com/pkg/sftp"

	"github.com/mftflow/mftflow/internal/discard"
	"github.com/mftflow/mftflow/pipeline"
)

// SourceConfig configures a Source. Its fields mirror the "sftp" source's
// config fields. Zero values are taken as they are (no recursion, no ignore
// patterns, no watching, no stability wait) except where noted.
type SourceConfig struct {
	ConnConfig
	// Directory is the remote directory to read. It must exist.
	Directory string `config:"directory"`
	// Polling says which files are taken, when, and what happens to them
	// after delivery.
	pipeline.Polling
}

// Source offers the files of a remote directory. Next is for one goroutine
// at a time; Close may be called from any. Items implement
// pipeline.RangeOpener and pipeline.SiblingOpener.
type Source struct {
	cfg     SourceConfig
	dir     string // cleaned remote directory
	archive string // cleaned; "" unless After is pipeline.AfterMove
	conn    *conn
	poll    *pipeline.PollLoop
}

var errSourceClosed = errors.New("sftp source is closed")

// NewSource checks c and returns a Source. It reads the key and known_hosts
// files but does not connect: the first Next does, and reports a missing
// directory. The caller must Close the Source.
func NewSource(ctx context.Context, c SourceConfig) (*Source, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	bad := func(field, format string, args ...any) error {
		return &pipeline.FieldError{Connector: "sftp", Field: field, Err: fmt.Errorf(format, args...)}
	}
	if err := c.ConnConfig.check("sftp"); err != nil {
		return nil, err
	}
	if c.Directory == "" {
		return nil, bad("directory", "required field is missing")
	}
	if err := c.Polling.Check("sftp"); err != nil {
		return nil, err
	}
	s := &Source{
		cfg:  c,
		dir:  path.Clean(c.Directory),
		poll: pipeline.NewPollLoop(c.Polling.Poller()),
	}
	if c.After == pipeline.AfterMove {
		s.archive = path.Clean(c.ArchiveDir)
		if s.archive == s.dir {
			return nil, bad("archive_dir", "%s is the source directory itself", s.archive)
		}
	}
	cn, err := newConn(c.ConnConfig, "sftp")
	if err != nil {
		return nil, err
	}
	s.conn = cn
	return s, nil
}

// Close closes the connection and makes a blocked Next return; items
// already returned can no longer be opened or acked. Close is safe to call
// more than once.
func (s *Source) Close() error {
	if s.poll.Stop() {
		s.conn.close()
	}
	return nil
}

// Next returns the next file that is ready: oldest first, each version of a
// file once (see pipeline.Poller). It blocks until one is, ctx ends
// (returning ctx.Err()) or the Source is closed. Errors listing the
// directory are returned (a missing directory or a refused login are
// permanent); unreadable subdirectories are skipped.
func (s *Source) Next(ctx context.Context) (pipeline.Item, error) {
	f, err := s.poll.Next(ctx, lister{s})
	if errors.Is(err, pipeline.ErrPollerStopped) {
		return nil, fmt.Errorf("reading %s: %w", location(s.cfg.ConnConfig, s.dir), errSourceClosed)
	}
	if err != nil {
		return nil, err
	}
	p := path.Join(s.dir, f.Name)
	return &item{src: s, path: p, file: pipeline.File{
		Key:     f.Key(),
		Name:    f.Name,
		Size:    f.Size,
		ModTime: f.ModTime,
		Attrs:   map[string]string{"sftp.path": p},
	}}, nil
}

// lister lists the source's directory for its Poller.
type lister struct{ s *Source }

// Recheck reports whether f is still there as it was listed.
func (l lister) Recheck(ctx context.Context, f pipeline.Listed) (bool, error) {
	s := l.s
	sess, err := s.conn.get(ctx)
	if err != nil {
		return false, err
	}
	p := path.Join(s.dir, f.Name)
	info, err := sess.sftp.Stat(p)
	switch {
	case errors.Is(err, fs.ErrNotExist) && sess.alive():
		return false, nil
	case err != nil:
		return false, s.conn.opError(sess, "checking "+p, err)
	}
	return info.Size() == f.Size && info.ModTime().Equal(f.ModTime), nil
}

// List lists the directory tree.
func (l lister) List(ctx context.Context) ([]pipeline.Listed, error) {
	sess, err := l.s.conn.get(ctx)
	if err != nil {
		return nil, err
	}
	var found []pipeline.Listed
	return found, l.s.listDir(sess, l.s.dir, "", &found)
}

func (s *Source) listDir(sess *session, abs, rel string, found *[]pipeline.Listed) error {
	entries, err := sess.sftp.ReadDir(abs)
	if err != nil {
		if rel != "" && sess.alive() {
			return nil // a subdirectory that vanished or may not be read
		}
		if errors.Is(err, fs.ErrNotExist) && sess.alive() {
			return pipeline.Permanent(fmt.Errorf("sftp %s: the remote directory %q does not exist: create it on the server or fix directory",
				s.cfg.addr(), s.dir))
		}
		return s.conn.opError(sess, fmt.Sprintf("listing the remote directory %q", abs), err)
	}
	listed := make([]pipeline.RemoteEntry, len(entries))
	for i, e := range entries {
		listed[i] = pipeline.RemoteEntry{Name: e.Name(), Dir: e.IsDir(), Regular: e.Mode().IsRegular(), Size: e.Size(), ModTime: e.ModTime()}
	}
	return s.cfg.Walk(abs, rel, s.archive, listed, found, func(abs, rel string) error {
		return s.listDir(sess, abs, rel, found)
	})
}

// item is one offered file.
type item struct {
	src  *Source
	path string
	file pipeline.File
	mu   sync.Mutex // serialises Acks
}

func (it *item) File() pipeline.File { return it.file }

// Open opens the file. It fails with a permanent error if the file vanished
// or changed since it was offered; the changed version is offered again.
func (it *item) Open(ctx context.Context) (io.ReadCloser, error) {
	return it.OpenRange(ctx, 0, it.file.Size)
}

// OpenRange opens length bytes of the file from offset, each call with its
// own file handle (pkg/sftp reads it with concurrent requests). It is safe
// for concurrent use. A range past the end of the file is cut short.
func (it *item) OpenRange(ctx context.Context, offset, length int64) (io.ReadCloser, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if offset < 0 || length < 0 {
		return nil, fmt.Errorf("reading %s: invalid range of %d bytes at offset %d", it.loc(), length, offset)
	}
	sess, err := it.src.conn.get(ctx)
	if err != nil {
		return nil, err
	}
	f, err := sess.sftp.Open(it.path)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) && sess.alive() {
			return nil, pipeline.Permanent(fmt.Errorf("opening %s: the file vanished after it was listed: %w", it.loc(), err))
		}
		return nil, it.src.conn.opError(sess, "opening "+it.path, err)
	}
	info, err := f.Stat()
	if err != nil {
		discard.Close(f)
		return nil, it.src.conn.opError(sess, "opening "+it.path, err)
	}
	if err := it.sameAsOffered(info); err != nil {
		discard.Close(f)
		return nil, pipeline.Permanent(fmt.Errorf("opening %s: %w", it.loc(), err))
	}
	return &remoteReader{Reader: io.NewSectionReader(f, offset, length), f: f, conn: it.src.conn, sess: sess, path: it.path}, nil
}

// OpenSibling opens the file called name, relative to the source
// directory, such as this file's checksum file. A missing file gives a
// permanent error matching fs.ErrNotExist. Safe for concurrent use.
func (it *item) OpenSibling(ctx context.Context, name string) (io.ReadCloser, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if err := pipeline.CheckSourceName(name); err != nil {
		return nil, fmt.Errorf("opening a file beside %s: %w", it.loc(), err)
	}
	sess, err := it.src.conn.get(ctx)
	if err != nil {
		return nil, err
	}
	p := path.Join(it.src.dir, name)
	f, err := sess.sftp.Open(p)
	if err != nil {
		return nil, it.src.conn.opError(sess, "opening "+p, err) // fs.ErrNotExist stays
	}
	return &remoteReader{Reader: f, f: f, conn: it.src.conn, sess: sess, path: p}, nil
}

func (it *item) loc() string { return location(it.src.cfg.ConnConfig, it.path) }

// remoteReader reads a remote file, or a range of it, and explains a lost
// connection.
type remoteReader struct {
	io.Reader
	f    *sftp.File
	conn *conn
	sess *session
	path string
}

func (r *remoteReader) Read(p []byte) (int, error) {
	n, err := r.Reader.Read(p)
	if err != nil && err != io.EOF {
		err = r.conn.opError(r.sess, "reading "+r.path, err)
	}
	return n, err
}

func (r *remoteReader) Close() error { return r.f.Close() }

func (it *item) sameAsOffered(info fs.FileInfo) error {
	if info.Size() == it.file.Size && info.ModTime().Equal(it.file.ModTime) {
		return nil
	}
	return fmt.Errorf("the file changed since it was offered (it had %d bytes modified %s, now %d bytes modified %s)",
		it.file.Size, it.file.ModTime.Format(time.RFC3339), info.Size(), info.ModTime().Format(time.RFC3339))
}

// Ack applies the source's after action when o.Status is Passed and does
// nothing otherwise: to the file's companions (pipeline.Companions), then
// to the file. It is idempotent: a file or companion already
// deleted or moved is not an error. A file that changed since it was
// offered is left in place, with its companions, and reported.
func (it *item) Ack(ctx context.Context, o pipeline.Outcome) error {
	it.mu.Lock()
	defer it.mu.Unlock()
	var sess *session
	present := func() (bool, error) {
		if err := ctx.Err(); err != nil {
			return false, err
		}
		var err error
		if sess, err = it.src.conn.get(ctx); err != nil {
			return false, err
		}
		return it.unchanged(sess)
	}
	return pipeline.ApplyAfter(o, it.file.Name, it.src.cfg.After, present, func(name string) error {
		return it.src.after(sess, name)
	})
}

// unchanged reports whether the file is still there as it was offered: not
// when an earlier Ack dealt with it, an error when it changed.
func (it *item) unchanged(sess *session) (bool, error) {
	info, err := sess.sftp.Stat(it.path)
	switch {
	case errors.Is(err, fs.ErrNotExist) && sess.alive():
		return false, nil
	case err != nil:
		return false, it.src.conn.opError(sess, "checking "+it.path+" after delivery", err)
	}
	if err := it.sameAsOffered(info); err != nil {
		return false, pipeline.Permanent(fmt.Errorf("after delivery %s: %w; left it in place", it.loc(), err))
	}
	return true, nil
}

// after applies the after action to the file called name (relative to the
// directory). A file that is not there is taken as dealt with.
func (s *Source) after(sess *session, name string) error {
	p := path.Join(s.dir, name)
	switch s.cfg.After {
	case pipeline.AfterDelete:
		if err := sess.sftp.Remove(p); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return s.conn.opError(sess, "deleting "+p+" after delivery", err)
		}
	case pipeline.AfterMove:
		return s.move(sess, name)
	}
	return nil
}

// maxSuffix bounds the archive names tried for one file.
const maxSuffix = 1000

// move renames the file called name into the archive directory under the
// same name, never over an existing file: plain SFTP rename refuses to
// replace one, and a taken name gets a suffix.
func (s *Source) move(sess *session, name string) error {
	c := sess.sftp
	src, dst := path.Join(s.dir, name), path.Join(s.archive, name)
	if _, err := c.Lstat(src); errors.Is(err, fs.ErrNotExist) && sess.alive() {
		return nil // moved by an earlier Ack, or a companion never there
	}
	if err := c.MkdirAll(path.Dir(dst)); err != nil {
		return s.conn.opError(sess, fmt.Sprintf("archiving %s: creating directory %s", src, path.Dir(dst)), err)
	}
	for n := 0; n < maxSuffix; n++ {
		cand := pipeline.WithSuffix(dst, n)
		if _, err := c.Lstat(cand); err == nil {
			continue
		}
		err := c.Rename(src, cand)
		if err == nil {
			return nil
		}
		if _, statErr := c.Lstat(cand); statErr == nil && sess.alive() {
			continue // taken meanwhile
		}
		return s.conn.opError(sess, fmt.Sprintf("archiving %s to %s", src, cand), err)
	}
	return pipeline.Permanent(fmt.Errorf("archiving %s: no free name for %s after %d tries", location(s.cfg.ConnConfig, src), dst, maxSuffix))
}

var (
	_ pipeline.Source        = (*Source)(nil)
	_ pipeline.Item          = (*item)(nil)
	_ pipeline.RangeOpener   = (*item)(nil)
	_ pipeline.SiblingOpener = (*item)(nil)
)
