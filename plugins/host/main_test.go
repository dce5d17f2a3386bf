package host_test

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// binDir holds the plugin binaries the tests build once.
var binDir string

// Modes of testdata/fake built by TestMain, each into its own binary.
var fakeModes = []string{"crash", "version2", "badspec", "clash", "faulty"}

func TestMain(m *testing.M) {
	os.Exit(run(m))
}

func run(m *testing.M) int {
	dir, err := os.MkdirTemp("", "mftflow-plugins-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(dir)
	binDir = dir
	builds := [][]string{
		{"-o", filepath.Join(dir, "localfs"), "../examples/localfs"},
		{"-o", filepath.Join(dir, "eol"), "../examples/eol"},
		{"-o", filepath.Join(dir, "sftp"), "../sftp"},
		{"-o", filepath.Join(dir, "ftps"), "../ftps"},
	}
	for _, mode := range fakeModes {
		builds = append(builds, []string{"-o", filepath.Join(dir, "fake-"+mode), "-ldflags", "-X main.mode=" + mode, "./testdata/fake"})
	}
	for _, args := range builds {
		cmd := exec.Command("go", append([]string{"build"}, args...)...)
		if out, err := cmd.CombinedOutput(); err != nil {
			fmt.Fprintf(os.Stderr, "go build %v: %v\n%s", args, err, out)
			return 1
		}
	}
	return m.Run()
}

// pluginsDir returns a new plugins directory holding the named binaries
// (symlinks to the built ones).
func pluginsDir(t *testing.T, names ...string) string {
	t.Helper()
	dir := t.TempDir()
	for _, n := range names {
		if err := os.Symlink(filepath.Join(binDir, n), filepath.Join(dir, n)); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}
