package pipeline

import (
	"crypto/md5"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"path"
	"regexp"
	"strings"
)

// NewHash returns a hash for one of Checksums, or nil for another name.
func NewHash(alg string) hash.Hash {
	switch alg {
	case "sha256":
		return sha256.New()
	case "sha512":
		return sha512.New()
	case "md5":
		return md5.New()
	}
	return nil
}

// ChecksumLine returns the line sha256sum (sha512sum, md5sum) prints for a
// file called base with digest sum: "HEX  BASE\n", or, when base holds a
// backslash, a newline or a carriage return, the escaped form coreutils
// gives such names: a leading backslash and \\, \n, \r in the name.
func ChecksumLine(sum, base string) string {
	if !strings.ContainsAny(base, "\\\n\r") {
		return sum + "  " + base + "\n"
	}
	esc := strings.NewReplacer(`\`, `\\`, "\n", `\n`, "\r", `\r`).Replace(base)
	return `\` + sum + "  " + esc + "\n"
}

// Checksum is one entry of a checksum file.
type Checksum struct {
	Alg  string // one of Checksums
	Hex  string // lower-case hex digest
	Name string // the file it is for as written there; "" for a bare digest
}

// ErrNoChecksum is wrapped by FindChecksum when a checksum file has no entry
// for the file.
var ErrNoChecksum = errors.New("no checksum for the file")

// bsdLine is a BSD-style line as `sha256sum --tag`, `shasum --tag` and
// openssl print it: "SHA256 (NAME) = HEX", "SHA2-256(NAME)= HEX".
var bsdLine = regexp.MustCompile(`^(?i)(SHA2?-?256|SHA2?-?512|MD5) ?\((.*)\) ?= ?([0-9a-f]+)$`)

// ParseChecksums reads a checksum file: lines as sha256sum, sha512sum and
// md5sum print them ("HEX  NAME", "HEX *NAME", with coreutils escapes),
// BSD-style lines ("SHA256 (NAME) = HEX") or a bare digest. The algorithm
// comes from the tag, or from the digest's length. Empty lines and lines
// starting with "#" are skipped. An error names the line and says what
// was expected.
func ParseChecksums(data []byte) ([]Checksum, error) {
	var out []Checksum
	for i, line := range strings.Split(string(data), "\n") {
		line = strings.TrimSuffix(line, "\r")
		if strings.TrimSpace(line) == "" || strings.HasPrefix(line, "#") {
			continue
		}
		c, err := parseChecksumLine(line)
		if err != nil {
			return nil, fmt.Errorf("line %d: %w", i+1, err)
		}
		out = append(out, c)
	}
	if len(out) == 0 {
		return nil, errors.New(`it holds no checksum: want "HEX  NAME" as sha256sum prints it, "SHA256 (NAME) = HEX", or a bare HEX`)
	}
	return out, nil
}

func parseChecksumLine(line string) (Checksum, error) {
	if m := bsdLine.FindStringSubmatch(line); m != nil {
		alg := "md5"
		if tag := strings.ToLower(m[1]); strings.HasSuffix(tag, "256") {
			alg = "sha256"
		} else if strings.HasSuffix(tag, "512") {
			alg = "sha512"
		}
		return checksumOf(alg, m[3], m[2])
	}
	escaped := strings.HasPrefix(line, `\`)
	if escaped {
		line = line[1:]
	}
	sum, name, found := strings.Cut(line, " ")
	if !found {
		return checksumOf("", strings.TrimSpace(sum), "")
	}
	if name == "" || (name[0] != ' ' && name[0] != '*') {
		return Checksum{}, fmt.Errorf(`%q is not a checksum line: want "HEX  NAME" (two spaces) as sha256sum prints it, "SHA256 (NAME) = HEX", or a bare HEX`, clip(line))
	}
	name = name[1:]
	if escaped {
		var err error
		if name, err = unescapeChecksumName(name); err != nil {
			return Checksum{}, err
		}
	}
	return checksumOf("", sum, name)
}

// checksumOf checks the digest and takes the algorithm from its length when
// alg is "".
func checksumOf(alg, sum, name string) (Checksum, error) {
	if _, err := hex.DecodeString(sum); err != nil || sum == "" {
		return Checksum{}, fmt.Errorf("%q is not a hex digest", clip(sum))
	}
	byLen := map[int]string{32: "md5", 64: "sha256", 128: "sha512"}[len(sum)]
	switch {
	case alg == "" && byLen == "":
		return Checksum{}, fmt.Errorf("a digest of %d hex digits is none of md5 (32), sha256 (64) or sha512 (128)", len(sum))
	case alg == "":
		alg = byLen
	case alg != byLen:
		return Checksum{}, fmt.Errorf("%s digest of %d hex digits: %s has %d", alg, len(sum), alg, 2*NewHash(alg).Size())
	}
	return Checksum{Alg: alg, Hex: strings.ToLower(sum), Name: name}, nil
}

func unescapeChecksumName(s string) (string, error) {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] != '\\' {
			b.WriteByte(s[i])
			continue
		}
		if i++; i == len(s) {
			return "", errors.New(`the name ends in a lone "\"`)
		}
		switch s[i] {
		case '\\':
			b.WriteByte('\\')
		case 'n':
			b.WriteByte('\n')
		case 'r':
			b.WriteByte('\r')
		default:
			return "", fmt.Errorf(`the name holds the unknown escape "\%c"`, s[i])
		}
	}
	return b.String(), nil
}

// FindChecksum returns the entry of list for the file called name (slash
// separated): the one written for name, for its base name, or for a path
// ending in it; a list of one bare digest is for any file. A missing entry
// wraps ErrNoChecksum and names the files the list is for.
func FindChecksum(list []Checksum, name string) (Checksum, error) {
	base := path.Base(name)
	for _, c := range list {
		if c.Name == name || path.Base(strings.TrimPrefix(c.Name, "./")) == base {
			return c, nil
		}
	}
	if len(list) == 1 && list[0].Name == "" {
		return list[0], nil
	}
	var names []string
	for i, c := range list {
		if i == 3 {
			names = append(names, "...")
			break
		}
		names = append(names, fmt.Sprintf("%q", c.Name))
	}
	return Checksum{}, fmt.Errorf("%w %q (it lists %s)", ErrNoChecksum, base, strings.Join(names, ", "))
}

// clip shortens s for an error message.
func clip(s string) string {
	if len(s) > 80 {
		return s[:77] + "..."
	}
	return s
}
