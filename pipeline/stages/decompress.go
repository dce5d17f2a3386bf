package stages

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"path"
	"strings"

	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"

	"github.com/mftflow/mftflow/internal/discard"
	"github.com/mftflow/mftflow/pipeline"
)

// DecompressConfig sets a Decompress stage's format.
type DecompressConfig struct {
	// Format is FormatAuto (the default when empty), FormatGzip or FormatZstd.
	// FormatAuto decides by the name's extension (.gz or .zst, in any case)
	// and, without one, by the content's first bytes.
	Format string `config:"format"`
}

// Decompress decompresses gzip or zstd content and removes the matching
// extension (".gz", ".zst") from the name; a name without one is kept. The new
// size and sha256 are unknown (Size -1, SHA256 ""). Concatenated gzip members
// and zstd frames are decoded as one stream, as gunzip and zstd -d do. It is
// safe for concurrent use.
type Decompress struct {
	format string
}

// zstdMaxWindow is the largest zstd window accepted, zstd's own default
// limit (--long=27): frames asking for more would cost that much memory.
const zstdMaxWindow = 1 << 27

var (
	gzipMagic = []byte{0x1f, 0x8b}
	zstdMagic = []byte{0x28, 0xb5, 0x2f, 0xfd}
)

// NewDecompress checks cfg and returns the stage.
func NewDecompress(cfg DecompressConfig) (*Decompress, error) {
	d := &Decompress{format: cfg.Format}
	if d.format == "" {
		d.format = FormatAuto
	}
	switch d.format {
	case FormatAuto, FormatGzip, FormatZstd:
	default:
		return nil, fmt.Errorf("decompress: format %q: want %s, %s or %s", cfg.Format, FormatAuto, FormatGzip, FormatZstd)
	}
	return d, nil
}

// Process returns f under its new name and a reader of the decompressed
// content, which is also an io.Closer; see the package doc. The content is
// not read until the reader is. Corrupt or truncated input, or input that is
// neither gzip nor zstd, makes the reader fail with a permanent error that
// names the file; an error reading r is returned wrapped, its permanence kept.
// Close must not be called while a Read is in progress.
func (d *Decompress) Process(ctx context.Context, f pipeline.File, r io.Reader) (pipeline.File, io.Reader, error) {
	ext := strings.ToLower(path.Ext(f.Name))
	byExt := map[string]string{".gz": FormatGzip, ".zst": FormatZstd}[ext]
	format := d.format
	if format == FormatAuto {
		format = byExt // "" leaves it to the magic number
	}
	dr := &decompressReader{src: &sourceReader{r: r}, name: f.Name, format: format}
	if byExt != "" && byExt == format && len(path.Base(f.Name)) > len(ext) {
		f.Name = f.Name[:len(f.Name)-len(ext)]
	}
	f.Size = -1
	f.SHA256 = ""
	return f, dr, nil
}

// sourceReader remembers the error of the reader a stage was given, to tell
// it apart from an error in the content.
type sourceReader struct {
	r   io.Reader
	err error
}

func (s *sourceReader) Read(p []byte) (int, error) {
	n, err := s.r.Read(p)
	if err != nil && err != io.EOF {
		s.err = err
	}
	return n, err
}

// decompressReader opens its decoder on the first Read.
type decompressReader struct {
	src    *sourceReader
	name   string
	format string // "" until the magic number says
	dec    io.Reader
	close  func()
	err    error // returned by every Read once set
}

func (d *decompressReader) Read(p []byte) (int, error) {
	if d.dec == nil && d.err == nil {
		d.err = d.open()
	}
	if d.err != nil {
		return 0, d.err
	}
	n, err := d.dec.Read(p)
	if err != nil && err != io.EOF {
		d.err = d.fail(err)
		return n, d.err
	}
	return n, err
}

func (d *decompressReader) open() error {
	br := bufio.NewReader(d.src)
	if d.format == "" {
		magic, err := br.Peek(len(zstdMagic))
		if d.src.err != nil {
			return d.fail(err)
		}
		switch {
		case bytes.HasPrefix(magic, gzipMagic):
			d.format = FormatGzip
		case bytes.HasPrefix(magic, zstdMagic):
			d.format = FormatZstd
		default:
			return pipeline.Permanent(fmt.Errorf("decompressing %q: neither gzip nor zstd (no .gz or .zst extension, and the content does not start with a gzip or zstd magic number)", d.name))
		}
	}
	if _, err := br.Peek(1); err != nil {
		return d.fail(err) // empty: zstd would read it as no frames, gzip as no members
	}
	switch d.format {
	case FormatGzip:
		zr, err := gzip.NewReader(br)
		if err != nil {
			return d.fail(err)
		}
		d.dec, d.close = zr, func() { discard.Close(zr) }
	case FormatZstd:
		zr, err := zstd.NewReader(br, zstd.WithDecoderConcurrency(1), zstd.WithDecoderMaxWindow(zstdMaxWindow))
		if err != nil {
			return d.fail(err)
		}
		d.dec, d.close = zr, zr.Close
	}
	return nil
}

// fail turns a decoder error into the error the reader returns.
func (d *decompressReader) fail(err error) error {
	if d.src.err != nil {
		return fmt.Errorf("decompressing %q: %w", d.name, d.src.err)
	}
	if err == io.EOF {
		err = io.ErrUnexpectedEOF
	}
	return pipeline.Permanent(fmt.Errorf("decompressing %q: corrupt %s data: %w", d.name, d.format, err))
}

// errDecompressClosed is returned by Read after Close.
var errDecompressClosed = errors.New("decompress: reader closed")

// Close releases the decoder. It does not close the input.
func (d *decompressReader) Close() error {
	if d.close != nil {
		d.close()
		d.close = nil
	}
	d.err = errDecompressClosed
	return nil
}

var _ pipeline.Stage = (*Decompress)(nil)
