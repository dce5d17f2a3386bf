package host

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync"
	"time"

	"github.com/mftflow/mftflow/pipeline"
	pb "github.com/mftflow/mftflow/plugins/internal/pluginpb"
	"github.com/mftflow/mftflow/plugins/internal/wire"
	"google.golang.org/grpc"
)

// framePool recycles the buffers content is cut into frames with.
var framePool = sync.Pool{New: func() any { b := make([]byte, wire.FrameSize); return &b }}

func sendFrames(r io.Reader, send func([]byte) error) (int64, error) {
	buf := framePool.Get().(*[]byte)
	defer framePool.Put(buf)
	return wire.SendFrames(r, *buf, send)
}

// source is a pipeline.Source served by a plugin process.
type source struct{ p *process }

func (s *source) Next(ctx context.Context) (pipeline.Item, error) {
	conn, gen, err := s.p.conn(ctx)
	if err != nil {
		return nil, err
	}
	resp, err := pb.NewSourceClient(conn).Next(ctx, &pb.NextRequest{})
	if err != nil {
		return nil, s.p.callError(ctx, gen, err)
	}
	it := &item{p: s.p, gen: gen, conn: conn, id: resp.Item, file: wire.FileFromPB(resp.File)}
	return it.with(resp.Ranges, resp.Siblings), nil
}

func (s *source) Close() error { return s.p.close() }

// item is one file offered by a plugin source. It lives in the process that
// offered it: after a restart the new process offers the file again, and
// this item only fails.
type item struct {
	p    *process
	gen  uint64
	conn *grpc.ClientConn
	id   string
	file pipeline.File
}

func (it *item) File() pipeline.File { return it.file }

func (it *item) Open(ctx context.Context) (io.ReadCloser, error) {
	return it.read(ctx, 0, -1)
}

func (it *item) read(ctx context.Context, offset, length int64) (io.ReadCloser, error) {
	if !it.p.current(it.gen) {
		return nil, it.p.stale("file")
	}
	ctx, cancel := context.WithCancel(ctx)
	stream, err := pb.NewSourceClient(it.conn).Read(ctx, &pb.ReadRequest{Item: it.id, Offset: offset, Length: length})
	if err != nil {
		cancel()
		return nil, it.p.callError(ctx, it.gen, err)
	}
	return it.dataReader(ctx, cancel, stream), nil
}

// sibling opens the file called name beside the item. It waits for the
// first frame, so that a missing file fails here as SiblingOpener says.
func (it *item) sibling(ctx context.Context, name string) (io.ReadCloser, error) {
	if !it.p.current(it.gen) {
		return nil, it.p.stale("file")
	}
	// Protocol buffers strings are UTF-8.
	if err := pipeline.CheckUTF8Name(name, "a plugin connector"); err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(ctx)
	stream, err := pb.NewSourceClient(it.conn).ReadSibling(ctx, &pb.ReadSiblingRequest{Item: it.id, Name: name})
	if err != nil {
		cancel()
		return nil, it.p.callError(ctx, it.gen, err)
	}
	r := it.dataReader(ctx, cancel, stream)
	if err := r.Start(); err != nil {
		cancel()
		return nil, err
	}
	return r, nil
}

// dataReader reads the content a server stream of Data frames carries.
func (it *item) dataReader(ctx context.Context, cancel context.CancelFunc, stream interface{ Recv() (*pb.Data, error) }) *streamReader {
	r := &streamReader{cancel: cancel}
	r.FrameReader.Recv = func() ([]byte, error) {
		m, err := stream.Recv()
		if err == io.EOF {
			return nil, io.EOF
		}
		if err != nil {
			return nil, it.p.callError(ctx, it.gen, err)
		}
		return m.Data, nil
	}
	return r
}

func (it *item) Ack(ctx context.Context, o pipeline.Outcome) error {
	if !it.p.current(it.gen) {
		return it.p.stale("file")
	}
	_, err := pb.NewSourceClient(it.conn).Ack(ctx, &pb.AckRequest{Item: it.id, Outcome: wire.OutcomeToPB(o)})
	return it.p.callError(ctx, it.gen, err)
}

// with returns it as a type with the optional abilities the plugin said its
// item has, and no others: the engine and stages look for them by type
// assertion.
func (it *item) with(ranges, siblings bool) pipeline.Item {
	switch {
	case ranges && siblings:
		return &rangeSiblingItem{it}
	case ranges:
		return &rangeItem{it}
	case siblings:
		return &siblingItem{it}
	}
	return it
}

