package sftp

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"path"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/bmatcuk/doublestar/v4"
	"github.com/pkg/sftp"

	"github.com/mftflow/mftflow/pipeline"
)

// SourceConfig configures a Source. Its fields mirror the "sftp" source's
// config fields. Zero values are taken as they are (no recursion, no ignore
// patterns, no watching, no stability wait) except where noted.
type SourceConfig struct {
	ConnConfig
	// Directory is the remote directory to read. It must exist.
	Directory string
	// Include and Exclude are doublestar globs matched against names
	// relative to Directory; an Exclude matching a directory skips it.
	Include, Exclude []string
	// Ignore lists globs matched against base names never taken.
	Ignore []string
	// Recursive descends into subdirectories.
	Recursive bool
	// Watch keeps polling; without it Next returns io.EOF once the files
	// present at start were offered.
	Watch bool
	// PollInterval between listings in watch mode; 0: DefaultPollInterval.
	PollInterval time.Duration
	// StableFor is how far apart two listings showing the same size and
	// modification time must be before a file is taken; 0 takes files at
	// once.
	StableFor time.Duration
	// MinAge, when set, takes a file whose modification time is at least
	// this old at its first listing.
	MinAge time.Duration
	// After is AfterLeave (the default for ""), AfterDelete or AfterMove.
	After string
	// ArchiveDir receives delivered files when After is AfterMove.
	ArchiveDir string
}

// Source offers the files of a remote directory. Next is for one goroutine
// at a time; Close may be called from any. Items implement
// pipeline.RangeOpener.
type Source struct {
	cfg     SourceConfig
	dir     string // cleaned remote directory
	archive string // cleaned; "" unless After is AfterMove
	conn    *conn

	closeOnce sync.Once
	closed    chan struct{}

	// The rest belongs to the goroutine calling Next.
	listed   bool
	lastList time.Time
	pending  map[string]*candidate // name -> file waiting to be stable
	ready    []*candidate
	offered  map[string]bool // keys offered by this Source
}

// candidate is one version of a file seen in a listing.
type candidate struct {
	name  string // relative to the directory
	size  int64
	mtime time.Time
	since time.Time // when this size and mtime were first listed
}

func (c *candidate) key() string {
	return c.name + "|" + strconv.FormatInt(c.size, 10) + "|" + strconv.FormatInt(c.mtime.UnixNano(), 10)
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
	for _, list := range []struct {
		field    string
		patterns []string
	}{{"include", c.Include}, {"exclude", c.Exclude}, {"ignore", c.Ignore}} {
		for _, p := range list.patterns {
			if p == "" || !doublestar.ValidatePattern(p) {
				return nil, bad(list.field, "invalid glob pattern %q", p)
			}
		}
	}
	if c.PollInterval <= 0 {
		c.PollInterval = DefaultPollInterval
	}
	if c.StableFor < 0 {
		return nil, bad("stable_for", "must not be negative")
	}
	if c.MinAge < 0 {
		return nil, bad("min_age", "must not be negative")
	}
	s := &Source{
		cfg:     c,
		dir:     path.Clean(c.Directory),
		closed:  make(chan struct{}),
		pending: map[string]*candidate{},
		offered: map[string]bool{},
	}
	switch c.After {
	case "":
		s.cfg.After = AfterLeave
	case AfterLeave, AfterDelete:
	case AfterMove:
		if c.ArchiveDir == "" {
			return nil, bad("archive_dir", `required when after is "move"`)
		}
		s.archive = path.Clean(c.ArchiveDir)
		if s.archive == s.dir {
			return nil, bad("archive_dir", "%s is the source directory itself", s.archive)
		}
	default:
		return nil, bad("after", "want one of delete, move, leave, got %q", c.After)
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
	s.closeOnce.Do(func() {
		close(s.closed)
		s.conn.close()
	})
	return nil
}

func (s *Source) isClosed() bool {
	select {
	case <-s.closed:
		return true
	default:
		return false
	}
}

// Next returns the next file that is ready: oldest first, each version of a
// file once. It blocks until one is, ctx ends (returning ctx.Err()) or the
// Source is closed. Errors listing the directory are returned (a missing
// directory or a refused login are permanent); unreadable subdirectories
// are skipped.
func (s *Source) Next(ctx context.Context) (pipeline.Item, error) {
	for {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		if s.isClosed() {
			return nil, fmt.Errorf("reading %s: %w", location(s.cfg.ConnConfig, s.dir), errSourceClosed)
		}
		now := time.Now()
		due := !s.listed ||
			len(s.pending) > 0 && !now.Before(s.lastList.Add(s.cfg.StableFor)) ||
			s.cfg.Watch && !now.Before(s.lastList.Add(s.cfg.PollInterval))
		if due && len(s.ready) == 0 {
			if err := s.list(ctx, now); err != nil {
				if s.isClosed() {
					return nil, fmt.Errorf("reading %s: %w", location(s.cfg.ConnConfig, s.dir), errSourceClosed)
				}
				return nil, err
			}
		}
		if len(s.ready) > 0 {
			c := s.ready[0]
			if now.Sub(s.lastList) > s.cfg.PollInterval {
				// Listed a while ago, with a long queue ahead of it: make
				// sure it is still there, unchanged.
				current, err := s.recheck(ctx, c)
				if err != nil {
					return nil, err
				}
				if !current {
					s.ready = s.ready[1:]
					continue
				}
			}
			s.ready = s.ready[1:]
			s.offered[c.key()] = true
			return &item{src: s, path: path.Join(s.dir, c.name), file: pipeline.File{
				Key:     c.key(),
				Name:    c.name,
				Size:    c.size,
				ModTime: c.mtime,
				Attrs:   map[string]string{"sftp.path": path.Join(s.dir, c.name)},
			}}, nil
		}
		if !s.cfg.Watch && len(s.pending) == 0 {
			return nil, io.EOF
		}
		if err := s.wait(ctx); err != nil {
			return nil, err
		}
	}
}

// recheck reports whether c is still there as it was listed. A file that
// changed is listed again later as a new version.
func (s *Source) recheck(ctx context.Context, c *candidate) (bool, error) {
	sess, err := s.conn.get(ctx)
	if err != nil {
		return false, err
	}
	p := path.Join(s.dir, c.name)
	info, err := sess.sftp.Stat(p)
	switch {
	case errors.Is(err, fs.ErrNotExist) && sess.alive():
		return false, nil
	case err != nil:
		return false, s.conn.opError(sess, "checking "+p, err)
	}
	return info.Size() == c.size && info.ModTime().Equal(c.mtime), nil
}

// wait sleeps until the next listing is due.
func (s *Source) wait(ctx context.Context) error {
	var at time.Time
	if s.cfg.Watch {
		at = s.lastList.Add(s.cfg.PollInterval)
	}
	if len(s.pending) > 0 {
		if t := s.lastList.Add(s.cfg.StableFor); at.IsZero() || t.Before(at) {
			at = t
		}
	}
	t := time.NewTimer(time.Until(at))
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-s.closed:
	case <-t.C:
	}
	return nil
}

