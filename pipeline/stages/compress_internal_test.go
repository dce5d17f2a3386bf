package stages

import (
	"bytes"
	"crypto/rand"
	"io"
	"testing"
	"time"

	"github.com/mftflow/mftflow/pipeline"
)

func waitDone(t *testing.T, cr *pipedReader) {
	t.Helper()
	select {
	case <-cr.done:
	case <-time.After(5 * time.Second):
		t.Fatal("the compressing goroutine is still running")
	}
}

func startCompress(t *testing.T, format string, src io.Reader) *pipedReader {
	t.Helper()
	c, err := NewCompress(CompressConfig{Format: format})
	if err != nil {
		t.Fatal(err)
	}
	_, r, err := c.Process(t.Context(), pipeline.File{Name: "a"}, src)
	if err != nil {
		t.Fatal(err)
	}
	return r.(*pipedReader)
}

func TestCompressGoroutineEnds(t *testing.T) {
	data := make([]byte, 5<<20)
	rand.Read(data)
	for _, format := range []string{FormatGzip, FormatZstd} {
		t.Run(format+"/closed half-way", func(t *testing.T) {
			cr := startCompress(t, format, bytes.NewReader(data))
			if _, err := io.ReadFull(cr, make([]byte, 64<<10)); err != nil {
				t.Fatal(err)
			}
			cr.Close()
			waitDone(t, cr)
		})
		t.Run(format+"/read to the end", func(t *testing.T) {
			cr := startCompress(t, format, bytes.NewReader(data))
			if _, err := io.Copy(io.Discard, cr); err != nil {
				t.Fatal(err)
			}
			waitDone(t, cr)
			cr.Close()
		})
		t.Run(format+"/never read", func(t *testing.T) {
			cr := startCompress(t, format, bytes.NewReader(data))
			cr.Close()
			waitDone(t, cr) // no goroutine was started
			if _, err := cr.Read(make([]byte, 1)); err != io.ErrClosedPipe {
				t.Errorf("Read after Close: %v, want %v", err, io.ErrClosedPipe)
			}
		})
	}
}

// blockingReader yields some bytes, then blocks until release is closed.
type blockingReader struct {
	first   []byte
	release chan struct{}
}

func (b *blockingReader) Read(p []byte) (int, error) {
	if len(b.first) > 0 {
		n := copy(p, b.first)
		b.first = b.first[n:]
		return n, nil
	}
	<-b.release
	return 0, io.EOF
}

// Close must not wait for a read of the input that is stuck: the caller may
// only unblock that read (by closing the source) after Close returns.
func TestCompressCloseDoesNotWaitForTheInput(t *testing.T) {
	src := &blockingReader{first: []byte("some content"), release: make(chan struct{})}
	cr := startCompress(t, FormatGzip, src)
	// The gzip header is written with the first content; the goroutine then
	// blocks reading the input.
	if _, err := io.ReadFull(cr, make([]byte, 10)); err != nil {
		t.Fatal(err)
	}
	closed := make(chan struct{})
	go func() { cr.Close(); close(closed) }()
	select {
	case <-closed:
	case <-time.After(5 * time.Second):
		t.Fatal("Close blocked on the input")
	}
	select {
	case <-cr.done:
		t.Fatal("the goroutine ended while its read of the input was blocked")
	case <-time.After(50 * time.Millisecond):
	}
	close(src.release) // the read returns; the goroutine's next write fails
	waitDone(t, cr)
}
