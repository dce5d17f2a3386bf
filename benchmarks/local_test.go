package benchmarks

import (
	"fmt"
	"os"
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
// with its audit trail on (runner-audit), its bytes on the bus and read by
// reference (runner-reference), next to
// the baselines of the same run: io.Copy of the same files, the
// raw JetStream ceiling for the same bytes (busCeiling), and rclone copyto
// (one file, 4 streams) or rclone copy --transfers 8 (many files).
// Metrics: MB/s (from SetBytes), files/s for many files, and peak-RSS-MiB
// of the measured process.
func BenchmarkLocalToLocal(b *testing.B) {
	dir := benchDir(b)
	bin, err := Runner()
	if err != nil {
		b.Fatal(err)
	}
	eachWorkload(b, dir, func(b *testing.B, w Workload, in string) {
		b.Run("io.Copy", func(b *testing.B) { copyBaseline(b, w, in) })
		b.Run("jetstream", func(b *testing.B) { busCeiling(b, w) })
		b.Run("runner", func(b *testing.B) {
			measure(b, w, func(work string) []string {
				return runnerCommand(b, bin, work, fmt.Sprintf(localFlow, in, filepath.Join(work, "out"), "s2"))
			})
		})
		b.Run("runner-audit", func(b *testing.B) {
			measure(b, w, func(work string) []string {
				return runnerCommand(b, bin, work, fmt.Sprintf(localFlow, in, filepath.Join(work, "out"), "s2")+"audit: {}\n")
			})
		})
		b.Run("runner-reference", func(b *testing.B) {
			measure(b, w, func(work string) []string {
				return runnerCommand(b, bin, work, byReference(fmt.Sprintf(localFlow, in, filepath.Join(work, "out"), "s2")))
			})
		})
		b.Run("rclone", func(b *testing.B) {
			rclone := rclonePath(b)
			measure(b, w, func(work string) []string {
				return rcloneCopy(rclone, w, in, filepath.Join(work, "out"), "--multi-thread-streams", rcloneStreams)
			})
		})
	})
}
