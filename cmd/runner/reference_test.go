package main

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"io"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/mftflow/mftflow/pipeline"
	"github.com/mftflow/mftflow/pipeline/bus"
	"github.com/mftflow/mftflow/testkit/minio"
)

// killAfterParts starts the runner with args, waits until the flow's one
// delivery has recorded at least minDone parts, and SIGKILLs it (with its
// embedded server). It returns the parts recorded at the kill; final is set
// when the delivery had finished first, and nothing was killed mid-way.
func killAfterParts(t *testing.T, args []string, data, flow string, minDone int) (done int, final bool) {
	t.Helper()
	run, js, log := startWatched(t, args, data)
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		_, d, ok := delivery(context.Background(), js, flow)
		if !ok || d.Done.Count() < minDone && !bus.Final(d.State) {
			time.Sleep(5 * time.Millisecond)
			continue
		}
		run.Process.Signal(syscall.SIGKILL)
		run.Wait()
		return d.Done.Count(), bus.Final(d.State)
	}
	t.Fatalf("fewer than %d parts were recorded within 30s\n%s", minDone, log.String())
	return 0, false
}

// TestSIGKILLByReferenceResumes kills the runner three times while a
// 256 MiB file read by reference is delivered, local → local and local →
// MinIO, and checks that the last run ends with one byte-identical copy,
// that no part recorded before a kill was written again, and that the bus
// held a few bytes per chunk, not the file.
func TestSIGKILLByReferenceResumes(t *testing.T) {
	if testing.Short() {
		t.Skip("moves 256 MiB twice; skipped with -short")
	}
	const size, partSize = 256 << 20, 8 << 20
	const parts = size / partSize
	for _, tc := range []struct {
		name string
		sink func(t *testing.T, dir string) (yaml string, read func() io.ReadCloser, entries func() []string)
	}{
		{"local", func(t *testing.T, dir string) (string, func() io.ReadCloser, func() []string) {
			out := filepath.Join(dir, "out")
			return "local: {path: " + out + ", part_size: 8MiB, fsync: true}",
				func() io.ReadCloser { f, _ := os.Open(filepath.Join(out, "big.bin")); return f },
				func() []string {
					var names []string
					entries, _ := os.ReadDir(out)
					for _, e := range entries {
						names = append(names, e.Name())
					}
					return names
				}
		}},
		{"s3", func(t *testing.T, dir string) (string, func() io.ReadCloser, func() []string) {
			srv := minio.StartMinIO(t)
			ctx := context.Background()
			return "s3: {bucket: " + srv.Bucket + ", endpoint: " + srv.Endpoint + ", path_style: true, region: " + minio.Region +
					", access_key_id: " + minio.AccessKey + ", secret_access_key: " + minio.SecretKey + ", part_size: 8MiB}",
				func() io.ReadCloser {
					obj, err := srv.Client.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String(srv.Bucket), Key: aws.String("big.bin")})
					if err != nil {
						t.Fatal(err)
					}
					return obj.Body
				},
				func() []string {
					var names []string
					list, _ := srv.Client.ListObjectsV2(ctx, &s3.ListObjectsV2Input{Bucket: aws.String(srv.Bucket)})
					for _, o := range list.Contents {
						names = append(names, aws.ToString(o.Key))
					}
					up, _ := srv.Client.ListMultipartUploads(ctx, &s3.ListMultipartUploadsInput{Bucket: aws.String(srv.Bucket)})
					for _, u := range up.Uploads {
						names = append(names, "upload of "+aws.ToString(u.Key))
					}
					return names
				}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			in, data := filepath.Join(dir, "in"), filepath.Join(dir, "data")
			os.MkdirAll(in, 0o755)
			want := writeRandomFile(t, filepath.Join(in, "big.bin"), size)
			sink, read, entries := tc.sink(t, dir)
			flow := writeFile(t, dir, "ref.yaml", `name: ref
source: {local: {path: `+in+`, watch: false, stable_for: 0s}}
sinks:
  - name: out
    parallelism: 2
    `+sink+`
bus:
  payload: reference
  retention: 1h
`)
			args := []string{"run", "--data", data, "--progress", "none", "--log-level", "debug", flow}
			var done []int
			for kill := 1; kill <= 3; kill++ {
				n, final := killAfterParts(t, args, data, "ref", 3*kill+len(done))
				if final {
					break
				}
				done = append(done, n)
			}
			if len(done) < 2 {
				t.Fatalf("only %d kills landed mid-delivery (parts recorded at each: %v): the scenario did not happen", len(done), done)
			}
			stdout, stderr, code := runRunner(t, dir, args...)
			if code != 0 {
				t.Fatalf("last run exited %d\nstdout:\n%s\nstderr:\n%s", code, stdout, stderr)
			}
			if got := entries(); len(got) != 1 || got[0] != "big.bin" {
				t.Fatalf("the sink holds %q; want exactly big.bin (no temp file, no upload left)", got)
			}
			body := read()
			h := sha256.New()
			n, err := io.Copy(h, body)
			body.Close()
			if err != nil || n != size || hex.EncodeToString(h.Sum(nil)) != want {
				t.Fatalf("big.bin: %d bytes, sha256 %x (%v); want %d bytes, %s", n, h.Sum(nil), err, int64(size), want)
			}

			if out, _, code := runRunner(t, dir, "status", "--data", data); code != 0 || !strings.Contains(out, "flow ref: 1 file (1 done), 1 read by reference\n") {
				t.Errorf("runner status exited %d:\n%s\nwant it to say the file was read by reference", code, out)
			}
			m, d := finalState(t, data, "ref")
			if m.Payload != pipeline.PayloadReference || m.Outcome != "passed" || m.SourceRead != size {
				t.Errorf("manifest: payload %q, outcome %s, source read %d; want reference, passed, %d", m.Payload, m.Outcome, m.SourceRead, int64(size))
			}
			if d.State != bus.DeliveryCommitted || d.Resumed < done[len(done)-1] || d.Writes != parts {
				t.Errorf("delivery: state %s, %d parts resumed, %d part writes; want committed, at least %d resumed (recorded before the last kill), exactly %d writes (none written twice)",
					d.State, d.Resumed, d.Writes, done[len(done)-1], parts)
			}
			// The flow retains its chunks: what the bus stores for the file
			// is what it carried.
			if stored := chunkBytes(t, data, "ref"); stored > size>>10 {
				t.Errorf("the bus stores %d bytes for a %d MiB file read by reference; want under %d (1 KiB per MiB)", stored, size>>20, size>>10)
			}
			t.Logf("parts recorded at the kills: %v of %d; last run resumed %d, %d writes in all", done, parts, d.Resumed, d.Writes)
		})
	}
}

// chunkBytes is what the chunk stream of flow stores, read from a runner's
// data directory once the runner has exited.
func chunkBytes(t *testing.T, data, flow string) uint64 {
	t.Helper()
	st, err := openData(t, data).Stream(context.Background(), bus.Names{Flow: flow}.ChunkStream())
	if err != nil {
		t.Fatal(err)
	}
	return st.CachedInfo().State.Bytes
}
