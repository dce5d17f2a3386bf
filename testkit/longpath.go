package testkit

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// PathMax is the longest path, in bytes, that Linux system calls accept
// (PATH_MAX, 4096, counts the terminating NUL).
const PathMax = 4095

// LongPaths builds, below dir (which must exist), a tree that reaches past
// PathMax: a directory deepDir whose path just fits, holding a file
// longFile and a directory longDir (with a file in it) whose paths do not.
// It returns their names relative to dir, slash-separated. The tree is
// built from the bottom up with renames over short paths, since no call
// can name its deepest parts; os.RemoveAll, which works relative to open
// directories, removes it. It skips the test where such a tree cannot be
// made.
func LongPaths(t testing.TB, dir string) (deepDir, longFile, longDir string) {
	t.Helper()
	const nameLen = 200
	abs, err := filepath.Abs(dir)
	if err != nil {
		t.Fatal(err)
	}
	levels := (PathMax - len(abs) - 1) / (nameLen + 1)
	if levels < 1 {
		t.Skipf("%s is too long to build a tree below it", abs)
	}
	name := func(i int) string { return fmt.Sprintf("%03d", i) + strings.Repeat("d", nameLen-3) }
	fileName := "f" + strings.Repeat("x", 249)
	dirName := "g" + strings.Repeat("x", 249)
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Skipf("cannot build a tree of long paths here: %v", err)
		}
	}
	stage := t.TempDir()
	// The innermost level, which holds the file and the directory.
	top := name(levels - 1)
	must(os.Mkdir(filepath.Join(stage, top), 0o755))
	must(os.WriteFile(filepath.Join(stage, top, fileName), []byte("too deep\n"), 0o644))
	must(os.Mkdir(filepath.Join(stage, top, dirName), 0o755))
	must(os.WriteFile(filepath.Join(stage, top, dirName, "x.txt"), []byte("deeper\n"), 0o644))
	// Wrap it in the outer levels, each rename naming short paths only.
	for i := levels - 2; i >= 0; i-- {
		wrap := filepath.Join(stage, "w")
		must(os.Mkdir(wrap, 0o755))
		must(os.Rename(filepath.Join(stage, top), filepath.Join(wrap, top)))
		must(os.Rename(wrap, filepath.Join(stage, name(i))))
		top = name(i)
	}
	must(os.Rename(filepath.Join(stage, top), filepath.Join(abs, top)))
	parts := make([]string, levels)
	for i := range parts {
		parts[i] = name(i)
	}
	deepDir = strings.Join(parts, "/")
	return deepDir, deepDir + "/" + fileName, deepDir + "/" + dirName
}
