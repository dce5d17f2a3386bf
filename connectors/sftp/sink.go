package sftp

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pkg/sftp"

	"github.com/mftflow/mftflow/internal/discard"
	"github.com/mftflow/mftflow/pipeline"
)

// SinkConfig configures a Sink. Its fields mirror the "sftp" sink's config
// fields; zero values mean the defaults.
type SinkConfig struct {
	ConnConfig
	// Directory is the remote directory to write to. It must exist.
	Directory string `config:"directory"`
	// Naming names targets, temporary and trigger files, and says what
	// happens when the target exists.
	pipeline.Naming
	// PartSize is the part size in bytes; 0 means DefaultPartSize.
	PartSize int64 `config:"part_size"`
	// Concurrency is how many parts of one file are written at once; 0
	// leaves it to the flow.
	Concurrency int `config:"concurrency"`
}

// Sink writes files to a directory on an SFTP server. Each file is written
// under a temporary name next to its target, parts concurrently with WriteAt,
// and renamed by Commit. One SSH connection, dialled on first use and again
// after it drops, carries every upload. It implements pipeline.Sink.
type Sink struct {
	cfg  SinkConfig
	dir  string // cleaned remote directory
	conn *conn
	now  func() time.Time

	dirOK atomic.Bool // the directory was found once
}

// NewSink checks c and returns a Sink. It reads the key and known_hosts
// files but does not connect: the first Open does.
func NewSink(c SinkConfig) (*Sink, error) {
	bad := func(field, format string, args ...any) error {
		return &pipeline.FieldError{Connector: "sftp", Field: field, Err: fmt.Errorf(format, args...)}
	}
	if err := c.ConnConfig.check("sftp"); err != nil {
		return nil, err
	}
	if c.Directory == "" {
		return nil, bad("directory", "required field is missing")
	}
	if err := c.Naming.Check("sftp"); err != nil {
		return nil, err
	}
	if c.PartSize < 0 {
		return nil, bad("part_size", "must not be negative")
	}
	if c.PartSize == 0 {
		c.PartSize = DefaultPartSize
	}
	if c.Concurrency < 0 {
		return nil, bad("concurrency", "must not be negative")
	}
	cn, err := newConn(c.ConnConfig, "sftp")
	if err != nil {
		return nil, err
	}
	return &Sink{cfg: c, dir: path.Clean(c.Directory), conn: cn, now: time.Now}, nil
}

// Close closes the connection. Uploads still open fail afterwards.
func (s *Sink) Close() error {
	s.conn.close()
	return nil
}

// loc names a remote path for messages: sftp://host:port/abs/path, or
// sftp://host:port/~/rel/path for a path relative to the login directory.
func (s *Sink) loc(p string) string { return location(s.cfg.ConnConfig, p) }

func location(c ConnConfig, p string) string {
	if !strings.HasPrefix(p, "/") {
		p = "/~/" + p
	}
	return "sftp://" + c.addr() + p
}

// session returns the live session, after checking once that the
// directory exists.
func (s *Sink) session(ctx context.Context) (*session, error) {
	sess, err := s.conn.get(ctx)
	if err != nil {
		return nil, err
	}
	if s.dirOK.Load() {
		return sess, nil
	}
	info, err := sess.sftp.Stat(s.dir)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return nil, pipeline.Permanent(fmt.Errorf("sftp %s: the remote directory %q does not exist: create it on the server or fix directory",
			s.cfg.addr(), s.dir))
	case err != nil:
		return nil, s.conn.opError(sess, fmt.Sprintf("checking the remote directory %q", s.dir), err)
	case !info.IsDir():
		return nil, pipeline.Permanent(fmt.Errorf("sftp %s: the remote directory %q is not a directory: fix directory", s.cfg.addr(), s.dir))
	}
	s.dirOK.Store(true)
	return sess, nil
}

// Open starts writing f, or resumes the upload that produced resume (from
// Upload.State). It creates the temporary file, so a directory the user may
// not write to fails here. It fails with an error wrapping pipeline.ErrBadName
// if the expanded name would leave the directory, wrapping pipeline.ErrSkip
// or pipeline.ErrExists if the target exists and the overwrite policy is skip
// or fail. Open is safe for concurrent use.
func (s *Sink) Open(ctx context.Context, f pipeline.File, resume []byte) (pipeline.Upload, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if _, err := pipeline.CleanName(f.Name); err != nil {
		return nil, err
	}
	sess, err := s.session(ctx)
	if err != nil {
		return nil, err
	}
	if len(resume) > 0 {
		return s.resume(sess, f, resume)
	}
	rel, target, err := s.target(f)
	if err != nil {
		return nil, err
	}
	c := sess.sftp
	if info, err := c.Lstat(target); err == nil {
		if info.IsDir() {
			return nil, pipeline.Permanent(fmt.Errorf("writing %q to %s: the target is a directory", f.Name, s.loc(target)))
		}
		if err := pipeline.TargetExists(s.cfg.Overwrite, f.Name, s.loc(target)); err != nil {
			return nil, err
		}
	} else if !errors.Is(err, fs.ErrNotExist) {
		return nil, s.conn.opError(sess, fmt.Sprintf("writing %q: checking %s", f.Name, target), err)
	}
	if dir := path.Dir(target); dir != s.dir {
		if err := c.MkdirAll(dir); err != nil {
			return nil, s.conn.opError(sess, fmt.Sprintf("writing %q: creating directory %s", f.Name, dir), err)
		}
	}
	temp, err := s.cfg.TempPath(f, target, false, s.now())
	if err != nil {
		return nil, err
	}
	return s.start(sess, f, rel, target, temp, false)
}

