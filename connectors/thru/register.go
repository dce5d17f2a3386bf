package thru

import (
	"context"
	"time"

	"github.com/mftflow/mftflow/pipeline"
)

// Register adds the "thru" source and the "thru" sink to r.
func Register(r *pipeline.Registry) error {
	if err := r.RegisterSource(sourceSpec(), newSourceFromConfig); err != nil {
		return err
	}
	return r.RegisterSink(sinkSpec(), newSinkFromConfig)
}

// Defaults of the source and sink settings.
const (
	DefaultPollInterval = 30 * time.Second
	DefaultPartSize     = 8 << 20
	// AdvisedSimpleThreshold is the site documentation's advice for
	// simple_threshold (100 MB). It is not the default: a simple upload is
	// a file the moment it arrives, so a runner killed before it recorded
	// the upload sends it again on restart, as a second file; sessions
	// are committed once, whatever happens.
	AdvisedSimpleThreshold = 100_000_000
)

// Values of SinkConfig.Mode.
const (
	ModeDropOff = "dropoff"
	ModeContent = "content"
)

// AttrFileCode is the File attribute holding a file's Thru File Code: set
// by the source, used by the drop-off sink to link a response to the file
// it answers.
const AttrFileCode = "thru.file_code"

func connectorFields() []pipeline.Field {
	return []pipeline.Field{
		{Name: "base_url", Type: pipeline.TypeString, Required: true,
			Doc: `The Thru site's root URL, such as "https://example.thruinc.com".`},
		{Name: "site_url", Type: pipeline.TypeString,
			Doc: `The site URL inside the TransportMgrAuthHeader. Default: the host of base_url.`},
		{Name: "site_access_key", Type: pipeline.TypeString, Secret: true,
			Doc: `The site access key inside the TransportMgrAuthHeader.`},
		{Name: "flow_secret_key", Type: pipeline.TypeString, Secret: true,
			Doc: `The flow's secret key inside the TransportMgrAuthHeader.`},
		{Name: "flow_code", Type: pipeline.TypeString,
			Doc: `The flow (transport) code, TRN…, that the keys belong to.`},
		{Name: "aes_key", Type: pipeline.TypeString, Secret: true,
			Doc: `The AES-128 key Thru support supplies to encrypt the TransportMgrAuthHeader: 32 hex digits or Base64 of 16 bytes.`},
		{Name: "cipher_mode", Type: pipeline.TypeString, Default: ModeCBCRandomIV, Enum: []string{ModeCBCRandomIV, ModeCBCFixedIV},
			Doc: `How the header is encrypted: "cbc" (a random IV sent before the ciphertext) or "cbc-fixed-iv" (with iv). ` +
				`With a fixed IV the same header would repeat within a second, which the site refuses: each call then gets a ` +
				`second of its own, up to 10 s ahead of the clock, so calls beyond about one a second on average wait.`},
		{Name: "iv", Type: pipeline.TypeString, Secret: true,
			Doc: `The fixed IV for cipher_mode "cbc-fixed-iv", in the syntax of aes_key.`},
	}
}

func sourceSpec() pipeline.Spec {
	fields := append(connectorFields(),
		pipeline.Field{Name: "poll_interval", Type: pipeline.TypeDuration, Default: DefaultPollInterval,
			Doc: `How long to wait after the pickup queue answers "nothing now" (204) before asking again; ` +
				`each wait varies by up to a fifth so that runners do not poll in step. Thru's own schedule ` +
				`still decides when files become available. 0 uses the default.`},
		pipeline.Field{Name: "watch", Type: pipeline.TypeBool, Default: true,
			Doc: `Keep asking the pickup queue for files. false: take the files available now (until the ` +
				`queue first answers "nothing now"), then finish, as runner run --once and scheduled polls do.`},
		pipeline.Field{Name: "sender_attributes", Type: pipeline.TypeBool, Default: false,
			Doc: `Ask Thru's FileMetadata for each picked-up file and keep the sending organization as the ` +
				`attributes thru.sender.participant_code, thru.sender.external_code (such as a DUNS number) ` +
				`and thru.sender.name, for stages and name templates ({attr.thru.sender.name}).`},
		pipeline.Field{Name: "spool_dir", Type: pipeline.TypeString,
			Doc: `Directory where picked-up files are stored until every sink has them (a pickup cannot be ` +
				`repeated). Files left there by a stopped runner are offered again. Default: a directory ` +
				`named after the flow under the system's temporary directory.`},
	)
	return pipeline.Spec{
		Name:    "thru",
		Summary: "Picks up files from a Thru MFT flow and reports each file's flow outcome, with the batch counts and recipients the stages set as attributes thru.batch_total, thru.batch_failed and thru.recipients.",
		Origin:  "built-in",
		Options: sourceOptions{},
		Fields:  fields,
		Queue:   true, // a pickup cannot be repeated
	}
}

