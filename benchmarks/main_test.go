package benchmarks

import (
	"fmt"
	"os"
	"testing"
)

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "mftflow-bench-bin")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	binDir = dir
	if kept, err = os.MkdirTemp("", "mftflow-bench-out"); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.RemoveAll(kept)
	os.Exit(code)
}

// kept holds the outputs of many-file runs until every benchmark is done.
var kept string

// workDir returns a fresh directory for one run of workload w. Outputs of
// thousands of files are removed only once every benchmark has run: ext4
// makes each file created within a minute or so of many removals in the
// same block group skip past the removed inodes (recently_deleted), which
// would charge the next row for the cleanup of the one before.
func workDir(b *testing.B, w Workload) string {
	if w.Files < 1000 {
		return b.TempDir()
	}
	dir, err := os.MkdirTemp(kept, "run")
	if err != nil {
		b.Fatal(err)
	}
	return dir
}
