package thrusim

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"slices"
	"strconv"
	"strings"

	"github.com/mftflow/mftflow/internal/discard"
)

// blob is content the site keeps in a file of its spool directory: chunks,
// delivered files and pickups cost disk, not memory, whatever their size.
type blob struct {
	path string
	size int64
}

func (b blob) remove() {
	if b.path != "" {
		_ = os.Remove(b.path)
	}
}

// spoolFrom copies at most limit bytes of r into a new file of the spool
// directory. More is an error, and an error leaves no file behind.
func (s *Server) spoolFrom(r io.Reader, limit int64) (blob, error) {
	f, err := os.CreateTemp(s.spool, "blob-*")
	if err != nil {
		return blob{}, fmt.Errorf("spooling: %w", err)
	}
	n, err := io.Copy(f, io.LimitReader(r, limit+1))
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil && n > limit {
		err = fmt.Errorf("larger than %d bytes", limit)
	}
	if err != nil {
		_ = os.Remove(f.Name())
		return blob{}, err
	}
	return blob{path: f.Name(), size: n}, nil
}

// spoolBody is spoolFrom for the content of a request. With a reset fault
// it reads about half of expect bytes and cuts the connection.
func (req *request) spoolBody(s *Server, r io.Reader, limit, expect int64) (blob, error) {
	if req.reset {
		_, _ = io.CopyN(io.Discard, r, expect/2)
		req.cutConnection()
		return blob{}, errCut
	}
	return s.spoolFrom(r, limit)
}

func sortedKeys[V any](m map[int]V) []int {
	keys := make([]int, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

// assemble returns chunks 1..N in order and their total size, checking
// there is no gap and, when want >= 0, that the sizes add up to want. The
// bytes stay where they are: the file is its chunks, read one after another.
func assemble(chunks map[int]blob, want int64) ([]blob, int64, error) {
	keys := sortedKeys(chunks)
	var total int64
	var missing []string
	parts := make([]blob, 0, len(keys))
	for i, k := range keys {
		total += chunks[k].size
		parts = append(parts, chunks[k])
		prev := 0
		if i > 0 {
			prev = keys[i-1]
		}
		for m := prev + 1; m < k && len(missing) < 10; m++ {
			missing = append(missing, strconv.Itoa(m))
		}
	}
	if len(missing) > 0 {
		return nil, 0, fmt.Errorf("chunks missing: %s (have %d chunks up to %d)", strings.Join(missing, ", "), len(keys), keys[len(keys)-1])
	}
	if want >= 0 && total != want {
		return nil, 0, fmt.Errorf("chunk sizes add up to %d bytes in %d chunks, the file size is %d", total, len(keys), want)
	}
	return parts, total, nil
}

// hashParts returns the hex sha256 of parts read in order.
func hashParts(parts []blob) (string, error) {
	h := sha256.New()
	r := &partsReader{parts: parts}
	defer discard.Close(r)
	if _, err := io.Copy(h, r); err != nil {
		return "", err
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// partsReader reads the files of parts one after another.
type partsReader struct {
	parts []blob
	f     *os.File
}

func (r *partsReader) Read(p []byte) (int, error) {
	for {
		if r.f == nil {
			if len(r.parts) == 0 {
				return 0, io.EOF
			}
			f, err := os.Open(r.parts[0].path)
			if err != nil {
				return 0, err
			}
			r.f, r.parts = f, r.parts[1:]
		}
		n, err := r.f.Read(p)
		if err == io.EOF {
			discard.Close(r.f)
			r.f = nil
			if n == 0 {
				continue
			}
			err = nil
		}
		return n, err
	}
}

func (r *partsReader) Close() error {
	if r.f != nil {
		return r.f.Close()
	}
	return nil
}

// Open returns the delivered content as the site holds it, read from its
// spool directory; close it after use. It fails once the server is closed.
func (d Delivery) Open() (io.ReadCloser, error) {
	if len(d.parts) > 0 {
		if _, err := os.Stat(d.parts[0].path); err != nil {
			return nil, fmt.Errorf("thrusim: delivery %s: %w", d.FileCode, err)
		}
	}
	return &partsReader{parts: d.parts}, nil
}

// Bytes returns the delivered content, read whole into memory: for files of
// test size. Use Open or the SHA256 field for large ones.
func (d Delivery) Bytes() ([]byte, error) {
	r, err := d.Open()
	if err != nil {
		return nil, err
	}
	defer discard.Close(r)
	return io.ReadAll(r)
}