func sinkSpec() pipeline.Spec {
	fields := append(connectorFields(),
		pipeline.Field{Name: "mode", Type: pipeline.TypeString, Default: ModeDropOff, Enum: []string{ModeDropOff, ModeContent},
			Doc: `"dropoff": chunked drop-off to the flow with the Connector API (needs the header keys and flow_code); ` +
				`"content": upload to a source flow endpoint with the Content API (needs endpoint_path and api_key or bearer_token).`},
		pipeline.Field{Name: "target_site_url", Type: pipeline.TypeString,
			Doc: `Drop-off: the TargetSiteUrl of chunk zero. Default: site_url.`},
		pipeline.Field{Name: "endpoint_path", Type: pipeline.TypeString,
			Doc: `Content: the target, "flow:{FlowCode}/endpoint:{EndpointCode}/flowendpoint:{Id}".`},
		pipeline.Field{Name: "api_key", Type: pipeline.TypeString, Secret: true,
			Doc: `Content: the API key, sent in the Authorization header as given (add a scheme such as "ApiKey " if the site wants one) or as X-Api-Key (api_key_in).`},
		pipeline.Field{Name: "api_key_in", Type: pipeline.TypeString, Default: APIKeyInAuthorization, Enum: []string{APIKeyInAuthorization, APIKeyInHeader},
			Doc: `Content: where api_key goes: "authorization" (the Authorization header, as the documents say) or "x-api-key".`},
		pipeline.Field{Name: "bearer_token", Type: pipeline.TypeString, Secret: true,
			Doc: `Content: a JWT sent as "Authorization: Bearer", instead of api_key.`},
		pipeline.Field{Name: "part_size", Type: pipeline.TypeSize, Default: "8MiB",
			Doc: `Size of one chunk; chunks are sent concurrently, up to the sink's parallelism. Content mode ` +
				`never exceeds the preflight's maxChunkSize. 0 uses the default.`},
		pipeline.Field{Name: "simple_threshold", Type: pipeline.TypeSize, Default: "0",
			Doc: `Content: files whose size is known and below this go up in one simple upload (one request; a ` +
				`session takes three); others, and every file with 0 (the default), in an upload session, which is ` +
				`committed once whatever happens. The site's documentation advises 100MB, but a simple upload is a ` +
				`file the moment it arrives: a runner killed before it recorded the upload sends it again after a ` +
				`restart, a second file at the site; and one whose answer is lost once the whole file went out is not ` +
				`sent again (the site may hold it): the file fails, saying so.`},
	)
	return pipeline.Spec{
		Name:    "thru",
		Summary: "Delivers files to Thru MFT by chunked drop-off or through the Content API.",
		Origin:  "built-in",
		Options: sinkOptions{},
		Check:   checkSink,
		Fields:  fields,
	}
}

// connectorOptions are the fields both connectors have.
type connectorOptions struct {
	BaseURL       string `config:"base_url"`
	SiteURL       string `config:"site_url"`
	SiteAccessKey string `config:"site_access_key"`
	FlowSecretKey string `config:"flow_secret_key"`
	FlowCode      string `config:"flow_code"`
	AESKey        string `config:"aes_key"`
	CipherMode    string `config:"cipher_mode"`
	IV            string `config:"iv"`
}

// sourceOptions are the source spec's fields.
type sourceOptions struct {
	connectorOptions
	PollInterval     time.Duration `config:"poll_interval"`
	Watch            bool          `config:"watch"`
	SenderAttributes bool          `config:"sender_attributes"`
	SpoolDir         string        `config:"spool_dir"`
}

// sinkOptions are the sink spec's fields.
type sinkOptions struct {
	connectorOptions
	Mode            string `config:"mode"`
	TargetSiteURL   string `config:"target_site_url"`
	EndpointPath    string `config:"endpoint_path"`
	APIKey          string `config:"api_key"`
	APIKeyIn        string `config:"api_key_in"`
	BearerToken     string `config:"bearer_token"`
	PartSize        int64  `config:"part_size"`
	SimpleThreshold int64  `config:"simple_threshold"`
}

func (o connectorOptions) client() (ClientConfig, error) {
	cc := ClientConfig{
		BaseURL: o.BaseURL, SiteURL: o.SiteURL, SiteAccessKey: o.SiteAccessKey,
		FlowSecretKey: o.FlowSecretKey, FlowCode: o.FlowCode,
	}
	if o.AESKey != "" {
		ciph, err := NewHeaderCipher(o.CipherMode, o.AESKey, o.IV)
		if err != nil {
			return cc, err
		}
		cc.Cipher = ciph
	}
	return cc, nil
}

func newSourceFromConfig(ctx context.Context, c pipeline.Config) (pipeline.Source, error) {
	o, err := pipeline.Decode[sourceOptions](c)
	if err != nil {
		return nil, err
	}
	cc, err := o.client()
	if err != nil {
		return nil, err
	}
	return NewSource(ctx, SourceConfig{Client: cc, PollInterval: o.PollInterval, Once: !o.Watch, SpoolDir: o.SpoolDir,
		SenderAttributes: o.SenderAttributes})
}

func newSinkFromConfig(_ context.Context, c pipeline.Config) (pipeline.Sink, error) {
	o, err := pipeline.Decode[sinkOptions](c)
	if err != nil {
		return nil, err
	}
	cc, err := o.client()
	if err != nil {
		return nil, err
	}
	cc.TargetSiteURL = o.TargetSiteURL
	cc.APIKey, cc.APIKeyIn, cc.BearerToken = o.APIKey, o.APIKeyIn, o.BearerToken
	return NewSink(SinkConfig{
		Client: cc, Mode: o.Mode, EndpointPath: o.EndpointPath,
		PartSize: o.PartSize, SimpleThreshold: o.SimpleThreshold,
	})
}
