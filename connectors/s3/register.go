package s3

import (
	"context"
	"time"

	"github.com/mftflow/mftflow/pipeline"
)

// Register adds the "s3" source and the "s3" sink to r.
func Register(r *pipeline.Registry) error {
	if err := r.RegisterSource(sourceSpec(), newSourceFromConfig); err != nil {
		return err
	}
	return r.RegisterSink(sinkSpec(), newSinkFromConfig)
}

// Defaults of the source and sink settings.
const (
	DefaultPartSize            = 8 << 20
	DefaultUnknownSizePartSize = 64 << 20 // 640 GiB at most for a file of unknown size
	DefaultSmallFileSize       = 8 << 20
	DefaultPollInterval        = 30 * time.Second
)

// Values of SinkConfig.Overwrite.
const (
	OverwriteReplace = "replace"
	OverwriteSkip    = "skip"
	OverwriteFail    = "fail"
)

// Values of SinkConfig.Checksum.
const (
	ChecksumCRC32C = "crc32c"
	ChecksumMD5    = "md5"
)

// Values of SinkConfig.SSE.
const (
	SSEAES256 = "AES256"
	SSEKMS    = "aws:kms"
)

// Values of SourceConfig.After.
const (
	AfterLeave  = "leave"
	AfterDelete = "delete"
	AfterMove   = "move"
	AfterTag    = "tag"
)

// clientFields are the settings both connectors share.
func clientFields() []pipeline.Field {
	return []pipeline.Field{
		{
			Name:     "bucket",
			Type:     pipeline.TypeString,
			Required: true,
			Doc:      "Bucket name.",
		},
		{
			Name:    "region",
			Type:    pipeline.TypeString,
			Default: DefaultRegion,
			Doc:     "The bucket's region. S3-compatible servers usually accept any.",
		},
		{
			Name: "endpoint",
			Type: pipeline.TypeString,
			Doc: `Base URL of an S3-compatible server, such as "http://127.0.0.1:9000" or ` +
				`"https://minio.example.com". Empty: AWS S3. No user info: credentials go in access_key_id ` +
				`and secret_access_key.`,
		},
		{
			Name:    "path_style",
			Type:    pipeline.TypeBool,
			Default: false,
			Doc: `Address buckets as ENDPOINT/BUCKET/KEY rather than BUCKET.ENDPOINT/KEY. Most ` +
				`S3-compatible servers (MinIO, Ceph) need true.`,
		},
		{
			Name:    "credentials",
			Type:    pipeline.TypeString,
			Default: CredentialsStatic,
			Enum:    []string{CredentialsStatic, CredentialsDefault},
			Doc: `"static": use access_key_id and secret_access_key, nothing from the environment. ` +
				`"default": the AWS SDK's default chain (AWS_* environment variables, shared config ` +
				`and credentials files, SSO, web identity, container and instance roles).`,
		},
		{
			Name: "access_key_id",
			Type: pipeline.TypeString,
			Doc:  `Access key id for static credentials, typically "${AWS_ACCESS_KEY_ID}" in a flow file.`,
		},
		{
			Name:   "secret_access_key",
			Type:   pipeline.TypeString,
			Secret: true,
			Doc:    `Secret access key for static credentials, typically "${AWS_SECRET_ACCESS_KEY}".`,
		},
		{
			Name:   "session_token",
			Type:   pipeline.TypeString,
			Secret: true,
			Doc:    "Session token for temporary static credentials. Optional.",
		},
	}
}

func sourceSpec() pipeline.Spec {
	return pipeline.Spec{
		Name:    "s3",
		Summary: "Reads objects from an S3 bucket (AWS or any S3-compatible server), polling for new ones.",
		Origin:  "built-in",
		Options: SourceConfig{},
		Check:   pipeline.CheckOptions(checkSource),
		Place:   pipeline.PlaceOptions(sourcePlace),
		Rereads: func(pipeline.Config) bool { return true },
		Fields: append(clientFields(), []pipeline.Field{
			{
				Name: "prefix",
				Type: pipeline.TypeString,
				Doc: `Only objects below this prefix are read, as a directory: "in" and "in/" both ` +
					`mean keys starting with "in/". A file's name is its key relative to the prefix.`,
			},
			{
				Name: "include",
				Type: pipeline.TypeStrings,
				Doc: `Glob patterns matched against each name (doublestar syntax: *, ?, [a-z], {a,b}, ` +
					`** for any number of directories). An object is taken only if it matches one. Empty: every object.`,
			},
			{
				Name: "exclude",
				Type: pipeline.TypeStrings,
				Doc:  "Glob patterns, as for include, for objects to leave alone.",
			},
			{
				Name:    "watch",
				Type:    pipeline.TypeBool,
				Default: true,
				Doc: `Keep polling the bucket for new objects every poll_interval. false: take the ` +
					`objects listed at start, then finish.`,
			},
			{
				Name:    "poll_interval",
				Type:    pipeline.TypeDuration,
				Default: DefaultPollInterval,
				Doc:     "How often the prefix is listed again in watch mode. 0 uses the default.",
			},
			{
				Name:    "after",
				Type:    pipeline.TypeString,
				Default: AfterLeave,
				Enum:    []string{AfterLeave, AfterDelete, AfterMove, AfterTag},
				Doc: `What to do with an object once every sink has it: leave it (it is not taken ` +
					`again by this process unless it changes), delete it, move it below archive_prefix ` +
					`(copy, then delete), or tag it with after_tags. Objects that failed or were ` +
					`skipped are always left.`,
			},
			{
				Name: "archive_prefix",
				Type: pipeline.TypeString,
				Doc: `Prefix that delivered objects are moved to when after is "move", keeping their ` +
					`names. It must not lie below prefix, or moved objects would be read again.`,
			},
			{
				Name: "after_tags",
				Type: pipeline.TypeStringMap,
				Doc:  `Tags added to a delivered object when after is "tag", such as {mftflow: delivered}.`,
			},
		}...),
	}
}

