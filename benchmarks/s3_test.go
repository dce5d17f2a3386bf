package benchmarks

import (
	"fmt"
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

// BenchmarkLocalToS3 moves each workload to a MinIO server on loopback with
// the runner, next to rclone of the same files to the same server and the
// raw JetStream ceiling for the same bytes. rclone uploads one file with 4
// parts at once (--s3-upload-concurrency 4: rclone's default and the
// runner's default parallelism) and many files 8 at once (--transfers 8).
func BenchmarkLocalToS3(b *testing.B) {
	dir := benchDir(b)
	bin, err := Runner()
	if err != nil {
		b.Fatal(err)
	}
	srv := minio.StartMinIO(b)
	for _, w := range Workloads {
		b.Run(w.Name(), func(b *testing.B) {
			if ok, why := w.Enabled(); !ok {
				b.Skip(why)
			}
			in, err := w.Materialize(dir)
			if err != nil {
				b.Fatal(err)
			}
			b.Run("jetstream", func(b *testing.B) { busCeiling(b, w) })
			b.Run("runner", func(b *testing.B) {
				measure(b, w, func(work string) []string {
					flow := fmt.Sprintf(s3Flow, in, srv.NewBucket(b), srv.Endpoint, minio.Region, minio.AccessKey, minio.SecretKey)
					return runnerCommand(b, bin, work, flow)
				})
			})
			b.Run("rclone", func(b *testing.B) {
				rclone := rclonePath(b)
				remote := fmt.Sprintf(":s3,provider=Minio,endpoint='%s',access_key_id=%s,secret_access_key=%s,region=%s",
					srv.Endpoint, minio.AccessKey, minio.SecretKey, minio.Region)
				measure(b, w, func(work string) []string {
					return rcloneCopy(rclone, w, in, remote+":"+srv.NewBucket(b), "--s3-upload-concurrency", rcloneStreams)
				})
			})
		})
	}
}