// target expands the name template for f: the name relative to the
// directory and the remote path.
func (s *Sink) target(f pipeline.File) (rel, full string, err error) {
	if rel, err = s.cfg.Target(f, s.now()); err != nil {
		return "", "", err
	}
	return rel, path.Join(s.dir, rel), nil
}

// start creates (or truncates) the temporary file and returns the upload.
func (s *Sink) start(sess *session, f pipeline.File, rel, target, temp string, lost bool) (*upload, error) {
	fh, err := sess.sftp.OpenFile(temp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC)
	if err != nil {
		return nil, s.conn.opError(sess, fmt.Sprintf("writing %q: creating temporary file %s", f.Name, temp), err)
	}
	if err := fh.Close(); err != nil {
		return nil, s.conn.opError(sess, fmt.Sprintf("writing %q: creating temporary file %s", f.Name, temp), err)
	}
	parts := pipeline.NewTempFileParts(pipeline.TempFileState{Lost: lost})
	return &upload{sink: s, name: f.Name, rel: rel, target: target, temp: temp, parts: parts}, nil
}

// resumeState is what Upload.State returns, as JSON.
type resumeState struct {
	// Paths keep their bytes (names need not be UTF-8).
	Temp   pipeline.ExactString `json:"temp"`
	Target pipeline.ExactString `json:"target"`
	// Whether the temporary file was recreated after a restart, and what
	// it holds then.
	pipeline.TempFileState
}

// resume reopens the temporary file named by state, keeping what it holds.
// The target recorded at the first Open is kept, so a template with {date}
// does not change the name half-way. When the state is unusable or the
// temporary file vanished (an earlier Commit may have renamed it), a new
// one is started and the upload remembers that earlier parts are lost, so
// Commit refuses to publish a file with holes.
func (s *Sink) resume(sess *session, f pipeline.File, state []byte) (*upload, error) {
	var st resumeState
	if err := json.Unmarshal(state, &st); err != nil {
		st = resumeState{}
	}
	target := path.Clean(string(st.Target))
	var rel string
	var ok bool
	switch s.dir {
	case ".":
		rel, ok = target, !strings.HasPrefix(target, "/")
	case "/":
		rel, ok = strings.CutPrefix(target, "/")
	default:
		rel, ok = strings.CutPrefix(target, s.dir+"/")
	}
	if _, err := pipeline.CleanName(rel); !ok || err != nil {
		var err error
		if rel, target, err = s.target(f); err != nil {
			return nil, err
		}
	}
	temp := path.Clean(string(st.Temp))
	if st.Temp != "" && path.Dir(temp) == path.Dir(target) && temp != target {
		info, err := sess.sftp.Lstat(temp)
		if err == nil && info.Mode().IsRegular() {
			parts := pipeline.NewTempFileParts(st.TempFileState)
			return &upload{sink: s, name: f.Name, rel: rel, target: target, temp: temp, parts: parts}, nil
		}
		if err != nil && !errors.Is(err, fs.ErrNotExist) {
			return nil, s.conn.opError(sess, fmt.Sprintf("resuming %q: checking temporary file %s", f.Name, temp), err)
		}
	}
	if dir := path.Dir(target); dir != s.dir {
		if err := sess.sftp.MkdirAll(dir); err != nil {
			return nil, s.conn.opError(sess, fmt.Sprintf("resuming %q: creating directory %s", f.Name, dir), err)
		}
	}
	fresh, err := s.cfg.TempPath(f, target, true, s.now())
	if err != nil {
		return nil, err
	}
	return s.start(sess, f, rel, target, fresh, true)
}

// upload is one file being written.
type upload struct {
	sink   *Sink
	name   string // the file's name, for errors
	rel    string // target relative to the directory, for the trigger
	target string
	temp   string

	mu  sync.Mutex // guards the fields below; never held by WritePart
	end pipeline.UploadEnd

	parts *pipeline.TempFileParts // whether parts written before a restart are gone
}

