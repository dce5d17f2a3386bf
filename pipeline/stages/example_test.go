package stages_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/mftflow/mftflow/pipeline"
	"github.com/mftflow/mftflow/pipeline/stages"
)

// Stages built in Go run one after the other, each reading the stream the
// previous one returned.
func Example() {
	match, _ := stages.NewMatch(stages.MatchConfig{Include: []string{"**/*.csv"}})
	compress, _ := stages.NewCompress(stages.CompressConfig{Format: stages.FormatZstd})
	decompress, _ := stages.NewDecompress(stages.DecompressConfig{})

	ctx := context.Background()
	for _, name := range []string{"in/a.csv", "in/a.txt"} {
		f := pipeline.File{Name: name, Size: 6}
		var r io.Reader = bytes.NewReader([]byte("a,b,c\n"))
		var err error
		for _, s := range []pipeline.Stage{match, compress, decompress} {
			if f, r, err = s.Process(ctx, f, r); err != nil {
				break
			}
			fmt.Println(s.(fmt.Stringer) == nil, f.Name)
		}
		if errors.Is(err, pipeline.ErrSkip) {
			fmt.Println(err)
		}
	}
}
