package sdk

import (
	"io"
	"log/slog"
	"os"

	"github.com/hashicorp/go-hclog"
	plugin "github.com/hashicorp/go-plugin"
	"github.com/mftflow/mftflow/pipeline"
	pb "github.com/mftflow/mftflow/plugins/internal/pluginpb"
	"github.com/mftflow/mftflow/plugins/internal/wire"
	"google.golang.org/grpc"
)

// Option configures Serve.
type Option func(*server)

// Version sets the version the plugin reports (shown by "runner connectors").
func Version(v string) Option { return func(s *server) { s.version = v } }

// Serve serves the connectors of r to the runner and returns when the runner
// is done with this process. Call it from main; it does not return early on
// errors a runner could act on, those go back to the runner.
func Serve(r *pipeline.Registry, opts ...Option) {
	s := newServer(r)
	for _, o := range opts {
		o(s)
	}
	slog.SetDefault(slog.New(newHCLogHandler(os.Stderr)))
	shm, err := openShm()
	if err != nil {
		// Parts then come through gRPC only; the runner sends them
		// there when it is told so.
		slog.Warn("no shared memory with the runner", "err", err)
	}
	s.shm = shm
	plugin.Serve(&plugin.ServeConfig{
		HandshakeConfig: wire.Handshake,
		VersionedPlugins: map[int]plugin.PluginSet{
			wire.ProtocolVersion: {wire.PluginName: &wire.GRPCPlugin{Register: s.register}},
		},
		GRPCServer: func(o []grpc.ServerOption) *grpc.Server {
			return grpc.NewServer(append(o, grpc.MaxRecvMsgSize(wire.MaxMessageSize), grpc.MaxSendMsgSize(wire.MaxMessageSize),
				grpc.InitialWindowSize(wire.StreamWindow), grpc.InitialConnWindowSize(wire.ConnWindow),
				grpc.ReadBufferSize(wire.SocketBuffer), grpc.WriteBufferSize(wire.SocketBuffer))...)
		},
		Logger: hclog.New(&hclog.LoggerOptions{Output: os.Stderr, JSONFormat: true, Level: hclog.Info}),
	})
}

func (s *server) register(g *grpc.Server) {
	pb.RegisterPluginServer(g, s)
	pb.RegisterSourceServer(g, &sourceServer{s: s})
	pb.RegisterStageServer(g, &stageServer{s: s})
	pb.RegisterSinkServer(g, &sinkServer{s: s})
}

// newHCLogHandler writes slog records as the JSON lines go-plugin's host
// side parses into log entries.
func newHCLogHandler(w io.Writer) slog.Handler {
	return slog.NewJSONHandler(w, &slog.HandlerOptions{
		Level: slog.LevelDebug,
		ReplaceAttr: func(groups []string, a slog.Attr) slog.Attr {
			if len(groups) > 0 {
				return a
			}
			switch a.Key {
			case slog.TimeKey:
				return slog.String("@timestamp", a.Value.Time().Format("2006-01-02T15:04:05.000000Z07:00"))
			case slog.LevelKey:
				return slog.String("@level", levelName(a.Value.Any().(slog.Level)))
			case slog.MessageKey:
				return slog.String("@message", a.Value.String())
			}
			return a
		},
	})
}

func levelName(l slog.Level) string {
	switch {
	case l >= slog.LevelError:
		return "error"
	case l >= slog.LevelWarn:
		return "warn"
	case l >= slog.LevelInfo:
		return "info"
	}
	return "debug"
}
