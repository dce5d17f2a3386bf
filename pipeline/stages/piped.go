package stages

import (
	"errors"
	"io"
	"sync"
)

// errReaderClosed stops a stage's writing goroutine when its reader is closed.
var errReaderClosed = errors.New("stages: reader closed")

// pipedReader reads the output of a goroutine that writes a file's new
// content into a pipe (compress, pgp_encrypt: their libraries write, the
// engine reads). The goroutine starts on the first Read, so a reader that is
// never read costs nothing.
type pipedReader struct {
	pr    *io.PipeReader
	run   func()
	start sync.Once
	done  chan struct{} // closed when the goroutine has ended, or will never start
}

// newPipedReader returns a reader of what write writes. A nil error from
// write ends the output cleanly; any other error is returned by Read.
func newPipedReader(write func(w io.Writer) error) *pipedReader {
	pr, pw := io.Pipe()
	p := &pipedReader{pr: pr, done: make(chan struct{})}
	p.run = func() {
		defer close(p.done)
		pw.CloseWithError(write(pw))
	}
	return p
}

func (p *pipedReader) Read(b []byte) (int, error) {
	p.start.Do(func() { go p.run() })
	return p.pr.Read(b)
}

// Close stops the writing goroutine: its next write into the pipe fails, so
// it ends as soon as its current read of the input returns. Close does not
// wait for that, nor close the input. It is safe to call more than once and
// concurrently with Read.
func (p *pipedReader) Close() error {
	p.start.Do(func() { close(p.done) }) // never started: nothing to stop
	p.pr.CloseWithError(errReaderClosed)
	return nil
}
