package benchmarks

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/mftflow/mftflow/testkit/minio"
)

const s3Flow = `name: bench-s3
source:
  local:
    path: %s
    watch: false
    stable_for: 0s
sinks:
  - name: s3
    s3:
      bucket: %s
      endpoint: %s
      path_style: true
      region: %s
      access_key_id: %s
      secret_access_key: %s
`

// BenchmarkLocalToS3 moves each single-file workload to a MinIO server on
// loopback with the runner, next to rclone copyto of the same file to the
// same server (4 streams each: rclone's default upload concurrency and the
// runner's default parallelism).
func BenchmarkLocalToS3(b *testing.B) {
	dir := benchDir(b)
	bin, err := Runner()
	if err != nil {
		b.Fatal(err)
	}
	srv := minio.StartMinIO(b)
	for _, w := range Workloads {
		if w.Files != 1 {
			continue
		}
		b.Run(w.Name, func(b *testing.B) {
			if ok, why := w.Enabled(); !ok {
				b.Skip(why)
			}
			in, err := w.Materialize(dir)
			if err != nil {
				b.Fatal(err)
			}
			b.Run("runner", func(b *testing.B) {
				b.SetBytes(w.Bytes())
				var peak int64
				for i := 0; b.Loop(); i++ {
					work := b.TempDir()
					flow := filepath.Join(work, "flow.yaml")
					bucket := srv.NewBucket(b)
					os.WriteFile(flow, fmt.Appendf(nil, s3Flow, in, bucket, srv.Endpoint, minio.Region, minio.AccessKey, minio.SecretKey), 0o644)
					res, err := RunCommand(work, bin, "run", "--progress", "none", "--log-level", "warn", "--data", filepath.Join(work, "data"), flow)
					if err != nil {
						b.Fatal(err)
					}
					peak = max(peak, res.PeakRSS)
				}
				b.ReportMetric(float64(peak)/(1<<20), "peak-RSS-MiB")
			})
			b.Run("rclone", func(b *testing.B) {
				rclone, err := exec.LookPath("rclone")
				if err != nil {
					b.Skip("rclone is not installed (Debian: apt-get install rclone)")
				}
				b.SetBytes(w.Bytes())
				var peak int64
				remote := fmt.Sprintf(":s3,provider=Minio,endpoint='%s',access_key_id=%s,secret_access_key=%s,region=%s",
					srv.Endpoint, minio.AccessKey, minio.SecretKey, minio.Region)
				for i := 0; b.Loop(); i++ {
					bucket := srv.NewBucket(b)
					res, err := RunCommand(b.TempDir(), rclone, "copyto", "--config", "/dev/null", "--s3-upload-concurrency", "4",
						filepath.Join(in, "file-00000.bin"), remote+":"+bucket+"/file-00000.bin")
					if err != nil {
						b.Fatal(err)
					}
					peak = max(peak, res.PeakRSS)
				}
				b.ReportMetric(float64(peak)/(1<<20), "peak-RSS-MiB")
			})
		})
	}
}
