package pipeline_test

import (
	"errors"
	"path"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/mftflow/mftflow/pipeline"
)

func FuzzCleanName(f *testing.F) {
	for _, s := range []string{
		"ok/name.txt", "../x", "/etc/passwd", "a/../../b", "a\x00b", `a\b`, "", ".", `C:\x`, "C:x",
		"./a//b/", "...", "a/./b/..", "//x", "./", "ü/名前", "x/C:/y",
	} {
		f.Add(s)
	}
	const dir = "/srv/data"
	f.Fuzz(func(t *testing.T, name string) {
		clean, err := pipeline.CleanName(name)
		if err != nil {
			if !errors.Is(err, pipeline.ErrBadName) {
				t.Fatalf("CleanName(%q): %v does not wrap ErrBadName", name, err)
			}
			if !strings.HasPrefix(err.Error(), "file name "+strconv.Quote(name)+": ") {
				t.Fatalf("CleanName(%q): %v does not quote the name", name, err)
			}
			if _, jerr := pipeline.JoinInside(dir, name); jerr == nil {
				t.Fatalf("JoinInside accepts %q, which CleanName rejects", name)
			}
			return
		}
		switch {
		case clean == "" || clean == ".":
			t.Fatalf("CleanName(%q) = %q: names no file", name, clean)
		case strings.ContainsRune(clean, 0):
			t.Fatalf("CleanName(%q) = %q: has a NUL byte", name, clean)
		case strings.ContainsRune(clean, '\\'):
			t.Fatalf("CleanName(%q) = %q: has a backslash", name, clean)
		case strings.HasPrefix(clean, "/") || filepath.IsAbs(clean) || path.IsAbs(clean):
			t.Fatalf("CleanName(%q) = %q: absolute", name, clean)
		case path.Clean(clean) != clean:
			t.Fatalf("CleanName(%q) = %q: not clean", name, clean)
		}
		for _, el := range strings.Split(clean, "/") {
			if el == ".." {
				t.Fatalf("CleanName(%q) = %q: has a .. element", name, clean)
			}
		}
		for _, d := range []string{dir, "rel/dir"} {
			full, err := pipeline.JoinInside(d, name)
			if err != nil {
				t.Fatalf("JoinInside(%q, %q): %v, though CleanName accepts it", d, name, err)
			}
			if !strings.HasPrefix(full, filepath.FromSlash(d)+string(filepath.Separator)) {
				t.Fatalf("JoinInside(%q, %q) = %q: outside the directory", d, name, full)
			}
			if rel, err := filepath.Rel(d, full); err != nil || filepath.ToSlash(rel) != clean {
				t.Fatalf("JoinInside(%q, %q) = %q: relative path %q, %v; want %q", d, name, full, rel, err, clean)
			}
		}
	})
}

func FuzzExpandName(f *testing.F) {
	for _, s := range []string{
		"{name}", "{dir}/{date}/{stem}-{attr.code}{ext}", "{nope}", "{name", "a}b", "{}", "{attr.}",
		"{{name}}", "/abs/{dir}//{base}", "plain", "", "{attr.a}{attr.b}", "{id}_{time}",
	} {
		f.Add(s, "in/report.csv", "code", "X1")
	}
	f.Add("{attr.k}", "a", "k", "/x//y/")
	now := time.Date(2024, 3, 5, 14, 7, 9, 0, time.UTC)
	f.Fuzz(func(t *testing.T, tmpl, name, key, value string) {
		file := pipeline.File{ID: "id", Name: name, Attrs: map[string]string{key: value}}
		out, err := pipeline.ExpandName(tmpl, file, now)
		// Whether a template is valid does not depend on the file.
		if cerr := pipeline.CheckTemplate(tmpl); (cerr == nil) != (err == nil) {
			t.Fatalf("ExpandName(%q) error %v, but CheckTemplate error %v", tmpl, err, cerr)
		}
		if err != nil {
			if out != "" || !strings.HasPrefix(err.Error(), "name template "+strconv.Quote(tmpl)+": ") {
				t.Fatalf("ExpandName(%q) = %q, %v", tmpl, out, err)
			}
			return
		}
		// Slashes come only from the template and the values: an empty
		// placeholder never leaves a leading one behind.
		if strings.HasPrefix(out, "/") && !strings.HasPrefix(tmpl, "/") && !strings.HasPrefix(tmpl, "{") {
			t.Fatalf("ExpandName(%q) = %q: absolute from a relative template", tmpl, out)
		}
		if !strings.Contains(tmpl, "{") {
			want := tmpl
			for strings.Contains(want, "//") {
				want = strings.ReplaceAll(want, "//", "/")
			}
			if out != want {
				t.Fatalf("ExpandName(%q) = %q, want the template itself, %q", tmpl, out, want)
			}
		}
	})
}

