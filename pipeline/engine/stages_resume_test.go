package engine_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"io"
	"testing"
	"time"

	"github.com/mftflow/mftflow/pipeline"
	"github.com/mftflow/mftflow/pipeline/engine"
	"github.com/mftflow/mftflow/testkit"
)

// freshKey is a stage that, like encryption, gives other bytes on every
// read: a random key, then the content XORed with it.
func freshKey() pipeline.Stage {
	return pipeline.StageFunc(func(ctx context.Context, f pipeline.File, r io.Reader) (pipeline.File, io.Reader, error) {
		key := make([]byte, 16)
		rand.Read(key)
		f.Size = -1
		return f, io.MultiReader(bytes.NewReader(key), &xorReader{r: r, key: key}), nil
	})
}

type xorReader struct {
	r   io.Reader
	key []byte
	off int
}

func (x *xorReader) Read(p []byte) (int, error) {
	n, err := x.r.Read(p)
	for i := range n {
		p[i] ^= x.key[(x.off+i)%len(x.key)]
	}
	x.off += n
	return n, err
}

func unkey(b []byte) []byte {
	out := bytes.Clone(b[16:])
	for i := range out {
		out[i] ^= b[i%16]
	}
	return out
}

// A read interrupted through a stage whose output differs every time is
// not continued with the next read's bytes, which would join two outputs:
// the file is read afresh, and the sink gets one whole output.
func TestResumeThroughAStageThatDiffers(t *testing.T) {
	e := newEnv(t)
	content := testkit.RandomContent(9, 12<<20)
	src := testkit.NewMemorySource(map[string][]byte{"secret.bin": content}, true)
	mem := testkit.NewMemorySink()
	mem.SetPlan(pipeline.PartPlan{PartSize: 1 << 20, Concurrency: 2})
	flow := func(s pipeline.Source, k pipeline.Sink) pipeline.Flow {
		return pipeline.Flow{Name: "differ", Source: pipeline.SourceOf(s), Stages: []pipeline.Component{pipeline.StageOf(freshKey())},
			Sinks: []pipeline.SinkSpec{pipeline.SinkOf("mem", k)}, Bus: pipeline.BusSpec{ChunkSize: 64 << 10, Window: 2 << 20}}
	}
	// A slow sink holds the read back by the window: stop it half-way.
	run, err := e.engine(t, engine.Options{}).Start(context.Background(), flow(src, testkit.Stall(mem, 100*time.Millisecond)))
	if err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(30 * time.Second); mem.PartWrites() < 2 && time.Now().Before(deadline); {
		time.Sleep(10 * time.Millisecond)
	}
	if err := run.Stop(context.Background()); err != nil {
		t.Fatal(err)
	}
	if mem.Commits() != 0 {
		t.Fatal("the file was committed before the stop; nothing was interrupted")
	}
	runToEnd(t, e.engine(t, engine.Options{}), flow(src.Reopen(), mem))
	got := mem.Files()["secret.bin"]
	if len(got) != len(content)+16 || !bytes.Equal(unkey(got), content) {
		t.Fatalf("the sink holds %d bytes that do not decode to the content (%d bytes): two outputs were joined", len(got), len(content))
	}
}
