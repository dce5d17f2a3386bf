package pipeline

import (
	"errors"
	"io"
	"net"
)

// Slices reads a range of a part held as several slices without copying
// them into one. It seeks, so a connector can send the same bytes again when
// a request must be retried.
type Slices struct {
	bufs [][]byte
	size int64
	off  int64
}

// SlicesOf returns the bytes [off, off+size) of r's slices when r is a
// *net.Buffers holding them, as the engine hands parts to sinks; ok is false
// for any other reader, or one holding fewer bytes. r is not consumed.
//
// When r is a *net.Buffers paced by throttles (Paced), SlicesOf waits until
// the size bytes may pass before returning them (ok is false when that wait
// ends with the context): the caller sends them from the slices.
func SlicesOf(r io.Reader, off, size int64) (s *Slices, ok bool) {
	paced, isPaced := r.(*pacedReader)
	if isPaced {
		r = paced.r
	}
	nb, isBuffers := r.(*net.Buffers)
	if !isBuffers || off < 0 || size < 0 {
		return nil, false
	}
	var out [][]byte
	left := size
	for _, b := range *nb {
		if left == 0 {
			break
		}
		if off >= int64(len(b)) {
			off -= int64(len(b))
			continue
		}
		b = b[off:]
		off = 0
		if int64(len(b)) > left {
			b = b[:left]
		}
		out = append(out, b)
		left -= int64(len(b))
	}
	if left > 0 {
		return nil, false
	}
	if isPaced && paced.wait(size) != nil {
		return nil, false
	}
	return &Slices{bufs: out, size: size}, true
}

// Buffers returns the slices of the range, to be read, never changed.
func (r *Slices) Buffers() [][]byte { return r.bufs }

func (r *Slices) Read(p []byte) (int, error) {
	n, err := r.ReadAt(p, r.off)
	r.off += int64(n)
	if err == io.EOF && n > 0 {
		err = nil
	}
	return n, err
}

// ReadAt reads from offset off of the range, leaving Read's position alone.
func (r *Slices) ReadAt(p []byte, off int64) (int, error) {
	if off < 0 {
		return 0, errors.New("pipeline.Slices.ReadAt: negative offset")
	}
	n := 0
	for _, b := range r.bufs {
		if n == len(p) {
			break
		}
		if off >= int64(len(b)) {
			off -= int64(len(b))
			continue
		}
		n += copy(p[n:], b[off:])
		off = 0
	}
	if n < len(p) {
		return n, io.EOF
	}
	return n, nil
}

// WriteTo hands the slices to w as they are: net/http sends a request body
// through it, sparing a copy.
func (r *Slices) WriteTo(w io.Writer) (int64, error) {
	var total int64
	pos := r.off
	for _, b := range r.bufs {
		if pos >= int64(len(b)) {
			pos -= int64(len(b))
			continue
		}
		n, err := w.Write(b[pos:])
		total += int64(n)
		r.off += int64(n)
		pos = 0
		if err != nil {
			return total, err
		}
	}
	return total, nil
}

// Seek sets where the next Read starts.
func (r *Slices) Seek(offset int64, whence int) (int64, error) {
	switch whence {
	case io.SeekStart:
	case io.SeekCurrent:
		offset += r.off
	case io.SeekEnd:
		offset += r.size
	default:
		return 0, errors.New("pipeline.Slices.Seek: invalid whence")
	}
	if offset < 0 {
		return 0, errors.New("pipeline.Slices.Seek: negative position")
	}
	r.off = offset
	return offset, nil
}
