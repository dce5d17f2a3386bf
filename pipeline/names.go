package pipeline

import (
	"fmt"
	"path"
	"path/filepath"
	"strings"
	"time"
)

// CleanName checks a file name from any source and returns it in clean,
// slash-separated form. Names that are empty, absolute, contain a ".."
// element, NUL bytes or backslashes are rejected with an error wrapping
// ErrBadName that quotes the name.
func CleanName(name string) (string, error) {
	bad := func(why string) (string, error) {
		return "", fmt.Errorf("file name %q: %s: %w", name, why, ErrBadName)
	}
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
	clean := path.Clean(name)
	if clean == "." {
		return bad("names no file")
	}
	if hasDrive(clean) {
		return bad("absolute path")
	}
	return clean, nil
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
