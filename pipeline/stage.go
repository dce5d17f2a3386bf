package pipeline

import (
	"context"
	"io"
)

// Stage transforms a file on its way from the source to the sinks.
type Stage interface {
	// Process returns the file's new metadata and content. It must stream:
	// read r as the returned reader is read, never the whole file at once. If
	// the returned reader is also an io.Closer the engine closes it when done.
	// Returning an error wrapping ErrSkip drops the file (acked as Skipped).
	//
	// A stage should be deterministic: given the same input it produces the
	// same output, because after a crash the engine runs it again and keeps
	// only the bytes it had not yet stored. One that is not (encryption with
	// a fresh key) costs a whole new read: the engine finds that the bytes
	// before its checkpoint hash otherwise and reads the file afresh.
	Process(ctx context.Context, f File, r io.Reader) (File, io.Reader, error)
}

// StageFunc adapts a function to the Stage interface; embedding applications
// use it to put their own Go code in the middle of a flow.
type StageFunc func(ctx context.Context, f File, r io.Reader) (File, io.Reader, error)

// Process calls fn.
func (fn StageFunc) Process(ctx context.Context, f File, r io.Reader) (File, io.Reader, error) {
	return fn(ctx, f, r)
}