func (u *upload) Plan() pipeline.PartPlan {
	return pipeline.PartPlan{PartSize: u.sink.cfg.PartSize, Concurrency: u.sink.cfg.Concurrency}
}

// WritePart writes p.Size bytes from r at p.Offset of the temporary file,
// through its own file handle. It is safe for concurrent use and
// idempotent. r yielding fewer than p.Size bytes is an error. When the
// connection drops the error is retryable, and the retry dials again.
func (u *upload) WritePart(ctx context.Context, p pipeline.Part, r io.Reader) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	u.mu.Lock()
	finished, _ := u.end.Finished()
	u.mu.Unlock()
	if err := pipeline.CheckPart(p, u.name, u.sink.loc(u.target), finished); err != nil {
		return err
	}
	sess, err := u.sink.conn.get(ctx)
	if err != nil {
		return err
	}
	doing := fmt.Sprintf("writing part %d of %q to %s", p.Number, u.name, u.temp)
	// No O_CREATE: a temporary file that vanished must not come back with
	// holes where earlier parts were.
	fh, err := sess.sftp.OpenFile(u.temp, os.O_WRONLY)
	if err != nil {
		return u.sink.conn.opError(sess, doing, err)
	}
	// pkg/sftp sends each buffer as several concurrent write requests.
	err = pipeline.CopyAt(ctx, fh, p.Offset, r, p.Size)
	if cerr := fh.Close(); err == nil && cerr != nil {
		err = cerr
	}
	if err != nil {
		var rerr *pipeline.PartReadError
		if errors.As(err, &rerr) {
			return fmt.Errorf("%s: %w", doing, rerr.Err) // the part's reader failed, not the server
		}
		return u.sink.conn.opError(sess, doing, err)
	}
	u.parts.Wrote(p.Offset, p.Size)
	return nil
}

// State returns the resume token: JSON naming the temporary file and the
// target. It is safe for concurrent use with WritePart.
func (u *upload) State() []byte {
	st := resumeState{Temp: pipeline.ExactString(u.temp), Target: pipeline.ExactString(u.target), TempFileState: u.parts.State()}
	b, _ := json.Marshal(st)
	return b
}

// Commit cuts the temporary file to final.Size, renames it to the target
// according to the overwrite policy, checks the size the server reports and
// writes the trigger file. It is idempotent: when an earlier Commit (maybe
// in a process that died) already renamed the file, it only makes sure of
// the trigger file. It fails when parts are missing rather than publish a
// file with holes.
func (u *upload) Commit(ctx context.Context, final pipeline.File) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	u.mu.Lock()
	defer u.mu.Unlock()
	if finished, err := u.end.Finished(); finished {
		return err
	}
	sess, err := u.sink.conn.get(ctx)
	if err != nil {
		return err
	}
	err = u.commit(sess, final)
	if u.end.Settle(err) {
		_ = sess.sftp.Remove(u.temp) // surplus now; one left behind only takes space
	}
	return err
}

func (u *upload) commit(sess *session, final pipeline.File) error {
	s, c := u.sink, sess.sftp
	lost, complete := u.parts.Complete(final.Size)
	if lost && u.published(c, final) {
		_ = c.Remove(u.temp) // renamed before a restart; this temporary file is surplus
		return u.trigger(sess)
	}
	info, err := c.Lstat(u.temp)
	if errors.Is(err, fs.ErrNotExist) {
		if u.published(c, final) {
			return u.trigger(sess)
		}
		return pipeline.Permanent(fmt.Errorf("committing %q: the temporary file %s vanished and %s does not hold the file",
			u.name, s.loc(u.temp), s.loc(u.target)))
	} else if err != nil {
		return s.conn.opError(sess, fmt.Sprintf("committing %q: checking %s", u.name, u.temp), err)
	}
	if final.Size >= 0 {
		if lost && !complete {
			return pipeline.Lost(fmt.Errorf("committing %q: the temporary file in %s was lost in a restart and parts written before it were not sent again; the file must be sent again",
				u.name, s.loc(path.Dir(u.temp))))
		}
		if info.Size() < final.Size {
			return pipeline.Permanent(fmt.Errorf("committing %q: the temporary file %s holds %d bytes but the file has %d: parts are missing",
				u.name, s.loc(u.temp), info.Size(), final.Size))
		}
		if info.Size() > final.Size {
			if err := c.Truncate(u.temp, final.Size); err != nil {
				return s.conn.opError(sess, fmt.Sprintf("committing %q: truncating %s", u.name, u.temp), err)
			}
		}
	}
	if err := u.publish(sess); err != nil {
		return err
	}
	if final.Size >= 0 {
		info, err := c.Stat(u.target)
		if err != nil {
			return s.conn.opError(sess, fmt.Sprintf("committing %q: checking %s after renaming", u.name, u.target), err)
		}
		if info.Size() != final.Size {
			return pipeline.Permanent(fmt.Errorf("committing %q: after the upload the server reports %d bytes for %s, want %d",
				u.name, info.Size(), s.loc(u.target), final.Size))
		}
	}
	return u.trigger(sess)
}

