package benchmarks

import (
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/mftflow/mftflow/pipeline"
)

// measure runs a command once per benchmark iteration, each in a fresh work
// directory, and reports the throughput for the workload's bytes (and files
// per second when it has many files) and the peak RSS of the commands.
// command returns the program and its arguments for a work directory. It
// returns how many times the command ran.
func measure(b *testing.B, w Workload, command func(work string) []string) int {
	b.SetBytes(w.Bytes())
	var peak int64
	runs := 0
	for b.Loop() {
		work := workDir(b, w)
		argv := command(work)
		res, err := RunCommand(work, argv[0], argv[1:]...)
		if err != nil {
			b.Fatal(err)
		}
		peak = max(peak, res.PeakRSS)
		runs++
	}
	b.ReportMetric(float64(peak)/(1<<20), "peak-RSS-MiB")
	reportFiles(b, w, runs)
	return runs
}

// reportFiles reports files/s for a workload of many files, the measure
// the many-small-files target is stated in. Call it after the b.Loop loop.
func reportFiles(b *testing.B, w Workload, runs int) {
	if w.Files > 1 && runs > 0 && b.Elapsed() > 0 {
		b.ReportMetric(float64(w.Files*runs)/b.Elapsed().Seconds(), "files/s")
	}
}

// copyBaseline is the io.Copy baseline: the workload's files copied one
// after the other with a plain io.Copy, the ceiling of the disk.
func copyBaseline(b *testing.B, w Workload, in string) {
	b.SetBytes(w.Bytes())
	runs := 0
	for b.Loop() {
		if err := CopyFiles(in, filepath.Join(workDir(b, w), "out")); err != nil {
			b.Fatal(err)
		}
		runs++
	}
	reportFiles(b, w, runs)
}

// busCeiling is the raw JetStream baseline (bench.Ceiling, through
// cmd/busceiling): the workload's bytes published with nats.go async
// publish and read back with an ordered (pull) consumer, in messages of the
// runner's chunk size (1 MiB, or the file size when files are smaller, as
// the runner sends them), on an embedded server started as the runner
// starts its own (bus.StartEmbedded), in a process of its own with its
// store in the work directory, like the runner. A file's worth of messages
// stands for a file, so files/s is comparable too.
func busCeiling(b *testing.B, w Workload) {
	bin, err := Build("github.com/mftflow/mftflow/benchmarks/cmd/busceiling")
	if err != nil {
		b.Fatal(err)
	}
	chunk := min(int64(pipeline.DefaultChunkSize), w.Size)
	measure(b, w, func(work string) []string {
		return []string{bin, "-data", filepath.Join(work, "data"),
			"-chunk-size", strconv.FormatInt(chunk, 10), "-bytes", strconv.FormatInt(w.Bytes(), 10)}
	})
}

// rcloneTransfers is rclone's concurrency for workloads of many files: the
// figure the many-small-files target names ("rclone copy --transfers 8"),
// kept for every many-file workload so they compare with one another.
const rcloneTransfers = "8"

// rcloneStreams is rclone's concurrency for one file, local (multi-thread
// streams) or S3 (multipart upload concurrency): 4, rclone's default and
// the runner's default parallelism (parts of one file written at once).
const rcloneStreams = "4"

// rclonePath is the pinned rclone, built into bin/ by scripts/rclone.sh on
// first use (about four minutes); it skips b when that fails.
func rclonePath(b *testing.B) string {
	out, err := exec.Command("../scripts/rclone.sh").Output()
	if err != nil {
		b.Skipf("building the pinned rclone with scripts/rclone.sh: %v", err)
	}
	return strings.TrimSpace(string(out))
}

// rcloneCopy returns the rclone command copying the workload in directory
// in to dest (a local directory or "remote:bucket"): copyto of the one file
// for a single-file workload, copy of the directory with --transfers 8
// otherwise. extra goes before the paths.
func rcloneCopy(rclone string, w Workload, in, dest string, extra ...string) []string {
	if w.Files == 1 {
		argv := append([]string{rclone, "copyto", "--config", os.DevNull}, extra...)
		return append(argv, inputFile(in, 0), dest+"/"+filepath.Base(inputFile(in, 0)))
	}
	argv := append([]string{rclone, "copy", "--config", os.DevNull, "--transfers", rcloneTransfers}, extra...)
	return append(argv, in, dest)
}

// byReference returns flow with its files read by reference (bus.payload).
// The flow's bus block, if any, must come last.
func byReference(flow string) string {
	if !strings.Contains(flow, "\nbus:\n") {
		flow += "bus:\n"
	}
	return flow + "  payload: reference\n"
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

// eachWorkload runs fn as a sub-benchmark of b for each enabled workload,
// its input materialized under dir.
func eachWorkload(b *testing.B, dir string, fn func(b *testing.B, w Workload, in string)) {
	for _, w := range Workloads {
		b.Run(w.Name(), func(b *testing.B) {
			if ok, why := w.Enabled(); !ok {
				b.Skip(why)
			}
			in, err := w.Materialize(dir)
			if err != nil {
				b.Fatal(err)
			}
			fn(b, w, in)
		})
	}
}
