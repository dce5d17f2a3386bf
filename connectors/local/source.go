package local

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/bmatcuk/doublestar/v4"
	"github.com/fsnotify/fsnotify"

	"github.com/mftflow/mftflow/internal/discard"
	"github.com/mftflow/mftflow/pipeline"
)

// SourceConfig configures a Source. Its fields mirror the "local" source's
// config fields. Zero values are taken as they are (no recursion, no ignore
// patterns, no watching, no stability wait) except where noted; start from
// DefaultSourceConfig to get the defaults of a flow file.
type SourceConfig struct {
	// Path is the directory to read. Required; it must exist.
	Path string `config:"path"`
	// Include lists glob patterns (doublestar syntax) matched against the
	// slash-separated name relative to Path; empty takes every file.
	Include []string `config:"include"`
	// Exclude lists glob patterns for files to leave alone. One that matches a
	// directory's relative name skips the whole directory.
	Exclude []string `config:"exclude"`
	// Recursive descends into subdirectories.
	Recursive bool `config:"recursive"`
	// Ignore lists glob patterns matched against base names of files and
	// directories that are never taken (temporary and hidden names).
	Ignore []string `config:"ignore"`
	// Watch keeps the source running, offering new files as they appear;
	// without it Next returns io.EOF once the files present at start are
	// offered.
	Watch bool `config:"watch"`
	// Rescan is how often the whole tree is listed in watch mode; 0 means
	// DefaultRescan.
	Rescan time.Duration `config:"rescan"`
	// StableFor is how long a file's size and modification time must stay
	// unchanged before it is taken. Not used with Trigger.
	StableFor time.Duration `config:"stable_for"`
	// Trigger, when set, is a suffix: a file is taken once "<name><Trigger>"
	// exists.
	Trigger string `config:"trigger"`
	// After is AfterLeave (the default for ""), AfterDelete or AfterMove.
	After string `config:"after"`
	// ArchiveDir receives delivered files when After is AfterMove.
	ArchiveDir string `config:"archive_dir"`
	// Shared declares that every runner of the flow sees the same files at
	// Path, so that files read by reference can be read again on any host.
	Shared bool `config:"shared"`
	// Logger receives warnings about directories that cannot be read and
	// directories that cannot be watched. nil means slog.Default().
	Logger *slog.Logger
}

// DefaultSourceConfig returns the configuration a flow file gets for a
// "local" source with only path set.
func DefaultSourceConfig(path string) SourceConfig {
	return SourceConfig{
		Path:      path,
		Recursive: true,
		Ignore:    DefaultIgnore(),
		Watch:     true,
		Rescan:    DefaultRescan,
		StableFor: DefaultStableFor,
		After:     AfterLeave,
	}
}

// eventGap is the shortest time between two batches of file system events.
// A file being written produces a stream of events; handling them in batches
// keeps the CPU cost of a busy directory low while staying prompt.
const eventGap = 50 * time.Millisecond

// maxDirty bounds the paths remembered from events between two batches;
// beyond it the source lists the whole tree instead.
const maxDirty = 4096

var errSourceClosed = errors.New("local source is closed")

// Source reads the files of a local directory. It implements pipeline.Source;
// its Items implement pipeline.RangeOpener. See the package documentation for
// how files are chosen.
type Source struct {
	cfg     SourceConfig
	root    string      // absolute
	archive string      // absolute; "" unless After is AfterMove
	archDir fs.FileInfo // the archive directory, to recognise it under root
	log     *slog.Logger

	watcher   *fsnotify.Watcher // nil when not watching
	wake      chan struct{}     // capacity 1: an event is waiting
	closed    chan struct{}
	closeOnce sync.Once
	watchDone chan struct{}

	evMu     sync.Mutex // guards dirty and overflow, written by the watcher goroutine
	dirty    map[string]struct{}
	overflow bool

	// The rest belongs to the goroutine calling Next (nextMu).
	nextMu     sync.Mutex
	scanned    bool
	lastScan   time.Time
	lastEvents time.Time
	pending    map[string]*candidate // relative name -> file waiting to be stable
	nextDue    time.Time             // no pending file becomes stable before this
	ready      []*candidate
	readySort  bool
	readyKeys  map[string]bool
	offered    map[string]struct{} // keys offered in this process (offeredMu)
	offeredMu  sync.Mutex          // Reoffer adds to offered from other goroutines
	refused    []*refusedItem      // paths too long to read, to offer as failing items
	watched    map[string]bool     // directories added to the watcher
	warned     map[string]bool     // paths already warned about
}

