package benchmarks

import (
	"fmt"
	"os"
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
	eachWorkload(b, dir, func(b *testing.B, w Workload, in string) {
		b.Run("jetstream", func(b *testing.B) { busCeiling(b, w) })
		b.Run("runner", func(b *testing.B) {
			measure(b, w, func(work string) []string {
				flow := fmt.Sprintf(s3Flow, in, srv.NewBucket(b), srv.Endpoint, minio.Region, minio.AccessKey, minio.SecretKey)
				return runnerCommand(b, bin, work, flow)
			})
		})
		b.Run("runner-reference", func(b *testing.B) {
			measure(b, w, func(work string) []string {
				flow := fmt.Sprintf(s3Flow, in, srv.NewBucket(b), srv.Endpoint, minio.Region, minio.AccessKey, minio.SecretKey)
				return runnerCommand(b, bin, work, byReference(flow))
			})
		})
		b.Run("rclone", func(b *testing.B) {
			rclone := rclonePath(b)
			measure(b, w, func(work string) []string {
				return rcloneCopy(rclone, w, in, rcloneRemote(srv)+":"+srv.NewBucket(b), "--s3-upload-concurrency", rcloneStreams)
			})
		})
	})
}

// rcloneRemote names srv as an rclone remote given on the command line.
func rcloneRemote(srv *minio.Server) string {
	return fmt.Sprintf(":s3,provider=Minio,endpoint='%s',access_key_id=%s,secret_access_key=%s,region=%s",
		srv.Endpoint, minio.AccessKey, minio.SecretKey, minio.Region)
}

const s3ToS3Flow = `name: bench-s3-s3
source:
  s3:
    bucket: %[1]s
    endpoint: %[3]s
    path_style: true
    region: %[4]s
    access_key_id: %[5]s
    secret_access_key: %[6]s
    watch: false
sinks:
  - name: s3
    s3:
      bucket: %[2]s
      endpoint: %[3]s
      path_style: true
      region: %[4]s
      access_key_id: %[5]s
      secret_access_key: %[6]s
`

// BenchmarkS3ToS3 copies each workload from one bucket of a MinIO server to
// another with the runner (bytes on the bus, and by reference), next to
// rclone copy between the same buckets: by default rclone has the server
// copy each object (CopyObject, no byte through rclone); "rclone-streamed"
// (--disable Copy) downloads and uploads as the runner does.
func BenchmarkS3ToS3(b *testing.B) {
	dir := benchDir(b)
	bin, err := Runner()
	if err != nil {
		b.Fatal(err)
	}
	srv := minio.StartMinIO(b)
	rclone := rclonePath(b)
	eachWorkload(b, dir, func(b *testing.B, w Workload, in string) {
		src := srv.NewBucket(b)
		if _, err := RunCommand(dir, rclone, "copy", "--config", os.DevNull, "--transfers", rcloneTransfers, in, rcloneRemote(srv)+":"+src); err != nil {
			b.Fatalf("filling the source bucket: %v", err)
		}
		for _, tool := range []struct {
			name    string
			payload string
		}{{"runner", ""}, {"runner-reference", "reference"}} {
			b.Run(tool.name, func(b *testing.B) {
				measure(b, w, func(work string) []string {
					flow := fmt.Sprintf(s3ToS3Flow, src, srv.NewBucket(b), srv.Endpoint, minio.Region, minio.AccessKey, minio.SecretKey)
					if tool.payload != "" {
						flow = byReference(flow)
					}
					return runnerCommand(b, bin, work, flow)
				})
			})
		}
		for _, tool := range []struct {
			name  string
			extra []string
		}{{"rclone", nil}, {"rclone-streamed", []string{"--disable", "Copy"}}} {
			b.Run(tool.name, func(b *testing.B) {
				measure(b, w, func(work string) []string {
					argv := append([]string{rclone, "copy", "--config", os.DevNull, "--transfers", rcloneTransfers, "--s3-upload-concurrency", rcloneStreams}, tool.extra...)
					return append(argv, rcloneRemote(srv)+":"+src, rcloneRemote(srv)+":"+srv.NewBucket(b))
				})
			})
		}
	})
}
