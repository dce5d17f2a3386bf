package stages_test

import (
	"bytes"
	"testing"

	"github.com/mftflow/mftflow/pipeline"
	"github.com/mftflow/mftflow/pipeline/stages"
)

// Any content fails, if it fails, with a permanent error: retrying cannot
// repair corrupt data.
func FuzzDecompress(f *testing.F) {
	d, err := stages.NewDecompress(stages.DecompressConfig{})
	if err != nil {
		f.Fatal(err)
	}
	for _, format := range []string{stages.FormatGzip, stages.FormatZstd} {
		c, err := stages.NewCompress(stages.CompressConfig{Format: format})
		if err != nil {
			f.Fatal(err)
		}
		for _, data := range []string{"", "x", "hello hello hello hello"} {
			_, r, _ := c.Process(f.Context(), pipeline.File{Name: "a"}, bytes.NewReader([]byte(data)))
			var b bytes.Buffer
			if _, err := b.ReadFrom(r); err != nil {
				f.Fatal(err)
			}
			f.Add(b.Bytes(), uint8(0))
		}
	}
	f.Add([]byte("plain"), uint8(1))
	names := []string{"a.gz", "a.zst", "a"}
	f.Fuzz(func(t *testing.T, data []byte, which uint8) {
		_, _, err := run(t, d, pipeline.File{Name: names[int(which)%len(names)]}, bytes.NewReader(data))
		if err != nil && !pipeline.IsPermanent(err) {
			t.Fatalf("%v is not permanent", err)
		}
	})
}
