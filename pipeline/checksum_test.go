package pipeline_test

import (
	"crypto/md5"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/hex"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/mftflow/mftflow/pipeline"
)

var (
	sumA   = strings.Repeat("ab", 32)
	sumMD5 = strings.Repeat("0f", 16)
	sum512 = strings.Repeat("c1", 64)
)

func TestParseChecksums(t *testing.T) {
	for _, c := range []struct {
		name, in string
		want     []pipeline.Checksum
	}{
		{"sha256sum", sumA + "  a.csv\n", []pipeline.Checksum{{Alg: "sha256", Hex: sumA, Name: "a.csv"}}},
		{"binary mode", sumA + " *a.csv\n", []pipeline.Checksum{{Alg: "sha256", Hex: sumA, Name: "a.csv"}}},
		{"upper-case hex, CRLF", strings.ToUpper(sumA) + "  a.csv\r\n", []pipeline.Checksum{{Alg: "sha256", Hex: sumA, Name: "a.csv"}}},
		{"md5sum", sumMD5 + "  a.csv", []pipeline.Checksum{{Alg: "md5", Hex: sumMD5, Name: "a.csv"}}},
		{"sha512sum", sum512 + "  a.csv", []pipeline.Checksum{{Alg: "sha512", Hex: sum512, Name: "a.csv"}}},
		{"bare digest", sumA + "\n", []pipeline.Checksum{{Alg: "sha256", Hex: sumA}}},
		{"name with spaces", sumA + "  my  file .csv", []pipeline.Checksum{{Alg: "sha256", Hex: sumA, Name: "my  file .csv"}}},
		{"escaped name", `\` + sumA + `  a\nb\\c.csv`, []pipeline.Checksum{{Alg: "sha256", Hex: sumA, Name: "a\nb\\c.csv"}}},
		{"BSD tag", "SHA256 (a.csv) = " + sumA, []pipeline.Checksum{{Alg: "sha256", Hex: sumA, Name: "a.csv"}}},
		{"openssl", "SHA2-256(a.csv)= " + sumA, []pipeline.Checksum{{Alg: "sha256", Hex: sumA, Name: "a.csv"}}},
		{"BSD md5", "MD5 (a (1).csv) = " + sumMD5, []pipeline.Checksum{{Alg: "md5", Hex: sumMD5, Name: "a (1).csv"}}},
		{"BSD sha512", "SHA512 (a.csv) = " + sum512, []pipeline.Checksum{{Alg: "sha512", Hex: sum512, Name: "a.csv"}}},
		{"comments and blank lines", "# made by hand\n\n" + sumA + "  a.csv\n" + sumMD5 + "  b.csv\n", []pipeline.Checksum{
			{Alg: "sha256", Hex: sumA, Name: "a.csv"}, {Alg: "md5", Hex: sumMD5, Name: "b.csv"}}},
	} {
		t.Run(c.name, func(t *testing.T) {
			got, err := pipeline.ParseChecksums([]byte(c.in))
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(c.want, got); diff != "" {
				t.Error(diff)
			}
		})
	}
}

func TestParseChecksumsErrors(t *testing.T) {
	for _, c := range []struct{ in, want string }{
		{"", `it holds no checksum: want "HEX  NAME" as sha256sum prints it, "SHA256 (NAME) = HEX", or a bare HEX`},
		{"\n# nothing\n", `it holds no checksum: want "HEX  NAME" as sha256sum prints it, "SHA256 (NAME) = HEX", or a bare HEX`},
		{sumA + " a.csv", `line 1: "` + sumA + ` a.csv" is not a checksum line: want "HEX  NAME" (two spaces) as sha256sum prints it, "SHA256 (NAME) = HEX", or a bare HEX`},
		{"\n" + "xyz  a.csv", `line 2: "xyz" is not a hex digest`},
		{"abcd  a.csv", `line 1: a digest of 4 hex digits is none of md5 (32), sha256 (64) or sha512 (128)`},
		{"SHA512 (a.csv) = " + sumA, `line 1: sha512 digest of 64 hex digits: sha512 has 128`},
		{`\` + sumA + `  a\tb`, `line 1: the name holds the unknown escape "\t"`},
		{`\` + sumA + `  a\`, `line 1: the name ends in a lone "\"`},
	} {
		_, err := pipeline.ParseChecksums([]byte(c.in))
		if err == nil || err.Error() != c.want {
			t.Errorf("ParseChecksums(%q):\n got %v\nwant %s", c.in, err, c.want)
		}
	}
}

func TestFindChecksum(t *testing.T) {
	list := []pipeline.Checksum{{Alg: "sha256", Hex: sumA, Name: "a.csv"}, {Alg: "sha256", Hex: sumA, Name: "/data/out/b.csv"}, {Alg: "md5", Hex: sumMD5, Name: "./c.csv"}}
	for name, want := range map[string]string{"a.csv": "a.csv", "in/a.csv": "a.csv", "b.csv": "/data/out/b.csv", "c.csv": "./c.csv"} {
		if got, err := pipeline.FindChecksum(list, name); err != nil || got.Name != want {
			t.Errorf("FindChecksum(%q) = %+v, %v; want the entry for %q", name, got, err, want)
		}
	}
	_, err := pipeline.FindChecksum(list, "in/d.csv")
	if want := `no checksum for the file "d.csv" (it lists "a.csv", "/data/out/b.csv", "./c.csv")`; err == nil || err.Error() != want || !errors.Is(err, pipeline.ErrNoChecksum) {
		t.Errorf("got %v, want %s", err, want)
	}
	if got, err := pipeline.FindChecksum([]pipeline.Checksum{{Alg: "md5", Hex: sumMD5}}, "any.bin"); err != nil || got.Hex != sumMD5 {
		t.Errorf("a bare digest: %+v, %v", got, err)
	}
}

// TestChecksumLineIsWhatCoreutilsPrints compares ChecksumLine with
// sha256sum, md5sum and sha512sum for names that need escapes, and reads
// their lines back.
func TestChecksumLineIsWhatCoreutilsPrints(t *testing.T) {
	dir := t.TempDir()
	for _, name := range []string{"plain.csv", "two  spaces", "new\nline", `back\slash`, "ünï €.txt", "-dash", "\xff\xfe raw"} {
		data := []byte("content of " + name)
		if err := os.WriteFile(filepath.Join(dir, name), data, 0o644); err != nil {
			t.Fatal(err)
		}
		s256, s512, m5 := sha256.Sum256(data), sha512.Sum512(data), md5.Sum(data)
		for tool, sum := range map[string][]byte{"sha256sum": s256[:], "sha512sum": s512[:], "md5sum": m5[:]} {
			if _, err := exec.LookPath(tool); err != nil {
				t.Skipf("%s (coreutils) not found", tool)
			}
			cmd := exec.Command(tool, "--", name)
			cmd.Dir = dir
			out, err := cmd.Output()
			if err != nil {
				t.Fatalf("%s %q: %v", tool, name, err)
			}
			line := pipeline.ChecksumLine(hex.EncodeToString(sum), name)
			if string(out) != line {
				t.Errorf("%s %q printed %q, ChecksumLine gives %q", tool, name, out, line)
			}
			list, err := pipeline.ParseChecksums(out)
			if err != nil {
				t.Fatalf("reading %s's line for %q: %v", tool, name, err)
			}
			if got, err := pipeline.FindChecksum(list, name); err != nil || got.Hex != hex.EncodeToString(sum) || got.Name != name {
				t.Errorf("%s's line for %q read as %+v, %v", tool, name, got, err)
			}
		}
	}
}

func TestCompanions(t *testing.T) {
	f := pipeline.File{Name: "a.csv"}.WithCompanion("{name}.sha256").WithCompanion("sums/{name}.md5").WithCompanion("{name}.sha256")
	o := pipeline.Outcome{Attrs: f.Attrs}
	got, err := pipeline.Companions(o, "in/\xffa.csv")
	if want := []string{"in/\xffa.csv.sha256", "sums/in/\xffa.csv.md5"}; err != nil || !cmp.Equal(got, want) {
		t.Errorf("Companions = %q, %v; want %q", got, err, want)
	}
	for pattern, want := range map[string]string{
		"{name}":       `companion "{name}" of "a.csv" names the file itself`,
		"../{name}.x":  `companion "../{name}.x" of "a.csv": file name "../a.csv.x": contains ".." and would escape the target directory: unsafe file name`,
		"/abs/{name}":  `companion "/abs/{name}" of "a.csv": file name "/abs/a.csv": absolute path: unsafe file name`,
		"x//{name}.md": `companion "x//{name}.md" of "a.csv": file name "x//a.csv.md": not in clean form (it would be written as "x/a.csv.md", which may be another file's name): rename it at the source: unsafe file name`,
	} {
		_, err := pipeline.Companions(pipeline.Outcome{Attrs: map[string]string{pipeline.AttrCompanions: pattern}}, "a.csv")
		if err == nil || err.Error() != want || !pipeline.IsPermanent(err) {
			t.Errorf("%q: got %v\nwant %s", pattern, err, want)
		}
	}
	if got, err := pipeline.Companions(pipeline.Outcome{}, "a.csv"); got != nil || err != nil {
		t.Errorf("no companions: %q, %v", got, err)
	}
}
