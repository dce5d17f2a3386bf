package local

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strings"

	"github.com/bmatcuk/doublestar/v4"

	"github.com/mftflow/mftflow/pipeline"
)

// MaxPartSize bounds the sink's part_size: each part in flight is held in
// memory, parallelism parts per file.
const MaxPartSize = 1 << 30

// checkSource is the source spec's Check: what NewSource would refuse,
// found without watching or creating anything.
func checkSource(cfg SourceConfig) error {
	var errs []error
	bad := func(field, format string, args ...any) {
		errs = append(errs, &pipeline.FieldError{Connector: "local", Field: field, Err: fmt.Errorf(format, args...)})
	}
	root, err := filepath.Abs(cfg.Path)
	var info fs.FileInfo
	if err == nil {
		info, err = os.Stat(root)
	}
	switch {
	case errors.Is(err, fs.ErrNotExist):
		bad("path", "directory %s does not exist: create it, or correct the path", root)
	case err != nil:
		bad("path", "%v", err)
	case !info.IsDir():
		bad("path", "%s is not a directory: give the directory that holds the files", root)
	}
	for _, list := range []struct {
		field    string
		patterns []string
	}{{"include", cfg.Include}, {"exclude", cfg.Exclude}, {"ignore", cfg.Ignore}} {
		for _, p := range list.patterns {
			if err := checkGlob(p); err != nil {
				bad(list.field, "%v", err)
			}
		}
	}
	if strings.ContainsAny(cfg.Trigger, `/\`) {
		bad("trigger", "%q: want a suffix such as .done, without slashes", cfg.Trigger)
	}
	if cfg.After == AfterMove {
		switch archive, err := filepath.Abs(cfg.ArchiveDir); {
		case cfg.ArchiveDir == "":
			bad("archive_dir", `required when after is "move": name the directory delivered files are moved to`)
		case err != nil:
			bad("archive_dir", "%v", err)
		case info != nil && sameDir(archive, info):
			bad("archive_dir", "%s is the source directory itself: give another directory", archive)
		}
	}
	return errors.Join(errs...)
}

// checkGlob refuses what doublestar refuses, with a hint.
func checkGlob(p string) error {
	if p == "" {
		return errors.New(`an empty pattern matches nothing: remove it, or write "**" for every file`)
	}
	if !doublestar.ValidatePattern(p) {
		return fmt.Errorf(`invalid glob pattern %q: close every "[" and "{", or escape them with "\"`, p)
	}
	return nil
}

func sameDir(p string, dir fs.FileInfo) bool {
	info, err := os.Stat(p)
	return err == nil && os.SameFile(info, dir)
}

// checkSink is the sink spec's Check: what NewSink would refuse, found
// without creating the directory.
func checkSink(cfg SinkConfig) error {
	var errs []error
	bad := func(field, format string, args ...any) {
		errs = append(errs, &pipeline.FieldError{Connector: "local", Field: field, Err: fmt.Errorf(format, args...)})
	}
	if dir, err := filepath.Abs(cfg.Path); err != nil {
		bad("path", "%v", err)
	} else if info, err := os.Stat(dir); err == nil && !info.IsDir() {
		bad("path", "%s exists and is not a directory: give a directory (it is created if missing)", dir)
	}
	if err := pipeline.CheckNameTemplate(nameOrDefault(cfg.Name)); err != nil {
		bad("name", "%v", err)
	}
	if cfg.PartSize > MaxPartSize {
		bad("part_size", "%s is above the limit of %s per part (each part being written is held in memory); lower it",
			pipeline.ExactSize(cfg.PartSize), pipeline.ExactSize(MaxPartSize))
	}
	return errors.Join(errs...)
}

func nameOrDefault(tmpl string) string {
	if tmpl == "" {
		return "{name}"
	}
	return tmpl
}

// localDir returns the absolute, clean form of dir with symbolic links
// resolved as far as it exists, so that two spellings of one directory
// compare equal.
func localDir(dir string) (string, bool) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return "", false
	}
	// Resolve the longest part that exists; the rest is created later.
	rest := ""
	for p := abs; ; {
		if real, err := filepath.EvalSymlinks(p); err == nil {
			return filepath.ToSlash(filepath.Join(real, rest)), true
		}
		parent := filepath.Dir(p)
		if parent == p {
			return filepath.ToSlash(abs), true
		}
		rest = filepath.Join(filepath.Base(p), rest)
		p = parent
	}
}

// sourcePlace is the source spec's Place: the directory it reads, and what
// below it the walk leaves alone.
func sourcePlace(cfg SourceConfig) (pipeline.Place, bool) {
	dir, ok := localDir(cfg.Path)
	if !ok {
		return pipeline.Place{}, false
	}
	archive := ""
	if cfg.After == AfterMove && cfg.ArchiveDir != "" {
		archive, _ = localDir(cfg.ArchiveDir)
	}
	skips := func(rel string) bool {
		if !cfg.Recursive {
			return true // rel is a subdirectory, never listed
		}
		prefix := ""
		for _, el := range strings.Split(rel, "/") {
			prefix = path.Join(prefix, el)
			if pipeline.MatchAny(cfg.Ignore, el) || pipeline.MatchAny(cfg.Exclude, prefix) || pipeline.MatchAny(cfg.Exclude, prefix+"/**") ||
				(archive != "" && path.Join(dir, prefix) == archive) {
				return true
			}
		}
		return false
	}
	return pipeline.Place{Store: "file", Dir: dir, Text: "local directory " + dir, Skips: skips}, true
}

// sinkPlace is the sink spec's Place: its directory, with the literal
// directories its name template starts with.
func sinkPlace(cfg SinkConfig) (pipeline.Place, bool) {
	dir, ok := localDir(cfg.Path)
	if !ok {
		return pipeline.Place{}, false
	}
	if sub := pipeline.TemplateDir(nameOrDefault(cfg.Name)); sub != "" {
		dir = path.Join(dir, sub)
	}
	return pipeline.Place{Store: "file", Dir: dir, Text: "local directory " + dir}, true
}