// list lists the directory tree, moves files that are stable to ready and
// forgets pending files that are gone.
func (s *Source) list(ctx context.Context, now time.Time) error {
	sess, err := s.conn.get(ctx)
	if err != nil {
		return err
	}
	seen := map[string]bool{}
	var found []*candidate
	if err := s.listDir(sess, s.dir, "", now, seen, &found); err != nil {
		return err
	}
	for name := range s.pending {
		if !seen[name] {
			delete(s.pending, name)
		}
	}
	slices.SortFunc(found, func(a, b *candidate) int {
		if c := a.mtime.Compare(b.mtime); c != 0 {
			return c
		}
		return strings.Compare(a.name, b.name)
	})
	s.ready = append(s.ready, found...)
	s.listed, s.lastList = true, now
	return nil
}

func (s *Source) listDir(sess *session, abs, rel string, now time.Time, seen map[string]bool, found *[]*candidate) error {
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
	for _, e := range entries {
		name := e.Name()
		if name == "." || name == ".." {
			continue
		}
		childRel := name
		if rel != "" {
			childRel = rel + "/" + name
		}
		childAbs := path.Join(abs, name)
		switch {
		case e.IsDir():
			if s.cfg.Recursive && childAbs != s.archive && !pipeline.MatchAny(s.cfg.Ignore, name) && !pipeline.MatchAny(s.cfg.Exclude, childRel) {
				if err := s.listDir(sess, childAbs, childRel, now, seen, found); err != nil {
					return err
				}
			}
		case e.Mode().IsRegular():
			if !s.wanted(childRel, name) {
				continue
			}
			if _, err := pipeline.CleanName(childRel); err != nil {
				continue // a name no sink could take safely
			}
			seen[childRel] = true
			if c := s.observe(childRel, e, now); c != nil {
				*found = append(*found, c)
			}
		}
	}
	return nil
}

// wanted applies the ignore, include and exclude patterns to a file.
func (s *Source) wanted(rel, name string) bool {
	if pipeline.MatchAny(s.cfg.Ignore, name) {
		return false
	}
	return pipeline.Included(s.cfg.Include, s.cfg.Exclude, rel)
}

