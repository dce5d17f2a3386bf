package stages_test

import (
	"bytes"
	"errors"
	"io"
	"testing"

	"github.com/mftflow/mftflow/pipeline"
	"github.com/mftflow/mftflow/pipeline/stages"
)

// compressed returns data compressed by the compress stage.
func compressed(t *testing.T, format string, data []byte) []byte {
	t.Helper()
	_, z := mustRun(t, newCompress(t, stages.CompressConfig{Format: format}), pipeline.File{Name: "x"}, data)
	return z
}

func TestDecompressFormatAndName(t *testing.T) {
	data := textBytes(10 << 10)
	gz, zst := compressed(t, stages.FormatGzip, data), compressed(t, stages.FormatZstd, data)
	for _, tt := range []struct {
		format, name string
		content      []byte
		want         string // the new name
	}{
		{"", "in/a.csv.gz", gz, "in/a.csv"},
		{"", "in/a.csv.zst", zst, "in/a.csv"},
		{"", "A.CSV.GZ", gz, "A.CSV"},
		{"", "a.Zst", zst, "a"},
		{"", "blob", gz, "blob"},          // by magic number
		{"", "blob.bin", zst, "blob.bin"}, // by magic number
		{"", ".gz", gz, ".gz"},            // nothing left to name
		{"", "in/.zst", zst, "in/.zst"},
		{stages.FormatAuto, "a.tar.gz", gz, "a.tar"},
		{stages.FormatGzip, "a.gz", gz, "a"},
		{stages.FormatGzip, "a.bin", gz, "a.bin"},
		{stages.FormatGzip, "a.zst", gz, "a.zst"}, // not the format's extension
		{stages.FormatZstd, "a.zst", zst, "a"},
		{stages.FormatZstd, "a.gz", zst, "a.gz"},
	} {
		d := newDecompress(t, stages.DecompressConfig{Format: tt.format})
		in := pipeline.File{Name: tt.name, Size: int64(len(tt.content)), SHA256: "abc", Key: "k"}
		out, got, err := run(t, d, in, bytes.NewReader(tt.content))
		if err != nil {
			t.Errorf("%s %q: %v", tt.format, tt.name, err)
			continue
		}
		if out.Name != tt.want || out.Size != -1 || out.SHA256 != "" || out.Key != "k" {
			t.Errorf("%s %q: got name %q size %d sha256 %q key %q; want %q -1 \"\" k", tt.format, tt.name, out.Name, out.Size, out.SHA256, out.Key, tt.want)
		}
		if !bytes.Equal(got, data) {
			t.Errorf("%s %q: content differs", tt.format, tt.name)
		}
	}
}

func TestDecompressConcatenated(t *testing.T) {
	for _, format := range []string{stages.FormatGzip, stages.FormatZstd} {
		z := append(compressed(t, format, []byte("hello ")), compressed(t, format, []byte("world"))...)
		_, got, err := run(t, newDecompress(t, stages.DecompressConfig{Format: format}), pipeline.File{Name: "a"}, bytes.NewReader(z))
		if err != nil || string(got) != "hello world" {
			t.Errorf("%s: got %q, %v; want \"hello world\"", format, got, err)
		}
	}
}

