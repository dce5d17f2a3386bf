package stages_test

import (
	"bytes"
	stdgzip "compress/gzip"
	"errors"
	"fmt"
	"io"
	"testing"
	"testing/iotest"

	"github.com/google/go-cmp/cmp"

	"github.com/mftflow/mftflow/pipeline"
	"github.com/mftflow/mftflow/pipeline/stages"
)

func newCompress(t *testing.T, cfg stages.CompressConfig) *stages.Compress {
	t.Helper()
	c, err := stages.NewCompress(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func newDecompress(t *testing.T, cfg stages.DecompressConfig) *stages.Decompress {
	t.Helper()
	d, err := stages.NewDecompress(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return d
}

func TestCompressRoundTrip(t *testing.T) {
	inputs := []struct {
		name string
		data []byte
	}{
		{"empty", nil},
		{"one byte", []byte{'x'}},
		{"5MiB random", randomBytes(5<<20, 1)},
		{"1MiB text", textBytes(1 << 20)},
	}
	for _, format := range []struct{ name, ext string }{{stages.FormatGzip, ".gz"}, {stages.FormatZstd, ".zst"}} {
		for _, in := range inputs {
			t.Run(format.name+"/"+in.name, func(t *testing.T) {
				c := newCompress(t, stages.CompressConfig{Format: format.name})
				file := pipeline.File{Key: "k", Name: "in/a.csv", Size: int64(len(in.data)), SHA256: sum(in.data), Attrs: map[string]string{"a": "b"}}
				zf, z := mustRun(t, c, file, in.data)
				want := file
				want.Name, want.Size, want.SHA256 = "in/a.csv"+format.ext, -1, ""
				if diff := cmp.Diff(want, zf); diff != "" {
					t.Errorf("compressed file (-want +got):\n%s", diff)
				}
				for _, df := range []string{stages.FormatAuto, format.name} {
					d := newDecompress(t, stages.DecompressConfig{Format: df})
					uf, u := mustRun(t, d, zf, z)
					if sum(u) != sum(in.data) {
						t.Fatalf("decompress %s: got %d bytes, sha256 %s; want %d bytes, sha256 %s", df, len(u), sum(u), len(in.data), sum(in.data))
					}
					want.Name = "in/a.csv"
					if diff := cmp.Diff(want, uf); diff != "" {
						t.Errorf("decompressed file (-want +got):\n%s", diff)
					}
				}
			})
		}
	}
}

func TestCompressLevels(t *testing.T) {
	data := textBytes(300 << 10)
	for _, tt := range []struct {
		format string
		level  int
	}{
		{stages.FormatGzip, 1}, {stages.FormatGzip, 9},
		{stages.FormatZstd, 1}, {stages.FormatZstd, 7}, {stages.FormatZstd, 22},
	} {
		t.Run(fmt.Sprintf("%s-%d", tt.format, tt.level), func(t *testing.T) {
			zf, z := mustRun(t, newCompress(t, stages.CompressConfig{Format: tt.format, Level: tt.level}), pipeline.File{Name: "a"}, data)
			if len(z) >= len(data)/4 {
				t.Errorf("text compressed to %d of %d bytes", len(z), len(data))
			}
			_, u := mustRun(t, newDecompress(t, stages.DecompressConfig{}), zf, z)
			if !bytes.Equal(u, data) {
				t.Errorf("round trip changed the content")
			}
		})
	}
}

// The same input must give the same bytes however it is read, because after a
// crash the engine compresses the file again and keeps only the bytes it had
// not stored.
func TestCompressIsDeterministic(t *testing.T) {
	data := append(textBytes(400<<10), randomBytes(400<<10, 2)...)
	readers := []struct {
		name string
		fn   func([]byte) io.Reader
	}{
		{"bytes.Reader", func(b []byte) io.Reader { return bytes.NewReader(b) }},
		{"one byte", func(b []byte) io.Reader { return iotest.OneByteReader(bytes.NewReader(b)) }},
		{"half", func(b []byte) io.Reader { return iotest.HalfReader(bytes.NewReader(b)) }},
		{"data with EOF", func(b []byte) io.Reader { return iotest.DataErrReader(bytes.NewReader(b)) }},
	}
	for _, cfg := range []stages.CompressConfig{
		{Format: stages.FormatGzip}, {Format: stages.FormatGzip, Level: 9},
		{Format: stages.FormatZstd}, {Format: stages.FormatZstd, Level: 19},
	} {
		t.Run(fmt.Sprintf("%s-%d", cfg.Format, cfg.Level), func(t *testing.T) {
			var first []byte
			for _, rd := range readers {
				// A new stage each time, as after a restart.
				_, out, err := run(t, newCompress(t, cfg), pipeline.File{Name: "a"}, rd.fn(data))
				if err != nil {
					t.Fatal(err)
				}
				if first == nil {
					first = out
				} else if !bytes.Equal(out, first) {
					t.Errorf("reading the input with %s gave other bytes (%d, sha256 %s) than %s (%d, sha256 %s)",
						rd.name, len(out), sum(out), readers[0].name, len(first), sum(first))
				}
			}
		})
	}
}

func TestCompressGzipHeader(t *testing.T) {
	_, z := mustRun(t, newCompress(t, stages.CompressConfig{}), pipeline.File{Name: "secret-name.csv"}, []byte("hello"))
	zr, err := stdgzip.NewReader(bytes.NewReader(z))
	if err != nil {
		t.Fatal(err)
	}
	if !zr.ModTime.IsZero() || zr.Name != "" || zr.Comment != "" {
		t.Errorf("header carries ModTime %v, Name %q, Comment %q; want none", zr.ModTime, zr.Name, zr.Comment)
	}
	if got, err := io.ReadAll(zr); err != nil || string(got) != "hello" {
		t.Errorf("the standard library read %q, %v", got, err)
	}
}

func TestCompressSourceError(t *testing.T) {
	transient := errors.New("connection reset")
	for _, tt := range []struct {
		name      string
		err       error
		permanent bool
	}{
		{"transient", transient, false},
		{"permanent", pipeline.Permanent(transient), true},
	} {
		for _, format := range []string{stages.FormatGzip, stages.FormatZstd} {
			t.Run(tt.name+"/"+format, func(t *testing.T) {
				src := &errAfterReader{data: randomBytes(200<<10, 3), err: tt.err}
				_, _, err := run(t, newCompress(t, stages.CompressConfig{Format: format}), pipeline.File{Name: "a.csv"}, src)
				want := `compressing "a.csv": connection reset`
				if err == nil || err.Error() != want {
					t.Fatalf("got error %v, want %q", err, want)
				}
				if !errors.Is(err, transient) || pipeline.IsPermanent(err) != tt.permanent {
					t.Errorf("error %v: errors.Is = %v, IsPermanent = %v; want true, %v", err, errors.Is(err, transient), pipeline.IsPermanent(err), tt.permanent)
				}
			})
		}
	}
}

func TestCompressCloseHalfWay(t *testing.T) {
	for _, format := range []string{stages.FormatGzip, stages.FormatZstd} {
		t.Run(format, func(t *testing.T) {
			_, r, err := newCompress(t, stages.CompressConfig{Format: format}).Process(t.Context(), pipeline.File{Name: "a"}, bytes.NewReader(randomBytes(5<<20, 4)))
			if err != nil {
				t.Fatal(err)
			}
			if _, err := io.ReadFull(r, make([]byte, 1000)); err != nil {
				t.Fatal(err)
			}
			rc := r.(io.ReadCloser)
			if err := rc.Close(); err != nil {
				t.Fatal(err)
			}
			if n, err := r.Read(make([]byte, 10)); n != 0 || !errors.Is(err, io.ErrClosedPipe) {
				t.Errorf("Read after Close: %d, %v; want 0, %v", n, err, io.ErrClosedPipe)
			}
			if err := rc.Close(); err != nil {
				t.Errorf("second Close: %v", err)
			}
		})
	}
}

func TestNewCompressErrors(t *testing.T) {
	for _, tt := range []struct {
		cfg  stages.CompressConfig
		want string
	}{
		{stages.CompressConfig{Format: "lz4"}, `compress: format "lz4": want gzip or zstd`},
		{stages.CompressConfig{Level: 10}, "compress: level 10: gzip levels are 1 (fastest) to 9 (smallest), or 0 for the default"},
		{stages.CompressConfig{Level: -1}, "compress: level -1: gzip levels are 1 (fastest) to 9 (smallest), or 0 for the default"},
		{stages.CompressConfig{Format: stages.FormatZstd, Level: 23}, "compress: level 23: zstd levels are 1 (fastest) to 22 (smallest), or 0 for the default"},
	} {
		_, err := stages.NewCompress(tt.cfg)
		if err == nil || err.Error() != tt.want {
			t.Errorf("NewCompress(%+v): got error %v, want %q", tt.cfg, err, tt.want)
		}
	}
}
