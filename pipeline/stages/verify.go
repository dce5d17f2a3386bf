package stages

import (
	"cmp"
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"io/fs"
	"strings"
	"time"

	"github.com/mftflow/mftflow/internal/discard"
	"github.com/mftflow/mftflow/pipeline"
)

// VerifyConfig sets where a Verify stage finds checksum files and how long
// it waits for them.
type VerifyConfig struct {
	// Sidecar names a file's checksum file at the source: a name relative
	// to the source root in which {name} stands for the file's name there,
	// with its directories. Empty: "{name}.sha256", or "{name}.sha512",
	// "{name}.md5" after Algorithm.
	Sidecar string `config:"sidecar"`
	// Algorithm is "sha256", "sha512" or "md5"; empty takes it from the
	// checksum file (its BSD tag, or the digest's length).
	Algorithm string `config:"algorithm"`
	// Timeout is how long a file waits for a checksum file that is not
	// there yet; 0 does not wait.
	Timeout time.Duration `config:"timeout"`
	// Poll is how often a waiting file looks for its checksum file; 0
	// means every 2 s.
	Poll time.Duration `config:"poll"`
}

// Verify checks each file against its checksum file ("sidecar") from the
// same source. The sidecar is read from the source directly (the source
// item must be a pipeline.SiblingOpener), so a file that arrives before
// its sidecar waits for it without holding up the files behind it in the
// source's order. The content streams through unchanged while it is
// hashed; at the end, in place of io.EOF, the reader fails permanently
// with both digests if they differ, and the engine fails the file. Files
// that are themselves sidecars are dropped (skipped): they go with their
// file, listed as its companion, so the source's after action (delete,
// move) takes them too. It is safe for concurrent use.
type Verify struct {
	prefix, suffix string // of the sidecar's name around {name}
	alg            string
	timeout, poll  time.Duration
}

// ErrChecksumMismatch is wrapped by the error of a file whose content does
// not match its checksum file.
var ErrChecksumMismatch = errors.New("checksum mismatch")

// NewVerify returns the stage; problems are *pipeline.FieldError values.
func NewVerify(cfg VerifyConfig) (*Verify, error) {
	const stage = "verify"
	if cfg.Algorithm != "" && pipeline.NewHash(cfg.Algorithm) == nil {
		return nil, fieldError(stage, "algorithm", "want one of sha256, sha512, md5 (or leave it out to read it from the checksum file), got %q", cfg.Algorithm)
	}
	if cfg.Sidecar == "" {
		cfg.Sidecar = "{name}." + cmp.Or(cfg.Algorithm, "sha256")
	}
	prefix, suffix, ok := strings.Cut(cfg.Sidecar, "{name}")
	switch {
	case !ok || strings.Contains(suffix, "{name}"):
		return nil, fieldError(stage, "sidecar", `%q: want {name} exactly once, for the file's name at the source, as in "{name}.sha256"`, cfg.Sidecar)
	case prefix == "" && suffix == "":
		return nil, fieldError(stage, "sidecar", `%q names the file itself: add a suffix or a directory, as in "{name}.sha256"`, cfg.Sidecar)
	case strings.ContainsAny(cfg.Sidecar, "\n\x00\\") || strings.HasPrefix(prefix, "/") || strings.Contains(cfg.Sidecar, ".."):
		return nil, fieldError(stage, "sidecar", `%q: want a name relative to the source root, without "..", backslashes or control characters`, cfg.Sidecar)
	case prefix != "" && !strings.HasSuffix(prefix, "/"):
		return nil, fieldError(stage, "sidecar", `%q: text before {name} must be a directory ending in "/", as in "sums/{name}.sha256"`, cfg.Sidecar)
	case cfg.Timeout < 0 || cfg.Poll < 0:
		return nil, fieldError(stage, "timeout", "must not be negative")
	}
	return &Verify{prefix: prefix, suffix: suffix, alg: cfg.Algorithm, timeout: cfg.Timeout, poll: cmp.Or(cfg.Poll, 2*time.Second)}, nil
}

// pattern is the sidecar's name template.
func (v *Verify) pattern() string { return v.prefix + "{name}" + v.suffix }

// sidecarOf returns the name of the checksum file of the file called name.
func (v *Verify) sidecarOf(name string) string { return v.prefix + name + v.suffix }

// isSidecar reports whether name is a checksum file's name.
func (v *Verify) isSidecar(name string) bool {
	return len(name) > len(v.prefix)+len(v.suffix) && strings.HasPrefix(name, v.prefix) && strings.HasSuffix(name, v.suffix)
}