// publish renames the temporary file to the target. With overwrite replace
// it uses posix-rename@openssh.com, which replaces the target atomically;
// without that extension the target is removed first. Plain SFTP rename
// never replaces a file (OpenSSH links, then unlinks), which makes skip and
// fail safe against a target that appears meanwhile.
func (u *upload) publish(sess *session) error {
	s, c := u.sink, sess.sftp
	renameErr := func(err error) error {
		return s.conn.opError(sess, fmt.Sprintf("committing %q: renaming %s to %s", u.name, u.temp, u.target), err)
	}
	if s.cfg.Overwrite == OverwriteReplace {
		if s.conn.hasPosix {
			if err := c.PosixRename(u.temp, u.target); err != nil {
				return renameErr(err)
			}
			return nil
		}
		if err := c.Rename(u.temp, u.target); err != nil {
			if _, statErr := c.Lstat(u.target); statErr != nil {
				return renameErr(err)
			}
			if err := c.Remove(u.target); err != nil && !errors.Is(err, fs.ErrNotExist) {
				return s.conn.opError(sess, fmt.Sprintf("committing %q: removing the old %s", u.name, u.target), err)
			}
			if err := c.Rename(u.temp, u.target); err != nil {
				return renameErr(err)
			}
		}
		return nil
	}
	taken := func() error { return pipeline.TargetAppeared(s.cfg.Overwrite, u.name, s.loc(u.target)) }
	if _, err := c.Lstat(u.target); err == nil {
		return taken()
	}
	if err := c.Rename(u.temp, u.target); err != nil {
		if _, statErr := c.Lstat(u.target); statErr == nil && sess.alive() {
			return taken()
		}
		return renameErr(err)
	}
	return nil
}

// published reports whether the target holds the final file: the right size
// and, for files up to pipeline.MaxHashBack with a known sha256, the right content.
func (u *upload) published(c *sftp.Client, final pipeline.File) bool {
	if final.Size < 0 {
		return false
	}
	info, err := c.Stat(u.target)
	if err != nil || !info.Mode().IsRegular() || info.Size() != final.Size {
		return false
	}
	if final.SHA256 == "" || final.Size > pipeline.MaxHashBack {
		return true
	}
	f, err := c.Open(u.target)
	if err != nil {
		return false
	}
	defer discard.Close(f)
	ok, err := pipeline.HasSHA256(f, final.SHA256)
	return ok && err == nil
}

// trigger writes the empty trigger file, if configured. Writing it again
// is harmless, which keeps Commit idempotent.
func (u *upload) trigger(sess *session) error {
	s := u.sink
	p, err := s.cfg.TriggerPath(s.dir, u.rel, s.now())
	if p == "" || err != nil {
		return err
	}
	doing := fmt.Sprintf("writing trigger file %s for %q", p, u.name)
	if dir := path.Dir(p); dir != s.dir {
		if err := sess.sftp.MkdirAll(dir); err != nil {
			return s.conn.opError(sess, doing, err)
		}
	}
	fh, err := sess.sftp.OpenFile(p, os.O_WRONLY|os.O_CREATE|os.O_TRUNC)
	if err != nil {
		return s.conn.opError(sess, doing, err)
	}
	if err := fh.Close(); err != nil {
		return s.conn.opError(sess, doing, err)
	}
	return nil
}

// Abort removes the temporary file. After a successful Commit it does
// nothing. It is idempotent; when the server cannot be reached it returns
// a retryable error.
func (u *upload) Abort(ctx context.Context, cause error) error {
	u.mu.Lock()
	defer u.mu.Unlock()
	if u.end.Abort(u.name, cause) {
		return nil
	}
	sess, err := u.sink.conn.get(ctx)
	if err != nil {
		return fmt.Errorf("aborting %q: %w", u.name, err)
	}
	if err := sess.sftp.Remove(u.temp); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return u.sink.conn.opError(sess, fmt.Sprintf("aborting %q: removing %s", u.name, u.temp), err)
	}
	return nil
}

var (
	_ pipeline.Sink   = (*Sink)(nil)
	_ pipeline.Upload = (*upload)(nil)
)

// Location is the file's address once Commit succeeded,
// sftp://host:port/path; it implements pipeline.Locator.
func (u *upload) Location() string {
	u.mu.Lock()
	defer u.mu.Unlock()
	return u.end.Location(u.sink.loc(u.target))
}
