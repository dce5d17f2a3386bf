package benchmarks

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"
)

// Workload is a named set of input files every connector's benchmark runs.
type Workload struct {
	Name  string
	Files int
	Size  int64 // bytes per file
	// Compressible data is text-like; otherwise it is random.
	Compressible bool
	// Env, when set, names an environment variable that must be "1" to run
	// the workload (for the very large ones).
	Env string
}

// Bytes is the workload's total size.
func (w Workload) Bytes() int64 { return int64(w.Files) * w.Size }

// Workloads shared by the benchmarks.
var Workloads = []Workload{
	{Name: "1GiB-random", Files: 1, Size: 1 << 30},
	{Name: "4GiB-random", Files: 1, Size: 4 << 30, Env: "MFTFLOW_BENCH_4G"},
	{Name: "100x10MiB-random", Files: 100, Size: 10 << 20},
	{Name: "1GiB-text", Files: 1, Size: 1 << 30, Compressible: true},
}

// Enabled reports whether w should run, and why not.
func (w Workload) Enabled() (bool, string) {
	if w.Env != "" && os.Getenv(w.Env) != "1" {
		return false, fmt.Sprintf("set %s=1 to run %s", w.Env, w.Name)
	}
	return true, ""
}

// Materialize writes the workload's files under dir/<name>/in, once: an
// existing complete set is reused. It returns the input directory.
func (w Workload) Materialize(dir string) (string, error) {
	in := filepath.Join(dir, w.Name, "in")
	done := filepath.Join(dir, w.Name, ".complete")
	if _, err := os.Stat(done); err == nil {
		return in, nil
	}
	if err := os.MkdirAll(in, 0o755); err != nil {
		return "", err
	}
	for i := range w.Files {
		name := filepath.Join(in, fmt.Sprintf("file-%05d.bin", i))
		if err := writeData(name, w.Size, uint64(i), w.Compressible); err != nil {
			return "", err
		}
	}
	return in, os.WriteFile(done, nil, 0o644)
}

var words = []string{"order", "invoice", "ACME", "2026-11-22", "EUR", "shipment", "partner", "12.50", "\n", ",", "Globex", "status"}

func writeData(name string, size int64, seed uint64, text bool) error {
	f, err := os.Create(name)
	if err != nil {
		return err
	}
	rng := rand.New(rand.NewChaCha8([32]byte{byte(seed), byte(seed >> 8), byte(seed >> 16)}))
	buf := make([]byte, 1<<20)
	for left := size; left > 0; {
		n := min(int64(len(buf)), left)
		if text {
			for i := 0; i < len(buf); {
				i += copy(buf[i:], words[rng.IntN(len(words))]+" ")
			}
		} else {
			for i := 0; i+8 <= len(buf); i += 8 {
				binary.LittleEndian.PutUint64(buf[i:], rng.Uint64())
			}
		}
		if _, err := f.Write(buf[:n]); err != nil {
			f.Close()
			return err
		}
		left -= n
	}
	return f.Close()
}

// Result is one measured command.
type Result struct {
	Elapsed time.Duration
	PeakRSS int64 // bytes
}

// RunCommand runs a command to completion and returns its wall time and
// peak resident memory. The command gets this process's environment without
// AWS_* variables, which would change how S3 clients are configured (a CA
// bundle, a profile) behind the benchmark's back.
func RunCommand(dir string, name string, args ...string) (Result, error) {
	cmd := exec.Command(name, args...)
	cmd.Dir = dir
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "AWS_") {
			cmd.Env = append(cmd.Env, kv)
		}
	}
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	start := time.Now()
	err := cmd.Run()
	res := Result{Elapsed: time.Since(start)}
	if cmd.ProcessState == nil {
		return res, fmt.Errorf("%s: %w", name, err) // it did not start
	}
	if ru, ok := cmd.ProcessState.SysUsage().(*syscall.Rusage); ok && ru != nil {
		res.PeakRSS = ru.Maxrss * 1024
	}
	if err != nil {
		return res, fmt.Errorf("%s %v: %w\n%s", name, args, err, out.String())
	}
	return res, nil
}

// CopyFiles is the io.Copy baseline: each file of in copied to out.
func CopyFiles(in, out string) error {
	entries, err := os.ReadDir(in)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(out, 0o755); err != nil {
		return err
	}
	for _, e := range entries {
		if err := copyFile(filepath.Join(in, e.Name()), filepath.Join(out, e.Name())); err != nil {
			return err
		}
	}
	return nil
}

func copyFile(from, to string) error {
	src, err := os.Open(from)
	if err != nil {
		return err
	}
	defer src.Close()
	dst, err := os.Create(to)
	if err != nil {
		return err
	}
	if _, err := io.Copy(dst, src); err != nil {
		dst.Close()
		return err
	}
	return dst.Close()
}

var (
	// binDir holds binaries built for the benchmarks; TestMain removes it.
	binDir string
	builds sync.Map // package path → func() (string, error)
)

// Build builds the main package pkg once per process into binDir and
// returns the binary's path.
func Build(pkg string) (string, error) {
	once, _ := builds.LoadOrStore(pkg, sync.OnceValues(func() (string, error) {
		bin := filepath.Join(binDir, filepath.Base(pkg))
		if out, err := exec.Command("go", "build", "-o", bin, pkg).CombinedOutput(); err != nil {
			return "", fmt.Errorf("building %s: %w\n%s", pkg, err, out)
		}
		return bin, nil
	}))
	return once.(func() (string, error))()
}

// Runner builds the runner binary once per process.
func Runner() (string, error) { return Build("github.com/mftflow/mftflow/cmd/runner") }
