package ftps

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"path"
	"sync"
	"time"

	"github.com/jlaffaye/ftp"

	"github.com/mftflow/mftflow/internal/discard"
	"github.com/mftflow/mftflow/pipeline"
)

// SourceConfig configures a Source. Its fields mirror the "ftps" source's
// config fields.
type SourceConfig struct {
	ConnConfig
	// Directory is the remote directory to read, absolute or relative to
	// the login directory. It must exist.
	Directory string `config:"directory"`
	// Polling says which files are taken, when, and what happens to them
	// after delivery.
	pipeline.Polling
}

// Source offers the files of a remote directory. Next is for one goroutine
// at a time; Close may be called from any. Items implement
// pipeline.RangeOpener and pipeline.SiblingOpener.
type Source struct {
	cfg  SourceConfig
	pool *pool
	poll *pipeline.PollLoop
}

var errSourceClosed = errors.New("ftps source is closed")

// NewSource checks c and returns a Source. It reads the certificate files
// but does not connect: the first Next does, and reports a missing
// directory. The caller must Close the Source.
func NewSource(ctx context.Context, c SourceConfig) (*Source, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if c.Directory == "" {
		return nil, &pipeline.FieldError{Connector: "ftps", Field: "directory", Err: errors.New("required field is missing")}
	}
	if err := c.Polling.Check("ftps"); err != nil {
		return nil, err
	}
	if c.After == pipeline.AfterMove && path.Clean(c.ArchiveDir) == path.Clean(c.Directory) {
		return nil, &pipeline.FieldError{Connector: "ftps", Field: "archive_dir", Err: fmt.Errorf("%s is the source directory itself", c.ArchiveDir)}
	}
	p, err := newPool(c.ConnConfig)
	if err != nil {
		return nil, err
	}
	return &Source{cfg: c, pool: p, poll: pipeline.NewPollLoop(c.Polling.Poller())}, nil
}

// Close closes the connections and makes a blocked Next return; items
// already returned can no longer be opened or acked. Close is safe to call
// more than once.
func (s *Source) Close() error {
	if s.poll.Stop() {
		s.pool.close()
	}
	return nil
}

