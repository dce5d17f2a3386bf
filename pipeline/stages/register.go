package stages

import (
	"context"
	"time"

	"github.com/mftflow/mftflow/pipeline"
)

// entry is a stage's spec and constructor.
type entry struct {
	spec pipeline.Spec
	new  pipeline.StageConstructor
}

// stage binds spec to newStage: the spec's Options is newStage's config
// type, and the constructor decodes the config into it.
func stage[T any, S pipeline.Stage](spec pipeline.Spec, newStage func(T) (S, error)) entry {
	spec.Options = *new(T)
	return entry{spec, func(_ context.Context, c pipeline.Config) (pipeline.Stage, error) {
		cfg, err := pipeline.Decode[T](c)
		if err != nil {
			return nil, err
		}
		s, err := newStage(cfg)
		if err != nil {
			return nil, err
		}
		return s, nil
	}}
}

// builds is a Check for stages whose constructor checks everything
// without side effects: it builds one and drops it.
func builds[T any, S pipeline.Stage](newStage func(T) (S, error)) func(pipeline.Config) error {
	return pipeline.CheckOptions(func(cfg T) error {
		_, err := newStage(cfg)
		return err
	})
}

// Specs of the built-in stages, in the order Register adds them.
func specs() []entry {
	return []entry{
		stage(pipeline.Spec{
			Name:    "match",
			Summary: "Lets through only the files whose name and size match; drops the others as skipped.",
			Origin:  "built-in",
			Check:   pipeline.CheckOptions(checkMatch),
			// Decides from the name and size alone; the bytes pass untouched.
			KeepsContent: true,
			Fields: []pipeline.Field{
				{Name: "include", Type: pipeline.TypeStrings, Default: []string{"**"},
					Doc: `Globs the slash-separated name must match (one of them): * and ? stay within a directory, ** spans directories, {a,b} and [a-z] as usual. "*.csv" matches only at the top; use "**/*.csv" for any depth.`},
				{Name: "exclude", Type: pipeline.TypeStrings,
					Doc: "Globs, as include, that drop a file even if it is included."},
				{Name: "regex", Type: pipeline.TypeString,
					Doc: "A Go regular expression the name must also match, anywhere in the name unless anchored with ^ and $."},
				{Name: "min_size", Type: pipeline.TypeSize, Default: int64(0),
					Doc: "Drop files smaller than this. Checked only when the size is known: a file whose size is unknown (after compress, say) is never dropped for it."},
				{Name: "max_size", Type: pipeline.TypeSize, Default: int64(0),
					Doc: "Drop files larger than this; 0 means no limit. A file whose size is unknown passes, and fails once more than max_size bytes have been read."},
			},
		}, NewMatch),
		stage(pipeline.Spec{
			Name:    "rename",
			Summary: "Gives each file a new name from a template; the content is unchanged.",
			Origin:  "built-in",
			Check:   pipeline.CheckOptions(checkRename),
			// Decides from the name and size alone; the bytes pass untouched.
			KeepsContent: true,
			Fields: []pipeline.Field{
				{Name: "name", Type: pipeline.TypeString, Required: true,
					Doc: "The new name. Placeholders: {name} (with directories), {base}, {dir}, {stem}, {ext} (with its dot), {date} (2006-01-02), {time} (150405), {id}, {attr.KEY}. {date} and {time} are the file's modification time in UTC, or the current time for a file without one. The result must be a safe relative name."},
			},
		}, NewRename),
		stage(pipeline.Spec{
			Name:    "attrs",
			Summary: "Sets file attributes from templates, for later stages, names and the source's outcome report; the content is unchanged.",
			Origin:  "built-in",
			Check:   pipeline.CheckOptions(checkAttrs),
			// Sets attributes alone; the bytes pass untouched.
			KeepsContent: true,
			Fields: []pipeline.Field{
				{Name: "set", Type: pipeline.TypeStringMap, Required: true,
					Doc: "Attribute names and their values, as templates with the placeholders of rename's name ({name}, {base}, {dir}, {stem}, {ext}, {date}, {time}, {id}, {attr.KEY}), filled from the file as it enters the stage. " +
						"Later stages and name templates read them as {attr.KEY}. The thru source reports thru.batch_total and thru.batch_failed (whole numbers, failed no more than total) and thru.recipients (codes separated by commas) in the file's flow outcome, and fails a file whose values are wrong before it is delivered."},
			},
		}, NewAttrs),
		stage(pipeline.Spec{
			Name:    "compress",
			Summary: `Compresses the content with gzip or zstd and appends ".gz" or ".zst" to the name.`,
			Origin:  "built-in",
			Check:   pipeline.CheckOptions(checkCompress),
			Fields: []pipeline.Field{
				{Name: "format", Type: pipeline.TypeString, Default: FormatGzip, Enum: []string{FormatGzip, FormatZstd},
					Doc: "The compression format."},
				{Name: "level", Type: pipeline.TypeInt, Default: 0,
					Doc: "The compression level; 0 is the format's default. gzip: 1 (fastest) to 9 (smallest). zstd: 1 to 22, mapped onto four speeds: 1-2 fastest, 3-5 default, 6-9 better, 10-22 best."},
			},
		}, NewCompress),
		stage(pipeline.Spec{
			Name:    "decompress",
			Summary: `Decompresses gzip or zstd content and removes ".gz" or ".zst" from the name.`,
			Origin:  "built-in",
			Fields: []pipeline.Field{
				{Name: "format", Type: pipeline.TypeString, Default: FormatAuto, Enum: []string{FormatAuto, FormatGzip, FormatZstd},
					Doc: "The compression format. auto decides by the extension (.gz, .zst) and, without one, by the first bytes; a file that is neither fails."},
			},
		}, NewDecompress),
		stage(pipeline.Spec{
			Name:    "pgp_encrypt",
			Summary: `Encrypts the content for its recipients with OpenPGP (GnuPG reads it), optionally signed, and appends ".pgp" (".asc" when armored) to the name.`,
			Origin:  "built-in",
			Check:   builds(NewPGPEncrypt),
			Fields: []pipeline.Field{
				{Name: "recipients", Type: pipeline.TypeStrings, Required: true,
					Doc: `Public keys of the recipients: each item is a key file (armored or binary, exported with gpg --export) or armored key text, such as "${PARTNER_KEY}". Every key in every item can decrypt the files.`},
				{Name: "signing_key", Type: pipeline.TypeString,
					Doc: "A private key file (gpg --export-secret-keys) whose key signs every file; empty: files are not signed."},
				{Name: "signing_passphrase", Type: pipeline.TypeString, Secret: true,
					Doc: `The passphrase of signing_key, if it has one; best from the environment: "${PGP_PASSPHRASE}".`},
				{Name: "armor", Type: pipeline.TypeBool, Default: false,
					Doc: "Write ASCII armor (text) instead of binary OpenPGP."},
				{Name: "compression", Type: pipeline.TypeString, Default: PGPCompressionNone, Enum: []string{PGPCompressionNone, PGPCompressionZip, PGPCompressionZlib},
					Doc: "Compress before encrypting, when every recipient's key accepts it (GnuPG's keys accept both)."},
				{Name: "name", Type: pipeline.TypeString,
					Doc: `A template for the new name, with the placeholders of rename's name, such as "{stem}.gpg" or "out/{name}.pgp"; empty appends ".pgp", or ".asc" with armor.`},
			},
		}, NewPGPEncrypt),
		stage(pipeline.Spec{
			Name:    "pgp_decrypt",
			Summary: `Decrypts OpenPGP content (armored or binary), checks its signature, and removes ".pgp", ".gpg" or ".asc" from the name; a file that fails a check fails for good.`,
			Origin:  "built-in",
			Check:   builds(NewPGPDecrypt),
			Fields: []pipeline.Field{
				{Name: "private_keys", Type: pipeline.TypeStrings, Required: true,
					Doc: "Private key files (gpg --export-secret-keys, armored or binary); a file is decrypted with whichever it is encrypted for."},
				{Name: "passphrase", Type: pipeline.TypeStrings, Secret: true,
					Doc: `Passphrases of the private keys: one for all, or one per file in the order of private_keys; best from the environment: "${PGP_PASSPHRASE}". A wrong one fails the flow's validation.`},
				{Name: "require_signature", Type: pipeline.TypeBool, Default: false,
					Doc: "Fail every file that is not signed by one of signers. Without it, files signed by one of signers are still verified, and others pass unverified."},
				{Name: "signers", Type: pipeline.TypeStrings,
					Doc: "Public keys of the trusted signers, as recipients of pgp_encrypt: key files or armored key text."},
				{Name: "name", Type: pipeline.TypeString,
					Doc: `A template for the new name, with the placeholders of rename's name, such as "{stem}"; empty removes ".pgp", ".gpg" or ".asc" and keeps a name without one.`},
			},
		}, NewPGPDecrypt),
		stage(pipeline.Spec{
			Name:    "verify",
			Summary: "Checks each file against its checksum file from the same source (NAME.sha256, as sha256sum writes it), waiting for it; a file that does not match fails for good. Checksum files go with their file.",
			Origin:  "built-in",
			Check:   builds(NewVerify),
			Fields: []pipeline.Field{
				{Name: "sidecar", Type: pipeline.TypeString,
					Doc: `The checksum file's name at the source, with {name} for the file's name there (with its directories): "{name}.sha256" (the default), "{name}.md5", "sums/{name}.sha256". It may hold lines as sha256sum, sha512sum or md5sum print them, BSD-style lines ("SHA256 (NAME) = HEX") or a bare digest. Files with such names are not delivered: each goes with its file, and the source's after action (delete, move) takes both.`},
				{Name: "algorithm", Type: pipeline.TypeString, Enum: []string{"sha256", "sha512", "md5"},
					Doc: "sha256, sha512 or md5; empty takes it from the checksum file (its tag, or the digest's length). Sets the default sidecar's extension."},
				{Name: "timeout", Type: pipeline.TypeDuration, Default: 10 * time.Minute,
					Doc: "How long a file waits for its checksum file; after it the file fails (replay it once the checksum file is there). 0 does not wait."},
				{Name: "poll", Type: pipeline.TypeDuration, Default: 2 * time.Second,
					Doc: "How often a waiting file looks for its checksum file."},
			},
		}, NewVerify),
	}
}

// Register adds the built-in stages (match, rename, attrs, compress,
// decompress, pgp_encrypt, pgp_decrypt, verify) to r. It fails if one of the names is
// taken; the stages registered before the failure stay registered.
func Register(r *pipeline.Registry) error {
	for _, s := range specs() {
		if err := r.RegisterStage(s.spec, s.new); err != nil {
			return err
		}
	}
	return nil
}
