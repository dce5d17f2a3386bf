package benchmarks

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/mftflow/mftflow/bench"
	"github.com/mftflow/mftflow/internal/discard"

	"github.com/mftflow/mftflow/pipeline"
)

// Workload is a set of input files every connector's benchmark runs: a
// synthetic workload of package bench (the generator of "runner bench"), so
// both measure the same bytes.
type Workload struct {
	bench.Workload
	// Env, when set, names an environment variable that must be "1" to run
	// the workload (for the very large ones).
	Env string
}

// Name is the workload's name in benchmark names, from its shape:
// "1GiB-random", "10000x4KiB-random".
func (w Workload) Name() string {
	if w.Files == 1 {
		return pipeline.ExactSize(w.Size) + "-" + w.Data
	}
	return fmt.Sprintf("%dx%s-%s", w.Files, pipeline.ExactSize(w.Size), w.Data)
}

// Workloads shared by the benchmarks: one large file, many small files, a
// hundred medium ones, and text next to random data at two shapes so the
// cost and gain of bus compression show without running every shape twice.
var Workloads = []Workload{
	{Workload: bench.Workload{Files: 1, Size: 1 << 30, Data: bench.DataRandom}},
	{Workload: bench.Workload{Files: 1, Size: 4 << 30, Data: bench.DataRandom}, Env: "MFTFLOW_BENCH_4G"},
	{Workload: bench.Workload{Files: 10000, Size: 4 << 10, Data: bench.DataRandom}},
	{Workload: bench.Workload{Files: 100, Size: 10 << 20, Data: bench.DataRandom}},
	{Workload: bench.Workload{Files: 1, Size: 1 << 30, Data: bench.DataText}},
	{Workload: bench.Workload{Files: 100, Size: 10 << 20, Data: bench.DataText}},
}

// Enabled reports whether w should run, and why not.
func (w Workload) Enabled() (bool, string) {
	if w.Env != "" && os.Getenv(w.Env) != "1" {
		return false, fmt.Sprintf("set %s=1 to run %s", w.Env, w.Name())
	}
	return true, ""
}

// Materialize writes the workload's files under dir/<name>/in, once: an
// existing complete set is reused. It returns the input directory.
func (w Workload) Materialize(dir string) (string, error) {
	in := filepath.Join(dir, w.Name(), "in")
	done := filepath.Join(dir, w.Name(), ".complete")
	if _, err := os.Stat(done); err == nil {
		return in, nil
	}
	if err := w.Generate(in); err != nil {
		return "", err
	}
	return in, os.WriteFile(done, nil, 0o644)
}

// inputFile is the path of the workload's i-th file under in (see
// bench.Workload.Generate).
func inputFile(in string, i int) string {
	return filepath.Join(in, fmt.Sprintf("file-%05d.bin", i))
}

// Result is one measured command.
type Result struct {
	Elapsed time.Duration
	PeakRSS int64 // bytes
}

// RunCommand runs a command to completion and returns its wall time and
// peak resident memory. The peak is at least this process's own peak at the
// time: Linux starts the child in this process's memory (vfork) and carries
// that memory's high-water mark into the child's ru_maxrss at exec. So the
// benchmark process keeps small (baselines that hold data, such as the
// JetStream ceiling, run as processes of their own). The command gets this process's environment without
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
	defer discard.Close(src)
	dst, err := os.Create(to)
	if err != nil {
		return err
	}
	if _, err := io.Copy(dst, src); err != nil {
		discard.Close(dst) // err says already that the copy is incomplete
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
