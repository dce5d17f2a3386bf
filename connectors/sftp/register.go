package sftp

import (
	"context"
	"time"

	"github.com/mftflow/mftflow/pipeline"
)

// Defaults of the connection, source and sink settings.
const (
	DefaultPort           = 22
	DefaultKeepAlive      = 30 * time.Second
	DefaultConnectTimeout = 30 * time.Second
	DefaultPartSize       = 8 << 20
)

// Values of SinkConfig.Overwrite.
const (
	OverwriteReplace = pipeline.OverwriteReplace
	OverwriteSkip    = pipeline.OverwriteSkip
	OverwriteFail    = pipeline.OverwriteFail
)

// Register adds the "sftp" source and the "sftp" sink to r.
func Register(r *pipeline.Registry) error { return connector().Register(r) }

// connFields are the fields both connectors have.
func connFields() []pipeline.Field {
	return []pipeline.Field{
		{
			Name:     "host",
			Type:     pipeline.TypeString,
			Required: true,
			Doc:      "Host name or IP address of the SFTP server.",
		},
		{
			Name:    "port",
			Type:    pipeline.TypeInt,
			Default: DefaultPort,
			Doc:     "TCP port of the SFTP server.",
		},
		{
			Name:     "user",
			Type:     pipeline.TypeString,
			Required: true,
			Doc:      "Login name.",
		},
		{
			Name:   "password",
			Type:   pipeline.TypeString,
			Secret: true,
			Doc:    `Password, typically "${SFTP_PASSWORD}". Give password, private_key or both.`,
		},
		{
			Name: "private_key",
			Type: pipeline.TypeString,
			Doc:  "Path of a private key file (OpenSSH or PEM format) to log in with; offered before the password.",
		},
		{
			Name:   "private_key_passphrase",
			Type:   pipeline.TypeString,
			Secret: true,
			Doc:    "Passphrase of an encrypted private_key.",
		},
		{
			Name: "known_hosts",
			Type: pipeline.TypeString,
			Doc: `Path of a known_hosts file holding the server's host key; a server whose key is ` +
				`not there, or differs, is refused. Required unless insecure_ignore_host_key is true. ` +
				`Make it with "ssh-keyscan -p PORT HOST > known_hosts" and check the fingerprint ` +
				`with the server's administrator.`,
		},
		{
			Name:    "insecure_ignore_host_key",
			Type:    pipeline.TypeBool,
			Default: false,
			Doc: `Accept any host key without checking it. Anyone on the network path can then ` +
				`read and change the files; a warning is logged. For tests only.`,
		},
		pipeline.RemoteDirectoryField(),
		{
			Name:    "keepalive",
			Type:    pipeline.TypeDuration,
			Default: DefaultKeepAlive,
			Doc: `How often an open connection sends a keepalive@openssh.com request and a cheap ` +
				`SFTP request, so that servers and firewalls do not drop it while idle (Thru closes ` +
				`sessions idle for 15 minutes). A server that does not answer within ` +
				`connect_timeout has its connection closed and dialled again. 0 turns keep-alives off.`,
		},
		{
			Name:    "connect_timeout",
			Type:    pipeline.TypeDuration,
			Default: DefaultConnectTimeout,
			Doc:     "Longest wait for connecting and logging in, and for the answer to a keep-alive.",
		},
	}
}

// connector describes the "sftp" source and sink.
func connector() pipeline.RemoteConnector {
	return pipeline.RemoteConnector{
		Name:          "sftp",
		SourceSummary: "Reads files from a directory on an SFTP server, polling it for new files.",
		SinkSummary:   "Writes files to a directory on an SFTP server under a temporary name, parts in parallel, then renames them.",
		SourceOptions: sourceOptions{},
		SinkOptions:   sinkOptions{},
		ConnFields:    connFields(),
		SinkFields: []pipeline.Field{
			pipeline.OverwriteField(`When the target exists: replace it (atomically where the server supports ` +
				`posix-rename@openssh.com), skip the file (it counts as delivered) or fail the delivery.`),
			{
				Name:    "part_size",
				Type:    pipeline.TypeSize,
				Default: "8MiB",
				Doc:     "How much of a file one write covers; parts are written concurrently at their offsets. 0 uses the default.",
			},
			{
				Name: "concurrency",
				Type: pipeline.TypeInt,
				Doc:  "Parts of one file written at once. 0: the sink's parallelism in the flow.",
			},
		},
		NewSource: newSourceFromConfig,
		NewSink:   newSinkFromConfig,
	}
}

// SourceSpec documents the "sftp" source.
func SourceSpec() pipeline.Spec { return connector().SourceSpec() }

// SinkSpec documents the "sftp" sink.
func SinkSpec() pipeline.Spec { return connector().SinkSpec() }

// flowKeepAlive is the keepalive field as flow files mean it: 0 turns
// keep-alives off, where ConnConfig.KeepAlive takes 0 for the default.
type flowKeepAlive struct {
	FlowKeepAlive time.Duration `config:"keepalive"`
}

func (k flowKeepAlive) connKeepAlive() time.Duration {
	if k.FlowKeepAlive == 0 {
		return -1
	}
	return k.FlowKeepAlive
}

// sourceOptions and sinkOptions are what the specs' fields decode into.
type (
	sourceOptions struct {
		SourceConfig
		flowKeepAlive
	}
	sinkOptions struct {
		SinkConfig
		flowKeepAlive
	}
)

func newSourceFromConfig(ctx context.Context, c pipeline.Config) (pipeline.Source, error) {
	o, err := pipeline.Decode[sourceOptions](c)
	if err != nil {
		return nil, err
	}
	o.KeepAlive = o.connKeepAlive()
	return NewSource(ctx, o.SourceConfig)
}

func newSinkFromConfig(_ context.Context, c pipeline.Config) (pipeline.Sink, error) {
	o, err := pipeline.Decode[sinkOptions](c)
	if err != nil {
		return nil, err
	}
	o.KeepAlive = o.connKeepAlive()
	return NewSink(o.SinkConfig)
}
