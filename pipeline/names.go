package pipeline

import (
	"fmt"
	"path"
	"path/filepath"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// CleanName checks a file name from any source and returns it in clean,
// slash-separated form. Names that are empty, absolute, contain a ".."
// element, NUL bytes or backslashes are rejected with an error wrapping
// ErrBadName that quotes the name.
func CleanName(name string) (string, error) {
	clean, why := cleanName(name)
	if why != "" {
		return "", fmt.Errorf("file name %q: %s: %w", name, why, ErrBadName)
	}
	return clean, nil
}

// cleanName is CleanName with the reason a name is refused, or "".
func cleanName(name string) (clean, why string) {
	bad := func(why string) (string, string) { return "", why }
	switch {
	case name == "":
		return bad("empty name")
	case strings.ContainsRune(name, 0):
		return bad("contains a NUL byte")
	case strings.ContainsRune(name, '\\'):
		return bad("contains a backslash")
	case strings.HasPrefix(name, "/") || filepath.IsAbs(name) || hasDrive(name):
		return bad("absolute path")
	}
	for _, el := range strings.Split(name, "/") {
		if el == ".." {
			return bad(`contains ".." and would escape the target directory`)
		}
	}
	clean = path.Clean(name)
	if clean == "." {
		return bad("names no file")
	}
	if hasDrive(clean) {
		return bad("absolute path")
	}
	return clean, ""
}

// CheckSourceName checks a file name as a source gives it: CleanName's
// checks, and that the name is already in the form CleanName gives it. A
// name such as "a//b" or "./a" is refused rather than cleaned, since a
// source that can hold it (an S3 bucket) may also hold "a/b" or "a", and
// two files must never become one at a sink.
func CheckSourceName(name string) error {
	clean, err := CleanName(name)
	if err != nil {
		return err
	}
	if clean != name {
		return fmt.Errorf("file name %q: not in clean form (it would be written as %q, which may be another file's name): rename it at the source: %w", name, clean, ErrBadName)
	}
	return nil
}

// CheckUTF8Name refuses a file name that is not valid UTF-8 for a sink (or
// protocol) that can only carry UTF-8 names, such as S3 keys or JSON: the
// bytes are never replaced, so two names never become one. The error is
// permanent and wraps ErrBadName.
func CheckUTF8Name(name, who string) error {
	if utf8.ValidString(name) {
		return nil
	}
	return Permanent(fmt.Errorf("file name %q is not valid UTF-8, which %s cannot carry: rename the file at the source or with a rename stage: %w", name, who, ErrBadName))
}

// hasDrive reports a Windows drive prefix ("C:"), refused so that names
// stay safe wherever a sink writes them.
func hasDrive(name string) bool {
	return len(name) >= 2 && name[1] == ':' && (name[0]|0x20 >= 'a' && name[0]|0x20 <= 'z')
}

// JoinInside joins dir and a name checked with CleanName, and fails if the
// result is not inside dir.
func JoinInside(dir, name string) (string, error) {
	clean, err := CleanName(name)
	if err != nil {
		return "", err
	}
	full := filepath.Join(dir, filepath.FromSlash(clean))
	rel, err := filepath.Rel(dir, full)
	if err != nil || rel == ".." || strings.HasPrefix(rel, ".."+string(filepath.Separator)) {
		return "", fmt.Errorf("file name %q: escapes the target directory %s: %w", name, dir, ErrBadName)
	}
	return full, nil
}

// ExpandName fills a name template for f. Placeholders:
//
//	{name}  the file's name (with its directories)
//	{base}  the last element of the name
//	{dir}   the directories of the name ("" at the top)
//	{stem}  {base} without its extension
//	{ext}   the extension with its dot (".csv"), or ""
//	{date}  now as 2006-01-02; {time} as 150405; {id} the file's ID
//	{attr.KEY} the file attribute KEY ("" if absent)
//
// Empty placeholders leave no stray slashes: "{dir}/{base}" of a file at the
// top is just its base name. An unknown placeholder or an unclosed brace is
// an error.
func ExpandName(tmpl string, f File, now time.Time) (string, error) {
	var b strings.Builder
	// afterEmpty is set when the last placeholder expanded to nothing: a
	// slash right after it would be stray ("{dir}/x" at the top). Slashes
	// inside values are kept, so "{name}" of "/etc/passwd" stays absolute and
	// is refused by CleanName.
	afterEmpty := false
	literal := func(s string) {
		if afterEmpty && (b.Len() == 0 || strings.HasSuffix(b.String(), "/")) {
			s = strings.TrimPrefix(s, "/")
		}
		b.WriteString(s)
	}
	rest := tmpl
	for {
		i := strings.IndexByte(rest, '{')
		if i < 0 {
			literal(rest)
			break
		}
		literal(rest[:i])
		j := strings.IndexByte(rest[i:], '}')
		if j < 0 {
			return "", fmt.Errorf("name template %q: unclosed {", tmpl)
		}
		key := rest[i+1 : i+j]
		v, err := placeholder(key, f, now)
		if err != nil {
			return "", fmt.Errorf("name template %q: %v", tmpl, err)
		}
		b.WriteString(v)
		afterEmpty = v == ""
		rest = rest[i+j+1:]
	}
	return b.String(), nil
}

// CheckTemplate reports a template error without a file, for config validation.
func CheckTemplate(tmpl string) error {
	_, err := ExpandName(tmpl, File{Name: "x"}, time.Time{})
	return err
}

// CheckNameTemplate is CheckTemplate for a template of file names: it also
// refuses a template whose literal text makes every name unsafe, such as
// "/out/{name}" (absolute) or "../{name}" (leaves the directory), which
// CleanName would refuse for every file. Placeholders count as a plain
// name here, so a name unsafe only for some files is not reported.
func CheckNameTemplate(tmpl string) error {
	if err := CheckTemplate(tmpl); err != nil {
		return err
	}
	var b strings.Builder
	for rest := tmpl; ; {
		i := strings.IndexByte(rest, '{')
		if i < 0 {
			b.WriteString(rest)
			break
		}
		b.WriteString(rest[:i])
		b.WriteString("x")
		rest = rest[i+strings.IndexByte(rest[i:], '}')+1:]
	}
	if _, why := cleanName(b.String()); why != "" {
		return fmt.Errorf("name template %q makes unsafe names (%s): every file would be refused", tmpl, why)
	}
	return nil
}

func placeholder(key string, f File, now time.Time) (string, error) {
	base := path.Base(f.Name)
	ext := path.Ext(base)
	switch key {
	case "name":
		return f.Name, nil
	case "base":
		return base, nil
	case "dir":
		if d := path.Dir(f.Name); d != "." {
			return d, nil
		}
		return "", nil
	case "stem":
		return strings.TrimSuffix(base, ext), nil
	case "ext":
		return ext, nil
	case "date":
		return now.Format("2006-01-02"), nil
	case "time":
		return now.Format("150405"), nil
	case "id":
		return f.ID, nil
	}
	if a, ok := strings.CutPrefix(key, "attr."); ok && a != "" {
		return f.Attrs[a], nil
	}
	return "", fmt.Errorf("unknown placeholder {%s} (known: {name} {base} {dir} {stem} {ext} {date} {time} {id} {attr.KEY})", key)
}

// WithSuffix returns the path p with "-n" before the extension of its last
// element ("in/report-2.csv"); n = 0 returns p. Sources that archive and
// sinks that rename a taken name use it for the names they try.
func WithSuffix(p string, n int) string {
	if n == 0 {
		return p
	}
	i := strings.LastIndexAny(p, "/"+string(filepath.Separator)) + 1
	dir, base := p[:i], p[i:]
	ext := path.Ext(base)
	return dir + strings.TrimSuffix(base, ext) + "-" + strconv.Itoa(n) + ext
}

// TempName fills a sink's temporary name template (such as
// ".{base}.{id}.tmp") for the final base name: {id} is id, and {attr.KEY}
// are f's attributes. The result is one name in the target's directory,
// never the final name itself.
func TempName(tmpl string, f File, base, id string, now time.Time) (string, error) {
	name, err := ExpandName(tmpl, File{ID: id, Name: base, Attrs: f.Attrs}, now)
	switch {
	case err != nil:
		return "", err
	case name == "" || name == "." || name == "..":
		return "", fmt.Errorf("temporary name template %q gives the name %q", tmpl, name)
	case strings.ContainsAny(name, "/\\\x00"):
		return "", fmt.Errorf("temporary name template %q gives %q: it must be one name, without slashes", tmpl, name)
	case name == base:
		return "", fmt.Errorf("temporary name template %q gives the final name %q itself", tmpl, name)
	}
	return name, nil
}
