package ftps

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"path"
	"strings"
	"sync"
	"time"

	"github.com/jlaffaye/ftp"

	"github.com/mftflow/mftflow/pipeline"
)

// SinkConfig configures a Sink. Its fields mirror the "ftps" sink's config
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
}

// Sink writes files to a directory on an FTPS server. Each file goes up
// under a temporary name next to its target, its parts in order, each
// appended (or, after a part was cut short, written with REST at its
// offset), and Commit renames it. It implements pipeline.Sink.
type Sink struct {
	cfg  SinkConfig
	pool *pool
	now  func() time.Time
}

// NewSink checks c and returns a Sink. It reads the certificate files but
// does not connect: the first Open does.
func NewSink(c SinkConfig) (*Sink, error) {
	bad := func(field, format string, args ...any) error {
		return &pipeline.FieldError{Connector: "ftps", Field: field, Err: fmt.Errorf(format, args...)}
	}
	if c.Directory == "" {
		return nil, bad("directory", "required field is missing")
	}
	if err := c.Naming.Check("ftps"); err != nil {
		return nil, err
	}
	if c.PartSize < 0 {
		return nil, bad("part_size", "must not be negative")
	}
	if c.PartSize == 0 {
		c.PartSize = DefaultPartSize
	}
	p, err := newPool(c.ConnConfig)
	if err != nil {
		return nil, err
	}
	return &Sink{cfg: c, pool: p, now: time.Now}, nil
}

// Close closes the connections. Uploads still open fail afterwards.
func (s *Sink) Close() error {
	s.pool.close()
	return nil
}

// resumeState is what Upload.State returns, as JSON.
type resumeState struct {
	// Paths keep their bytes (names need not be UTF-8).
	Temp   pipeline.ExactString `json:"temp"`
	Target pipeline.ExactString `json:"target"`
}

// Open starts writing f, or resumes the upload that produced resume. A new
// upload creates its (empty) temporary file, so a directory the user may
// not write to fails here. It fails with an error wrapping
// pipeline.ErrBadName if the expanded name would leave the directory, and
// wrapping pipeline.ErrSkip or pipeline.ErrExists if the target exists and
// the overwrite policy is skip or fail.
func (s *Sink) Open(ctx context.Context, f pipeline.File, resume []byte) (pipeline.Upload, error) {
	if _, err := pipeline.CleanName(f.Name); err != nil {
		return nil, err
	}
	u := &upload{sink: s, name: f.Name}
	err := s.pool.do(ctx, fmt.Sprintf("writing %q into %s", f.Name, s.cfg.Directory), func(sess *session) error {
		dir := sess.abs(s.cfg.Directory)
		if err := sess.c.ChangeDir(dir); err != nil {
			if code(err) == ftp.StatusFileUnavailable {
				return s.pool.missingDir(dir, err)
			}
			return err
		}
		var st resumeState
		ok := len(resume) > 0 && json.Unmarshal(resume, &st) == nil
		temp, target := string(st.Temp), string(st.Target)
		if ok && temp != "" && path.Dir(temp) == path.Dir(target) && strings.HasPrefix(target, dir+"/") {
			// The temporary file may be gone: renamed by a Commit whose
			// record was lost, which Commit then finds.
			u.dir, u.temp, u.target, u.rel = dir, temp, target, strings.TrimPrefix(target, dir+"/")
			return nil
		}
		return u.start(sess, dir, f)
	})
	if err != nil {
		return nil, err
	}
	return u, nil
}

// upload is one file being written.
type upload struct {
	sink   *Sink
	name   string // the file's name, for errors
	dir    string // the sink's directory, absolute
	rel    string // target relative to dir, for the trigger
	target string
	temp   string

	mu  sync.Mutex
	end pipeline.UploadEnd
}

// start names the target and the temporary file, applies the overwrite
// policy and creates the temporary file empty.
func (u *upload) start(sess *session, dir string, f pipeline.File) error {
	s := u.sink
	var err error
	if u.rel, err = s.cfg.Target(f, s.now()); err != nil {
		return err
	}
	u.dir, u.target = dir, path.Join(dir, u.rel)
	if exists, err := fileExists(sess, u.target); err != nil {
		return err
	} else if exists {
		if err := pipeline.TargetExists(s.cfg.Overwrite, f.Name, s.pool.loc(u.target)); err != nil {
			return err
		}
	}
	if parent := path.Dir(u.target); parent != dir {
		if err := mkdirAll(sess, parent); err != nil {
			return err
		}
	}
	if u.temp, err = s.cfg.TempPath(f, u.target, false, s.now()); err != nil {
		return err
	}
	return sess.c.Stor(u.temp, bytes.NewReader(nil))
}

func (u *upload) Plan() pipeline.PartPlan {
	return pipeline.PartPlan{PartSize: u.sink.cfg.PartSize, InOrder: true}
}