func FuzzParseSize(f *testing.F) {
	for _, s := range []string{
		"0", "1048576", "1KiB", "1.5MiB", "5MB", " 64 k ", "1e3", "-1", "", ".", "1.2.3", "8388607TiB",
		"9223372036854775807", "0.5", "1 K i B", "NaN",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		n, err := pipeline.ParseSize(s)
		if err != nil {
			if n != 0 || !strings.HasPrefix(err.Error(), "invalid size "+strconv.Quote(s)+": ") {
				t.Fatalf("ParseSize(%q) = %d, %v", s, n, err)
			}
			return
		}
		if n < 0 {
			t.Fatalf("ParseSize(%q) = %d: negative", s, n)
		}
		// Whole numbers up to 2^53 go through a float64 exactly.
		if d := strings.TrimSpace(s); d != "" && strings.Trim(d, "0123456789") == "" {
			if want, perr := strconv.ParseInt(d, 10, 64); perr == nil && want <= 1<<53 && n != want {
				t.Fatalf("ParseSize(%q) = %d, want %d", s, n, want)
			}
		}
		if back, err := pipeline.ParseSize(strconv.FormatInt(n, 10)); n <= 1<<53 && (err != nil || back != n) {
			t.Fatalf("ParseSize(%d) = %d, %v", n, back, err)
		}
		if fs := pipeline.FormatSize(n); !strings.HasSuffix(fs, "B") {
			t.Fatalf("FormatSize(%d) = %q", n, fs)
		}
	})
}

// FuzzParseChecksums: any bytes parse or fail with an error, and what
// parses is a digest of the algorithm's length.
func FuzzParseChecksums(f *testing.F) {
	f.Add([]byte(strings.Repeat("ab", 32) + "  a.csv\n"))
	f.Add([]byte(`\` + strings.Repeat("ab", 16) + `  a\nb`))
	f.Add([]byte("SHA512 (x) = " + strings.Repeat("0", 128)))
	f.Fuzz(func(t *testing.T, data []byte) {
		list, err := pipeline.ParseChecksums(data)
		if err != nil {
			return
		}
		for _, c := range list {
			if h := pipeline.NewHash(c.Alg); h == nil || len(c.Hex) != 2*h.Size() {
				t.Fatalf("%q gave %+v", data, c)
			}
		}
	})
}

// FuzzChecksumLine: the line written for any name reads back as that name.
func FuzzChecksumLine(f *testing.F) {
	for _, s := range []string{"a.csv", "new\nline", `back\slash`, " lead", "trail\r", "\xff"} {
		f.Add(s)
	}
	sum := strings.Repeat("ab", 32)
	f.Fuzz(func(t *testing.T, name string) {
		if name == "" {
			return
		}
		line := pipeline.ChecksumLine(sum, name)
		list, err := pipeline.ParseChecksums([]byte(line))
		if err != nil || len(list) != 1 || list[0].Name != name || list[0].Hex != sum {
			t.Fatalf("ChecksumLine(%q) = %q read back as %+v, %v", name, line, list, err)
		}
	})
}

// FuzzExpectationBy checks that the By parser never panics, that its
// errors are *ExpectErrors quoting the value, and that the deadlines of a
// By it accepts move forward and fall on the minute.
func FuzzExpectationBy(f *testing.F) {
	for _, s := range []string{
		"Mon-Fri 06:00", "daily 06:00", "06:00", "Sat,Sun 09:30", "weekdays 24:00", "Fri-Mon 00:00",
		"cron: 0 6 * * 1-5", "cron: @daily", "cron: */5 * * * *", "cron: @every 1h", "Mon-Fry 06:00",
		"Mon 6:0", "cron:", "", " ", "Mon,, 06:00", "Mon-Fri 06:00 Europe/Berlin", "cron: 0 6 30 2 *",
	} {
		f.Add(s)
	}
	start := time.Date(2026, 3, 28, 23, 59, 0, 0, time.UTC)
	f.Fuzz(func(t *testing.T, by string) {
		d, err := pipeline.Expectation{Files: "*", By: by, TimeZone: "Europe/Berlin"}.Deadlines()
		if err != nil {
			var xe *pipeline.ExpectError
			if !errors.As(err, &xe) || xe.Field != "by" {
				t.Fatalf("By %q: %v is not an ExpectError about by", by, err)
			}
			if strings.TrimSpace(by) != "" && !strings.Contains(err.Error(), strconv.Quote(by)) {
				t.Fatalf("By %q: %v does not quote it", by, err)
			}
			return
		}
		at := start
		for range 5 {
			next := d.Next(at)
			if next.IsZero() {
				return
			}
			if !next.After(at) || next.Second() != 0 || next.Nanosecond() != 0 {
				t.Fatalf("By %q: Next(%v) = %v", by, at, next)
			}
			at = next
		}
	})
}