func TestDecompressBadInput(t *testing.T) {
	data := randomBytes(100<<10, 5)
	gz, zst := compressed(t, stages.FormatGzip, data), compressed(t, stages.FormatZstd, data)
	flip := func(b []byte, i int) []byte {
		b = bytes.Clone(b)
		b[i] ^= 0xff
		return b
	}
	for _, tt := range []struct {
		desc, format, name string
		content            []byte
		want               string
	}{
		{"not compressed", "", "notes.txt", []byte("plain text"), `decompressing "notes.txt": neither gzip nor zstd (no .gz or .zst extension, and the content does not start with a gzip or zstd magic number)`},
		{"empty, no extension", "", "empty", nil, `decompressing "empty": neither gzip nor zstd (no .gz or .zst extension, and the content does not start with a gzip or zstd magic number)`},
		{"one byte of magic", "", "x", gz[:1], `decompressing "x": neither gzip nor zstd (no .gz or .zst extension, and the content does not start with a gzip or zstd magic number)`},
		{"empty gzip", "", "a.gz", nil, `decompressing "a.gz": corrupt gzip data: unexpected EOF`},
		{"empty zstd", "", "a.zst", nil, `decompressing "a.zst": corrupt zstd data: unexpected EOF`},
		{"plain text as gzip", "", "a.gz", []byte("plain text"), `decompressing "a.gz": corrupt gzip data: gzip: invalid header`},
		{"zstd as gzip", "", "a.gz", zst, `decompressing "a.gz": corrupt gzip data: gzip: invalid header`},
		{"gzip as zstd", stages.FormatZstd, "a.bin", gz, `decompressing "a.bin": corrupt zstd data: invalid input: magic number mismatch`},
		{"truncated gzip", "", "a.gz", gz[:len(gz)/2], `decompressing "a.gz": corrupt gzip data: unexpected EOF`},
		{"truncated zstd", "", "a.zst", zst[:len(zst)/2], `decompressing "a.zst": corrupt zstd data: unexpected EOF`},
		{"gzip checksum", "", "a.gz", flip(gz, len(gz)-5), `decompressing "a.gz": corrupt gzip data: gzip: invalid checksum`},
		{"zstd checksum", "", "a.zst", flip(zst, len(zst)-1), `decompressing "a.zst": corrupt zstd data: CRC check failed`},
		{"gzip trailing garbage", "", "a.gz", append(bytes.Clone(gz), "this is not gzip data"...), `decompressing "a.gz": corrupt gzip data: gzip: invalid header`},
	} {
		t.Run(tt.desc, func(t *testing.T) {
			_, _, err := run(t, newDecompress(t, stages.DecompressConfig{Format: tt.format}), pipeline.File{Name: tt.name, Size: int64(len(tt.content))}, bytes.NewReader(tt.content))
			if err == nil || err.Error() != tt.want {
				t.Fatalf("got error\n%v\nwant\n%s", err, tt.want)
			}
			if !pipeline.IsPermanent(err) {
				t.Errorf("IsPermanent(%v) = false", err)
			}
		})
	}
}

func TestDecompressSourceError(t *testing.T) {
	transient := errors.New("connection reset")
	z := compressed(t, stages.FormatZstd, randomBytes(300<<10, 6))
	for _, tt := range []struct {
		desc      string
		name      string
		data      []byte
		err       error
		permanent bool
	}{
		{"before the magic number", "a", nil, transient, false},
		{"in the header", "a.gz", compressed(t, stages.FormatGzip, nil)[:4], transient, false},
		{"half-way", "a.zst", z[:len(z)/2], transient, false},
		{"half-way, permanent", "a.zst", z[:len(z)/2], pipeline.Permanent(transient), true},
	} {
		t.Run(tt.desc, func(t *testing.T) {
			_, _, err := run(t, newDecompress(t, stages.DecompressConfig{}), pipeline.File{Name: tt.name}, &errAfterReader{data: tt.data, err: tt.err})
			want := `decompressing "` + tt.name + `": connection reset`
			if err == nil || err.Error() != want {
				t.Fatalf("got error %v, want %q", err, want)
			}
			if !errors.Is(err, transient) || pipeline.IsPermanent(err) != tt.permanent {
				t.Errorf("error %v: errors.Is = %v, IsPermanent = %v; want true, %v", err, errors.Is(err, transient), pipeline.IsPermanent(err), tt.permanent)
			}
		})
	}
}

func TestDecompressClose(t *testing.T) {
	z := compressed(t, stages.FormatZstd, randomBytes(1<<20, 7))
	_, r, err := newDecompress(t, stages.DecompressConfig{}).Process(t.Context(), pipeline.File{Name: "a.zst"}, bytes.NewReader(z))
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
	if n, err := r.Read(make([]byte, 10)); n != 0 || err == nil || err.Error() != "decompress: reader closed" {
		t.Errorf("Read after Close: %d, %v; want 0, decompress: reader closed", n, err)
	}
	if err := rc.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
	// Closing a reader never read is fine too.
	_, r, _ = newDecompress(t, stages.DecompressConfig{}).Process(t.Context(), pipeline.File{Name: "a.zst"}, bytes.NewReader(z))
	if err := r.(io.Closer).Close(); err != nil {
		t.Error(err)
	}
}

func TestNewDecompressErrors(t *testing.T) {
	_, err := stages.NewDecompress(stages.DecompressConfig{Format: "bzip2"})
	want := `decompress: format "bzip2": want auto, gzip or zstd`
	if err == nil || err.Error() != want {
		t.Errorf("got error %v, want %q", err, want)
	}
}
