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
// does nothing to a finished upload.
func (e *UploadEnd) Abort(name string, cause error) {
	if e.finished {
		return
	}
	e.finished = true
	e.err = fmt.Errorf("writing %q: the upload was aborted", name)
	if cause != nil {
		e.err = fmt.Errorf("writing %q: the upload was aborted: %w", name, cause)
	}
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
