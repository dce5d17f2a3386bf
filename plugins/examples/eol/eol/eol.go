// Package eol converts line endings while streaming.
package eol

import (
	"bufio"
	"io"
)

// NewReader returns a reader of r's content with every line ending (CRLF,
// LF or a lone CR) replaced by CRLF when crlf is set, by LF otherwise.
func NewReader(r io.Reader, crlf bool) io.Reader {
	pr, pw := io.Pipe()
	go func() {
		pw.CloseWithError(convert(pw, r, crlf))
	}()
	return pr
}

func convert(dst io.Writer, src io.Reader, crlf bool) error {
	in := bufio.NewReaderSize(src, 64<<10)
	out := bufio.NewWriterSize(dst, 64<<10)
	nl := []byte("\n")
	if crlf {
		nl = []byte("\r\n")
	}
	for {
		b, err := in.ReadByte()
		if err == io.EOF {
			return out.Flush()
		}
		if err != nil {
			return err
		}
		switch b {
		case '\r':
			if next, err := in.Peek(1); err == nil && next[0] == '\n' {
				_, _ = in.ReadByte() // the '\n' Peek has just seen: it cannot fail
			}
			_, err = out.Write(nl)
		case '\n':
			_, err = out.Write(nl)
		default:
			err = out.WriteByte(b)
		}
		if err != nil {
			return err // the reader went away: reading on is wasted
		}
	}
}
