package local

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"runtime"
	"strings"
	"sync"
	"time"

	"github.com/mftflow/mftflow/internal/discard"
	"github.com/mftflow/mftflow/pipeline"
)

// SinkConfig configures a Sink. Its fields mirror the "local" sink's config
// fields; zero values mean the defaults.
type SinkConfig struct {
	// Path is the directory to write to; created if missing. Required.
	Path string `config:"path"`
	// Name is the name template relative to Path; "" means "{name}".
	Name string `config:"name"`
	// Overwrite is what to do when the target exists: OverwriteReplace (the
	// default for ""), OverwriteSkip, OverwriteFail or OverwriteRename.
	Overwrite string `config:"overwrite"`
	// Fsync flushes parts, the final file and its directories to stable
	// storage before Commit returns. Without it, Flush does that for every
	// file committed so far, at once (the engine calls it before a source
	// removes a file).
	Fsync bool `config:"fsync"`
	// PartSize is the part size in bytes; 0 means DefaultPartSize.
	PartSize int64 `config:"part_size"`
}

// Sink writes files into a local directory. Each file is written into a
// hidden temporary file next to its target, part by part with WriteAt, and
// published under its name by Commit. It implements pipeline.Sink and
// pipeline.Flusher.
type Sink struct {
	dir string // absolute
	cfg SinkConfig
	now func() time.Time

	dur     *durability // notes commits for Flush
	flushes *flushGroup // runs dur.sync for Flush
}

// NewSink checks c, creates the directory and returns a Sink.
func NewSink(c SinkConfig) (*Sink, error) {
	bad := func(field, format string, args ...any) error {
		return &pipeline.FieldError{Connector: "local", Field: field, Err: fmt.Errorf(format, args...)}
	}
	if c.Path == "" {
		return nil, bad("path", "required field is missing")
	}
	dir, err := filepath.Abs(c.Path)
	if err != nil {
		return nil, bad("path", "%v", err)
	}
	if c.Name == "" {
		c.Name = "{name}"
	}
	if err := pipeline.CheckTemplate(c.Name); err != nil {
		return nil, bad("name", "%w", err)
	}
	switch c.Overwrite {
	case "":
		c.Overwrite = OverwriteReplace
	case OverwriteReplace, OverwriteSkip, OverwriteFail, OverwriteRename:
	default:
		return nil, bad("overwrite", "want one of replace, skip, fail, rename, got %q", c.Overwrite)
	}
	if c.PartSize < 0 {
		return nil, bad("part_size", "must not be negative")
	}
	if c.PartSize == 0 {
		c.PartSize = DefaultPartSize
	}
	if err := mkdirAll(dir, c.Fsync); err != nil {
		return nil, bad("path", "creating the directory: %w", err)
	}
	d := newDurability(dir)
	return &Sink{dir: dir, cfg: c, now: time.Now, dur: d, flushes: newFlushGroup(d.sync)}, nil
}

// mkdirAll creates dir and its missing parents and, with fsync, flushes the
// parent of each directory it created, so that they survive a power cut.
func mkdirAll(dir string, fsync bool) error {
	var created []string
	for d := dir; ; d = filepath.Dir(d) {
		if _, err := os.Lstat(d); err == nil || filepath.Dir(d) == d {
			break
		}
		created = append(created, d)
	}
	if err := os.MkdirAll(dir, 0o777); err != nil {
		return err
	}
	if !fsync {
		return nil
	}
	for _, d := range created {
		if err := syncDir(filepath.Dir(d)); err != nil {
			return err
		}
	}
	return nil
}

