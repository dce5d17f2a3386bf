package stages

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"

	"github.com/mftflow/mftflow/pipeline"
)

// Compression formats, as written in CompressConfig.Format and
// DecompressConfig.Format.
const (
	FormatGzip = "gzip"
	FormatZstd = "zstd"
	// FormatAuto lets Decompress pick the format from the file's extension,
	// else from its first bytes.
	FormatAuto = "auto"
)

// CompressConfig sets a Compress stage's format and level.
type CompressConfig struct {
	// Format is FormatGzip (the default when empty) or FormatZstd.
	Format string `config:"format"`
	// Level is the compression level; 0 means the library default. gzip
	// takes 1 (fastest) to 9 (smallest). zstd takes zstd's levels 1 to 22,
	// which map onto four encoder speeds: 1-2 fastest, 3-5 default, 6-9
	// better, 10-22 best.
	Level int `config:"level"`
}

// Compress compresses each file's content with gzip or zstd and appends
// ".gz" or ".zst" to its name. The new size and sha256 are unknown until the
// engine has read the output (Size -1, SHA256 ""). It is safe for concurrent
// use.
//
// The output depends only on the input bytes and the config: the gzip header
// carries no time or name, and zstd is encoded on one goroutine (its
// concurrent mode may split blocks differently from run to run).
type Compress struct {
	format string
	level  int
	ext    string
}

// NewCompress checks cfg and returns the stage.
func NewCompress(cfg CompressConfig) (*Compress, error) {
	c := &Compress{format: cfg.Format, level: cfg.Level}
	if c.format == "" {
		c.format = FormatGzip
	}
	switch c.format {
	case FormatGzip:
		c.ext = ".gz"
		if cfg.Level < 0 || cfg.Level > gzip.BestCompression {
			return nil, fmt.Errorf("compress: level %d: gzip levels are 1 (fastest) to 9 (smallest), or 0 for the default", cfg.Level)
		}
		if c.level == 0 {
			c.level = gzip.DefaultCompression
		}
	case FormatZstd:
		c.ext = ".zst"
		if cfg.Level < 0 || cfg.Level > 22 {
			return nil, fmt.Errorf("compress: level %d: zstd levels are 1 (fastest) to 22 (smallest), or 0 for the default", cfg.Level)
		}
		if c.level == 0 {
			c.level = 3 // zstd's default level
		}
	default:
		return nil, fmt.Errorf("compress: format %q: want %s or %s", cfg.Format, FormatGzip, FormatZstd)
	}
	return c, nil
}

// Process returns f with the extension added and a reader of the compressed
// content, which is also an io.Closer; see the package doc. Compressing runs
// on a goroutine started by the first Read and stopped by Close or by the end
// of r. Errors reading r are returned by the reader, wrapped, with their
// permanence kept.
func (c *Compress) Process(ctx context.Context, f pipeline.File, r io.Reader) (pipeline.File, io.Reader, error) {
	name := f.Name
	f.Name += c.ext
	f.Size = -1
	f.SHA256 = ""
	return f, newPipedReader(func(w io.Writer) error { return c.compress(w, r, name) }), nil
}

// compress writes r, compressed, to w. A nil error means the output is complete.
func (c *Compress) compress(w io.Writer, r io.Reader, name string) error {
	// A fresh encoder per file, never a pooled one: a reused encoder might
	// not give the very same bytes as the fresh one a restarted runner uses.
	var enc io.WriteCloser
	switch c.format {
	case FormatGzip:
		zw, err := gzip.NewWriterLevel(w, c.level)
		if err != nil {
			return fmt.Errorf("compressing %q: %w", name, err)
		}
		// MTIME 0 means "no time". The zero time.Time would not do: this
		// package writes its Unix seconds truncated to 32 bits, a date in 2042.
		zw.ModTime = time.Unix(0, 0)
		enc = zw
	case FormatZstd:
		zw, err := zstd.NewWriter(w,
			zstd.WithEncoderConcurrency(1),
			zstd.WithEncoderLevel(zstd.EncoderLevelFromZstd(c.level)),
			zstd.WithZeroFrames(true)) // empty input still gives a valid frame
		if err != nil {
			return fmt.Errorf("compressing %q: %w", name, err)
		}
		enc = zw
	}
	if _, err := io.Copy(enc, r); err != nil {
		_ = enc.Close() // the copy failed: what it would flush is not wanted
		if errors.Is(err, errReaderClosed) {
			return err
		}
		return fmt.Errorf("compressing %q: %w", name, err)
	}
	if err := enc.Close(); err != nil {
		if errors.Is(err, errReaderClosed) {
			return err
		}
		return fmt.Errorf("compressing %q: %w", name, err)
	}
	return nil
}

var _ pipeline.Stage = (*Compress)(nil)
