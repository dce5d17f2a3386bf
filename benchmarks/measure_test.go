package benchmarks

import (
	"os"
	"path/filepath"
	"testing"
)

// measure runs a command once per benchmark iteration, each in a fresh work
// directory, and reports the throughput for bytes per run and the peak RSS
// of the commands. command returns the program and its arguments for a work
// directory. It returns how many times the command ran.
func measure(b *testing.B, bytes int64, command func(work string) []string) int {
	b.SetBytes(bytes)
	var peak int64
	runs := 0
	for b.Loop() {
		work := b.TempDir()
		argv := command(work)
		res, err := RunCommand(work, argv[0], argv[1:]...)
		if err != nil {
			b.Fatal(err)
		}
		peak = max(peak, res.PeakRSS)
		runs++
	}
	b.ReportMetric(float64(peak)/(1<<20), "peak-RSS-MiB")
	return runs
}

// runnerCommand writes flow into work and returns the runner command that
// runs it on an embedded NATS server in work.
func runnerCommand(b *testing.B, bin, work, flow string) []string {
	path := filepath.Join(work, "flow.yaml")
	if err := os.WriteFile(path, []byte(flow), 0o644); err != nil {
		b.Fatal(err)
	}
	return []string{bin, "run", "--progress", "none", "--log-level", "warn", "--data", filepath.Join(work, "data"), path}
}
