package testkit

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/user"
	"path/filepath"
	"sort"
	"strconv"
	"sync/atomic"
	"testing"
)

// UserDir is a local directory that a real server under test (sshd,
// vsftpd) serves to its login user. Files it creates belong to that user,
// so the server may write, rename and delete them. Servers run without a
// chroot, so a remote path is the same as the local one.
type UserDir struct {
	// Dir is the absolute directory; it starts empty.
	Dir string

	uid, gid int // of the login user; -1 when files need no chown
}

// NewUserDir creates dir (mode 0755) owned by the user called name, when
// the tests run as root and that user exists; else the files stay the
// current user's and owned reports false.
func NewUserDir(dir, name string) (d UserDir, owned bool, err error) {
	d = UserDir{Dir: dir, uid: -1, gid: -1}
	if os.Geteuid() == 0 {
		if u, err := user.Lookup(name); err == nil {
			uid, err1 := strconv.Atoi(u.Uid)
			gid, err2 := strconv.Atoi(u.Gid)
			if err1 == nil && err2 == nil {
				d.uid, d.gid, owned = uid, gid, true
			}
		}
	}
	if err := os.Mkdir(dir, 0o755); err != nil {
		return d, false, err
	}
	return d, owned, d.chown(dir)
}

func (d UserDir) chown(p string) error {
	if d.uid < 0 {
		return nil
	}
	return os.Lchown(p, d.uid, d.gid)
}

// Path returns the local path of name (slash-separated, relative to Dir),
// which is also its remote path.
func (d UserDir) Path(name string) string {
	return filepath.Join(d.Dir, filepath.FromSlash(name))
}

// Mkdir creates the directory name below Dir, with its parents, owned by
// the login user, and returns its path.
func (d UserDir) Mkdir(t testing.TB, name string) string {
	t.Helper()
	p := d.Path(name)
	if err := d.mkdirAll(p); err != nil {
		t.Fatal(err)
	}
	return p
}

// freshSeq numbers the directories FreshDir makes, so that tests sharing
// one server never share a directory.
var freshSeq atomic.Int64

// FreshDir creates an empty directory below Dir, named prefix and a number
// no other call gave, and returns its name relative to Dir.
func (d UserDir) FreshDir(t testing.TB, prefix string) string {
	t.Helper()
	name := fmt.Sprintf("%s-%d", prefix, freshSeq.Add(1))
	d.Mkdir(t, name)
	return name
}

func (d UserDir) mkdirAll(p string) error {
	if p == d.Dir {
		return nil
	}
	if fi, err := os.Stat(p); err == nil {
		if !fi.IsDir() {
			return fmt.Errorf("%s is not a directory", p)
		}
		return nil
	}
	if err := d.mkdirAll(filepath.Dir(p)); err != nil {
		return err
	}
	if err := os.Mkdir(p, 0o755); err != nil && !errors.Is(err, fs.ErrExist) {
		return err
	}
	return d.chown(p)
}

// WriteFile writes a file below Dir, creating its directories, all owned by
// the login user so that the server may delete or move them.
func (d UserDir) WriteFile(t testing.TB, name string, data []byte) {
	t.Helper()
	p := d.Path(name)
	if err := d.mkdirAll(filepath.Dir(p)); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, data, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := d.chown(p); err != nil {
		t.Fatal(err)
	}
}

// ReadFile returns the content of the file name below Dir, and false if
// there is none.
func (d UserDir) ReadFile(t testing.TB, name string) ([]byte, bool) {
	t.Helper()
	b, err := os.ReadFile(d.Path(name))
	if err != nil {
		if !errors.Is(err, fs.ErrNotExist) {
			t.Fatal(err)
		}
		return nil, false
	}
	return b, true
}

// Exists reports whether name exists below Dir.
func (d UserDir) Exists(name string) bool {
	_, err := os.Lstat(d.Path(name))
	return err == nil
}

// List returns the slash-separated names of every file below dir (relative
// to Dir; "" for Dir itself), sorted, relative to dir.
func (d UserDir) List(t testing.TB, dir string) []string {
	t.Helper()
	root := d.Path(dir)
	var names []string
	err := filepath.WalkDir(root, func(p string, e fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !e.IsDir() {
			rel, err := filepath.Rel(root, p)
			if err != nil {
				return err
			}
			names = append(names, filepath.ToSlash(rel))
		}
		return nil
	})
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		t.Fatal(err)
	}
	sort.Strings(names)
	return names
}

// Unprivileged reports whether the login user is subject to file
// permissions, so a test can make a directory it may not write to.
func (d UserDir) Unprivileged() bool {
	if d.uid >= 0 {
		return d.uid != 0
	}
	return os.Geteuid() != 0
}
