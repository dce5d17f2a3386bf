package sdk

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"

	"github.com/mftflow/mftflow/internal/discard"
	"github.com/mftflow/mftflow/pipeline"
	pb "github.com/mftflow/mftflow/plugins/internal/pluginpb"
	"github.com/mftflow/mftflow/plugins/internal/wire"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// server is one plugin process: it describes the registry's connectors and,
// once configured, serves exactly one connector instance.
type server struct {
	pb.UnimplementedPluginServer
	reg     *pipeline.Registry
	version string
	shm     []byte // memory shared by the runner, read-only; nil if none

	mu     sync.Mutex
	kind   pipeline.Kind
	source pipeline.Source
	stage  pipeline.Stage
	sink   pipeline.Sink

	ids      atomic.Uint64
	ackedIDs []string // oldest first
	items    sync.Map // id → pipeline.Item
	uploads  sync.Map // id → *upload
}

type upload struct {
	fileID string
	pipeline.Upload
}

func newServer(r *pipeline.Registry) *server { return &server{reg: r} }

func (s *server) newID() string { return strconv.FormatUint(s.ids.Add(1), 10) }

func (s *server) Describe(context.Context, *pb.DescribeRequest) (*pb.DescribeResponse, error) {
	resp := &pb.DescribeResponse{Version: s.version}
	for _, k := range []pipeline.Kind{pipeline.KindSource, pipeline.KindStage, pipeline.KindSink} {
		for _, spec := range s.reg.Specs(k) {
			m, err := wire.SpecToPB(spec)
			if err != nil {
				return nil, wire.ErrorToStatus(pipeline.Permanent(err))
			}
			resp.Connectors = append(resp.Connectors, m)
		}
	}
	return resp, nil
}

func (s *server) Configure(ctx context.Context, req *pb.ConfigureRequest) (*pb.ConfigureResponse, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.kind != "" {
		return nil, status.Errorf(codes.FailedPrecondition, "this process already serves a %s", s.kind)
	}
	raw := wire.ConfigFromPB(req.Config)
	var err error
	switch k := pipeline.Kind(req.Kind); k {
	case pipeline.KindSource:
		s.source, err = s.reg.NewSource(ctx, req.Name, raw)
	case pipeline.KindStage:
		s.stage, err = s.reg.NewStage(ctx, req.Name, raw)
	case pipeline.KindSink:
		s.sink, err = s.reg.NewSink(ctx, req.Name, raw)
	default:
		err = fmt.Errorf("unknown connector kind %q", req.Kind)
	}
	if err != nil {
		// A connector that cannot be built with this config will not be
		// built by trying again.
		return nil, wire.ErrorToStatus(pipeline.Permanent(err))
	}
	s.kind = pipeline.Kind(req.Kind)
	return &pb.ConfigureResponse{}, nil
}

func (s *server) Close(context.Context, *pb.CloseRequest) (*pb.CloseResponse, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var err error
	switch {
	case s.source != nil:
		err = s.source.Close()
	case s.sink != nil:
		err = s.sink.Close()
	}
	s.source, s.sink, s.stage = nil, nil, nil
	return &pb.CloseResponse{}, wire.ErrorToStatus(err)
}

// configured returns the connector of kind k, or an error when this process
// serves something else.
func (s *server) configured(k pipeline.Kind) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.kind != k {
		return status.Errorf(codes.FailedPrecondition, "this process serves a %q connector, not a %s", s.kind, k)
	}
	return nil
}

type sourceServer struct {
	pb.UnimplementedSourceServer
	s *server
}

func (ss *sourceServer) Next(ctx context.Context, _ *pb.NextRequest) (*pb.NextResponse, error) {
	if err := ss.s.configured(pipeline.KindSource); err != nil {
		return nil, err
	}
	it, err := ss.s.source.Next(ctx)
	if err != nil {
		return nil, wire.ErrorToStatus(err)
	}
	id := ss.s.newID()
	ss.s.items.Store(id, it)
	_, ranges := it.(pipeline.RangeOpener)
	_, siblings := it.(pipeline.SiblingOpener)
	return &pb.NextResponse{Item: id, File: wire.FileToPB(it.File()), Ranges: ranges, Siblings: siblings}, nil
}

func (ss *sourceServer) item(id string) (pipeline.Item, error) {
	it, ok := ss.s.items.Load(id)
	if !ok {
		return nil, status.Errorf(codes.NotFound, "item %s is unknown to this plugin process (acked already, or offered by a process that has exited)", id)
	}
	return it.(pipeline.Item), nil
}

