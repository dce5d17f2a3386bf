package s3

import (
	"bytes"
	"encoding/base64"
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"net"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"

	"github.com/mftflow/mftflow/testkit"
	"github.com/mftflow/mftflow/testkit/minio"
)

// split cuts b into pieces of the given sizes, the rest in a last piece.
func split(b []byte, sizes ...int) [][]byte {
	var out [][]byte
	for _, n := range sizes {
		n = min(n, len(b))
		out = append(out, b[:n])
		b = b[n:]
	}
	return append(out, b)
}

// TestWritePartFromBuffers sends parts handed over as *net.Buffers, the way
// the engine gives them, without copying them: the object is right, the
// caller's slices are untouched, and too few bytes fail clearly.
func TestWritePartFromBuffers(t *testing.T) {
	srv := minio.StartMinIO(t)
	for _, checksum := range []string{ChecksumCRC32C, ChecksumMD5} {
		t.Run(checksum, func(t *testing.T) {
			s := newTestSink(t, SinkConfig{ClientConfig: clientConfig(srv, srv.Bucket), Prefix: checksum, PartSize: MinPartSize, Checksum: checksum})
			content := testkit.RandomContent(62, 2*MinPartSize+5)
			keep := append([]byte(nil), content...)
			f := fileOf("bufs.bin", content)
			up, err := s.Open(t.Context(), f, nil)
			if err != nil {
				t.Fatal(err)
			}
			ps := testkit.RoundPartSize(up.Plan().PartSize)
			for _, p := range testkit.PartsFor(f.Size, ps) {
				body := net.Buffers(split(content[p.Offset:p.Offset+p.Size], 1<<20, 7, 1<<20))
				if err := up.WritePart(t.Context(), p, &body); err != nil {
					t.Fatalf("WritePart %d: %v", p.Number, err)
				}
			}
			f.SHA256 = testkit.SHA256Hex(content)
			if err := up.Commit(t.Context(), f); err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(content, keep) {
				t.Error("WritePart changed the caller's buffers")
			}
			if got, _ := getObject(t, srv, srv.Bucket, checksum+"/bufs.bin"); !bytes.Equal(got, content) {
				t.Error("content differs")
			}

			up, err = s.Open(t.Context(), fileOf("short.bin", content), nil)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { up.Abort(t.Context(), nil) })
			short := net.Buffers{content[:1000], content[1000:2000]}
			err = up.WritePart(t.Context(), testkit.PartsFor(f.Size, ps)[0], &short)
			want := fmt.Sprintf("s3 sink: s3://%s/%s/short.bin part 1: the part reader gave 2000 bytes, want %d: unexpected EOF", srv.Bucket, checksum, ps)
			if err == nil || err.Error() != want {
				t.Errorf("short part:\n got  %v\n want %s", err, want)
			}
		})
	}
}

// TestFullObjectCRC32C: with checksum crc32c the object gets a CRC32C of
// its whole content (checksum type FULL_OBJECT), which Commit computes from
// the parts' and the server checks; also for an upload resumed from State,
// which learns the checksum type from ListParts.
func TestFullObjectCRC32C(t *testing.T) {
	srv := minio.StartMinIO(t)
	s := newTestSink(t, SinkConfig{ClientConfig: clientConfig(srv, srv.Bucket), PartSize: MinPartSize})
	content := testkit.RandomContent(63, 3*MinPartSize+77)
	var v [4]byte
	binary.BigEndian.PutUint32(v[:], crc32.Checksum(content, castagnoli))
	want := base64.StdEncoding.EncodeToString(v[:])
	for _, resumed := range []bool{false, true} {
		name := fmt.Sprintf("resumed-%v.bin", resumed)
		t.Run(name, func(t *testing.T) {
			f := fileOf(name, content)
			up, err := s.Open(t.Context(), f, nil)
			if err != nil {
				t.Fatal(err)
			}
			if resumed {
				testkit.WriteParts(t, up, content, 1, 3)
				if up, err = s.Open(t.Context(), f, up.State()); err != nil {
					t.Fatal(err)
				}
			}
			testkit.WriteParts(t, up, content, 0, 1, 2, 3)
			f.SHA256 = testkit.SHA256Hex(content)
			if err := up.Commit(t.Context(), f); err != nil {
				t.Fatal(err)
			}
			head, err := srv.Client.HeadObject(t.Context(), &s3.HeadObjectInput{
				Bucket: aws.String(srv.Bucket), Key: aws.String(name), ChecksumMode: types.ChecksumModeEnabled,
			})
			if err != nil {
				t.Fatal(err)
			}
			if got := aws.ToString(head.ChecksumCRC32C); got != want || head.ChecksumType != types.ChecksumTypeFullObject {
				t.Errorf("object CRC32C %q (%s), want %q (FULL_OBJECT)", got, head.ChecksumType, want)
			}
			if head.Metadata[MetaSHA256] != f.SHA256 {
				t.Errorf("x-amz-meta-sha256 %q, want %q", head.Metadata[MetaSHA256], f.SHA256)
			}
			if got, _ := getObject(t, srv, srv.Bucket, name); !bytes.Equal(got, content) {
				t.Error("content differs")
			}
		})
	}
	// A wrong whole-object CRC32C is refused by the server: the value sent
	// is checked, not merely stored.
	f := fileOf("wrong.bin", content)
	up, err := s.Open(t.Context(), f, nil)
	if err != nil {
		t.Fatal(err)
	}
	testkit.WriteParts(t, up, content, 0, 1, 2, 3)
	u := up.(*Upload)
	parts, err := u.completedParts(f.Size)
	if err != nil {
		t.Fatal(err)
	}
	_, err = s.client.CompleteMultipartUpload(t.Context(), &s3.CompleteMultipartUploadInput{
		Bucket: aws.String(srv.Bucket), Key: aws.String("wrong.bin"), UploadId: aws.String(u.uploadID),
		MultipartUpload: &types.CompletedMultipartUpload{Parts: parts},
		ChecksumType:    types.ChecksumTypeFullObject, ChecksumCRC32C: aws.String("AAAAAA=="),
	})
	if code, status := errorCode(err); code != "XAmzContentChecksumMismatch" || status != 400 {
		t.Errorf("CompleteMultipartUpload with a wrong CRC32C: %v, want a 400 refusal", err)
	}
	up.Abort(t.Context(), nil)
}
