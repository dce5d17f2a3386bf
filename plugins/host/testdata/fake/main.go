// Command fake is a misbehaving plugin for the host's tests; the test build
// sets mode with -ldflags "-X main.mode=...".
package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"time"

	plugin "github.com/hashicorp/go-plugin"
	"github.com/mftflow/mftflow/pipeline"
	pb "github.com/mftflow/mftflow/plugins/internal/pluginpb"
	"github.com/mftflow/mftflow/plugins/internal/wire"
	"github.com/mftflow/mftflow/plugins/sdk"
	"google.golang.org/grpc"
)

var mode string

func main() {
	switch mode {
	case "crash": // dies before the handshake
		fmt.Fprintln(os.Stderr, "fake: cannot read /etc/fake.conf: no such file or directory")
		os.Exit(3)
	case "version2": // a plugin built against a newer protocol
		hs := wire.Handshake
		hs.ProtocolVersion = 2
		plugin.Serve(&plugin.ServeConfig{
			HandshakeConfig:  hs,
			VersionedPlugins: map[int]plugin.PluginSet{2: {wire.PluginName: &wire.GRPCPlugin{Register: func(*grpc.Server) {}}}},
			GRPCServer:       plugin.DefaultGRPCServer,
		})
	case "badspec": // a spec the SDK would never send
		plugin.Serve(&plugin.ServeConfig{
			HandshakeConfig:  wire.Handshake,
			VersionedPlugins: map[int]plugin.PluginSet{1: {wire.PluginName: &wire.GRPCPlugin{Register: func(s *grpc.Server) { pb.RegisterPluginServer(s, badSpec{}) }}}},
			GRPCServer:       plugin.DefaultGRPCServer,
		})
	case "clash": // a sink named like a built-in one
		r := pipeline.NewRegistry()
		must(r.RegisterSink(pipeline.Spec{Name: "local", Summary: "not the real one"}, nil))
		sdk.Serve(r)
	case "faulty": // a sink whose errors must keep their identity
		r := pipeline.NewRegistry()
		must(r.RegisterSink(pipeline.Spec{Name: "faulty", Summary: "fails on purpose",
			Fields:  []pipeline.Field{{Name: "fail", Type: pipeline.TypeString, Enum: []string{"open", "write", "exists", "skip", "exit"}}},
			Options: faultyOptions{}},
			func(_ context.Context, c pipeline.Config) (pipeline.Sink, error) {
				opts, err := pipeline.Decode[faultyOptions](c)
				if err != nil {
					return nil, err
				}
				return faulty(opts.Fail), nil
			}))
		must(r.RegisterStage(pipeline.Spec{Name: "dropper", Summary: "skips every file"},
			func(context.Context, pipeline.Config) (pipeline.Stage, error) {
				return pipeline.StageFunc(func(_ context.Context, f pipeline.File, r io.Reader) (pipeline.File, io.Reader, error) {
					return f, nil, fmt.Errorf("%s is not wanted: %w", f.Name, pipeline.ErrSkip)
				}), nil
			}))
		sdk.Serve(r, sdk.Version("0.0.1"))
	default:
		fmt.Fprintln(os.Stderr, "fake: unknown mode", mode)
		os.Exit(2)
	}
}

// faultyOptions are the faulty sink's config fields.
type faultyOptions struct {
	Fail string `config:"fail"`
}

func must(err error) {
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}

type badSpec struct{ pb.UnimplementedPluginServer }

func (badSpec) Describe(context.Context, *pb.DescribeRequest) (*pb.DescribeResponse, error) {
	return &pb.DescribeResponse{Connectors: []*pb.Spec{{Name: "bad", Kind: "sink", Fields: []*pb.Field{{Name: "Size", Type: "float"}}}}}, nil
}

type faulty string

func (f faulty) Open(ctx context.Context, file pipeline.File, _ []byte) (pipeline.Upload, error) {
	switch f {
	case "open":
		return nil, pipeline.Permanent(fmt.Errorf("bucket %q does not exist", "nowhere"))
	case "skip":
		slog.Warn("skipping", "file", file.Name)
		return nil, fmt.Errorf("%s exists with the same content: %w", file.Name, pipeline.ErrSkip)
	}
	return f, nil
}
func (f faulty) Close() error                       { return nil }
func (f faulty) Plan() pipeline.PartPlan            { return pipeline.PartPlan{} }
func (f faulty) State() []byte                      { return []byte("state") }
func (f faulty) Abort(context.Context, error) error { return nil }
func (f faulty) WritePart(ctx context.Context, p pipeline.Part, r io.Reader) error {
	switch f {
	case "write":
		return fmt.Errorf("connection reset by peer")
	case "exit":
		os.Exit(7)
	}
	_, err := io.Copy(io.Discard, r)
	return err
}
func (f faulty) Commit(ctx context.Context, file pipeline.File) error {
	if f == "exists" {
		return fmt.Errorf("%s: %w", file.Name, pipeline.ErrExists)
	}
	time.Sleep(0)
	return nil
}
