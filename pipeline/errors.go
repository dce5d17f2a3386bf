package pipeline

import "errors"

// Sentinel errors. Compare with errors.Is.
var (
	// ErrSkip is returned by a Stage to drop a file; the file is acked as Skipped.
	// Wrap it to give the reason: fmt.Errorf("size below 1KiB: %w", ErrSkip).
	ErrSkip = errors.New("file skipped")
	// ErrExists is returned by a sink whose overwrite policy is "fail" when the
	// target already exists. It is permanent.
	ErrExists = errors.New("target already exists")
	// ErrBadName is returned for a file name that is absolute, contains "..",
	// NUL bytes or backslashes, or would escape the target directory.
	ErrBadName = errors.New("unsafe file name")
)

// permanentError marks an error that retrying cannot fix.
type permanentError struct{ err error }

func (e *permanentError) Error() string   { return e.err.Error() }
func (e *permanentError) Unwrap() error   { return e.err }
func (e *permanentError) Permanent() bool { return true }

// Permanent marks err as not worth retrying: a delivery that returns it fails
// at once instead of spending its retry budget. Permanent(nil) is nil.
func Permanent(err error) error {
	if err == nil || IsPermanent(err) {
		return err
	}
	return &permanentError{err}
}

// IsPermanent reports whether err, or any error it wraps, has a
// Permanent() bool method returning true. ErrExists and ErrBadName are
// permanent too. Everything else is retried.
func IsPermanent(err error) bool {
	if err == nil {
		return false
	}
	if errors.Is(err, ErrExists) || errors.Is(err, ErrBadName) {
		return true
	}
	var p interface{ Permanent() bool }
	return errors.As(err, &p) && p.Permanent()
}