func (ss *sourceServer) Read(req *pb.ReadRequest, stream pb.Source_ReadServer) error {
	it, err := ss.item(req.Item)
	if err != nil {
		return err
	}
	ctx := stream.Context()
	var rc io.ReadCloser
	switch ro, ranges := it.(pipeline.RangeOpener); {
	case ranges && (req.Offset > 0 || req.Length >= 0):
		length := req.Length
		if length < 0 {
			length = it.File().Size - req.Offset
		}
		rc, err = ro.OpenRange(ctx, req.Offset, length)
	case req.Offset > 0:
		return status.Errorf(codes.InvalidArgument, "item %s cannot be read from an offset", req.Item)
	default:
		rc, err = it.Open(ctx)
	}
	if err != nil {
		return wire.ErrorToStatus(err)
	}
	defer discard.Close(rc)
	var r io.Reader = rc
	if req.Length >= 0 {
		r = io.LimitReader(rc, req.Length)
	}
	return wire.ErrorToStatus(sendData(r, stream))
}

// ReadSibling streams the file beside an item that req names.
func (ss *sourceServer) ReadSibling(req *pb.ReadSiblingRequest, stream pb.Source_ReadSiblingServer) error {
	it, err := ss.item(req.Item)
	if err != nil {
		return err
	}
	so, ok := it.(pipeline.SiblingOpener)
	if !ok {
		return status.Errorf(codes.Unimplemented, "item %s cannot open the files beside it: its source is no pipeline.SiblingOpener, as Next said", req.Item)
	}
	rc, err := so.OpenSibling(stream.Context(), req.Name)
	if err != nil {
		return wire.NotFoundToStatus(err)
	}
	defer discard.Close(rc)
	return wire.NotFoundToStatus(sendData(rc, stream))
}

// sendData sends r to its end as Data frames.
func sendData(r io.Reader, stream interface{ Send(*pb.Data) error }) error {
	buf := make([]byte, wire.FrameSize)
	_, err := wire.SendFrames(r, buf, func(b []byte) error { return stream.Send(&pb.Data{Data: b}) })
	return err
}

func (ss *sourceServer) Ack(ctx context.Context, req *pb.AckRequest) (*pb.AckResponse, error) {
	it, err := ss.item(req.Item)
	if err != nil {
		return nil, err
	}
	if err := it.Ack(ctx, wire.OutcomeFromPB(req.Outcome)); err != nil {
		return nil, wire.ErrorToStatus(err)
	}
	ss.s.acked(req.Item)
	return &pb.AckResponse{}, nil
}

// keepAcked is how many acked items stay known, so that an Ack repeated
// by the engine (it retries acks) reaches the item again.
const keepAcked = 1024

// acked records that item id was acked, forgetting the oldest acked item
// beyond keepAcked.
func (s *server) acked(id string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if slices.Contains(s.ackedIDs, id) {
		return
	}
	s.ackedIDs = append(s.ackedIDs, id)
	if len(s.ackedIDs) > keepAcked {
		s.items.Delete(s.ackedIDs[0])
		s.ackedIDs = s.ackedIDs[1:]
	}
}

type stageServer struct {
	pb.UnimplementedStageServer
	s *server
}

func (st *stageServer) Process(stream pb.Stage_ProcessServer) error {
	if err := st.s.configured(pipeline.KindStage); err != nil {
		return err
	}
	first, err := stream.Recv()
	if err != nil {
		return err
	}
	if first.GetFile() == nil {
		return status.Error(codes.InvalidArgument, "the first frame of Process must carry the file")
	}
	in := &wire.FrameReader{Recv: func() ([]byte, error) {
		m, err := stream.Recv()
		if err != nil {
			return nil, err
		}
		return m.GetData(), nil
	}}
	f, out, err := st.s.stage.Process(stream.Context(), wire.FileFromPB(first.GetFile()), in)
	if err != nil {
		return wire.ErrorToStatus(err)
	}
	if c, ok := out.(io.Closer); ok {
		defer discard.Close(c) // the stage's output, only read
	}
	if err := stream.Send(&pb.ProcessFrame{Frame: &pb.ProcessFrame_File{File: wire.FileToPB(f)}}); err != nil {
		return err
	}
	buf := make([]byte, wire.FrameSize)
	_, err = wire.SendFrames(out, buf, func(b []byte) error {
		return stream.Send(&pb.ProcessFrame{Frame: &pb.ProcessFrame_Data{Data: b}})
	})
	return wire.ErrorToStatus(err)
}

type sinkServer struct {
	pb.UnimplementedSinkServer
	s *server
}

