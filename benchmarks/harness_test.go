package benchmarks

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/mftflow/mftflow/bench"
)

// The names are what report.sh's patterns and README.md refer to.
func TestWorkloadNames(t *testing.T) {
	var got []string
	for _, w := range Workloads {
		got = append(got, w.Name())
	}
	want := []string{"1GiB-random", "4GiB-random", "10000x4KiB-random", "100x10MiB-random", "1GiB-text", "100x10MiB-text"}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("workloads (-want +got):\n%s", diff)
	}
}

// Materialize writes what runner bench generates for the same shape, and
// reuses a complete set instead of writing it again.
func TestMaterialize(t *testing.T) {
	dir := t.TempDir()
	w := Workload{Workload: bench.Workload{Files: 3, Size: 5000, Data: bench.DataText}}
	in, err := w.Materialize(dir)
	if err != nil {
		t.Fatal(err)
	}
	if want := filepath.Join(dir, "3x5000-text", "in"); in != want {
		t.Errorf("input directory %s, want %s", in, want)
	}
	ref := t.TempDir()
	if err := w.Generate(ref); err != nil {
		t.Fatal(err)
	}
	for i := range w.Files {
		got, err := os.ReadFile(inputFile(in, i))
		if err != nil {
			t.Fatal(err)
		}
		want, _ := os.ReadFile(inputFile(ref, i))
		if len(got) != 5000 || !bytes.Equal(got, want) {
			t.Errorf("file %d: %d bytes, differs from bench's: %v", i, len(got), !bytes.Equal(got, want))
		}
	}
	// A complete set is not written again.
	if err := os.WriteFile(inputFile(in, 0), []byte("kept"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := w.Materialize(dir); err != nil {
		t.Fatal(err)
	}
	if got, _ := os.ReadFile(inputFile(in, 0)); string(got) != "kept" {
		t.Errorf("a complete set was written again")
	}
}