// candidate is one version of a file seen in a listing.
type candidate struct {
	rel   string
	abs   string
	size  int64
	mtime time.Time
	since time.Time // when this size and mtime were first seen
}

func (c *candidate) key() string {
	return c.rel + "|" + strconv.FormatInt(c.size, 10) + "|" + strconv.FormatInt(c.mtime.UnixNano(), 10)
}

// NewSource checks c and returns a Source over c.Path. In watch mode it
// starts watching at once; ctx only bounds the construction. The caller must
// Close the Source.
func NewSource(ctx context.Context, c SourceConfig) (*Source, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	bad := func(field, format string, args ...any) error {
		return &pipeline.FieldError{Connector: "local", Field: field, Err: fmt.Errorf(format, args...)}
	}
	if c.Path == "" {
		return nil, bad("path", "required field is missing")
	}
	root, err := filepath.Abs(c.Path)
	if err != nil {
		return nil, bad("path", "%v", err)
	}
	info, err := os.Stat(root)
	if err != nil {
		return nil, bad("path", "%w", err)
	}
	if !info.IsDir() {
		return nil, bad("path", "%s is not a directory", root)
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
	if c.Rescan <= 0 {
		c.Rescan = DefaultRescan
	}
	if c.StableFor < 0 {
		return nil, bad("stable_for", "must not be negative")
	}
	if strings.ContainsAny(c.Trigger, `/\`) {
		return nil, bad("trigger", "%q: want a suffix such as .done, without slashes", c.Trigger)
	}
	if c.After == "" {
		c.After = AfterLeave
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	s := &Source{
		cfg:       c,
		root:      root,
		log:       c.Logger,
		wake:      make(chan struct{}, 1),
		closed:    make(chan struct{}),
		pending:   map[string]*candidate{},
		readyKeys: map[string]bool{},
		offered:   map[string]struct{}{},
		watched:   map[string]bool{},
		warned:    map[string]bool{},
	}
	switch c.After {
	case AfterLeave, AfterDelete:
	case AfterMove:
		if c.ArchiveDir == "" {
			return nil, bad("archive_dir", `required when after is "move"`)
		}
		if s.archive, err = filepath.Abs(c.ArchiveDir); err != nil {
			return nil, bad("archive_dir", "%v", err)
		}
		if err := os.MkdirAll(s.archive, 0o777); err != nil {
			return nil, bad("archive_dir", "creating it: %w", err)
		}
		if s.archDir, err = os.Stat(s.archive); err != nil {
			return nil, bad("archive_dir", "%w", err)
		}
		if os.SameFile(s.archDir, info) {
			return nil, bad("archive_dir", "%s is the source directory itself", s.archive)
		}
	default:
		return nil, bad("after", "want one of delete, move, leave, got %q", c.After)
	}
	if c.Watch {
		w, err := fsnotify.NewWatcher()
		if err != nil {
			// Notifications only make the source quicker; rescans still find everything.
			s.log.Warn("local source: file system notifications unavailable, relying on rescans",
				"path", root, "rescan", c.Rescan, "error", err)
		} else {
			s.watcher = w
			s.watchDone = make(chan struct{})
			go s.watchLoop()
		}
	}
	return s, nil
}

// Next returns the next file that is ready. It blocks until one is, ctx ends
// (returning ctx.Err()) or the Source is closed. Without watching it returns
// io.EOF once every file present at the first call was offered. Errors
// listing the root directory are returned; unreadable subdirectories are
// skipped with a warning.
func (s *Source) Next(ctx context.Context) (pipeline.Item, error) {
	s.nextMu.Lock()
	defer s.nextMu.Unlock()
	for {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		select {
		case <-s.closed:
			return nil, fmt.Errorf("reading %s: %w", s.root, errSourceClosed)
		default:
		}
		now := time.Now()
		if overflow := s.takeOverflow(); !s.scanned || s.cfg.Watch && (overflow || now.Sub(s.lastScan) >= s.cfg.Rescan) {
			if err := s.fullScan(now); err != nil {
				return nil, err
			}
		}
		if s.watcher != nil && now.Sub(s.lastEvents) >= eventGap {
			if s.processEvents(now) {
				s.lastEvents = now
			}
		}
		if !s.nextDue.IsZero() && !now.Before(s.nextDue) {
			s.recheckPending(now)
		}
		if it := s.popRefused(); it != nil {
			return it, nil
		}
		if it := s.pop(now); it != nil {
			return it, nil
		}
		if !s.cfg.Watch && len(s.pending) == 0 {
			return nil, io.EOF
		}

		if err := s.wait(ctx); err != nil {
			return nil, err
		}
	}
}

// wait blocks until Next has something to do: an event, a rescan or
// stability check that is due, or the source closing.
func (s *Source) wait(ctx context.Context) error {
	wake := s.wake
	var timer <-chan time.Time
	at, batching := s.wakeAt()
	if !at.IsZero() {
		t := time.NewTimer(time.Until(at))
		defer t.Stop()
		timer = t.C
	}
	if batching {
		wake = nil // events are waiting for the timer; more of them change nothing
	}
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-s.closed:
	case <-wake:
	case <-timer:
	}
	return nil
}

// wakeAt is when Next has work to do without being told: the next rescan,
// the next stability check or the next batch of events. Zero means never.
// batching says events are waiting for the next batch.
func (s *Source) wakeAt() (at time.Time, batching bool) {
	earliest := func(t time.Time) {
		if at.IsZero() || t.Before(at) {
			at = t
		}
	}
	if s.cfg.Watch {
		earliest(s.lastScan.Add(s.cfg.Rescan))
	}
	if !s.nextDue.IsZero() {
		earliest(s.nextDue)
	}
	s.evMu.Lock()
	if len(s.dirty) > 0 {
		batching = true
		earliest(s.lastEvents.Add(eventGap))
	}
	s.evMu.Unlock()
	return at, batching
}

// Close stops watching and makes a blocked Next return. Items already
// returned can still be opened and acked. Close is safe to call more than once.
func (s *Source) Close() error {
	var err error
	s.closeOnce.Do(func() {
		close(s.closed)
		if s.watcher != nil {
			err = s.watcher.Close()
			<-s.watchDone
		}
	})
	return err
}

func (s *Source) watchLoop() {
	defer close(s.watchDone)
	for {
		select {
		case <-s.closed:
			return
		case ev, ok := <-s.watcher.Events:
			if !ok {
				return
			}
			s.evMu.Lock()
			if s.dirty == nil {
				s.dirty = map[string]struct{}{}
			}
			if len(s.dirty) < maxDirty {
				s.dirty[ev.Name] = struct{}{}
			} else {
				s.overflow = true
			}
			s.evMu.Unlock()
		case _, ok := <-s.watcher.Errors:
			if !ok {
				return
			}
			// Lost events (a queue overflow): list everything again.
			s.evMu.Lock()
			s.overflow = true
			s.evMu.Unlock()
		}
		select {
		case s.wake <- struct{}{}:
		default:
		}
	}
}

func (s *Source) takeOverflow() bool {
	s.evMu.Lock()
	defer s.evMu.Unlock()
	o := s.overflow
	if o {
		s.overflow = false
		s.dirty = nil
	}
	return o
}

// fullScan lists the whole tree, admitting new files and forgetting pending
// files that are gone.
func (s *Source) fullScan(now time.Time) error {
	seen := make(map[string]bool, len(s.pending))
	dirs := map[string]bool{}
	if err := s.scanDir(s.root, "", now, seen, dirs); err != nil {
		return err
	}
	for rel := range s.pending {
		if !seen[rel] {
			delete(s.pending, rel)
		}
	}
	for d := range s.watched {
		if !dirs[d] {
			_ = s.watcher.Remove(d) // usually gone with the directory already
			delete(s.watched, d)
		}
	}
	s.scanned = true
	s.lastScan = now
	return nil
}

// scanDir lists one directory (abs, relative name rel) and its
// subdirectories when recursive. seen collects the relative names of wanted
// files, dirs the directories visited.
func (s *Source) scanDir(abs, rel string, now time.Time, seen, dirs map[string]bool) error {
	if s.watcher != nil {
		dirs[abs] = true
		s.watch(abs) // before listing, so nothing created meanwhile is missed
	}
	entries, err := os.ReadDir(abs)
	if err != nil {
		if rel == "" {
			return fmt.Errorf("listing source directory %s: %w", abs, err)
		}
		if s.refuseTooLong(rel, abs, err, true) {
			return nil
		}
		if !errors.Is(err, fs.ErrNotExist) {
			s.warnOnce(abs, "local source: skipping a directory that cannot be read", err)
		}
		if len(entries) == 0 {
			return nil
		}
	}
	var names map[string]bool // for trigger lookups
	if s.cfg.Trigger != "" {
		names = make(map[string]bool, len(entries))
		for _, e := range entries {
			names[e.Name()] = true
		}
	}
	for _, e := range entries {
		name := e.Name()
		childRel := joinRel(rel, name)
		childAbs := filepath.Join(abs, name)
		switch t := e.Type(); {
		case t.IsDir():
			if s.cfg.Recursive && !s.skipDir(childAbs, childRel, name, e) {
				if err := s.scanDir(childAbs, childRel, now, seen, dirs); err != nil {
					return err
				}
			}
		case t.IsRegular() || t&fs.ModeSymlink != 0:
			if s.isTrigger(name) || !s.wanted(childRel, name) {
				continue
			}
			info, err := s.fileInfo(childAbs, e)
			if err != nil {
				s.refuseTooLong(childRel, childAbs, err, false)
				continue // vanished, or a link to something that is not a regular file
			}
			seen[childRel] = true
			s.observe(childRel, childAbs, info, names[name+s.cfg.Trigger], now)
		}
	}
	return nil
}

// fileInfo returns the metadata of a regular file, or of the regular file a
// symbolic link points to.
func (s *Source) fileInfo(abs string, e fs.DirEntry) (fs.FileInfo, error) {
	var info fs.FileInfo
	var err error
	if e != nil && e.Type().IsRegular() {
		info, err = e.Info()
	} else {
		info, err = os.Stat(abs)
	}
	if err != nil {
		return nil, err
	}
	if !info.Mode().IsRegular() {
		return nil, fmt.Errorf("%s is not a regular file", abs)
	}
	return info, nil
}

func (s *Source) watch(dir string) {
	if s.watched[dir] {
		return
	}
	if err := s.watcher.Add(dir); err != nil {
		if !errors.Is(err, fsnotify.ErrClosed) && !errors.Is(err, fs.ErrNotExist) {
			s.warnOnce("watch:"+dir, "local source: cannot watch a directory, relying on rescans", err)
		}
		return
	}
	s.watched[dir] = true
}

func (s *Source) warnOnce(key, msg string, err error) {
	if s.warned[key] {
		return
	}
	s.warned[key] = true
	s.log.Warn(msg, "path", strings.TrimPrefix(key, "watch:"), "error", err)
}

func joinRel(dir, name string) string {
	if dir == "" {
		return name
	}
	return dir + "/" + name
}

// skipDir reports whether the walk stays out of a subdirectory.
func (s *Source) skipDir(abs, rel, name string, e fs.DirEntry) bool {
	if pipeline.MatchAny(s.cfg.Ignore, name) || pipeline.MatchAny(s.cfg.Exclude, rel) {
		return true
	}
	if s.archDir != nil {
		if abs == s.archive {
			return true
		}
		if info, err := e.Info(); err == nil && os.SameFile(info, s.archDir) {
			return true
		}
	}
	return false
}

func (s *Source) isTrigger(name string) bool {
	return s.cfg.Trigger != "" && len(name) > len(s.cfg.Trigger) && strings.HasSuffix(name, s.cfg.Trigger)
}

// wanted applies the ignore, include and exclude patterns to a file.
func (s *Source) wanted(rel, name string) bool {
	if pipeline.MatchAny(s.cfg.Ignore, name) {
		return false
	}
	return pipeline.Included(s.cfg.Include, s.cfg.Exclude, rel)
}

// observe records one sighting of a wanted file and moves it to the ready
// queue once it may be taken.
func (s *Source) observe(rel, abs string, info fs.FileInfo, triggered bool, now time.Time) {
	c := &candidate{rel: rel, abs: abs, size: info.Size(), mtime: info.ModTime(), since: now}
	key := c.key()
	if s.wasOffered(key) {
		delete(s.pending, rel)
		return
	}
	if s.readyKeys[key] {
		return
	}
	if s.cfg.Trigger != "" {
		if triggered {
			s.promote(c)
		}
		return
	}
	old := s.pending[rel]
	if old != nil && old.size == c.size && old.mtime.Equal(c.mtime) {
		if now.Sub(old.since) >= s.cfg.StableFor {
			delete(s.pending, rel)
			s.promote(old)
		}
		return
	}
	if s.cfg.StableFor == 0 {
		delete(s.pending, rel)
		s.promote(c)
		return
	}
	// New or changed: the wait starts again.
	s.pending[rel] = c
	if due := now.Add(s.cfg.StableFor); s.nextDue.IsZero() || due.Before(s.nextDue) {
		s.nextDue = due
	}
}

func (s *Source) promote(c *candidate) {
	s.ready = append(s.ready, c)
	s.readyKeys[c.key()] = true
	s.readySort = true
}

// recheckPending looks again at files whose stability wait is over.
func (s *Source) recheckPending(now time.Time) {
	s.nextDue = time.Time{}
	for rel, c := range s.pending {
		due := c.since.Add(s.cfg.StableFor)
		if now.Before(due) {
			if s.nextDue.IsZero() || due.Before(s.nextDue) {
				s.nextDue = due
			}
			continue
		}
		s.restat(rel, c.abs, now)
	}
}

// restat looks at one known file again.
func (s *Source) restat(rel, abs string, now time.Time) {
	info, err := s.fileInfo(abs, nil)
	if err != nil {
		delete(s.pending, rel)
		return
	}
	s.observe(rel, abs, info, s.triggerExists(abs), now)
}

func (s *Source) triggerExists(abs string) bool {
	if s.cfg.Trigger == "" {
		return false
	}
	_, err := os.Lstat(abs + s.cfg.Trigger)
	return err == nil
}

// processEvents handles the paths named by file system events since the last
// batch. It reports whether there were any.
func (s *Source) processEvents(now time.Time) bool {
	s.evMu.Lock()
	dirty := s.dirty
	s.dirty = nil
	s.evMu.Unlock()
	if len(dirty) == 0 {
		return false
	}
	for p := range dirty {
		s.processPath(p, now)
	}
	return true
}

func (s *Source) processPath(abs string, now time.Time) {
	r, err := filepath.Rel(s.root, abs)
	if err != nil || r == "." || r == ".." || strings.HasPrefix(r, ".."+string(filepath.Separator)) {
		return
	}
	rel := filepath.ToSlash(r)
	if !s.cfg.Recursive && strings.Contains(rel, "/") {
		return
	}
	// The directories above were admitted when they were watched.
	name := path.Base(rel)
	info, err := os.Lstat(abs)
	if err != nil {
		delete(s.pending, rel)
		delete(s.watched, abs)
		return
	}
	switch {
	case info.IsDir():
		// It may be a new directory under an old name, whose old watch ended.
		delete(s.watched, abs)
		if s.cfg.Recursive && !s.skipDir(abs, rel, name, fs.FileInfoToDirEntry(info)) {
			_ = s.scanDir(abs, rel, now, map[string]bool{}, map[string]bool{})
		}
	case s.isTrigger(name):
		dataRel := strings.TrimSuffix(rel, s.cfg.Trigger)
		dataAbs := strings.TrimSuffix(abs, s.cfg.Trigger)
		if !s.wanted(dataRel, path.Base(dataRel)) {
			return
		}
		if dataInfo, err := s.fileInfo(dataAbs, nil); err == nil {
			s.observe(dataRel, dataAbs, dataInfo, true, now)
		}
	default:
		if !s.wanted(rel, name) {
			return
		}
		if info, err := s.fileInfo(abs, nil); err == nil {
			s.observe(rel, abs, info, s.triggerExists(abs), now)
		}
	}
}

// pop returns the oldest ready file that has not changed since it was seen,
// or nil.
func (s *Source) pop(now time.Time) *item {
	if s.readySort {
		slices.SortFunc(s.ready, func(a, b *candidate) int {
			if c := a.mtime.Compare(b.mtime); c != 0 {
				return c
			}
			return strings.Compare(a.rel, b.rel)
		})
		s.readySort = false
	}
	for len(s.ready) > 0 {
		c := s.ready[0]
		s.ready[0] = nil
		s.ready = s.ready[1:]
		key := c.key()
		delete(s.readyKeys, key)
		if s.wasOffered(key) {
			continue
		}
		info, err := s.fileInfo(c.abs, nil)
		if err != nil {
			continue
		}
		if info.Size() != c.size || !info.ModTime().Equal(c.mtime) {
			s.observe(c.rel, c.abs, info, s.triggerExists(c.abs), now)
			continue
		}
		s.markOffered(key)
		return &item{
			src: s,
			abs: c.abs,
			file: pipeline.File{
				Key:     key,
				Name:    c.rel,
				Size:    c.size,
				ModTime: c.mtime,
			},
		}
	}
	s.ready = nil
	return nil
}

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

func (e *changedError) Error() string        { return e.msg }
func (e *changedError) Is(target error) bool { return target == pipeline.ErrChanged }

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
// and returns where it went. It never replaces an existing file: a hard link
// claims the new name atomically. Where links are impossible it falls back to
// a rename after checking the name is free, and across file systems to a copy.
func moveNoClobber(src, dst string) (string, error) {
	srcInfo, err := os.Lstat(src)
	if err != nil {
		return "", err
	}
	for n := 0; n < maxSuffix; n++ {
		cand := pipeline.WithSuffix(dst, n)
		err := os.Link(src, cand)
		if err == nil {
			if err := os.Remove(src); err != nil && !errors.Is(err, fs.ErrNotExist) {
				return cand, err
			}
			return cand, nil
		}
		candInfo, statErr := os.Lstat(cand)
		if statErr == nil {
			if os.SameFile(srcInfo, candInfo) {
				// Linked by an earlier attempt that stopped before removing src.
				if err := os.Remove(src); err != nil && !errors.Is(err, fs.ErrNotExist) {
					return cand, err
				}
				return cand, nil
			}
			continue // taken
		}
		if !errors.Is(statErr, fs.ErrNotExist) {
			return "", statErr
		}
		if errors.Is(err, fs.ErrNotExist) {
			return "", err
		}
		// No hard links here: the name was free a moment ago.
		err = os.Rename(src, cand)
		if err == nil {
			return cand, nil
		}
		if !errors.Is(err, syscall.EXDEV) {
			return "", err
		}
		return cand, copyAcross(src, cand, srcInfo)
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

var (
	_ pipeline.Source        = (*Source)(nil)
	_ pipeline.Item          = (*item)(nil)
	_ pipeline.RangeOpener   = (*item)(nil)
	_ pipeline.AckRemover    = (*item)(nil)
	_ pipeline.SiblingOpener = (*item)(nil)
)