// Open starts writing f, or resumes the upload that produced resume (from
// Upload.State). It fails with an error wrapping pipeline.ErrBadName if the
// expanded name would leave the directory, wrapping pipeline.ErrSkip or
// pipeline.ErrExists if the target exists and the overwrite policy is skip or
// fail. Open is safe for concurrent use.
func (s *Sink) Open(ctx context.Context, f pipeline.File, resume []byte) (pipeline.Upload, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if _, err := pipeline.CleanName(f.Name); err != nil {
		return nil, err // refused whatever the template would make of it
	}
	if len(resume) > 0 {
		u, err := s.resume(f, resume)
		if err != nil {
			return nil, err
		}
		return u, nil
	}
	target, err := s.target(f)
	if err != nil {
		return nil, err
	}
	if info, err := os.Lstat(target); err == nil {
		if info.IsDir() {
			return nil, pipeline.Permanent(fmt.Errorf("writing %q to %s: the target is a directory", f.Name, target))
		}
		if err := pipeline.TargetExists(s.cfg.Overwrite, f.Name, target); err != nil {
			return nil, err
		}
	} else if !errors.Is(err, fs.ErrNotExist) {
		return nil, fsError(fmt.Errorf("writing %q: checking %s: %w", f.Name, target, err))
	}
	dir := filepath.Dir(target)
	if err := os.MkdirAll(dir, 0o777); err != nil {
		return nil, fsError(fmt.Errorf("writing %q: creating directory %s: %w", f.Name, dir, err))
	}
	temp := filepath.Join(dir, tempName(f.ID, target, false))
	u, err := s.start(f, target, temp, os.O_TRUNC, false)
	if err != nil {
		return nil, err
	}
	return u, nil
}

// target expands the name template for f and joins it to the directory.
func (s *Sink) target(f pipeline.File) (string, error) {
	name, err := pipeline.ExpandName(s.cfg.Name, f, s.now())
	if err != nil {
		return "", pipeline.Permanent(fmt.Errorf("naming %q: %w", f.Name, err))
	}
	return pipeline.JoinInside(s.dir, name)
}

// start opens the temporary file and returns the upload. lost says that
// parts the engine believes written are not in it.
func (s *Sink) start(f pipeline.File, target, temp string, flag int, lost bool) (*upload, error) {
	fh, err := os.OpenFile(temp, os.O_RDWR|os.O_CREATE|flag, 0o666)
	if err != nil {
		return nil, fsError(fmt.Errorf("writing %q: creating temporary file %s: %w", f.Name, temp, err))
	}
	if s.cfg.Fsync {
		if err := syncDir(filepath.Dir(temp)); err != nil {
			discard.Close(fh)
			_ = os.Remove(temp) // nothing was written to it yet
			return nil, fsError(fmt.Errorf("writing %q: %w", f.Name, err))
		}
	}
	parts := pipeline.NewTempFileParts(pipeline.TempFileState{Lost: lost})
	return &upload{sink: s, name: f.Name, target: target, temp: temp, file: fh, parts: parts}, nil
}

// resumeState is what Upload.State returns, as JSON. The paths are kept as
// bytes (base64 in JSON): as strings, JSON would replace the bytes of a name
// that is not UTF-8, and a resumed upload would publish the file under
// another name. Temp and Target are read from states written before.
type resumeState struct {
	TempRaw   []byte `json:"temp_raw,omitempty"`
	TargetRaw []byte `json:"target_raw,omitempty"`
	Temp      string `json:"temp,omitempty"`
	Target    string `json:"target,omitempty"`
	// Whether the temporary file was recreated after a restart, and what
	// it holds then.
	pipeline.TempFileState
}

// resume reopens the temporary file named by state. The target recorded at
// the first Open is kept, so a template with {date} does not change the name
// half-way. When the state is unusable or the temporary file vanished, a new
// one is started and the upload remembers that earlier parts are lost, so
// Commit refuses to publish a file with holes.
func (s *Sink) resume(f pipeline.File, state []byte) (*upload, error) {
	var st resumeState
	if err := json.Unmarshal(state, &st); err != nil {
		st = resumeState{Temp: string(state)} // a bare path
	}
	if st.TempRaw != nil {
		st.Temp, st.Target = string(st.TempRaw), string(st.TargetRaw)
	}
	target := st.Target
	if !s.inside(target) {
		t, err := s.target(f)
		if err != nil {
			return nil, err
		}
		target = t
	}
	temp := filepath.Clean(st.Temp)
	base := filepath.Base(temp)
	valid := filepath.IsAbs(temp) && filepath.Dir(temp) == filepath.Dir(target) &&
		strings.HasPrefix(base, ".mftflow-") && strings.HasSuffix(base, ".tmp")
	if valid {
		fh, err := os.OpenFile(temp, os.O_RDWR, 0)
		if err == nil {
			parts := pipeline.NewTempFileParts(st.TempFileState)
			return &upload{sink: s, name: f.Name, target: target, temp: temp, file: fh, parts: parts}, nil
		}
		if !errors.Is(err, fs.ErrNotExist) {
			return nil, fsError(fmt.Errorf("resuming %q: opening temporary file %s: %w", f.Name, temp, err))
		}
	}
	// The parts written before are gone. Start a temporary file under a new
	// name, so that resuming from the old state again finds nothing either.
	dir := filepath.Dir(target)
	if err := os.MkdirAll(dir, 0o777); err != nil {
		return nil, fsError(fmt.Errorf("resuming %q: creating directory %s: %w", f.Name, dir, err))
	}
	prefix := strings.TrimSuffix(tempName(f.ID, target, false), ".tmp")
	if old, err := filepath.Glob(filepath.Join(dir, globEscape(prefix)+"*.tmp")); err == nil {
		for _, p := range old {
			_ = os.Remove(p) // earlier restarts of this same file and target; a survivor only takes space
		}
	}
	return s.start(f, target, filepath.Join(dir, tempName(f.ID, target, true)), os.O_EXCL, true)
}

