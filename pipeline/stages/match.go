package stages

import (
	"context"
	"fmt"
	"io"
	"regexp"
	"strconv"
	"strings"

	"github.com/bmatcuk/doublestar/v4"

	"github.com/mftflow/mftflow/pipeline"
)

// MatchConfig selects the files a Match stage lets through.
type MatchConfig struct {
	// Include lists doublestar globs matched against the whole slash-separated
	// name: "*.csv" matches "a.csv" but not "in/a.csv"; "**/*.csv" matches
	// both. A file must match at least one. Empty means every file.
	Include []string `config:"include"`
	// Exclude lists globs, as Include, that drop a file even if it is included.
	Exclude []string `config:"exclude"`
	// Regex, when not empty, is a Go regular expression the name must match
	// (anywhere in the name unless anchored with ^ and $).
	Regex string `config:"regex"`
	// MinSize drops files smaller than this many bytes. It is checked only
	// when the file's size is known (File.Size >= 0); a file of unknown size
	// (after a compress stage, say) is never dropped for being too small.
	MinSize int64 `config:"min_size"`
	// MaxSize drops files larger than this many bytes; 0 means no limit. A
	// file of unknown size is let through, and its content fails with a
	// permanent error once more than MaxSize bytes have been read.
	MaxSize int64 `config:"max_size"`
}

// Match drops the files that do not match its MatchConfig. It does not change
// the files it lets through. It is safe for concurrent use.
type Match struct {
	cfg   MatchConfig
	regex *regexp.Regexp
}

// NewMatch checks cfg and returns the stage. An invalid glob or regular
// expression is an error that names it.
func NewMatch(cfg MatchConfig) (*Match, error) {
	m := &Match{cfg: MatchConfig{
		Include: append([]string(nil), cfg.Include...),
		Exclude: append([]string(nil), cfg.Exclude...),
		Regex:   cfg.Regex,
		MinSize: cfg.MinSize,
		MaxSize: cfg.MaxSize,
	}}
	for _, list := range []struct {
		field    string
		patterns []string
	}{{"include", m.cfg.Include}, {"exclude", m.cfg.Exclude}} {
		for _, p := range list.patterns {
			if !doublestar.ValidatePattern(p) {
				return nil, fmt.Errorf("match: %s pattern %q: %w", list.field, p, doublestar.ErrBadPattern)
			}
		}
	}
	if cfg.Regex != "" {
		re, err := regexp.Compile(cfg.Regex)
		if err != nil {
			return nil, fmt.Errorf("match: regex %q: %w", cfg.Regex, err)
		}
		m.regex = re
	}
	if cfg.MinSize < 0 || cfg.MaxSize < 0 {
		return nil, fmt.Errorf("match: min_size and max_size must not be negative")
	}
	if cfg.MaxSize > 0 && cfg.MinSize > cfg.MaxSize {
		return nil, fmt.Errorf("match: min_size %s is above max_size %s: no file could match",
			pipeline.FormatSize(cfg.MinSize), pipeline.FormatSize(cfg.MaxSize))
	}
	return m, nil
}

// Process returns f and r unchanged if f matches, or an error wrapping
// pipeline.ErrSkip that says why it does not. When f.Size is unknown and a
// MaxSize is set, the returned reader enforces MaxSize.
func (m *Match) Process(ctx context.Context, f pipeline.File, r io.Reader) (pipeline.File, io.Reader, error) {
	if err := m.check(f); err != nil {
		return pipeline.File{}, nil, err
	}
	if f.Size < 0 && m.cfg.MaxSize > 0 {
		return f, &maxSizeReader{r: r, name: f.Name, left: m.cfg.MaxSize, max: m.cfg.MaxSize}, nil
	}
	return f, r, nil
}

// check reports why f does not match, as an error wrapping pipeline.ErrSkip.
func (m *Match) check(f pipeline.File) error {
	skip := func(format string, args ...any) error {
		return fmt.Errorf(format+": %w", append(args, pipeline.ErrSkip)...)
	}
	if len(m.cfg.Include) > 0 && !pipeline.MatchAny(m.cfg.Include, f.Name) {
		return skip("%q does not match include %s", f.Name, quoteList(m.cfg.Include))
	}
	for _, p := range m.cfg.Exclude {
		if doublestar.MatchUnvalidated(p, f.Name) {
			return skip("%q matches exclude %q", f.Name, p)
		}
	}
	if m.regex != nil && !m.regex.MatchString(f.Name) {
		return skip("%q does not match regex %q", f.Name, m.cfg.Regex)
	}
	if f.Size >= 0 {
		if f.Size < m.cfg.MinSize {
			return skip("%q is %s, below min_size %s", f.Name, pipeline.FormatSize(f.Size), pipeline.FormatSize(m.cfg.MinSize))
		}
		if m.cfg.MaxSize > 0 && f.Size > m.cfg.MaxSize {
			return skip("%q is %s, above max_size %s", f.Name, pipeline.FormatSize(f.Size), pipeline.FormatSize(m.cfg.MaxSize))
		}
	}
	return nil
}

// quoteList formats a list as ["a", "b"].
func quoteList(list []string) string {
	q := make([]string, len(list))
	for i, s := range list {
		q[i] = strconv.Quote(s)
	}
	return "[" + strings.Join(q, ", ") + "]"
}

// maxSizeReader fails with a permanent error once more than max bytes pass.
type maxSizeReader struct {
	r    io.Reader
	name string
	left int64 // bytes still allowed
	max  int64
	err  error
}

func (l *maxSizeReader) Read(p []byte) (int, error) {
	if l.err != nil {
		return 0, l.err
	}
	n, err := l.r.Read(p)
	if int64(n) > l.left {
		n = int(l.left)
		l.left = 0
		l.err = pipeline.Permanent(fmt.Errorf("match: %q is larger than max_size %s (its size was unknown when it was matched)",
			l.name, pipeline.FormatSize(l.max)))
		return n, l.err
	}
	l.left -= int64(n)
	return n, err
}

var _ pipeline.Stage = (*Match)(nil)

// KeepsContent reports true: Match lets a file through or drops it, never
// changing its bytes, and reads them only to bound a file of unknown size,
// which a file read by reference never is. It implements
// pipeline.ContentKeeper.
func (m *Match) KeepsContent() bool { return true }
