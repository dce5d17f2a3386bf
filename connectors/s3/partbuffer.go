package s3

import (
	"bytes"
	"crypto/md5"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"hash"
	"hash/crc32"
	"io"
	"os"

	"github.com/mftflow/mftflow/internal/discard"
	"github.com/mftflow/mftflow/pipeline"
)

// partBuffer holds one part so the SDK can read it more than once (to retry
// it): the caller's own slices when it hands them over as *net.Buffers (the
// engine does), else a copy in memory or, for big parts, a temporary file.
type partBuffer struct {
	body   io.ReadSeeker
	file   *os.File
	crc32c string // base64, as S3 reports it
	md5    string // base64, "" unless asked for
	md5hex string
}

func (b *partBuffer) close() {
	if b.file != nil {
		// Only a copy of a part that was sent or given up: a file left
		// behind only takes space.
		discard.Close(b.file)
		_ = os.Remove(b.file.Name())
	}
}

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// bufferPart takes the size bytes of a part from r and computes their
// CRC32C, and their MD5 if withMD5.
func bufferPart(r io.Reader, size int64, withMD5 bool) (*partBuffer, error) {
	if sl, ok := pipeline.SlicesOf(r, 0, size); ok {
		b := &partBuffer{body: sl}
		b.sums(sl.Buffers(), withMD5)
		return b, nil
	}
	b := &partBuffer{}
	var err error
	var n int64
	if size <= memPartMax {
		buf := make([]byte, size)
		var m int
		m, err = io.ReadFull(r, buf)
		n = int64(m)
		if err == io.ErrUnexpectedEOF || err == io.EOF {
			err = nil // reported below, with the sizes
		}
		b.body = bytes.NewReader(buf)
		b.sums([][]byte{buf}, withMD5)
	} else {
		if b.file, err = os.CreateTemp("", "mftflow-s3-part-*"); err != nil {
			return nil, fmt.Errorf("spooling a part: %w", err)
		}
		crc, sum := crc32.New(castagnoli), md5.New()
		to := []io.Writer{b.file, crc}
		if withMD5 {
			to = append(to, sum)
		}
		n, err = io.Copy(io.MultiWriter(to...), io.LimitReader(r, size))
		if err == nil {
			_, err = b.file.Seek(0, io.SeekStart)
		}
		b.body = b.file
		b.crc32c = checksumB64(crc)
		if withMD5 {
			b.setMD5(sum.Sum(nil))
		}
	}
	if err == nil && n != size {
		err = fmt.Errorf("the part reader gave %d bytes, want %d: %w", n, size, io.ErrUnexpectedEOF)
	}
	if err != nil {
		b.close()
		return nil, err
	}
	return b, nil
}

func (b *partBuffer) sums(bufs [][]byte, withMD5 bool) {
	var crc uint32
	var sum hash.Hash
	if withMD5 {
		sum = md5.New()
	}
	for _, p := range bufs {
		crc = crc32.Update(crc, castagnoli, p)
		if sum != nil {
			sum.Write(p)
		}
	}
	var v [4]byte
	binary.BigEndian.PutUint32(v[:], crc)
	b.crc32c = base64.StdEncoding.EncodeToString(v[:])
	if sum != nil {
		b.setMD5(sum.Sum(nil))
	}
}

func (b *partBuffer) setMD5(sum []byte) {
	b.md5 = base64.StdEncoding.EncodeToString(sum)
	b.md5hex = hex.EncodeToString(sum)
}

// md5Hex returns the part's MD5, computing it if it was not asked for.
func (b *partBuffer) md5Hex() (string, error) {
	if b.md5hex == "" {
		sum := md5.New()
		if _, err := b.body.Seek(0, io.SeekStart); err != nil {
			return "", err
		}
		if _, err := io.Copy(sum, b.body); err != nil {
			return "", err
		}
		if _, err := b.body.Seek(0, io.SeekStart); err != nil {
			return "", err
		}
		b.setMD5(sum.Sum(nil))
	}
	return b.md5hex, nil
}

func checksumB64(h hash.Hash32) string {
	var v [4]byte
	binary.BigEndian.PutUint32(v[:], h.Sum32())
	return base64.StdEncoding.EncodeToString(v[:])
}