// rangeItem is an item whose source reads byte ranges.
type rangeItem struct{ *item }

func (it *rangeItem) OpenRange(ctx context.Context, offset, length int64) (io.ReadCloser, error) {
	return it.read(ctx, offset, length)
}

// siblingItem is an item whose source opens the files beside it.
type siblingItem struct{ *item }

func (it *siblingItem) OpenSibling(ctx context.Context, name string) (io.ReadCloser, error) {
	return it.sibling(ctx, name)
}

// rangeSiblingItem is an item whose source does both.
type rangeSiblingItem struct{ *item }

func (it *rangeSiblingItem) OpenRange(ctx context.Context, offset, length int64) (io.ReadCloser, error) {
	return it.read(ctx, offset, length)
}

func (it *rangeSiblingItem) OpenSibling(ctx context.Context, name string) (io.ReadCloser, error) {
	return it.sibling(ctx, name)
}

var (
	_ pipeline.RangeOpener   = (*rangeItem)(nil)
	_ pipeline.SiblingOpener = (*siblingItem)(nil)
	_ pipeline.RangeOpener   = (*rangeSiblingItem)(nil)
	_ pipeline.SiblingOpener = (*rangeSiblingItem)(nil)
)

// streamReader reads a server stream of frames; Close ends the call.
type streamReader struct {
	wire.FrameReader
	cancel context.CancelFunc
}

func (r *streamReader) Close() error {
	r.cancel()
	return nil
}

// stage is a pipeline.Stage served by a plugin process.
type stage struct{ p *process }

func (s *stage) Process(ctx context.Context, f pipeline.File, r io.Reader) (pipeline.File, io.Reader, error) {
	if err := pipeline.CheckUTF8Name(f.Name, "a plugin connector"); err != nil {
		return pipeline.File{}, nil, err
	}
	conn, gen, err := s.p.conn(ctx)
	if err != nil {
		return pipeline.File{}, nil, err
	}
	ctx, cancel := context.WithCancelCause(ctx)
	stream, err := pb.NewStageClient(conn).Process(ctx)
	if err == nil {
		err = stream.Send(&pb.ProcessFrame{Frame: &pb.ProcessFrame_File{File: wire.FileToPB(f)}})
	}
	if err != nil {
		cancel(nil)
		return pipeline.File{}, nil, s.p.callError(ctx, gen, err)
	}
	// The input goes up while the output comes down: the stage streams.
	go func() {
		_, err := sendFrames(r, func(b []byte) error {
			return stream.Send(&pb.ProcessFrame{Frame: &pb.ProcessFrame_Data{Data: b}})
		})
		var send *wire.SendError
		switch {
		case errors.As(err, &send):
			// The call ended; Recv reports why.
		case err != nil:
			cancel(err) // reading the input failed: that is the stage's error
		default:
			_ = stream.CloseSend() // a failure ends the call, and Recv reports why
		}
	}()
	recv := func() (*pb.ProcessFrame, error) {
		m, err := stream.Recv()
		if err != nil && err != io.EOF {
			if cause := context.Cause(ctx); cause != nil && !errors.Is(cause, context.Canceled) {
				return nil, cause
			}
			return nil, s.p.callError(ctx, gen, err)
		}
		return m, err
	}
	first, err := recv()
	if err == nil && first.GetFile() == nil {
		err = errors.New("plugin stage answered without the file")
	}
	if err != nil {
		cancel(nil)
		if err == io.EOF {
			err = io.ErrUnexpectedEOF
		}
		return pipeline.File{}, nil, err
	}
	out := &streamReader{cancel: func() { cancel(nil) }}
	out.FrameReader.Recv = func() ([]byte, error) {
		m, err := recv()
		if err != nil {
			return nil, err
		}
		return m.GetData(), nil
	}
	return wire.FileFromPB(first.GetFile()), out, nil
}

// sink is a pipeline.Sink served by a plugin process.
type sink struct{ p *process }

func (s *sink) ManifestFirst(f pipeline.File) bool {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	conn, _, err := s.p.conn(ctx)
	if err != nil {
		return false // Open fails with the reason
	}
	resp, err := pb.NewSinkClient(conn).ManifestFirst(ctx, &pb.ManifestFirstRequest{File: wire.FileToPB(f)})
	return err == nil && resp.ManifestFirst
}

