package engine_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"fmt"
	"io"
	"math/rand"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/mftflow/mftflow/pipeline"
	"github.com/mftflow/mftflow/pipeline/bus"
	"github.com/mftflow/mftflow/pipeline/engine"
)

type qsrc struct {
	mu    sync.Mutex
	files []string
	data  map[string][]byte
	acked map[string]pipeline.Outcome
}
type qitem struct {
	s    *qsrc
	name string
}

func (s *qsrc) Next(ctx context.Context) (pipeline.Item, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.files) == 0 {
		return nil, io.EOF
	}
	n := s.files[0]
	s.files = s.files[1:]
	return qitem{s, n}, nil
}
func (s *qsrc) Close() error { return nil }
func (i qitem) File() pipeline.File {
	return pipeline.File{Key: i.name, Name: i.name, Size: int64(len(i.s.data[i.name]))}
}
func (i qitem) Open(ctx context.Context) (io.ReadCloser, error) {
	return io.NopCloser(bytes.NewReader(i.s.data[i.name])), nil
}
func (i qitem) Ack(ctx context.Context, o pipeline.Outcome) error {
	i.s.mu.Lock()
	defer i.s.mu.Unlock()
	i.s.acked[i.name] = o
	return nil
}

type qsink struct {
	mu    sync.Mutex
	parts map[string]map[int][]byte
	out   map[string][]byte
}
type qup struct {
	s *qsink
	f pipeline.File
}

func (s *qsink) Open(ctx context.Context, f pipeline.File, resume []byte) (pipeline.Upload, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.parts[f.ID] == nil {
		s.parts[f.ID] = map[int][]byte{}
	}
	return &qup{s, f}, nil
}
func (s *qsink) Close() error { return nil }
func (u *qup) Plan() pipeline.PartPlan { return pipeline.PartPlan{PartSize: 3 << 20} }
func (u *qup) WritePart(ctx context.Context, p pipeline.Part, r io.Reader) error {
	b, err := io.ReadAll(r)
	if err != nil {
		return err
	}
	if int64(len(b)) != p.Size {
		return fmt.Errorf("part %d: %d bytes, want %d", p.Number, len(b), p.Size)
	}
	u.s.mu.Lock()
	defer u.s.mu.Unlock()
	u.s.parts[u.f.ID][p.Number] = b
	return nil
}
func (u *qup) Commit(ctx context.Context, f pipeline.File) error {
	u.s.mu.Lock()
	defer u.s.mu.Unlock()
	var all []byte
	for i := 0; i < len(u.s.parts[u.f.ID]); i++ {
		all = append(all, u.s.parts[u.f.ID][i]...)
	}
	u.s.out[f.Name] = all
	return nil
}
func (u *qup) Abort(ctx context.Context, cause error) error { return nil }
func (u *qup) State() []byte                                { return []byte(u.f.ID) }

func TestQuick(t *testing.T) {
	srv, err := bus.StartEmbedded(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Shutdown()
	nc, err := nats.Connect(srv.URL())
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	src := &qsrc{data: map[string][]byte{}, acked: map[string]pipeline.Outcome{}}
	rng := rand.New(rand.NewSource(1))
	for i, n := range []int{0, 1, 1 << 20, 5<<20 + 17, 12 << 20} {
		b := make([]byte, n)
		rng.Read(b)
		name := fmt.Sprintf("f%d.bin", i)
		src.files = append(src.files, name)
		src.data[name] = b
	}
	sink := &qsink{parts: map[string]map[int][]byte{}, out: map[string][]byte{}}
	eng, _ := engine.New(nc, engine.Options{})
	run, err := eng.Start(context.Background(), pipeline.Flow{Name: "q", Source: pipeline.SourceOf(src), Sinks: []pipeline.SinkSpec{pipeline.SinkOf("mem", sink)}})
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error)
	go func() { done <- run.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(60 * time.Second):
		t.Fatal("timeout")
	}
	for name, b := range src.data {
		if sha256.Sum256(sink.out[name]) != sha256.Sum256(b) {
			t.Errorf("%s: content differs (%d vs %d bytes)", name, len(sink.out[name]), len(b))
		}
		if src.acked[name].Status != pipeline.Passed {
			t.Errorf("%s: outcome %+v", name, src.acked[name])
		}
	}
	t.Logf("%+v", run.Stats())
}