// WritePart writes p.Size bytes from r at p.Offset of the temporary file.
// Parts come in order (the plan is InOrder): part 0 starts the file anew,
// a part where the file ends is appended, and a part that was cut short
// is written again at its offset with REST. A file shorter than the part's
// offset lost earlier parts, which only sending the file again can mend.
func (u *upload) WritePart(ctx context.Context, p pipeline.Part, r io.Reader) error {
	u.mu.Lock()
	finished, _ := u.end.Finished()
	u.mu.Unlock()
	if err := pipeline.CheckPart(p, u.name, u.sink.pool.loc(u.target), finished); err != nil {
		return err
	}
	doing := fmt.Sprintf("writing part %d of %q to %s", p.Number, u.name, u.temp)
	var readErr error
	err := u.sink.pool.do(ctx, doing, func(sess *session) error {
		body := &partReader{r: pipeline.ContextReader(ctx, r), left: p.Size}
		if err := u.writeAt(sess, p, body); err != nil {
			readErr = body.err
			return err
		}
		if body.left > 0 || body.err != nil {
			readErr = body.err
			if readErr == nil {
				readErr = fmt.Errorf("the part ended after %d of %d bytes: %w", p.Size-body.left, p.Size, io.ErrUnexpectedEOF)
			}
			return readErr
		}
		size, err := sess.c.FileSize(u.temp)
		if err == nil && size < p.Offset+p.Size {
			err = fmt.Errorf("after part %d the server holds %d bytes of %s, want %d", p.Number, size, u.temp, p.Offset+p.Size)
		}
		return err
	})
	if readErr != nil && !errors.Is(err, context.Canceled) {
		return fmt.Errorf("%s: %w", doing, readErr) // the part's reader failed, not the server
	}
	return err
}

func (u *upload) writeAt(sess *session, p pipeline.Part, body io.Reader) error {
	if p.Offset == 0 {
		return sess.c.Stor(u.temp, body)
	}
	size, err := sess.c.FileSize(u.temp)
	switch {
	case code(err) == ftp.StatusFileUnavailable:
		return pipeline.Lost(fmt.Errorf("the temporary file %s is gone, with the %d bytes before part %d: send the file again (runner replay)",
			u.sink.pool.loc(u.temp), p.Offset, p.Number))
	case err != nil:
		return err
	case size < p.Offset:
		return pipeline.Lost(fmt.Errorf("the temporary file %s holds %d bytes, but part %d starts at byte %d: earlier parts were lost; send the file again (runner replay)",
			u.sink.pool.loc(u.temp), size, p.Number, p.Offset))
	case size == p.Offset:
		return sess.c.Append(u.temp, body)
	}
	err = sess.c.StorFrom(u.temp, body, uint64(p.Offset))
	if c := code(err); c == ftp.StatusBadCommand || c == ftp.StatusNotImplemented || c == ftp.StatusNotImplementedParameter || c == ftp.StatusBadArguments {
		return pipeline.Lost(fmt.Errorf("part %d was cut short and the server refuses REST (%s), so it cannot be written again at byte %d: send the file again (runner replay)",
			p.Number, reply(err), p.Offset))
	}
	return err
}

// partReader yields at most left bytes of r and keeps r's own error apart
// from the server's.
type partReader struct {
	r    io.Reader
	left int64
	err  error
}

func (p *partReader) Read(b []byte) (int, error) {
	if p.left <= 0 {
		return 0, io.EOF
	}
	n, err := p.r.Read(b[:min(int64(len(b)), p.left)])
	p.left -= int64(n)
	if err != nil && err != io.EOF {
		p.err = err
	}
	return n, err
}

// WriteTo copies the part to w in large writes, which io.Copy prefers: a
// part reader that yields a few bytes at a time would otherwise make as
// many TLS records. A part cut short is not an error here: WritePart
// reports it.
func (p *partReader) WriteTo(w io.Writer) (int64, error) {
	n, err := pipeline.CopyBuffered(p, p.left, func(b []byte, _ int64) (int, error) { return w.Write(b) })
	var rerr *pipeline.PartReadError
	if errors.As(err, &rerr) {
		if errors.Is(rerr.Err, io.ErrUnexpectedEOF) {
			return n, nil
		}
		return n, rerr.Err
	}
	return n, err
}

// State returns the resume token: JSON naming the temporary file and the
// target.
func (u *upload) State() []byte {
	b, _ := json.Marshal(resumeState{Temp: pipeline.ExactString(u.temp), Target: pipeline.ExactString(u.target)})
	return b
}