func (sk *sinkServer) ManifestFirst(_ context.Context, req *pb.ManifestFirstRequest) (*pb.ManifestFirstResponse, error) {
	if err := sk.s.configured(pipeline.KindSink); err != nil {
		return nil, err
	}
	mf, ok := sk.s.sink.(pipeline.ManifestFirst)
	return &pb.ManifestFirstResponse{ManifestFirst: ok && mf.ManifestFirst(wire.FileFromPB(req.File))}, nil
}

func (sk *sinkServer) Open(ctx context.Context, req *pb.OpenRequest) (*pb.OpenResponse, error) {
	if err := sk.s.configured(pipeline.KindSink); err != nil {
		return nil, err
	}
	f := wire.FileFromPB(req.File)
	u, err := sk.s.sink.Open(ctx, f, req.Resume)
	if err != nil {
		return nil, wire.ErrorToStatus(err)
	}
	// A delivery the engine gave up on and opened again leaves its old
	// upload here: forget it, so uploads stay bounded by files in flight.
	sk.s.uploads.Range(func(id, v any) bool {
		if v.(*upload).fileID == f.ID {
			sk.s.uploads.Delete(id)
		}
		return true
	})
	id := sk.s.newID()
	sk.s.uploads.Store(id, &upload{fileID: f.ID, Upload: u})
	plan := u.Plan()
	return &pb.OpenResponse{Upload: id, PartSize: plan.PartSize, Concurrency: int32(plan.Concurrency), InOrder: plan.InOrder}, nil
}

func (sk *sinkServer) upload(id string) (*upload, error) {
	u, ok := sk.s.uploads.Load(id)
	if !ok {
		return nil, status.Errorf(codes.NotFound, "upload %s is unknown to this plugin process (finished already, or opened by a process that has exited)", id)
	}
	return u.(*upload), nil
}

func (sk *sinkServer) WritePart(stream pb.Sink_WritePartServer) error {
	first, err := stream.Recv()
	if err != nil {
		return err
	}
	h := first.GetPart()
	if h == nil {
		return status.Error(codes.InvalidArgument, "the first frame of WritePart must carry the part")
	}
	u, err := sk.upload(h.Upload)
	if err != nil {
		return err
	}
	var r io.Reader = &wire.FrameReader{Recv: func() ([]byte, error) {
		m, err := stream.Recv()
		if err != nil {
			return nil, err
		}
		return m.GetData(), nil
	}}
	if h.Shm {
		if h.ShmOffset < 0 || h.Size < 0 || h.ShmOffset+h.Size > int64(len(sk.s.shm)) {
			return status.Errorf(codes.InvalidArgument, "part %d lies outside the shared memory (%d bytes at %d of %d)", h.Number, h.Size, h.ShmOffset, len(sk.s.shm))
		}
		r = bytes.NewReader(sk.s.shm[h.ShmOffset : h.ShmOffset+h.Size])
	}
	p := pipeline.Part{Number: int(h.Number), Offset: h.Offset, Size: h.Size, Last: h.Last}
	if err := u.WritePart(stream.Context(), p, io.LimitReader(r, h.Size)); err != nil {
		return wire.ErrorToStatus(err)
	}
	return stream.SendAndClose(&pb.WritePartResponse{})
}

func (sk *sinkServer) Commit(ctx context.Context, req *pb.CommitRequest) (*pb.CommitResponse, error) {
	u, err := sk.upload(req.Upload)
	if err != nil {
		return nil, err
	}
	if err := u.Commit(ctx, wire.FileFromPB(req.File)); err != nil {
		return nil, wire.ErrorToStatus(err)
	}
	sk.s.uploads.Delete(req.Upload)
	var location string
	if l, ok := u.Upload.(pipeline.Locator); ok {
		location = l.Location()
	}
	return &pb.CommitResponse{Location: location}, nil
}

func (sk *sinkServer) Abort(ctx context.Context, req *pb.AbortRequest) (*pb.AbortResponse, error) {
	u, err := sk.upload(req.Upload)
	if err != nil {
		return nil, err
	}
	var cause error
	if req.Cause != "" {
		cause = errors.New(req.Cause)
	}
	sk.s.uploads.Delete(req.Upload)
	return &pb.AbortResponse{}, wire.ErrorToStatus(u.Abort(ctx, cause))
}

func (sk *sinkServer) State(_ context.Context, req *pb.StateRequest) (*pb.StateResponse, error) {
	u, err := sk.upload(req.Upload)
	if err != nil {
		return nil, err
	}
	return &pb.StateResponse{State: u.State()}, nil
}
