package pipeline

import (
	"context"
	"fmt"
	"io"
	"slices"
	"sync"
)

// PartReadError is an error of a part's reader (or of its context), kept
// apart from the errors of what the part is written to: a sink reports it
// as the part's, not the server's or the disk's.
type PartReadError struct{ Err error }

func (e *PartReadError) Error() string { return e.Err.Error() }
func (e *PartReadError) Unwrap() error { return e.Err }

var copyBufs = sync.Pool{New: func() any { b := make([]byte, 256<<10); return &b }}

// CopyBuffered copies n bytes from r to write, filling a whole buffer
// (256 KiB, from a shared pool) before each call, so that a reader that
// yields a few bytes at a time does not cost a system call, a TLS record or
// a request for each. write gets the bytes and their offset from the start
// of the copy, and must take them all or fail, as io.WriterAt does.
//
// It returns how many bytes write took, and the first error: write's as it
// is, r's as a *PartReadError. An r that ends before n bytes gives a
// *PartReadError wrapping io.ErrUnexpectedEOF.
func CopyBuffered(r io.Reader, n int64, write func(p []byte, off int64) (int, error)) (int64, error) {
	buf := copyBufs.Get().(*[]byte)
	defer copyBufs.Put(buf)
	done := int64(0)
	for done < n {
		chunk := (*buf)[:min(int64(len(*buf)), n-done)]
		got, err := io.ReadFull(r, chunk)
		if got > 0 {
			wrote, werr := write(chunk[:got], done)
			done += int64(wrote)
			if werr != nil {
				return done, werr
			}
		}
		switch {
		case err == io.EOF || err == io.ErrUnexpectedEOF:
			return done, &PartReadError{fmt.Errorf("the part ended after %d of %d bytes: %w", done, n, io.ErrUnexpectedEOF)}
		case err != nil:
			return done, &PartReadError{err}
		}
	}
	return done, nil
}

// CopyAt writes exactly n bytes from r to w at off, a buffer at a time (see
// CopyBuffered), and stops between reads once ctx ends. Errors of r and ctx
// are *PartReadError; w's are returned as they are. Sinks that write parts
// concurrently into one temporary file (local, SFTP) use it.
func CopyAt(ctx context.Context, w io.WriterAt, off int64, r io.Reader, n int64) error {
	_, err := CopyBuffered(ContextReader(ctx, r), n, func(p []byte, at int64) (int, error) {
		return w.WriteAt(p, off+at)
	})
	return err
}

// TempFileState is the part of a resume state of a sink that writes parts
// at their offsets into a temporary file. Lost is set when the temporary
// file was recreated after a restart, so that parts written before are
// gone; Written then lists the byte ranges written since. Sinks embed it in
// their resume state's JSON.
type TempFileState struct {
	Lost    bool       `json:"lost,omitempty"`
	Written ByteRanges `json:"written,omitempty"`
}

// TempFileParts keeps the TempFileState of one upload while its parts are
// written. Its methods are safe for concurrent use.
type TempFileParts struct {
	mu sync.Mutex
	st TempFileState
}

// NewTempFileParts starts from st, as read from a resume state; its
// Written counts only when Lost is set.
func NewTempFileParts(st TempFileState) *TempFileParts {
	if !st.Lost {
		st.Written = nil
	}
	return &TempFileParts{st: st}
}

// Wrote records that n bytes were written at offset.
func (t *TempFileParts) Wrote(offset, n int64) {
	t.mu.Lock()
	if t.st.Lost {
		t.st.Written = t.st.Written.Add(offset, n)
	}
	t.mu.Unlock()
}

// State returns a copy of the state, for the upload's resume token.
func (t *TempFileParts) State() TempFileState {
	t.mu.Lock()
	defer t.mu.Unlock()
	return TempFileState{Lost: t.st.Lost, Written: slices.Clone(t.st.Written)}
}

// Complete reports whether parts were lost, and if so whether the parts
// written since cover all size bytes of the file.
func (t *TempFileParts) Complete(size int64) (lost, complete bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.st.Lost, t.st.Written.Covers(size)
}