func sinkSpec() pipeline.Spec {
	return pipeline.Spec{
		Name:    "s3",
		Summary: "Writes files as S3 objects (AWS or any S3-compatible server), parts uploaded in parallel, resumable.",
		Origin:  "built-in",
		Options: SinkConfig{},
		Check:   pipeline.CheckOptions(checkSink),
		Place:   pipeline.PlaceOptions(sinkPlace),
		Fields: append(clientFields(), []pipeline.Field{
			{
				Name: "prefix",
				Type: pipeline.TypeString,
				Doc:  `Prepended to every key, with a "/" between: prefix "in" and name "a.csv" give "in/a.csv".`,
			},
			{
				Name:    "key",
				Type:    pipeline.TypeString,
				Default: "{name}",
				Doc: `Template of each object's key below prefix. Placeholders: {name} {base} {dir} ` +
					`{stem} {ext} {date} {time} {id} {attr.KEY}. Keys that are empty, absolute, ` +
					`contain ".." or are longer than 1024 bytes are refused.`,
			},
			{
				Name:    "overwrite",
				Type:    pipeline.TypeString,
				Default: OverwriteReplace,
				Enum:    []string{OverwriteReplace, OverwriteSkip, OverwriteFail},
				Doc: `When the key exists: replace the object, skip the file if the object has the ` +
					`same size and sha256 (it counts as delivered; otherwise it is replaced), or fail ` +
					`the delivery.`,
			},
			{
				Name:    "part_size",
				Type:    pipeline.TypeSize,
				Default: "8MiB",
				Doc: `Multipart part size; at least 5MiB (S3's minimum), rounded up to whole bus ` +
					`chunks, and raised for big files so that none needs more than 10,000 parts. ` +
					`Each part in flight is buffered (in memory up to 16MiB, in a temporary file above).`,
			},
			{
				Name:    "unknown_size_part_size",
				Type:    pipeline.TypeSize,
				Default: "64MiB",
				Doc: `Part size for files whose size is unknown when the upload starts (after a ` +
					`compressing stage). 10,000 parts of this size is the largest such file: 64MiB allows 640GiB.`,
			},
			{
				Name:    "small_file_size",
				Type:    pipeline.TypeSize,
				Default: "8MiB",
				Doc: `Files of known size up to this are sent once they are wholly on the bus, so their ` +
					`sha256 goes into the object's metadata at creation. Larger files get it after ` +
					`the upload, with a server-side copy. 0: only empty files.`,
			},
			{
				Name: "concurrency",
				Type: pipeline.TypeInt,
				Doc:  "Parts of one file uploaded at once. 0: the sink's parallelism in the flow.",
			},
			{
				Name:    "checksum",
				Type:    pipeline.TypeString,
				Default: ChecksumCRC32C,
				Enum:    []string{ChecksumCRC32C, ChecksumMD5},
				Doc: `How the server checks each part: a CRC32C checksum (x-amz-checksum-crc32c) or ` +
					`Content-MD5, for servers without the newer checksums.`,
			},
			{
				Name: "storage_class",
				Type: pipeline.TypeString,
				Doc:  `Storage class such as STANDARD_IA or GLACIER_IR. Empty: the bucket's default.`,
			},
			{
				Name: "sse",
				Type: pipeline.TypeString,
				Enum: []string{"", SSEAES256, SSEKMS},
				Doc:  `Server-side encryption: AES256 (S3-managed keys) or aws:kms (with kms_key_id). Empty: the bucket's default.`,
			},
			{
				Name: "kms_key_id",
				Type: pipeline.TypeString,
				Doc:  `KMS key id or ARN when sse is aws:kms. Empty: the account's default KMS key.`,
			},
			{
				Name: "content_type",
				Type: pipeline.TypeString,
				Doc:  "Content-Type of every object. Empty: guessed from the key's extension, else application/octet-stream.",
			},
			{
				Name: "tags",
				Type: pipeline.TypeStringMap,
				Doc:  "Tags set on every object, such as {team: billing}.",
			},
		}...),
	}
}

func newSourceFromConfig(ctx context.Context, c pipeline.Config) (pipeline.Source, error) {
	cfg, err := pipeline.Decode[SourceConfig](c)
	if err != nil {
		return nil, err
	}
	return NewSource(ctx, cfg)
}

func newSinkFromConfig(ctx context.Context, c pipeline.Config) (pipeline.Sink, error) {
	cfg, err := pipeline.Decode[SinkConfig](c)
	if err != nil {
		return nil, err
	}
	return NewSink(ctx, cfg)
}
