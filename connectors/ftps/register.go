package ftps

import (
	"context"
	"time"

	"github.com/mftflow/mftflow/pipeline"
)

// Defaults of the connection and sink settings.
const (
	DefaultPort           = 21
	DefaultImplicitPort   = 990
	DefaultMaxConnections = 4
	DefaultConnectTimeout = 30 * time.Second
	DefaultIOTimeout      = 2 * time.Minute
	DefaultPartSize       = 8 << 20
)

// Values of SinkConfig.Overwrite.
const (
	OverwriteReplace = pipeline.OverwriteReplace
	OverwriteSkip    = pipeline.OverwriteSkip
	OverwriteFail    = pipeline.OverwriteFail
)

// Register adds the "ftps" source and the "ftps" sink to r.
func Register(r *pipeline.Registry) error { return connector().Register(r) }

// connFields are the fields both connectors have.
func connFields() []pipeline.Field {
	return []pipeline.Field{
		{Name: "host", Type: pipeline.TypeString, Required: true, Doc: "Host name or IP address of the FTPS server."},
		{Name: "port", Type: pipeline.TypeInt, Doc: "TCP port of the server. 0: 21 for explicit TLS, 990 for implicit TLS."},
		{Name: "user", Type: pipeline.TypeString, Required: true, Doc: "Login name."},
		{Name: "password", Type: pipeline.TypeString, Secret: true, Doc: `Password, typically "${FTPS_PASSWORD}".`},
		{
			Name:    "tls",
			Type:    pipeline.TypeString,
			Default: TLSExplicit,
			Enum:    []string{TLSExplicit, TLSImplicit},
			Doc: `explicit: connect in plain text and switch to TLS (AUTH TLS) before logging in, the ` +
				`usual FTPS on port 21; implicit: TLS from the first byte, usually port 990. Logins and ` +
				`data always travel over TLS; plain FTP is not offered.`,
		},
		{
			Name: "ca_file",
			Type: pipeline.TypeString,
			Doc:  "PEM file of the CA certificates trusted to issue the server's certificate. Empty: the system's roots.",
		},
		{
			Name: "server_name",
			Type: pipeline.TypeString,
			Doc:  "Name the server's certificate must be issued for, when it is not host (an IP address, say).",
		},
		{Name: "client_cert", Type: pipeline.TypeString, Doc: "PEM file of a client certificate, for servers that ask for one (with client_key)."},
		{Name: "client_key", Type: pipeline.TypeString, Doc: "PEM file of client_cert's private key."},
		{
			Name:    "insecure_skip_verify",
			Type:    pipeline.TypeBool,
			Default: false,
			Doc: `Accept any server certificate without checking it. Anyone on the network path can then ` +
				`read and change the files; a warning is logged. For tests only.`,
		},
		{
			Name:    "disable_epsv",
			Type:    pipeline.TypeBool,
			Default: false,
			Doc:     "Open data connections with PASV only, for servers or firewalls that mishandle EPSV. Active mode is not offered.",
		},
		{
			Name:    "disable_tls13",
			Type:    pipeline.TypeBool,
			Default: false,
			Doc: `Keep to TLS 1.2, for servers whose TLS 1.3 breaks transfers: vsftpd 3.0 (Debian 12, ` +
				`Ubuntu 22.04) answers uploads "426 Failure reading network stream".`,
		},
		{
			Name:    "max_connections",
			Type:    pipeline.TypeInt,
			Default: DefaultMaxConnections,
			Doc: `Connections open to the server at once. FTP carries one transfer per connection, ` +
				`so this bounds the files (and source ranges) moving at once; servers often limit ` +
				`connections per user.`,
		},
		pipeline.RemoteDirectoryField(),
		{Name: "connect_timeout", Type: pipeline.TypeDuration, Default: DefaultConnectTimeout, Doc: "Longest wait for connecting and logging in."},
		{
			Name:    "io_timeout",
			Type:    pipeline.TypeDuration,
			Default: DefaultIOTimeout,
			Doc:     "How long a connection waits for the server to answer or move data before it is given up and the call tried again.",
		},
	}
}

// connector describes the "ftps" source and sink.
func connector() pipeline.RemoteConnector {
	return pipeline.RemoteConnector{
		Name:          "ftps",
		SourceSummary: "Reads files from a directory on an FTP server over TLS (FTPS), polling it for new files.",
		SinkSummary:   "Writes files to a directory on an FTP server over TLS (FTPS) under a temporary name, then renames them.",
		SourceOptions: SourceConfig{},
		SinkOptions:   SinkConfig{},
		ConnFields:    connFields(),
		SinkFields: []pipeline.Field{
			pipeline.OverwriteField(`When the target exists: replace it, skip the file (it counts as delivered) or fail ` +
				`the delivery. FTP cannot rename without replacing, so skip and fail check the ` +
				`target just before the rename.`),
			{
				Name:    "part_size",
				Type:    pipeline.TypeSize,
				Default: "8MiB",
				Doc: `How much of a file one upload command carries; parts go up in order, each appended ` +
					`to the temporary file, so a transfer cut short resumes at the last whole part ` +
					`(with REST where the server allows). 0 uses the default.`,
			},
		},
		NewSource: newSourceFromConfig,
		NewSink:   newSinkFromConfig,
	}
}

// SourceSpec documents the "ftps" source.
func SourceSpec() pipeline.Spec { return connector().SourceSpec() }

// SinkSpec documents the "ftps" sink.
func SinkSpec() pipeline.Spec { return connector().SinkSpec() }

func newSourceFromConfig(ctx context.Context, c pipeline.Config) (pipeline.Source, error) {
	cfg, err := pipeline.Decode[SourceConfig](c)
	if err != nil {
		return nil, err
	}
	return NewSource(ctx, cfg)
}

func newSinkFromConfig(_ context.Context, c pipeline.Config) (pipeline.Sink, error) {
	cfg, err := pipeline.Decode[SinkConfig](c)
	if err != nil {
		return nil, err
	}
	return NewSink(cfg)
}
