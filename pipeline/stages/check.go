package stages

import (
	"errors"
	"fmt"
	"regexp"
	"strings"

	"github.com/bmatcuk/doublestar/v4"

	"github.com/mftflow/mftflow/pipeline"
)

// The specs' Check functions: what the constructors refuse, as
// *pipeline.FieldError values so that a flow file points at the field.

func fieldError(stage, field, format string, args ...any) error {
	return &pipeline.FieldError{Connector: stage, Field: field, Err: fmt.Errorf(format, args...)}
}

func checkMatch(c MatchConfig) error {
	var errs []error
	for _, list := range []struct {
		field string
		globs []string
	}{{"include", c.Include}, {"exclude", c.Exclude}} {
		for _, p := range list.globs {
			if !doublestar.ValidatePattern(p) {
				errs = append(errs, fieldError("match", list.field, `invalid glob pattern %q: close every "[" and "{", or escape them with "\"`, p))
			}
		}
	}
	if re := c.Regex; re != "" {
		if _, err := regexp.Compile(re); err != nil {
			errs = append(errs, fieldError("match", "regex", "%q does not compile: %v; correct it (Go RE2 syntax, see https://pkg.go.dev/regexp/syntax)", re, unwrapRegexp(err)))
		}
	}
	if lo, hi := c.MinSize, c.MaxSize; hi > 0 && lo > hi {
		errs = append(errs, fieldError("match", "min_size", "%s is above max_size %s: no file could match; lower min_size or raise max_size",
			pipeline.ExactSize(lo), pipeline.ExactSize(hi)))
	}
	return errors.Join(errs...)
}

// unwrapRegexp returns the problem of a regexp error without the
// "error parsing regexp: " prefix.
func unwrapRegexp(err error) string {
	return strings.TrimPrefix(err.Error(), "error parsing regexp: ")
}

func checkRename(c RenameConfig) error {
	if err := pipeline.CheckNameTemplate(c.Name); err != nil {
		return fieldError("rename", "name", "%v", err)
	}
	return nil
}

func checkAttrs(c AttrsConfig) error {
	if err := checkAttrSet(c.Set); err != nil {
		return fieldError("attrs", "set", "%v", err)
	}
	return nil
}

func checkCompress(c CompressConfig) error {
	level := c.Level
	switch c.Format {
	case FormatGzip:
		if level < 0 || level > 9 {
			return fieldError("compress", "level", "gzip has levels 1 (fastest) to 9 (smallest), got %d: pick one of them, or 0 for the default", level)
		}
	case FormatZstd:
		if level < 0 || level > 22 {
			return fieldError("compress", "level", "zstd has levels 1 (fastest) to 22 (smallest), got %d: pick one of them, or 0 for the default", level)
		}
	}
	return nil
}
