package benchmarks

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// benchDir holds generated inputs between runs (MFTFLOW_BENCH_DIR, default a
// folder in the system temp dir) so a 1 GiB file is written once.
func benchDir(b *testing.B) string {
	dir := os.Getenv("MFTFLOW_BENCH_DIR")
	if dir == "" {
		dir = filepath.Join(os.TempDir(), "mftflow-bench")
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		b.Fatal(err)
	}
	return dir
}

const localFlow = `name: bench
source:
  local:
    path: %s
    watch: false
    stable_for: 0s
    after: leave
sinks:
  - name: out
    local:
      path: %s
bus:
  compression: %s
`

// BenchmarkLocalToLocal moves each workload local → local with the runner,
// next to io.Copy and rclone copyto of the same files in the same run.
// Metrics: MB/s (from SetBytes) and peak-RSS-MiB of the measured process.
func BenchmarkLocalToLocal(b *testing.B) {
	dir := benchDir(b)
	bin, err := Runner()
	if err != nil {
		b.Fatal(err)
	}
	for _, w := range Workloads {
		b.Run(w.Name, func(b *testing.B) {
			if ok, why := w.Enabled(); !ok {
				b.Skip(why)
			}
			in, err := w.Materialize(dir)
			if err != nil {
				b.Fatal(err)
			}
			b.Run("io.Copy", func(b *testing.B) {
				b.SetBytes(w.Bytes())
				for i := 0; b.Loop(); i++ {
					out := filepath.Join(b.TempDir(), "out")
					if err := CopyFiles(in, out); err != nil {
						b.Fatal(err)
					}
				}
			})
			b.Run("runner", func(b *testing.B) {
				measure(b, w.Bytes(), func(work string) []string {
					return runnerCommand(b, bin, work, fmt.Sprintf(localFlow, in, filepath.Join(work, "out"), "s2"))
				})
			})
			b.Run("rclone", func(b *testing.B) {
				rclone, err := exec.LookPath("rclone")
				if err != nil {
					b.Skip("rclone is not installed (Debian: apt-get install rclone)")
				}
				measure(b, w.Bytes(), func(work string) []string {
					out := filepath.Join(work, "out")
					if w.Files == 1 {
						return []string{rclone, "copyto", "--config", "/dev/null", filepath.Join(in, "file-00000.bin"), filepath.Join(out, "file-00000.bin")}
					}
					return []string{rclone, "copy", "--transfers", "4", "--config", "/dev/null", in, out}
				})
			})
		})
	}
}
