//go:build !linux

package local

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sync"
)

// durability makes a sink's committed files durable on request: without
// syncfs(2), by syncing each file committed since the last sync, then the
// directories from its own up to the sink's. Files committed by an earlier
// process are not known, so not synced again.
type durability struct {
	dir string

	mu    sync.Mutex
	files map[string]struct{} // committed since the last sync began
}

func newDurability(dir string) *durability {
	return &durability{dir: dir, files: map[string]struct{}{}}
}

// committed notes a file Commit published under path.
func (d *durability) committed(path string) {
	d.mu.Lock()
	d.files[path] = struct{}{}
	d.mu.Unlock()
}

// sync flushes the files noted since the last sync and their directories. On
// failure they stay noted, for the next sync.
func (d *durability) sync() error {
	d.mu.Lock()
	batch := d.files
	d.files = map[string]struct{}{}
	d.mu.Unlock()
	err := d.syncAll(batch)
	if err != nil {
		d.mu.Lock()
		for p := range batch {
			d.files[p] = struct{}{}
		}
		d.mu.Unlock()
	}
	return err
}

func (d *durability) syncAll(files map[string]struct{}) error {
	dirs := map[string]struct{}{}
	for p := range files {
		f, err := os.OpenFile(p, os.O_RDWR, 0)
		if errors.Is(err, fs.ErrNotExist) {
			continue // moved away or replaced since: nothing of ours to keep
		}
		if err != nil {
			return fmt.Errorf("flushing %s: %w", p, err)
		}
		err = f.Sync()
		f.Close()
		if err != nil {
			return fmt.Errorf("flushing %s: %w", p, err)
		}
		dirs[filepath.Dir(p)] = struct{}{}
	}
	for dir := range dirs {
		if err := syncDirsUp(d.dir, dir); err != nil {
			return err
		}
	}
	return nil
}
