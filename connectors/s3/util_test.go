package s3_test

import (
	"bytes"
	"io"
	"testing"

	awss3 "github.com/aws/aws-sdk-go-v2/service/s3"
)

func bytesReader(b []byte) io.ReadSeeker { return bytes.NewReader(b) }

func readAll(t *testing.T, obj *awss3.GetObjectOutput) []byte {
	t.Helper()
	defer obj.Body.Close()
	b, err := io.ReadAll(obj.Body)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
