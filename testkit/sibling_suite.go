package testkit

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"testing"

	"github.com/mftflow/mftflow/internal/discard"
	"github.com/mftflow/mftflow/pipeline"
)

// SiblingHarness tells RunSiblingTests how to build and inspect a source
// whose items open the files beside them (pipeline.SiblingOpener) and whose
// after action follows a file's companions (pipeline.Companions).
type SiblingHarness struct {
	// New returns a fresh, finite source, created for this subtest, that
	// offers exactly files (name -> content; names may contain "/") and
	// applies the after action after (pipeline.AfterDelete or
	// pipeline.AfterMove, into an archive directory of the harness's
	// choosing). The suite closes the source when the subtest ends.
	New func(t *testing.T, after string, files map[string][]byte) pipeline.Source
	// Exists reports whether the named file is still at the source.
	Exists func(t *testing.T, name string) bool
	// Archived reports whether the archive directory of the last New holds
	// the named file under that name. Optional: without it the move
	// subtest skips.
	Archived func(t *testing.T, name string) bool
}

// RunSiblingTests checks the optional abilities of sources that verify a
// file against another beside it. Each subtest builds its own source:
//
//   - OpenSibling: an item opens any file of the source by its name
//     relative to the source root, with the file's content; a missing one
//     gives an error matching fs.ErrNotExist, a name such as "../x" one
//     matching pipeline.ErrBadName. Skipped if items do not implement
//     pipeline.SiblingOpener.
//   - CompanionsDeleted, CompanionsMoved: Ack(Passed) of an outcome listing
//     "{name}.sha256" as the companions applies the after action to the
//     file and to its checksum file, also in a subdirectory; a companion
//     that is not there does not fail the Ack; Ack again returns nil; an
//     Ack other than Passed leaves both.
func RunSiblingTests(t *testing.T, h SiblingHarness) {
	t.Helper()
	if h.New == nil || h.Exists == nil {
		t.Fatal("testkit: SiblingHarness.New and Exists must be set")
	}
	runChecks(t, h, siblingChecks)
}

var siblingChecks = []check[SiblingHarness]{
	{"OpenSibling", checkOpenSibling},
	{"CompanionsDeleted", func(ctx context.Context, t *testing.T, h SiblingHarness) error {
		return checkCompanions(ctx, t, h, pipeline.AfterDelete)
	}},
	{"CompanionsMoved", func(ctx context.Context, t *testing.T, h SiblingHarness) error {
		return checkCompanions(ctx, t, h, pipeline.AfterMove)
	}},
}

// siblingFiles are data files with their checksum files, one without.
func siblingFiles() map[string][]byte {
	return map[string][]byte{
		"a.csv":            []byte("a,b\n1,2\n"),
		"a.csv.sha256":     []byte("1f3d  a.csv\n"),
		"dir/b.bin":        RandomContent(3, 70_000),
		"dir/b.bin.sha256": []byte("9c0e  b.bin\n"),
		"lonely.txt":       []byte("no checksum file"),
		"empty.sha256":     {},
	}
}

// offered builds a source over files and returns its items by name.
func offered(ctx context.Context, t *testing.T, h SiblingHarness, after string, files map[string][]byte) (map[string]pipeline.Item, error) {
	src, _ := openSource(t, func(t *testing.T) pipeline.Source { return h.New(t, after, files) })
	items, err := drain(ctx, src, true, len(files))
	if err != nil {
		return nil, err
	}
	byName := map[string]pipeline.Item{}
	for _, it := range items {
		byName[it.File().Name] = it
	}
	for name := range files {
		if byName[name] == nil {
			return nil, fmt.Errorf("%q was not offered", name)
		}
	}
	return byName, nil
}

func checkOpenSibling(ctx context.Context, t *testing.T, h SiblingHarness) error {
	files := siblingFiles()
	items, err := offered(ctx, t, h, pipeline.AfterDelete, files)
	if err != nil {
		return err
	}
	so, ok := items["dir/b.bin"].(pipeline.SiblingOpener)
	if !ok {
		return skipf("items do not implement pipeline.SiblingOpener")
	}
	var errs []error
	for _, name := range []string{"dir/b.bin.sha256", "a.csv", "empty.sha256", "dir/b.bin"} {
		got, err := readSibling(ctx, so, name)
		if err == nil {
			err = compareContent(fmt.Sprintf("OpenSibling(%q)", name), got, files[name])
		}
		if err != nil {
			errs = append(errs, err)
		}
	}
	for name, want := range map[string]error{
		"dir/b.bin.md5": fs.ErrNotExist,
		"missing/x":     fs.ErrNotExist,
		"../x":          pipeline.ErrBadName,
		"dir/../a.csv":  pipeline.ErrBadName,
		"/etc/passwd":   pipeline.ErrBadName,
	} {
		if _, err := readSibling(ctx, so, name); !errors.Is(err, want) {
			errs = append(errs, fmt.Errorf("OpenSibling(%q): error %v, want one matching %v", name, err, want))
		}
	}
	return errors.Join(errs...)
}

func readSibling(ctx context.Context, so pipeline.SiblingOpener, name string) ([]byte, error) {
	rc, err := so.OpenSibling(ctx, name)
	if err != nil {
		return nil, err
	}
	defer discard.Close(rc)
	b, err := io.ReadAll(rc)
	if err != nil {
		return nil, fmt.Errorf("reading %q opened with OpenSibling: %w", name, err)
	}
	return b, nil
}

func checkCompanions(ctx context.Context, t *testing.T, h SiblingHarness, after string) error {
	if after == pipeline.AfterMove && h.Archived == nil {
		return skipf("SiblingHarness.Archived is not set")
	}
	items, err := offered(ctx, t, h, after, siblingFiles())
	if err != nil {
		return err
	}
	withSums := pipeline.Outcome{Attrs: map[string]string{pipeline.AttrCompanions: "{name}.sha256"}}
	var errs []error
	ack := func(name string, s pipeline.Status) {
		o := withSums
		o.Status = s
		if err := items[name].Ack(ctx, o); err != nil {
			errs = append(errs, fmt.Errorf("Ack(%v) of %q with companion {name}.sha256: %w", s, name, err))
		}
	}
	ack("a.csv", pipeline.Failed)
	for _, name := range []string{"a.csv", "a.csv.sha256"} {
		if !h.Exists(t, name) {
			errs = append(errs, fmt.Errorf("Ack(Failed) of a.csv took %q away", name))
		}
	}
	for _, name := range []string{"a.csv", "dir/b.bin", "lonely.txt"} {
		ack(name, pipeline.Passed)
		ack(name, pipeline.Passed) // the engine repeats acks
	}
	for _, name := range []string{"a.csv", "a.csv.sha256", "dir/b.bin", "dir/b.bin.sha256", "lonely.txt"} {
		if h.Exists(t, name) {
			errs = append(errs, fmt.Errorf("after Ack(Passed) under after %q, %q is still at the source", after, name))
		}
		if after == pipeline.AfterMove && !h.Archived(t, name) {
			errs = append(errs, fmt.Errorf("after Ack(Passed) under after move, %q is not in the archive", name))
		}
	}
	if !h.Exists(t, "empty.sha256") {
		errs = append(errs, errors.New("empty.sha256, which no acked file lists, is gone"))
	}
	return errors.Join(errs...)
}