// Process waits for f's checksum file, reads it and returns f, with the
// checksum file as its companion, and a reader of the same content that
// checks it at the end.
func (v *Verify) Process(ctx context.Context, f pipeline.File, r io.Reader) (pipeline.File, io.Reader, error) {
	item, _ := pipeline.ItemOf(ctx)
	if item == nil {
		return f, nil, pipeline.Permanent(errors.New("verify: the file comes without its source item, so its checksum file cannot be read; run verify in a flow"))
	}
	name := item.File().Name
	if v.isSidecar(name) {
		return f, nil, fmt.Errorf("a checksum file (verify's sidecar %q): it goes with its file: %w", v.pattern(), pipeline.ErrSkip)
	}
	opener, ok := item.(pipeline.SiblingOpener)
	if !ok {
		return f, nil, pipeline.Permanent(errors.New("verify: this source cannot open a file's checksum file by name; use a source that can (local, s3, sftp, ftps)"))
	}
	want, err := v.expected(ctx, opener, name)
	if err != nil {
		return f, nil, err
	}
	return f.WithCompanion(v.pattern()), &verifyReader{r: r, h: pipeline.NewHash(want.Alg), want: want, name: name, sidecar: v.sidecarOf(name)}, nil
}

// expected waits for the checksum file of the file called name and returns
// its entry for it.
func (v *Verify) expected(ctx context.Context, o pipeline.SiblingOpener, name string) (pipeline.Checksum, error) {
	sidecar := v.sidecarOf(name)
	if err := pipeline.CheckSourceName(sidecar); err != nil {
		return pipeline.Checksum{}, pipeline.Permanent(fmt.Errorf("verify: the checksum file's name: %w", err))
	}
	deadline := time.Now().Add(v.timeout)
	for {
		data, err := readSidecar(ctx, o, sidecar)
		if err == nil {
			return v.entry(data, name, sidecar)
		}
		if !errors.Is(err, fs.ErrNotExist) {
			return pipeline.Checksum{}, fmt.Errorf("verify: reading checksum file %q: %w", sidecar, err)
		}
		if !time.Now().Before(deadline) {
			return pipeline.Checksum{}, pipeline.Permanent(fmt.Errorf("verify: no checksum file %q for %q (waited %s): have the sender put it beside the file, raise verify's timeout, or fix its sidecar pattern; then replay the file", sidecar, name, v.timeout))
		}
		t := time.NewTimer(min(v.poll, time.Until(deadline)))
		select {
		case <-ctx.Done():
			t.Stop()
			return pipeline.Checksum{}, ctx.Err()
		case <-t.C:
		}
	}
}

// maxSidecar bounds a checksum file's size: one line per file is short.
const maxSidecar = 1 << 20

func readSidecar(ctx context.Context, o pipeline.SiblingOpener, name string) ([]byte, error) {
	rc, err := o.OpenSibling(ctx, name)
	if err != nil {
		return nil, err
	}
	defer discard.Close(rc)
	data, err := io.ReadAll(io.LimitReader(rc, maxSidecar+1))
	if err == nil && len(data) > maxSidecar {
		err = pipeline.Permanent(fmt.Errorf("it is larger than %s, too large for a checksum file", pipeline.FormatSize(maxSidecar)))
	}
	return data, err
}

// entry parses a checksum file and returns its entry for name.
func (v *Verify) entry(data []byte, name, sidecar string) (pipeline.Checksum, error) {
	bad := func(err error) (pipeline.Checksum, error) {
		return pipeline.Checksum{}, pipeline.Permanent(fmt.Errorf("verify: checksum file %q: %w", sidecar, err))
	}
	list, err := pipeline.ParseChecksums(data)
	if err != nil {
		return bad(err)
	}
	c, err := pipeline.FindChecksum(list, name)
	if err != nil {
		return bad(err)
	}
	if v.alg != "" && c.Alg != v.alg {
		return bad(fmt.Errorf("it holds a %s digest, but verify's algorithm is %s", c.Alg, v.alg))
	}
	return c, nil
}

// verifyReader passes the content through, hashing it, and fails at the
// end when the digest is not the one expected.
type verifyReader struct {
	r             io.Reader
	h             hash.Hash
	want          pipeline.Checksum
	name, sidecar string
}

func (vr *verifyReader) Read(p []byte) (int, error) {
	n, err := vr.r.Read(p)
	vr.h.Write(p[:n])
	if err == io.EOF {
		if got := hex.EncodeToString(vr.h.Sum(nil)); got != vr.want.Hex {
			return n, pipeline.Permanent(fmt.Errorf("verify: %s of %q is %s, but its checksum file %q says %s: the file changed on its way or the checksum file is for another version; have the sender send both again: %w",
				vr.want.Alg, vr.name, got, vr.sidecar, vr.want.Hex, ErrChecksumMismatch))
		}
	}
	return n, err
}
