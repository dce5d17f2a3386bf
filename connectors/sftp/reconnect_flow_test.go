package sftp

import (
	"context"
	"io"
	"path"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mftflow/mftflow/pipeline"
	"github.com/mftflow/mftflow/testkit"
	"github.com/mftflow/mftflow/testkit/sshd"
)

// TestFlowSurvivesCutConnection runs a flow whose sink's connection is cut
// while part 2 of a file is being written: the engine retries, the sink
// dials again, and the file lands byte-identical and once.
func TestFlowSurvivesCutConnection(t *testing.T) {
	srv := sshd.Start(t)
	p := startProxy(t, srv.Addr)
	content := testkit.RandomContent(12, 5<<20+33) // 6 parts of 1 MiB
	srv.WriteFile(t, "inbox/big.bin", content)
	out := srv.FreshDir(t, "outbox")
	sink := newTestSink(t, SinkConfig{ConnConfig: p.connConfig(t, srv), Directory: srv.Path(out), PartSize: 1 << 20})
	cutter := &cuttingSink{Sink: sink, cut: p.cut}
	spec := pipeline.SinkOf("sftp", cutter)
	spec.Retry = pipeline.Retry{Attempts: 10, Initial: 20 * time.Millisecond, Max: 100 * time.Millisecond}

	reg := pipeline.NewRegistry()
	if err := Register(reg); err != nil {
		t.Fatal(err)
	}
	r := testkit.RunFlow(t, reg, pipeline.Flow{
		Name: "cut",
		Source: pipeline.Use("sftp", map[string]any{
			"host": srv.Host, "port": srv.Port, "user": srv.User, "private_key": srv.ClientKey, "known_hosts": srv.KnownHostsFile,
			"directory": srv.Path("inbox"), "watch": false, "stable_for": "0s",
		}),
		Sinks: []pipeline.SinkSpec{spec},
	})
	if cutter.cuts.Load() == 0 {
		t.Fatal("the connection was never cut")
	}
	expectFiles(t, srv, out, "big.bin")
	expectContent(t, srv, path.Join(out, "big.bin"), content)
	t.Logf("stats after %d cut(s): %+v", cutter.cuts.Load(), r.Stats())
}

// cuttingSink cuts every connection once, when part 2 is first written.
type cuttingSink struct {
	pipeline.Sink
	cut  func()
	cuts atomic.Int64
}

func (s *cuttingSink) Open(ctx context.Context, f pipeline.File, resume []byte) (pipeline.Upload, error) {
	u, err := s.Sink.Open(ctx, f, resume)
	if err != nil {
		return nil, err
	}
	return &cuttingUpload{Upload: u, s: s}, nil
}

type cuttingUpload struct {
	pipeline.Upload
	s *cuttingSink
}

func (u *cuttingUpload) WritePart(ctx context.Context, p pipeline.Part, r io.Reader) error {
	if p.Number == 2 && u.s.cuts.CompareAndSwap(0, 1) {
		u.s.cut()
	}
	return u.Upload.WritePart(ctx, p, r)
}
