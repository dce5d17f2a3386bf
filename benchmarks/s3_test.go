package benchmarks

import (
	"fmt"
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
				measure(b, w.Bytes(), func(work string) []string {
					flow := fmt.Sprintf(s3Flow, in, srv.NewBucket(b), srv.Endpoint, minio.Region, minio.AccessKey, minio.SecretKey)
					return runnerCommand(b, bin, work, flow)
				})
			})
			b.Run("rclone", func(b *testing.B) {
				rclone, err := exec.LookPath("rclone")
				if err != nil {
					b.Skip("rclone is not installed (Debian: apt-get install rclone)")
				}
				remote := fmt.Sprintf(":s3,provider=Minio,endpoint='%s',access_key_id=%s,secret_access_key=%s,region=%s",
					srv.Endpoint, minio.AccessKey, minio.SecretKey, minio.Region)
				measure(b, w.Bytes(), func(work string) []string {
					return []string{rclone, "copyto", "--config", "/dev/null", "--s3-upload-concurrency", "4",
						filepath.Join(in, "file-00000.bin"), remote + ":" + srv.NewBucket(b) + "/file-00000.bin"}
				})
			})
		})
	}
}
