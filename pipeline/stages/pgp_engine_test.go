package stages_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/mftflow/mftflow/pipeline"
	"github.com/mftflow/mftflow/pipeline/engine"
	"github.com/mftflow/mftflow/pipeline/stages"
	"github.com/mftflow/mftflow/testkit"
)

// The signature and the integrity check are known only at the end of a
// file, after most of its chunks are on the bus: the engine must still fail
// the file and never hand it to a sink. The good file beside it passes.
func TestPGPFailureAtTheEndFailsTheFileInAFlow(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a NATS server")
	}
	bob, alice, mallory := testKey(t, "bob-25519", false), testKey(t, "alice-rsa", false), testKey(t, "mallory-rsa", false)
	data := randomBytes(3<<20, 11)
	tampered := encryptFor(t, data, false, bob, &alice)
	tampered[len(tampered)-200] ^= 0x04
	files := map[string][]byte{
		"good.csv.pgp":     encryptFor(t, data, false, bob, &alice),
		"tampered.csv.pgp": tampered,
		"forged.csv.pgp":   forgedSignature(t, bob, alice),
		"mallory.csv.pgp":  encryptFor(t, data, false, bob, &mallory),
	}
	dec := newDecrypt(t, stages.PGPDecryptConfig{PrivateKeys: []string{bob.privateFile}, RequireSignature: true, Signers: []string{alice.publicFile}})

	nc := testkit.ConnectNATS(t, testkit.StartNATS(t))
	eng, err := engine.New(nc, engine.Options{AckWait: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	src, sink := testkit.NewMemorySource(files, true), testkit.NewMemorySink()
	sinkSpec := pipeline.SinkOf("mem", sink)
	sinkSpec.Retry = pipeline.Retry{Attempts: 2, Initial: 20 * time.Millisecond, Max: 100 * time.Millisecond}
	run, err := eng.Start(context.Background(), pipeline.Flow{
		Name:   "pgp",
		Source: pipeline.SourceOf(src),
		Stages: []pipeline.Component{pipeline.StageOf(dec)},
		Sinks:  []pipeline.SinkSpec{sinkSpec},
		Bus:    pipeline.BusSpec{ChunkSize: 64 << 10},
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := run.Wait(); err != nil {
		t.Fatal(err)
	}
	got := sink.Files()
	if len(got) != 1 || sum(got["good.csv"]) != sum(data) {
		t.Errorf("sink holds %d files (good.csv sha256 %s); want good.csv alone, sha256 %s", len(got), sum(got["good.csv"]), sum(data))
	}
	acked := src.Acked()
	for name, want := range map[string]string{
		"tampered.csv.pgp": "damaged or tampered content",
		"forged.csv.pgp":   "bad signature by key " + alice.id(),
		"mallory.csv.pgp":  "signer not trusted: signed by key " + mallory.id(),
	} {
		if o := acked[name]; o.Status != pipeline.Failed || !strings.Contains(o.Message, want) {
			t.Errorf("%s acked %v %q; want failed, saying %q", name, o.Status, o.Message, want)
		}
	}
	if o := acked["good.csv.pgp"]; o.Status != pipeline.Passed {
		t.Errorf("good.csv.pgp acked %v %q", o.Status, o.Message)
	}
}
