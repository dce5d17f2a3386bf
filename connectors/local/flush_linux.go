//go:build linux

package local

import (
	"fmt"

	"golang.org/x/sys/unix"
)

// durability makes a sink's committed files durable on request: on Linux by
// syncing the whole file system holding the sink's directory (syncfs(2)),
// so it need not remember which files were committed.
type durability struct {
	dir string
}

func newDurability(dir string) *durability { return &durability{dir: dir} }

// committed notes a file Commit published; syncfs covers it without notes.
func (d *durability) committed(path string) {}

// sync flushes the file system holding d.dir: every file's data, names and
// directories there, whoever wrote them.
func (d *durability) sync() error {
	fd, err := unix.Open(d.dir, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("flushing the file system of %s: %w", d.dir, err)
	}
	defer func() { _ = unix.Close(fd) }() // opened only to name the file system
	if err := unix.Syncfs(fd); err != nil {
		return fmt.Errorf("flushing the file system of %s: syncfs: %w", d.dir, err)
	}
	return nil
}
