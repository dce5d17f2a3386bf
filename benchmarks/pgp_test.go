package benchmarks

import (
	"bytes"
	"crypto/sha256"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime"
	"syscall"
	"testing"

	"github.com/ProtonMail/go-crypto/openpgp"
	"github.com/ProtonMail/go-crypto/openpgp/armor"
	"github.com/ProtonMail/go-crypto/openpgp/packet"

	"github.com/mftflow/mftflow/bench"
	"github.com/mftflow/mftflow/pipeline"
	"github.com/mftflow/mftflow/pipeline/stages"
)

// pgpSizes are the sizes BenchmarkPGPStages moves; 2 GiB only with
// MFTFLOW_BENCH_PGP_2G=1.
var pgpSizes = []Workload{
	{Workload: bench.Workload{Files: 1, Size: 256 << 20, Data: bench.DataRandom}},
	{Workload: bench.Workload{Files: 1, Size: 2 << 30, Data: bench.DataRandom}, Env: "MFTFLOW_BENCH_PGP_2G"},
}

// BenchmarkPGPStages encrypts a file with pgp_encrypt (Curve25519 keys,
// signed, binary, not compressed: random data does not compress) and
// decrypts it with pgp_decrypt (signature required), chained as in a flow
// and in this process: the bytes are generated as they are read and never
// stored. It reports MB/s of plaintext, the largest live heap seen (sampled
// every 16 MiB) and the process's peak RSS, which both stay flat from 256
// MiB to 2 GiB.
func BenchmarkPGPStages(b *testing.B) {
	enc, dec := pgpStages(b)
	for _, w := range pgpSizes {
		b.Run(w.Name(), func(b *testing.B) {
			if ok, why := w.Enabled(); !ok {
				b.Skip(why)
			}
			b.SetBytes(w.Size)
			var peakHeap uint64
			for b.Loop() {
				peakHeap = max(peakHeap, pgpRoundTrip(b, enc, dec, w.Size))
			}
			var ru syscall.Rusage
			syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
			b.ReportMetric(float64(peakHeap)/(1<<20), "peak-heap-MiB")
			b.ReportMetric(float64(ru.Maxrss)/(1<<10), "peak-RSS-MiB") // Linux: KiB
		})
	}
}

// pgpRoundTrip moves size bytes through both stages, checks them by
// sha256 and returns the largest live heap seen.
func pgpRoundTrip(b *testing.B, enc, dec pipeline.Stage, size int64) uint64 {
	in, out := sha256.New(), sha256.New()
	src := io.TeeReader(io.LimitReader(rand.NewChaCha8([32]byte{1}), size), in)
	f, r, err := enc.Process(b.Context(), pipeline.File{Name: "big.bin", Size: size}, src)
	if err != nil {
		b.Fatal(err)
	}
	defer r.(io.Closer).Close()
	if _, r, err = dec.Process(b.Context(), f, r); err != nil {
		b.Fatal(err)
	}
	var peak uint64
	buf := make([]byte, 1<<20)
	for read, next := int64(0), int64(0); ; {
		n, err := r.Read(buf)
		out.Write(buf[:n])
		if read += int64(n); read >= next {
			next = read + 16<<20
			var m runtime.MemStats
			runtime.ReadMemStats(&m)
			peak = max(peak, m.HeapInuse)
		}
		if err == io.EOF {
			break
		}
		if err != nil {
			b.Fatal(err)
		}
	}
	if !bytes.Equal(in.Sum(nil), out.Sum(nil)) {
		b.Fatal("the round trip changed the content")
	}
	return peak
}

// pgpStages returns the two stages with fresh keys written to a temporary
// directory.
func pgpStages(b *testing.B) (enc, dec pipeline.Stage) {
	dir := b.TempDir()
	write := func(e *openpgp.Entity, name string, private bool) string {
		var buf bytes.Buffer
		typ := openpgp.PublicKeyType
		if private {
			typ = openpgp.PrivateKeyType
		}
		w, _ := armor.Encode(&buf, typ, nil)
		var err error
		if private {
			err = e.SerializePrivateWithoutSigning(w, nil)
		} else {
			err = e.Serialize(w)
		}
		w.Close()
		path := filepath.Join(dir, name)
		if err == nil {
			err = os.WriteFile(path, buf.Bytes(), 0o600)
		}
		if err != nil {
			b.Fatal(err)
		}
		return path
	}
	cfg := &packet.Config{Algorithm: packet.PubKeyAlgoEdDSA, Curve: packet.Curve25519}
	to, err := openpgp.NewEntity("recipient", "", "recipient@example.com", cfg)
	if err != nil {
		b.Fatal(err)
	}
	from, err := openpgp.NewEntity("sender", "", "sender@example.com", cfg)
	if err != nil {
		b.Fatal(err)
	}
	e, err := stages.NewPGPEncrypt(stages.PGPEncryptConfig{Recipients: []string{write(to, "to.asc", false)}, SigningKey: write(from, "from.sec.asc", true)})
	if err != nil {
		b.Fatal(err)
	}
	d, err := stages.NewPGPDecrypt(stages.PGPDecryptConfig{PrivateKeys: []string{write(to, "to.sec.asc", true)}, RequireSignature: true, Signers: []string{write(from, "from.asc", false)}})
	if err != nil {
		b.Fatal(err)
	}
	return e, d
}
