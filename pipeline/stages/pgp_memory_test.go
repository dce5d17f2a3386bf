package stages_test

import (
	"crypto/sha256"
	"encoding/hex"
	"io"
	"math/rand/v2"
	"runtime"
	"testing"

	"github.com/mftflow/mftflow/pipeline"
	"github.com/mftflow/mftflow/pipeline/stages"
)

// randomReader yields n seeded random bytes without holding them.
type randomReader struct {
	rng *rand.ChaCha8
	n   int64
}

func (r *randomReader) Read(p []byte) (int, error) {
	if r.n <= 0 {
		return 0, io.EOF
	}
	p = p[:min(int64(len(p)), r.n)]
	r.rng.Read(p)
	r.n -= int64(len(p))
	return len(p), nil
}

// heapSampler is an io.Writer that notes the largest live heap every few
// MiB written through it.
type heapSampler struct {
	written, next int64
	peak          uint64
}

func (h *heapSampler) Write(p []byte) (int, error) {
	h.written += int64(len(p))
	if h.written >= h.next {
		h.next = h.written + 4<<20
		var m runtime.MemStats
		runtime.ReadMemStats(&m)
		h.peak = max(h.peak, m.HeapInuse)
	}
	return len(p), nil
}

// 64 MiB through pgp_encrypt (signed, armored) and pgp_decrypt, chained as
// in a flow, with a heap that stays far below the file's size.
func TestPGPConstantMemory(t *testing.T) {
	if testing.Short() {
		t.Skip("moves 64 MiB")
	}
	const size = 64 << 20
	bob, alice := testKey(t, "bob-25519", false), testKey(t, "alice-25519", false)
	enc := newEncrypt(t, stages.PGPEncryptConfig{Recipients: []string{bob.publicFile}, SigningKey: alice.privateFile, Armor: true})
	dec := newDecrypt(t, stages.PGPDecryptConfig{PrivateKeys: []string{bob.privateFile}, RequireSignature: true, Signers: []string{alice.publicFile}})

	runtime.GC()
	var before runtime.MemStats
	runtime.ReadMemStats(&before)
	in, out := sha256.New(), sha256.New()
	src := io.TeeReader(&randomReader{rng: rand.NewChaCha8([32]byte{9}), n: size}, in)
	f, r, err := enc.Process(t.Context(), pipeline.File{Name: "big.bin", Size: size}, src)
	if err != nil {
		t.Fatal(err)
	}
	defer r.(io.Closer).Close()
	_, r, err = dec.Process(t.Context(), f, r)
	if err != nil {
		t.Fatal(err)
	}
	sampler := &heapSampler{}
	n, err := io.Copy(io.MultiWriter(out, sampler), r)
	if err != nil {
		t.Fatal(err)
	}
	if want, got := hex.EncodeToString(in.Sum(nil)), hex.EncodeToString(out.Sum(nil)); n != size || got != want {
		t.Fatalf("round trip: %d bytes, sha256 %s; want %d, %s", n, got, size, want)
	}
	growth := int64(sampler.peak) - int64(before.HeapInuse)
	t.Logf("64 MiB: heap in use grew by at most %.1f MiB", float64(growth)/(1<<20))
	if growth > 16<<20 {
		t.Errorf("heap in use grew by %d MiB moving 64 MiB; want a bound that does not depend on the size (16 MiB)", growth>>20)
	}
}
