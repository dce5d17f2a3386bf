package pipeline_test

import (
	"bytes"
	"io"
	"math/rand/v2"
	"net"
	"strings"
	"testing"
	"testing/iotest"

	"github.com/mftflow/mftflow/pipeline"
)

func TestSlices(t *testing.T) {
	content := make([]byte, 100_000)
	rng := rand.New(rand.NewPCG(61, 0))
	for i := range content {
		content[i] = byte(rng.Uint32())
	}
	var bufs net.Buffers
	rest := content
	for _, n := range []int{1, 0, 4095, 50_000, 3} {
		bufs = append(bufs, rest[:n])
		rest = rest[n:]
	}
	bufs = append(bufs, rest)
	for _, r := range [][2]int64{{0, 100_000}, {0, 1}, {1, 4095}, {4000, 60_000}, {99_999, 1}, {100_000, 0}, {54_099, 45_901}} {
		off, size := r[0], r[1]
		want := content[off : off+size]
		sl, ok := pipeline.SlicesOf(&bufs, off, size)
		if !ok {
			t.Fatalf("SlicesOf(%d, %d): not ok", off, size)
		}
		if err := iotest.TestReader(sl, want); err != nil {
			t.Errorf("SlicesOf(%d, %d): %v", off, size, err)
		}
		sec := io.NewSectionReader(sl, 0, size)
		if err := iotest.TestReader(sec, want); err != nil {
			t.Errorf("SlicesOf(%d, %d) through ReadAt: %v", off, size, err)
		}
		// WriteTo from the middle, after a Read, then again after a Seek.
		for range 2 {
			if _, err := sl.Seek(0, io.SeekStart); err != nil {
				t.Fatal(err)
			}
			head := make([]byte, size/3)
			if n, err := io.ReadFull(sl, head); err != nil || n != len(head) {
				t.Fatalf("Read: %d, %v", n, err)
			}
			var tail bytes.Buffer
			if _, err := sl.WriteTo(&tail); err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(append(head, tail.Bytes()...), want) {
				t.Errorf("SlicesOf(%d, %d): Read then WriteTo gave other bytes", off, size)
			}
		}
	}
	if len(bufs) != 6 || len(bufs[5]) != len(rest) {
		t.Error("SlicesOf consumed its reader")
	}
	if _, ok := pipeline.SlicesOf(&bufs, 1, 100_000); ok {
		t.Error("SlicesOf past the end: ok")
	}
	if _, ok := pipeline.SlicesOf(strings.NewReader("abc"), 0, 3); ok {
		t.Error("SlicesOf of a strings.Reader: ok")
	}
}