func (s *sink) Open(ctx context.Context, f pipeline.File, resume []byte) (pipeline.Upload, error) {
	// Protocol buffers strings are UTF-8.
	if err := pipeline.CheckUTF8Name(f.Name, "a plugin connector"); err != nil {
		return nil, err
	}
	conn, gen, err := s.p.conn(ctx)
	if err != nil {
		return nil, err
	}
	resp, err := pb.NewSinkClient(conn).Open(ctx, &pb.OpenRequest{File: wire.FileToPB(f), Resume: resume})
	if err != nil {
		return nil, s.p.callError(ctx, gen, err)
	}
	return &upload{
		p: s.p, gen: gen, client: pb.NewSinkClient(conn), id: resp.Upload, state: resume,
		plan: pipeline.PartPlan{PartSize: resp.PartSize, Concurrency: int(resp.Concurrency), InOrder: resp.InOrder},
	}, nil
}

func (s *sink) Close() error { return s.p.close() }

// upload is one file being written by a plugin sink.
type upload struct {
	p      *process
	gen    uint64
	client pb.SinkClient
	id     string
	plan   pipeline.PartPlan

	mu       sync.Mutex
	state    []byte // the last state the plugin reported
	location string // where Commit put the file
}

func (u *upload) Plan() pipeline.PartPlan { return u.plan }

func (u *upload) check() error {
	if !u.p.current(u.gen) {
		return u.p.stale("upload")
	}
	return nil
}

func (u *upload) WritePart(ctx context.Context, p pipeline.Part, r io.Reader) error {
	if err := u.check(); err != nil {
		return err
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	header := &pb.Part{Upload: u.id, Number: int64(p.Number), Offset: p.Offset, Size: p.Size, Last: p.Last}
	if shm := u.p.shm; shm != nil && p.Size > 0 {
		if off, ok := shm.alloc(p.Size); ok {
			defer shm.release(off, p.Size)
			if _, err := io.ReadFull(r, shm.mem[off:off+p.Size]); err != nil {
				return fmt.Errorf("reading part %d: %w", p.Number, err)
			}
			header.Shm, header.ShmOffset = true, off
		}
	}
	stream, err := u.client.WritePart(ctx)
	if err == nil {
		err = stream.Send(&pb.PartFrame{Frame: &pb.PartFrame_Part{Part: header}})
	}
	if err != nil {
		return u.p.callError(ctx, u.gen, err)
	}
	if !header.Shm {
		_, err = sendFrames(r, func(b []byte) error {
			return stream.Send(&pb.PartFrame{Frame: &pb.PartFrame_Data{Data: b}})
		})
		var send *wire.SendError
		if err != nil && !errors.As(err, &send) {
			return err // reading the part failed; cancel ends the call
		}
	}
	// After a send error the call has ended: CloseAndRecv says why.
	_, err = stream.CloseAndRecv()
	return u.p.callError(ctx, u.gen, err)
}

func (u *upload) Commit(ctx context.Context, f pipeline.File) error {
	if err := u.check(); err != nil {
		return err
	}
	resp, err := u.client.Commit(ctx, &pb.CommitRequest{Upload: u.id, File: wire.FileToPB(f)})
	if err == nil {
		u.mu.Lock()
		u.location = resp.GetLocation()
		u.mu.Unlock()
	}
	return u.p.callError(ctx, u.gen, err)
}

// Location is where the plugin's sink put the file, as its Commit said;
// it implements pipeline.Locator.
func (u *upload) Location() string {
	u.mu.Lock()
	defer u.mu.Unlock()
	return u.location
}

func (u *upload) Abort(ctx context.Context, cause error) error {
	if err := u.check(); err != nil {
		return err
	}
	req := &pb.AbortRequest{Upload: u.id}
	if cause != nil {
		req.Cause = cause.Error()
	}
	_, err := u.client.Abort(ctx, req)
	return u.p.callError(ctx, u.gen, err)
}

// State asks the plugin for its resume state. When the process cannot
// answer, the last state it gave is kept: losing it would lose the resume.
func (u *upload) State() []byte {
	u.mu.Lock()
	defer u.mu.Unlock()
	if u.p.current(u.gen) {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		resp, err := u.client.State(ctx, &pb.StateRequest{Upload: u.id})
		cancel()
		if err == nil {
			u.state = resp.State
		}
	}
	return u.state
}

// Close stops the stage's process; the engine calls it when the run ends.
func (s *stage) Close() error { return s.p.close() }