// Next returns the next file that is ready: oldest first, each version of a
// file once (see pipeline.Poller). Its modification time is the server's
// MDTM answer where it has one, more precise than a listing's.
func (s *Source) Next(ctx context.Context) (pipeline.Item, error) {
	f, err := s.poll.Next(ctx, lister{s})
	if errors.Is(err, pipeline.ErrPollerStopped) {
		return nil, fmt.Errorf("reading %s: %w", s.pool.loc(s.cfg.Directory), errSourceClosed)
	}
	if err != nil {
		return nil, err
	}
	it := &item{src: s, file: pipeline.File{Key: f.Key(), Name: f.Name, Size: f.Size, ModTime: f.ModTime}}
	err = s.pool.do(ctx, "checking "+f.Name, func(sess *session) error {
		it.path = path.Join(sess.abs(s.cfg.Directory), f.Name)
		if sess.c.IsGetTimeSupported() {
			if t, err := sess.c.GetTime(it.path); err == nil {
				it.file.ModTime, it.mdtm = t, true
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	it.file.Attrs = map[string]string{"ftps.path": it.path}
	return it, nil
}

// lister lists the source's directory for its Poller.
type lister struct{ s *Source }

func (l lister) List(ctx context.Context) ([]pipeline.Listed, error) {
	s := l.s
	var found []pipeline.Listed
	err := s.pool.do(ctx, "listing the remote directory "+s.cfg.Directory, func(sess *session) error {
		dir := sess.abs(s.cfg.Directory)
		if err := sess.c.ChangeDir(dir); err != nil {
			if code(err) == ftp.StatusFileUnavailable {
				return s.pool.missingDir(dir, err)
			}
			return err
		}
		archive := ""
		if s.cfg.After == pipeline.AfterMove {
			archive = sess.abs(s.cfg.ArchiveDir)
		}
		return s.walk(sess, dir, "", archive, &found)
	})
	return found, err
}

// walk lists the directory abs (rel to the source's) into found, and its
// subdirectories when the source is recursive. It changes into each
// directory and lists it without an argument, so that no name is taken
// for a LIST option.
func (s *Source) walk(sess *session, abs, rel, archive string, found *[]pipeline.Listed) error {
	if rel != "" {
		if err := sess.c.ChangeDir(abs); err != nil {
			if brokenBy(err) {
				return err
			}
			return nil // a subdirectory that vanished or may not be entered
		}
	}
	entries, err := sess.c.List("")
	if err != nil {
		return err
	}
	listed := make([]pipeline.RemoteEntry, len(entries))
	for i, e := range entries {
		listed[i] = pipeline.RemoteEntry{
			Name:    e.Name,
			Dir:     e.Type == ftp.EntryTypeFolder,
			Regular: e.Type == ftp.EntryTypeFile,
			Size:    int64(e.Size),
			ModTime: e.Time,
		}
	}
	return s.cfg.Walk(abs, rel, archive, listed, found, func(abs, rel string) error {
		return s.walk(sess, abs, rel, archive, found)
	})
}

// Recheck reports whether f is still there with its size. (A listing's
// time may be to the minute, so only the size is compared.)
func (l lister) Recheck(ctx context.Context, f pipeline.Listed) (bool, error) {
	current := false
	err := l.s.pool.do(ctx, "checking "+f.Name, func(sess *session) error {
		size, err := sess.c.FileSize(path.Join(sess.abs(l.s.cfg.Directory), f.Name))
		if code(err) == ftp.StatusFileUnavailable {
			return nil
		}
		current = err == nil && size == f.Size
		return err
	})
	return current, err
}

// item is one offered file.
type item struct {
	src  *Source
	path string // absolute
	file pipeline.File
	mdtm bool       // file.ModTime is the server's MDTM answer
	mu   sync.Mutex // serialises Acks
}

func (it *item) File() pipeline.File { return it.file }

func (it *item) loc() string { return it.src.pool.loc(it.path) }

// Open opens the whole file.
func (it *item) Open(ctx context.Context) (io.ReadCloser, error) {
	return it.OpenRange(ctx, 0, it.file.Size)
}

// OpenRange opens length bytes of the file from offset, on a connection of
// its own (REST, or reading and dropping offset bytes from a server that
// refuses it). It fails with a permanent error if the file vanished or
// changed since it was offered. Safe for concurrent use.
func (it *item) OpenRange(ctx context.Context, offset, length int64) (io.ReadCloser, error) {
	if offset < 0 || length < 0 {
		return nil, fmt.Errorf("reading %s: invalid range of %d bytes at offset %d", it.loc(), length, offset)
	}
	p := it.src.pool
	sess, err := p.get(ctx)
	if err != nil {
		return nil, err
	}
	stop := context.AfterFunc(ctx, sess.cut)
	fail := func(err error) (io.ReadCloser, error) {
		stop()
		p.put(sess, err)
		return nil, p.opError("reading "+it.path, err)
	}
	if err := it.sameAsOffered(sess); err != nil {
		return fail(err)
	}
	if length == 0 && offset < it.file.Size {
		stop()
		p.put(sess, nil)
		return io.NopCloser(eofReader{}), nil
	}
	resp, err := sess.c.RetrFrom(it.path, uint64(offset))
	skip := int64(0)
	if err != nil && offset > 0 && code(err) >= 500 && code(err) != ftp.StatusFileUnavailable {
		skip = offset // REST refused: read from the start
		resp, err = sess.c.Retr(it.path)
	}
	if err != nil {
		return fail(err)
	}
	r := &rangeReader{pool: p, path: it.path, sess: sess, resp: resp, stop: stop, left: length, toEOF: offset+length >= it.file.Size}
	if skip > 0 {
		if _, err := io.CopyN(io.Discard, resp, skip); err != nil {
			discard.Close(r)
			return nil, p.opError("reading "+it.path, err)
		}
	}
	return r, nil
}

// OpenSibling opens the file called name, relative to the source
// directory, such as this file's checksum file, on a connection of its
// own. A missing file gives a permanent error matching fs.ErrNotExist. Safe
// for concurrent use.
func (it *item) OpenSibling(ctx context.Context, name string) (io.ReadCloser, error) {
	if err := pipeline.CheckSourceName(name); err != nil {
		return nil, fmt.Errorf("opening a file beside %s: %w", it.loc(), err)
	}
	p := it.src.pool
	sess, err := p.get(ctx)
	if err != nil {
		return nil, err
	}
	stop := context.AfterFunc(ctx, sess.cut)
	abs := path.Join(sess.abs(it.src.cfg.Directory), name)
	fail := func(err error) (io.ReadCloser, error) {
		stop()
		p.put(sess, err)
		return nil, p.opError("reading "+abs, err)
	}
	// SIZE tells a missing file from a refused one, which RETR's 550 does not.
	size, err := sess.c.FileSize(abs)
	if code(err) == ftp.StatusFileUnavailable {
		return fail(pipeline.Permanent(fmt.Errorf("opening %s: the server has no such file (%s): %w", p.loc(abs), reply(err), fs.ErrNotExist)))
	}
	if err != nil {
		return fail(err)
	}
	resp, err := sess.c.Retr(abs)
	if err != nil {
		return fail(err)
	}
	return &rangeReader{pool: p, path: abs, sess: sess, resp: resp, stop: stop, left: size, toEOF: true}, nil
}

// sameAsOffered fails permanently when the file vanished or changed.
func (it *item) sameAsOffered(sess *session) error {
	size, err := sess.c.FileSize(it.path)
	if code(err) == ftp.StatusFileUnavailable {
		return pipeline.Permanent(fmt.Errorf("%s vanished after it was listed (%s)", it.loc(), reply(err)))
	}
	if err != nil {
		return err
	}
	mtime := it.file.ModTime
	if it.mdtm {
		if mtime, err = sess.c.GetTime(it.path); err != nil {
			return err
		}
	}
	if size == it.file.Size && mtime.Equal(it.file.ModTime) {
		return nil
	}
	return pipeline.Permanent(fmt.Errorf("%s changed since it was offered (it had %d bytes modified %s, now %d bytes modified %s)",
		it.loc(), it.file.Size, it.file.ModTime.Format(time.RFC3339), size, mtime.Format(time.RFC3339)))
}

// rangeReader reads a range of a file on its own connection. Closed before
// the end of the file, the connection is given up: FTP has no cheap way to
// stop a transfer and keep the connection.
type rangeReader struct {
	pool  *pool
	path  string // absolute
	sess  *session
	resp  *ftp.Response
	stop  func() bool
	left  int64
	toEOF bool // the range ends at the end of the file
	err   error
	done  bool
}

func (r *rangeReader) Read(p []byte) (int, error) {
	if r.left <= 0 {
		return 0, io.EOF
	}
	n, err := r.resp.Read(p[:min(int64(len(p)), r.left)])
	r.left -= int64(n)
	if err == io.EOF && r.left > 0 {
		err = io.ErrUnexpectedEOF
	}
	if err != nil && err != io.EOF {
		r.err = err
		err = r.pool.opError("reading "+r.path, err)
	}
	return n, err
}

func (r *rangeReader) Close() error {
	if r.done {
		return nil
	}
	r.done = true
	r.stop()
	p := r.pool
	if r.left > 0 || !r.toEOF || r.err != nil {
		r.sess.cut()
		p.put(r.sess, nil)
		return nil
	}
	// Read to the end (which also completes the TLS handshake of an empty
	// file's data connection), then the server's 226.
	_, err := io.Copy(io.Discard, r.resp)
	if cerr := r.resp.Close(); err == nil {
		err = cerr
	}
	p.put(r.sess, err)
	return nil
}

type eofReader struct{}

func (eofReader) Read([]byte) (int, error) { return 0, io.EOF }

// Ack applies the source's after action when o.Status is Passed and does
// nothing otherwise: to the file's companions (pipeline.Companions), then
// to the file. It is idempotent: a file or companion already
// deleted or moved is not an error. A file that changed since it was
// offered is left in place, with its companions, and reported.
func (it *item) Ack(ctx context.Context, o pipeline.Outcome) error {
	it.mu.Lock()
	defer it.mu.Unlock()
	p := it.src.pool
	present := func() (here bool, err error) {
		err = p.do(ctx, "after delivery of "+it.path, func(sess *session) (err error) {
			here, err = it.unchanged(sess)
			return err
		})
		return here, err
	}
	return pipeline.ApplyAfter(o, it.file.Name, it.src.cfg.After, present, func(name string) error {
		doing := "after delivery of " + it.path
		if name != it.file.Name {
			doing += ", to its companion " + name
		}
		return p.do(ctx, doing, func(sess *session) error { return it.src.after(sess, name) })
	})
}

// unchanged reports whether the file is still there as it was offered: not
// when an earlier Ack dealt with it, an error when it changed.
func (it *item) unchanged(sess *session) (bool, error) {
	if _, err := sess.c.FileSize(it.path); code(err) == ftp.StatusFileUnavailable {
		return false, nil
	}
	if err := it.sameAsOffered(sess); err != nil {
		if pipeline.IsPermanent(err) {
			return false, pipeline.Permanent(fmt.Errorf("after delivery: %w; left it in place", err))
		}
		return false, err
	}
	return true, nil
}

// after applies the after action to the file called name (relative to the
// directory). A file that is not there is taken as dealt with: SIZE tells
// it from a refusal, which DELE and RNFR answer with the same 550.
func (s *Source) after(sess *session, name string) error {
	src := path.Join(sess.abs(s.cfg.Directory), name)
	if exists, err := fileExists(sess, src); err != nil || !exists {
		return err
	}
	if s.cfg.After == pipeline.AfterDelete {
		return sess.c.Delete(src)
	}
	return s.move(sess, src, name)
}

// maxSuffix bounds the archive names tried for one file.
const maxSuffix = 1000

// move renames the file at src into the archive directory under name; a
// taken name gets a suffix.
func (s *Source) move(sess *session, src, name string) error {
	dst := path.Join(sess.abs(s.cfg.ArchiveDir), name)
	if err := mkdirAll(sess, path.Dir(dst)); err != nil {
		return err
	}
	for n := range maxSuffix {
		cand := pipeline.WithSuffix(dst, n)
		if exists, err := fileExists(sess, cand); err != nil || exists {
			if err != nil {
				return err
			}
			continue
		}
		return sess.c.Rename(src, cand)
	}
	return pipeline.Permanent(fmt.Errorf("archiving %s: no free name for %s after %d tries", s.pool.loc(src), dst, maxSuffix))
}

var (
	_ pipeline.Source        = (*Source)(nil)
	_ pipeline.Item          = (*item)(nil)
	_ pipeline.RangeOpener   = (*item)(nil)
	_ pipeline.SiblingOpener = (*item)(nil)
)
