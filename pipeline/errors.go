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
	// ErrUploadLost says a sink lost what earlier attempts of a delivery
	// wrote; see Lost.
	ErrUploadLost = errors.New("the sink lost what earlier attempts wrote")
)

// lostError marks the loss of what earlier attempts wrote.
type lostError struct{ err error }

func (e *lostError) Error() string        { return e.err.Error() }
func (e *lostError) Unwrap() error        { return e.err }
func (e *lostError) Permanent() bool      { return true }
func (e *lostError) Is(target error) bool { return target == ErrUploadLost }

// Lost marks err, a sink's, as the loss of what earlier attempts of the
// delivery wrote and resuming needs: a temporary file removed, a multipart
// upload aborted, or left broken by a server that stopped in the middle of
// completing it. Resuming cannot succeed, so the delivery fails at once
// (err is permanent); the engine then reads the file again from its source
// and delivers it afresh, in the same run when the source's item is at hand
// (else the next run does, as for any failed delivery). Lost(nil) is nil.
func Lost(err error) error {
	if err == nil {
		return nil
	}
	return &lostError{err}
}

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