// inside reports whether p is a file path inside the sink's directory.
func (s *Sink) inside(p string) bool {
	if p == "" || !filepath.IsAbs(p) {
		return false
	}
	rel, err := filepath.Rel(s.dir, filepath.Clean(p))
	return err == nil && rel != "." && rel != ".." && !strings.HasPrefix(rel, ".."+string(filepath.Separator))
}

func globEscape(s string) string {
	r := strings.NewReplacer(`*`, `\*`, `?`, `\?`, `[`, `\[`, `\`, `\\`)
	if runtime.GOOS == "windows" {
		return s // no escaping there; IDs are hex anyway
	}
	return r.Replace(s)
}

var safeID = regexp.MustCompile(`^[0-9A-Za-z_-]{1,64}$`)

// tempName is the hidden name of the temporary file for a file ID and target:
// ".mftflow-<id>-<hash of target>.tmp". The hash keeps two sinks writing the
// same file to different names in one directory apart. fresh adds a random
// part, for a restart after the temporary file was lost.
func tempName(id, target string, fresh bool) string {
	switch {
	case id == "":
		id = randomHex(8)
	case !safeID.MatchString(id):
		sum := sha256.Sum256([]byte(id))
		id = hex.EncodeToString(sum[:8])
	}
	sum := sha256.Sum256([]byte(target))
	name := ".mftflow-" + id + "-" + hex.EncodeToString(sum[:4])
	if fresh {
		name += "-" + randomHex(4)
	}
	return name + ".tmp"
}

func randomHex(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return hex.EncodeToString(b)
}

// Close does nothing: every upload holds its own file.
func (s *Sink) Close() error { return nil }

// upload is one file being written.
type upload struct {
	sink   *Sink
	name   string // the file's name, for errors
	target string
	temp   string

	// mu guards the fields below. WritePart holds it only to fetch the
	// file, so Abort never waits for a stalled part reader.
	mu   sync.Mutex
	file *os.File // nil once closed
	end  pipeline.UploadEnd

	parts    *pipeline.TempFileParts // whether parts written before a restart are gone
	location string                  // where Commit published the file
}

func (u *upload) Plan() pipeline.PartPlan {
	return pipeline.PartPlan{PartSize: u.sink.cfg.PartSize}
}

// WritePart writes p.Size bytes from r at p.Offset of the temporary file. It
// is safe for concurrent use and idempotent. With fsync the part is on stable
// storage when it returns. r yielding fewer than p.Size bytes is an error.
func (u *upload) WritePart(ctx context.Context, p pipeline.Part, r io.Reader) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	u.mu.Lock()
	f := u.file
	finished, _ := u.end.Finished()
	u.mu.Unlock()
	if err := pipeline.CheckPart(p, u.name, u.target, finished || f == nil); err != nil {
		return err
	}
	if err := copyAt(ctx, f, p.Offset, r, p.Size); err != nil {
		return fmt.Errorf("writing part %d of %q to %s: %w", p.Number, u.name, u.temp, err)
	}
	if u.sink.cfg.Fsync {
		if err := f.Sync(); err != nil {
			return fmt.Errorf("writing part %d of %q: flushing %s: %w", p.Number, u.name, u.temp, err)
		}
	}
	u.parts.Wrote(p.Offset, p.Size)
	return nil
}

// copyAt writes exactly n bytes from r to f at off (see pipeline.CopyAt).
// Errors of f that no retry mends are permanent.
func copyAt(ctx context.Context, f *os.File, off int64, r io.Reader, n int64) error {
	err := pipeline.CopyAt(ctx, f, off, r, n)
	var rerr *pipeline.PartReadError
	if err != nil && !errors.As(err, &rerr) {
		return fsError(err)
	}
	return err
}

// State returns the resume token: JSON naming the temporary file and the
// target. It is safe for concurrent use with WritePart.
func (u *upload) State() []byte {
	st := resumeState{TempRaw: []byte(u.temp), TargetRaw: []byte(u.target), TempFileState: u.parts.State()}
	b, err := json.Marshal(st)
	if err != nil {
		return []byte(u.temp)
	}
	return b
}

// Commit cuts the temporary file to final.Size, flushes it if configured and
// publishes it under the target name according to the overwrite policy. It
// is idempotent: when an earlier Commit (maybe in a process that crashed)
// already published the file, it returns nil. It fails when parts are
// missing rather than publish a file with holes.
func (u *upload) Commit(ctx context.Context, final pipeline.File) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	u.mu.Lock()
	defer u.mu.Unlock()
	if finished, err := u.end.Finished(); finished {
		return err
	}
	err := u.commit(final)
	if u.end.Settle(err) {
		u.discard()
	}
	return err
}

func (u *upload) commit(final pipeline.File) error {
	lost, complete := u.parts.Complete(final.Size)
	if lost && u.published(final) {
		u.discard() // published before a restart; this temporary file is surplus
		return u.durable(u.target)
	}
	if u.file != nil {
		if final.Size >= 0 {
			if lost && !complete {
				return pipeline.Lost(fmt.Errorf("committing %q: the temporary file in %s was lost in a restart and parts written before it were not sent again; the file must be sent again",
					u.name, filepath.Dir(u.temp)))
			}
			info, err := u.file.Stat()
			if err != nil {
				return fmt.Errorf("committing %q: %w", u.name, err)
			}
			if info.Size() < final.Size {
				return pipeline.Permanent(fmt.Errorf("committing %q: the temporary file %s holds %d bytes but the file has %d: parts are missing",
					u.name, u.temp, info.Size(), final.Size))
			}
			if info.Size() > final.Size {
				if err := u.file.Truncate(final.Size); err != nil {
					return fsError(fmt.Errorf("committing %q: truncating %s: %w", u.name, u.temp, err))
				}
			}
		}
		if u.sink.cfg.Fsync {
			if err := u.file.Sync(); err != nil {
				return fmt.Errorf("committing %q: flushing %s: %w", u.name, u.temp, err)
			}
		}
		err := u.file.Close()
		u.file = nil
		if err != nil {
			return fmt.Errorf("committing %q: closing %s: %w", u.name, u.temp, err)
		}
	}
	name, err := u.publish(final)
	if err != nil {
		return err
	}
	u.location = name
	return u.durable(name)
}

// Location is the path the file was published under (a suffix added by
// overwrite: rename included), once Commit succeeded; it implements
// pipeline.Locator.
func (u *upload) Location() string {
	u.mu.Lock()
	defer u.mu.Unlock()
	if u.location == "" && u.end.Committed() {
		return u.target
	}
	return u.location
}

// durable makes the file published under name durable with fsync (its
// content was synced before it was published): its directory and every
// directory up to the sink's, which a template may have created, are
// flushed. Without fsync it notes the file for Flush.
func (u *upload) durable(name string) error {
	if !u.sink.cfg.Fsync {
		u.sink.dur.committed(name)
		return nil
	}
	if err := syncDirsUp(u.sink.dir, filepath.Dir(name)); err != nil {
		return fmt.Errorf("committing %q: %w", u.name, err)
	}
	return nil
}

// publish gives the temporary file its target name, and returns the name.
func (u *upload) publish(final pipeline.File) (string, error) {
	vanished := func() (string, error) {
		if u.published(final) {
			return u.target, nil
		}
		return "", fmt.Errorf("committing %q: the temporary file %s vanished and %s does not hold the file", u.name, u.temp, u.target)
	}
	policy := u.sink.cfg.Overwrite
	if policy == OverwriteReplace {
		err := os.Rename(u.temp, u.target)
		if errors.Is(err, fs.ErrNotExist) {
			if _, statErr := os.Lstat(u.temp); errors.Is(statErr, fs.ErrNotExist) {
				return vanished()
			}
		}
		if err != nil {
			return "", fsError(fmt.Errorf("committing %q: renaming %s to %s: %w", u.name, u.temp, u.target, err))
		}
		return u.target, nil
	}
	tempInfo, err := os.Lstat(u.temp)
	if errors.Is(err, fs.ErrNotExist) {
		return vanished()
	} else if err != nil {
		return "", fsError(fmt.Errorf("committing %q: %w", u.name, err))
	}
	for n := 0; n < maxSuffix; n++ {
		cand := pipeline.WithSuffix(u.target, n)
		taken, err := claim(u.temp, cand, tempInfo)
		if err != nil {
			return "", fsError(fmt.Errorf("committing %q: publishing %s as %s: %w", u.name, u.temp, cand, err))
		}
		if !taken {
			return cand, nil
		}
		if err := pipeline.TargetAppeared(policy, u.name, cand); err != nil {
			return "", err
		}
	}
	return "", pipeline.Permanent(fmt.Errorf("committing %q: no free name for %s after %d tries", u.name, u.target, maxSuffix))
}

// claim gives temp the name cand unless cand exists (taken). A hard link
// claims the name atomically; where links are impossible it falls back to a
// rename after checking the name is free. A cand that already is temp (an
// earlier claim stopped before removing temp) counts as claimed.
func claim(temp, cand string, tempInfo fs.FileInfo) (taken bool, err error) {
	linkErr := os.Link(temp, cand)
	if linkErr == nil {
		if err := os.Remove(temp); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return false, err
		}
		return false, nil
	}
	candInfo, err := os.Lstat(cand)
	if err == nil {
		if os.SameFile(tempInfo, candInfo) {
			if err := os.Remove(temp); err != nil && !errors.Is(err, fs.ErrNotExist) {
				return false, err
			}
			return false, nil
		}
		return true, nil
	}
	if !errors.Is(err, fs.ErrNotExist) {
		return false, err
	}
	if errors.Is(linkErr, fs.ErrNotExist) {
		return false, linkErr
	}
	return false, os.Rename(temp, cand)
}

// published reports whether the target holds the final file: the right size
// and, when known, the right sha256.
func (u *upload) published(final pipeline.File) bool {
	if final.Size < 0 {
		return false
	}
	info, err := os.Stat(u.target)
	if err != nil || !info.Mode().IsRegular() || info.Size() != final.Size {
		return false
	}
	if final.SHA256 == "" {
		return true
	}
	f, err := os.Open(u.target)
	if err != nil {
		return false
	}
	defer discard.Close(f)
	ok, err := pipeline.HasSHA256(f, final.SHA256)
	return ok && err == nil
}

// discard closes and removes the temporary file. Its content is no longer
// wanted, so neither error matters: a file left behind only takes space.
func (u *upload) discard() {
	if u.file != nil {
		discard.Close(u.file)
		u.file = nil
	}
	_ = os.Remove(u.temp)
}

// Abort removes the temporary file. After a successful Commit it does
// nothing. It is idempotent.
func (u *upload) Abort(ctx context.Context, cause error) error {
	u.mu.Lock()
	defer u.mu.Unlock()
	if u.end.Abort(u.name, cause) {
		return nil
	}
	if u.file != nil {
		discard.Close(u.file) // its content is thrown away below
		u.file = nil
	}
	if err := os.Remove(u.temp); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("aborting %q: removing %s: %w", u.name, u.temp, err)
	}
	return nil
}

// syncDirsUp flushes dir and every directory above it up to root, so that
// a file in dir and the directories created for it survive a power cut.
func syncDirsUp(root, dir string) error {
	for {
		if err := syncDir(dir); err != nil {
			return err
		}
		parent := filepath.Dir(dir)
		if dir == root || parent == dir || !strings.HasPrefix(parent, root) {
			return nil
		}
		dir = parent
	}
}

// syncDir flushes a directory's entries, so a rename or a new file survives a
// power cut. Windows cannot open directories for this and needs no help.
func syncDir(dir string) error {
	if runtime.GOOS == "windows" {
		return nil
	}
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("flushing directory %s: %w", dir, err)
	}
	defer discard.Close(d)
	if err := d.Sync(); err != nil {
		return fmt.Errorf("flushing directory %s: %w", dir, err)
	}
	return nil
}

var (
	_ pipeline.Sink    = (*Sink)(nil)
	_ pipeline.Flusher = (*Sink)(nil)
	_ pipeline.Upload  = (*upload)(nil)
)
