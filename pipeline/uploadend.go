package pipeline

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"strings"
)

// UploadEnd is how an upload finished, for a sink whose Commit and Abort
// must be idempotent. Its zero value is an open upload. It is not safe for
// concurrent use: the upload's own lock guards it.
type UploadEnd struct {
	finished  bool // committed or aborted
	committed bool
	err       error // why it finished, when not committed
}

// Finished reports whether the upload was committed or aborted, and what a
// later Commit returns: nil when it was committed, why not otherwise.
func (e *UploadEnd) Finished() (bool, error) { return e.finished, e.err }

// Committed reports whether a Commit succeeded.
func (e *UploadEnd) Committed() bool { return e.committed }

// Location is what an upload's Location method (see Locator) returns:
// loc, the address of the file it wrote, once a Commit succeeded, and ""
// before.
func (e *UploadEnd) Location(loc string) string {
	if !e.committed {
		return ""
	}
	return loc
}

// Settle records the result of a commit: nil commits the upload; a
// permanent error or ErrSkip finishes it, and Settle reports true so that
// the sink discards its temporary copy; any other error leaves the upload
// open for another try.
func (e *UploadEnd) Settle(err error) (failed bool) {
	switch {
	case err == nil:
		e.finished, e.committed = true, true
	case IsPermanent(err) || errors.Is(err, ErrSkip):
		e.finished, e.err = true, err
		return true
	}
	return false
}

// Abort finishes an open upload of the file called name: a later Commit
// returns an error that says so and wraps cause (which may be nil). It
// does nothing to a finished upload, and reports whether the upload was
// committed, when an Abort has nothing to remove.
func (e *UploadEnd) Abort(name string, cause error) (committed bool) {
	if e.finished {
		return e.committed
	}
	e.finished = true
	e.err = fmt.Errorf("writing %q: the upload was aborted", name)
	if cause != nil {
		e.err = fmt.Errorf("writing %q: the upload was aborted: %w", name, cause)
	}
	return false
}

// CheckPart is the error of a WritePart of part p of the file called name
// to target (as the sink names it in errors) when the part's range is
// invalid or the upload finished, and nil otherwise.
func CheckPart(p Part, name, target string, finished bool) error {
	if p.Offset < 0 || p.Size < 0 {
		return fmt.Errorf("writing part %d of %q: invalid offset %d or size %d", p.Number, name, p.Offset, p.Size)
	}
	if finished {
		return fmt.Errorf("writing part %d of %q: the upload to %s is already finished", p.Number, name, target)
	}
	return nil
}

// TargetExists is the error of a sink whose Open finds the target of the
// file called name taken: ErrSkip under OverwriteSkip, ErrExists under
// OverwriteFail, and nil under any other policy. target says where, as the
// sink names it in errors.
func TargetExists(policy, name, target string) error {
	switch policy {
	case OverwriteSkip:
		return fmt.Errorf("writing %q to %s: the target exists (overwrite: skip): %w", name, target, ErrSkip)
	case OverwriteFail:
		return fmt.Errorf("writing %q to %s: %w (overwrite: fail)", name, target, ErrExists)
	}
	return nil
}

// TargetAppeared is TargetExists for a target found taken at Commit.
func TargetAppeared(policy, name, target string) error {
	switch policy {
	case OverwriteSkip:
		return fmt.Errorf("committing %q to %s: the target appeared meanwhile (overwrite: skip): %w", name, target, ErrSkip)
	case OverwriteFail:
		return fmt.Errorf("committing %q to %s: %w (overwrite: fail)", name, target, ErrExists)
	}
	return nil
}

// MaxHashBack bounds the size of a published file that a remote sink reads
// back to compare its sha256 (see HasSHA256); larger ones are compared by
// size.
const MaxHashBack = 64 << 20

// HasSHA256 reads r to its end and reports whether its sha256 is sum (hex,
// any case). A read error is returned with false.
func HasSHA256(r io.Reader, sum string) (bool, error) {
	h := sha256.New()
	if _, err := io.Copy(h, r); err != nil {
		return false, err
	}
	return strings.EqualFold(hex.EncodeToString(h.Sum(nil)), sum), nil
}