// Commit checks the temporary file's size, renames it to the target
// according to the overwrite policy, checks the target's size and writes
// the trigger file. It is idempotent: when an earlier Commit (maybe in a
// process that died) renamed the file, it only makes sure of the trigger.
func (u *upload) Commit(ctx context.Context, final pipeline.File) error {
	u.mu.Lock()
	defer u.mu.Unlock()
	if finished, err := u.end.Finished(); finished {
		return err
	}
	err := u.sink.pool.do(ctx, fmt.Sprintf("committing %q", u.name), func(sess *session) error {
		err := u.commit(sess, final)
		if pipeline.IsPermanent(err) || errors.Is(err, pipeline.ErrSkip) {
			_ = sess.c.Delete(u.temp) // surplus now; one left behind only takes space
		}
		return err
	})
	u.end.Settle(err)
	return err
}

func (u *upload) commit(sess *session, final pipeline.File) error {
	loc := u.sink.pool.loc
	size, err := sess.c.FileSize(u.temp)
	switch {
	case code(err) == ftp.StatusFileUnavailable:
		if ok, err := u.published(sess, final); err != nil || ok {
			if err != nil {
				return err
			}
			return u.trigger(sess)
		}
		return pipeline.Permanent(fmt.Errorf("the temporary file %s vanished and %s does not hold the file", loc(u.temp), loc(u.target)))
	case err != nil:
		return err
	case final.Size >= 0 && size != final.Size:
		return pipeline.Permanent(fmt.Errorf("the temporary file %s holds %d bytes but the file has %d", loc(u.temp), size, final.Size))
	}
	if err := u.publish(sess); err != nil {
		return err
	}
	if final.Size >= 0 {
		size, err := sess.c.FileSize(u.target)
		if err != nil {
			return err
		}
		if size != final.Size {
			return pipeline.Permanent(fmt.Errorf("after the rename the server reports %d bytes for %s, want %d", size, loc(u.target), final.Size))
		}
	}
	return u.trigger(sess)
}

// publish renames the temporary file to the target. FTP has no rename that
// refuses to replace, so skip and fail look for the target first; replace
// removes a target the server will not rename over.
func (u *upload) publish(sess *session) error {
	s := u.sink
	if s.cfg.Overwrite != OverwriteReplace {
		exists, err := fileExists(sess, u.target)
		switch {
		case err != nil:
			return err
		case exists:
			return pipeline.TargetAppeared(s.cfg.Overwrite, u.name, s.pool.loc(u.target))
		}
		return sess.c.Rename(u.temp, u.target)
	}
	err := sess.c.Rename(u.temp, u.target)
	if code(err) >= 500 {
		if exists, _ := fileExists(sess, u.target); exists {
			if err := sess.c.Delete(u.target); err != nil {
				return err
			}
			return sess.c.Rename(u.temp, u.target)
		}
	}
	return err
}

// published reports whether the target holds the final file: the right
// size and, for files up to pipeline.MaxHashBack with a known sha256, the right
// content.
func (u *upload) published(sess *session, final pipeline.File) (bool, error) {
	if final.Size < 0 {
		return false, nil
	}
	size, err := sess.c.FileSize(u.target)
	if code(err) == ftp.StatusFileUnavailable || err == nil && size != final.Size {
		return false, nil
	}
	if err != nil || final.SHA256 == "" || final.Size > pipeline.MaxHashBack {
		return err == nil, err
	}
	resp, err := sess.c.Retr(u.target)
	if err != nil {
		return false, err
	}
	ok, err := pipeline.HasSHA256(resp, final.SHA256)
	if cerr := resp.Close(); err == nil {
		err = cerr
	}
	return err == nil && ok, err
}

// trigger writes the empty trigger file, if configured. Writing it again
// is harmless, which keeps Commit idempotent.
func (u *upload) trigger(sess *session) error {
	s := u.sink
	p, err := s.cfg.TriggerPath(u.dir, u.rel, s.now())
	if p == "" || err != nil {
		return err
	}
	if err := mkdirAll(sess, path.Dir(p)); err != nil {
		return err
	}
	return sess.c.Stor(p, bytes.NewReader(nil))
}

// Abort removes the temporary file. After a successful Commit it does
// nothing. It is idempotent.
func (u *upload) Abort(ctx context.Context, cause error) error {
	u.mu.Lock()
	defer u.mu.Unlock()
	if u.end.Abort(u.name, cause) {
		return nil
	}
	return u.sink.pool.do(ctx, fmt.Sprintf("aborting %q: removing %s", u.name, u.temp), func(sess *session) error {
		if err := sess.c.Delete(u.temp); err != nil && code(err) != ftp.StatusFileUnavailable {
			return err
		}
		return nil
	})
}

var (
	_ pipeline.Sink   = (*Sink)(nil)
	_ pipeline.Upload = (*upload)(nil)
)

// Location is the file's address once Commit succeeded,
// ftps://host:port/path; it implements pipeline.Locator.
func (u *upload) Location() string {
	u.mu.Lock()
	defer u.mu.Unlock()
	return u.end.Location(u.sink.pool.loc(u.target))
}
