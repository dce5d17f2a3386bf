package stages_test

import (
	"bytes"
	"context"
	"io"
	"math/rand/v2"
	"testing"

	"github.com/mftflow/mftflow/pipeline"
	"github.com/mftflow/mftflow/testkit"
)

// run passes data through s and reads the whole output. A Process error is
// returned as it is, with a nil output.
func run(t *testing.T, s pipeline.Stage, f pipeline.File, r io.Reader) (pipeline.File, []byte, error) {
	t.Helper()
	out, rr, err := s.Process(context.Background(), f, r)
	if err != nil {
		return out, nil, err
	}
	if c, ok := rr.(io.Closer); ok {
		defer c.Close()
	}
	b, err := io.ReadAll(rr)
	return out, b, err
}

// mustRun is run that fails the test on any error.
func mustRun(t *testing.T, s pipeline.Stage, f pipeline.File, data []byte) (pipeline.File, []byte) {
	t.Helper()
	out, b, err := run(t, s, f, bytes.NewReader(data))
	if err != nil {
		t.Fatalf("%s: %v", f.Name, err)
	}
	return out, b
}

func randomBytes(n int, seed uint64) []byte {
	r := rand.New(rand.NewChaCha8([32]byte{byte(seed), byte(seed >> 8)}))
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	return b
}

// textBytes returns compressible data.
func textBytes(n int) []byte {
	var b bytes.Buffer
	for i := 0; b.Len() < n; i++ {
		b.WriteString("line ")
		b.WriteByte(byte('a' + i%26))
		b.WriteString(" of a compressible test file\n")
	}
	return b.Bytes()[:n]
}

// sum is short for testkit.SHA256Hex, which the checks here call often.
var sum = testkit.SHA256Hex

// errAfterReader yields data, then fails with err.
type errAfterReader struct {
	data []byte
	err  error
}

func (r *errAfterReader) Read(p []byte) (int, error) {
	if len(r.data) == 0 {
		return 0, r.err
	}
	n := copy(p, r.data)
	r.data = r.data[n:]
	return n, nil
}
