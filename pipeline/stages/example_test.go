package stages_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"strings"

	"github.com/mftflow/mftflow/pipeline"
	"github.com/mftflow/mftflow/pipeline/stages"
)

// Stages run one after the other, each reading the stream the previous one
// returned. An embedding application builds them in Go like this; a flow file
// names them instead (type: match, type: compress...).
func Example() {
	match, _ := stages.NewMatch(stages.MatchConfig{Include: []string{"**/*.csv"}})
	compress, _ := stages.NewCompress(stages.CompressConfig{Format: stages.FormatZstd})
	decompress, _ := stages.NewDecompress(stages.DecompressConfig{})

	ctx := context.Background()
	for _, name := range []string{"in/a.csv", "in/a.txt"} {
		f := pipeline.File{Name: name, Size: 6}
		var r io.Reader = strings.NewReader("a,b,c\n")
		var err error
		for _, s := range []pipeline.Stage{match, compress, decompress} {
			if f, r, err = s.Process(ctx, f, r); err != nil {
				break
			}
			fmt.Println(f.Name)
		}
		if err != nil {
			fmt.Println(err)
			continue
		}
		var out bytes.Buffer
		io.Copy(&out, r)
		fmt.Printf("%q\n", out.String())
	}
	// Output:
	// in/a.csv
	// in/a.csv.zst
	// in/a.csv
	// "a,b,c\n"
	// "in/a.txt" does not match include ["**/*.csv"]: file skipped
}
