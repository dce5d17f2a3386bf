package s3

import (
	"encoding/base64"
	"encoding/binary"
	"hash/crc32"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"

	"github.com/mftflow/mftflow/testkit"
)

// TestWholeCRC32C builds an object's CRC32C from its parts' and compares it
// with the CRC32C of the whole content.
func TestWholeCRC32C(t *testing.T) {
	for _, tc := range []struct{ size, partSize int }{
		{1000, 1}, {1 << 20, 1000}, {1<<20 + 333, 4096}, {1<<20 + 333, 1 << 19}, {1<<20 + 333, 1<<20 + 333}, {5, 10},
	} {
		content := testkit.RandomContent(int64(tc.size), tc.size)
		var parts []types.CompletedPart
		for off := 0; off < len(content); off += tc.partSize {
			var v [4]byte
			binary.BigEndian.PutUint32(v[:], crc32.Checksum(content[off:min(off+tc.partSize, len(content))], castagnoli))
			parts = append(parts, types.CompletedPart{PartNumber: aws.Int32(int32(len(parts) + 1)), ChecksumCRC32C: aws.String(base64.StdEncoding.EncodeToString(v[:]))})
		}
		checkCRC(t, parts, int64(tc.partSize), int64(tc.size), crc32.Checksum(content, castagnoli))
	}
	if _, err := wholeCRC32C([]types.CompletedPart{{PartNumber: aws.Int32(1)}}, 5, 5); err == nil {
		t.Error("a part without a CRC32C gave a whole-object CRC32C")
	}
}

func checkCRC(t *testing.T, parts []types.CompletedPart, partSize, size int64, want uint32) {
	t.Helper()
	got, err := wholeCRC32C(parts, partSize, size)
	if err != nil {
		t.Fatal(err)
	}
	raw, _ := base64.StdEncoding.DecodeString(got)
	if binary.BigEndian.Uint32(raw) != want {
		t.Errorf("%d bytes in parts of %d: CRC32C %08x, want %08x", size, partSize, binary.BigEndian.Uint32(raw), want)
	}
}
