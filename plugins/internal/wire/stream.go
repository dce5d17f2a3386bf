package wire

import (
	"context"
	"errors"
	"io"

	plugin "github.com/hashicorp/go-plugin"
	"google.golang.org/grpc"
)

// FrameSize is the most content one message carries. Content always crosses
// the boundary as a stream of frames of at most this size.
const FrameSize = 1 << 20

// MaxMessageSize bounds every message either side accepts: a frame plus room
// for its header.
const MaxMessageSize = FrameSize + 64<<10

// Flow-control windows and socket buffers of the gRPC connection. gRPC's
// defaults (64 KiB windows grown by estimating the link's bandwidth, 32 KiB
// buffers) are made for networks; over the local socket to a plugin they
// make file data wait on window updates. A whole part in flight per stream
// and several parts per connection keep the data moving.
const (
	StreamWindow = 16 << 20
	ConnWindow   = 64 << 20
	SocketBuffer = 1 << 20
)

// Handshake is what the host and a plugin must agree on before anything
// else: the cookie tells a plugin binary it was started by the runner (run
// by hand it says so and exits), ProtocolVersion is the version of
// plugins/proto this build speaks.
var Handshake = plugin.HandshakeConfig{
	ProtocolVersion:  ProtocolVersion,
	MagicCookieKey:   "MFTFLOW_PLUGIN",
	MagicCookieValue: "2c6f3e1a-connector",
}

// ProtocolVersion is the version of the plugin protocol. Raise it on any
// change old plugins or hosts would misread.
const ProtocolVersion = 1

// PluginName is the one go-plugin plugin a plugin binary serves.
const PluginName = "connector"

// GRPCPlugin adapts the connector services to go-plugin: Register (plugin
// side) registers the services on the server; on the host side the
// dispensed value is the connection itself.
type GRPCPlugin struct {
	plugin.NetRPCUnsupportedPlugin
	Register func(*grpc.Server)
}

// GRPCServer implements plugin.GRPCPlugin.
func (p *GRPCPlugin) GRPCServer(_ *plugin.GRPCBroker, s *grpc.Server) error {
	if p.Register == nil {
		return errors.New("no services to serve")
	}
	p.Register(s)
	return nil
}

// GRPCClient implements plugin.GRPCPlugin.
func (p *GRPCPlugin) GRPCClient(_ context.Context, _ *plugin.GRPCBroker, c *grpc.ClientConn) (any, error) {
	return c, nil
}

// SendFrames reads r to its end and passes it to send in frames of at most
// FrameSize bytes; send must not keep the slice (gRPC's SendMsg encodes it
// before returning). It returns the number of bytes sent. A read error is
// returned as it is; a send error is wrapped in SendError.
func SendFrames(r io.Reader, buf []byte, send func([]byte) error) (int64, error) {
	var n int64
	for {
		k, err := io.ReadFull(r, buf)
		if k > 0 {
			if serr := send(buf[:k]); serr != nil {
				return n, &SendError{serr}
			}
			n += int64(k)
		}
		if err == io.EOF || err == io.ErrUnexpectedEOF {
			return n, nil
		}
		if err != nil {
			return n, err
		}
	}
}

// SendError is a failure to send a frame, as opposed to a failure to read
// what was to be sent.
type SendError struct{ Err error }

func (e *SendError) Error() string { return e.Err.Error() }
func (e *SendError) Unwrap() error { return e.Err }

// FrameReader reads the content of a stream of frames. recv returns the next
// frame's data, io.EOF at the end of the stream, or an error.
type FrameReader struct {
	Recv func() ([]byte, error)
	buf  []byte
	err  error
}

// Start receives frames until one carries data or the stream ends, so that
// an error the stream begins with is returned here rather than by the
// first Read. The end of the stream is no error: the content is empty.
func (r *FrameReader) Start() error {
	for len(r.buf) == 0 && r.err == nil {
		r.buf, r.err = r.Recv()
	}
	if len(r.buf) > 0 || r.err == io.EOF {
		return nil
	}
	return r.err
}

func (r *FrameReader) Read(p []byte) (int, error) {
	for len(r.buf) == 0 {
		if r.err != nil {
			return 0, r.err
		}
		r.buf, r.err = r.Recv()
	}
	n := copy(p, r.buf)
	r.buf = r.buf[n:]
	return n, nil
}

// ShmEnv names the environment variable that tells a plugin process which
// of its file descriptors is the memory the host shares with it. Parts of
// uploads travel there instead of through gRPC and its TLS: the host copies
// a part in, the plugin's sink reads it in place.
const ShmEnv = "MFTFLOW_PLUGIN_SHM_FD"
