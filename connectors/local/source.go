package local

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/bmatcuk/doublestar/v4"
	"github.com/fsnotify/fsnotify"

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

var (
	_ pipeline.Source        = (*Source)(nil)
	_ pipeline.Item          = (*item)(nil)
	_ pipeline.RangeOpener   = (*item)(nil)
	_ pipeline.AckRemover    = (*item)(nil)
	_ pipeline.SiblingOpener = (*item)(nil)
)
