package bench

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"

	"github.com/mftflow/mftflow/internal/discard"
	"github.com/mftflow/mftflow/pipeline"
)

// Data kinds of a synthetic workload.
const (
	DataRandom = "random" // incompressible: compression can only cost
	DataText   = "text"   // text-like records that s2 and zstd shrink several times
)

// Workload is a synthetic source: Files files of Size bytes each.
type Workload struct {
	Files int    `json:"files"`
	Size  int64  `json:"size"`
	Data  string `json:"data"` // DataRandom or DataText
}

// Bytes is the workload's total size.
func (w Workload) Bytes() int64 { return int64(w.Files) * w.Size }

func (w Workload) String() string {
	return fmt.Sprintf("%d × %s %s", w.Files, pipeline.ExactSize(w.Size), w.Data)
}

// Check reports settings that cannot be generated.
func (w Workload) Check() error {
	var errs []error
	if w.Files < 1 {
		errs = append(errs, fmt.Errorf("--files %d: must be at least 1", w.Files))
	}
	if w.Size < 0 {
		errs = append(errs, fmt.Errorf("--size %d: must not be negative", w.Size))
	}
	if w.Data != DataRandom && w.Data != DataText {
		errs = append(errs, fmt.Errorf("--content: %q is not random or text", w.Data))
	}
	return errors.Join(errs...)
}

// Generate writes the workload's files into dir (created if missing) as
// file-00000.bin, file-00001.bin... The content depends only on the file's
// index and the data kind, so runs and machines compare like with like.
func (w Workload) Generate(dir string) error {
	if err := w.Check(); err != nil {
		return err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("creating the workload directory: %w", err)
	}
	for i := range w.Files {
		name := filepath.Join(dir, fmt.Sprintf("file-%05d.bin", i))
		if err := writeData(name, w.Size, uint64(i), w.Data == DataText); err != nil {
			return fmt.Errorf("generating %s: %w", name, err)
		}
	}
	return nil
}

// words make up text data: short, repetitive records, like CSV exports.
var words = []string{"order", "invoice", "ACME", "2026-11-22", "EUR", "shipment", "partner", "12.50", "\n", ",", "Globex", "status"}

func writeData(name string, size int64, seed uint64, text bool) error {
	f, err := os.Create(name)
	if err != nil {
		return err
	}
	w := bufio.NewWriterSize(f, 1<<20)
	// The Go benchmarks (benchmarks/harness.go) generate their workloads
	// with Generate too, so their results and runner bench's compare.
	rng := rand.New(rand.NewChaCha8([32]byte{byte(seed), byte(seed >> 8), byte(seed >> 16)}))
	buf := make([]byte, 1<<20)
	for left := size; left > 0; {
		if text {
			for i := 0; i < len(buf); {
				i += copy(buf[i:], words[rng.IntN(len(words))]+" ")
			}
		} else {
			for i := 0; i+8 <= len(buf); i += 8 {
				binary.LittleEndian.PutUint64(buf[i:], rng.Uint64())
			}
		}
		n := min(int64(len(buf)), left)
		if _, err := w.Write(buf[:n]); err != nil {
			discard.Close(f) // err says already that the file is incomplete
			return err
		}
		left -= n
	}
	if err := w.Flush(); err != nil {
		discard.Close(f)
		return err
	}
	return f.Close()
}
