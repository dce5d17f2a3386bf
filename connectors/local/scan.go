package local

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strings"
	"time"

	"github.com/fsnotify/fsnotify"

	"github.com/mftflow/mftflow/pipeline"
)

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
