package s3

import (
	"encoding/base64"
	"encoding/binary"
	"fmt"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
)

// wholeCRC32C is the CRC32C of a whole object, base64 as S3 writes it,
// from the CRC32C of each of its parts: every part but the last is
// partSize bytes, and the object size bytes.
func wholeCRC32C(parts []types.CompletedPart, partSize, size int64) (string, error) {
	var crc uint32
	for i, p := range parts {
		raw, err := base64.StdEncoding.DecodeString(aws.ToString(p.ChecksumCRC32C))
		if err != nil || len(raw) != 4 {
			return "", fmt.Errorf("part %d has no CRC32C to build the object's from", aws.ToInt32(p.PartNumber))
		}
		n := partSize
		if i == len(parts)-1 {
			n = size - int64(len(parts)-1)*partSize
		}
		crc = crc32Combine(crc, binary.BigEndian.Uint32(raw), n)
	}
	var v [4]byte
	binary.BigEndian.PutUint32(v[:], crc)
	return base64.StdEncoding.EncodeToString(v[:]), nil
}

// crc32Combine returns the CRC32C of A followed by B from crcA, crcB and
// B's length, as zlib's crc32_combine does: appending len2 zero bytes to A
// is a linear map, applied by squaring a GF(2) matrix.
func crc32Combine(crcA, crcB uint32, lenB int64) uint32 {
	if lenB <= 0 {
		return crcA
	}
	var even, odd [32]uint32
	odd[0] = 0x82f63b78 // Castagnoli, reversed
	row := uint32(1)
	for n := 1; n < 32; n++ {
		odd[n] = row
		row <<= 1
	}
	gf2Square(&even, &odd) // two zero bits
	gf2Square(&odd, &even) // four zero bits
	for {
		gf2Square(&even, &odd)
		if lenB&1 != 0 {
			crcA = gf2Times(&even, crcA)
		}
		lenB >>= 1
		if lenB == 0 {
			break
		}
		gf2Square(&odd, &even)
		if lenB&1 != 0 {
			crcA = gf2Times(&odd, crcA)
		}
		lenB >>= 1
		if lenB == 0 {
			break
		}
	}
	return crcA ^ crcB
}

func gf2Times(mat *[32]uint32, vec uint32) uint32 {
	var sum uint32
	for i := 0; vec != 0; i, vec = i+1, vec>>1 {
		if vec&1 != 0 {
			sum ^= mat[i]
		}
	}
	return sum
}

func gf2Square(square, mat *[32]uint32) {
	for n := range 32 {
		square[n] = gf2Times(mat, mat[n])
	}
}