// observe records one listed file and returns it when it is ready to offer:
// not offered before, and stable (unchanged since a listing at least
// StableFor ago, or older than MinAge).
func (s *Source) observe(rel string, info fs.FileInfo, now time.Time) *candidate {
	c := &candidate{name: rel, size: info.Size(), mtime: info.ModTime(), since: now}
	if s.offered[c.key()] {
		delete(s.pending, rel)
		return nil
	}
	if old := s.pending[rel]; old != nil && old.size == c.size && old.mtime.Equal(c.mtime) {
		c.since = old.since
	}
	stable := s.cfg.StableFor == 0 ||
		now.Sub(c.since) >= s.cfg.StableFor ||
		s.cfg.MinAge > 0 && now.Sub(c.mtime) >= s.cfg.MinAge
	if !stable {
		s.pending[rel] = c
		return nil
	}
	delete(s.pending, rel)
	return c
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
		f.Close()
		return nil, it.src.conn.opError(sess, "opening "+it.path, err)
	}
	if err := it.sameAsOffered(info); err != nil {
		f.Close()
		return nil, pipeline.Permanent(fmt.Errorf("opening %s: %w", it.loc(), err))
	}
	return &rangeReader{SectionReader: io.NewSectionReader(f, offset, length), f: f, it: it, sess: sess}, nil
}

func (it *item) loc() string { return location(it.src.cfg.ConnConfig, it.path) }

// rangeReader reads a range of a remote file and explains a lost
// connection.
type rangeReader struct {
	*io.SectionReader
	f    *sftp.File
	it   *item
	sess *session
}

func (r *rangeReader) Read(p []byte) (int, error) {
	n, err := r.SectionReader.Read(p)
	if err != nil && err != io.EOF {
		err = r.it.src.conn.opError(r.sess, "reading "+r.it.path, err)
	}
	return n, err
}

func (r *rangeReader) Close() error { return r.f.Close() }

func (it *item) sameAsOffered(info fs.FileInfo) error {
	if info.Size() == it.file.Size && info.ModTime().Equal(it.file.ModTime) {
		return nil
	}
	return fmt.Errorf("the file changed since it was offered (it had %d bytes modified %s, now %d bytes modified %s)",
		it.file.Size, it.file.ModTime.Format(time.RFC3339), info.Size(), info.ModTime().Format(time.RFC3339))
}

// Ack applies the source's after action when o.Status is Passed and does
// nothing otherwise. It is idempotent: a file already deleted or moved is
// not an error. A file that changed since it was offered is left in place
// and reported.
func (it *item) Ack(ctx context.Context, o pipeline.Outcome) error {
	if o.Status != pipeline.Passed || it.src.cfg.After == AfterLeave {
		return nil
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	it.mu.Lock()
	defer it.mu.Unlock()
	sess, err := it.src.conn.get(ctx)
	if err != nil {
		return err
	}
	c := sess.sftp
	doing := "after delivery"
	info, err := c.Stat(it.path)
	switch {
	case errors.Is(err, fs.ErrNotExist) && sess.alive():
		return nil // deleted or moved by an earlier Ack
	case err != nil:
		return it.src.conn.opError(sess, "checking "+it.path+" "+doing, err)
	}
	if err := it.sameAsOffered(info); err != nil {
		return pipeline.Permanent(fmt.Errorf("%s %s: %w; left it in place", doing, it.loc(), err))
	}
	switch it.src.cfg.After {
	case AfterDelete:
		if err := c.Remove(it.path); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return it.src.conn.opError(sess, "deleting "+it.path+" "+doing, err)
		}
	case AfterMove:
		return it.move(sess)
	}
	return nil
}

// maxSuffix bounds the archive names tried for one file.
const maxSuffix = 1000

// move renames the file into the archive directory, never over an existing
// file: plain SFTP rename refuses to replace one, and a taken name gets a
// suffix.
func (it *item) move(sess *session) error {
	c := sess.sftp
	dst := path.Join(it.src.archive, it.file.Name)
	if err := c.MkdirAll(path.Dir(dst)); err != nil {
		return it.src.conn.opError(sess, fmt.Sprintf("archiving %s: creating directory %s", it.path, path.Dir(dst)), err)
	}
	for n := 0; n < maxSuffix; n++ {
		cand := withSuffix(dst, n)
		if _, err := c.Lstat(cand); err == nil {
			continue
		}
		err := c.Rename(it.path, cand)
		if err == nil {
			return nil
		}
		if _, statErr := c.Lstat(cand); statErr == nil && sess.alive() {
			continue // taken meanwhile
		}
		return it.src.conn.opError(sess, fmt.Sprintf("archiving %s to %s", it.path, cand), err)
	}
	return pipeline.Permanent(fmt.Errorf("archiving %s: no free name for %s after %d tries", it.loc(), dst, maxSuffix))
}

// withSuffix returns p with "-n" before its extension; n = 0 returns p.
func withSuffix(p string, n int) string {
	if n == 0 {
		return p
	}
	dir, base := path.Split(p)
	ext := path.Ext(base)
	return dir + strings.TrimSuffix(base, ext) + "-" + strconv.Itoa(n) + ext
}

var (
	_ pipeline.Source      = (*Source)(nil)
	_ pipeline.Item        = (*item)(nil)
	_ pipeline.RangeOpener = (*item)(nil)
)
