package stages

import (
	"context"
	"errors"
	"fmt"
	"io"
	"path"
	"time"

	"github.com/ProtonMail/go-crypto/openpgp"
	"github.com/ProtonMail/go-crypto/openpgp/armor"
	"github.com/ProtonMail/go-crypto/openpgp/packet"

	"github.com/mftflow/mftflow/pipeline"
)

// Compression of pgp_encrypt, as written in PGPEncryptConfig.Compression:
// the algorithms GnuPG reads.
const (
	PGPCompressionNone = "none"
	PGPCompressionZip  = "zip"
	PGPCompressionZlib = "zlib"
)

// PGPEncryptConfig sets a PGPEncrypt stage's keys and output.
type PGPEncryptConfig struct {
	// Recipients are the public keys the files are encrypted for: each item
	// is the path of a key file (armored or binary, one or more keys) or
	// armored key text. Every key of every item is a recipient.
	Recipients []string `config:"recipients"`
	// SigningKey, when set, is the path of a private key file whose key
	// signs each file; SigningPassphrase unlocks it.
	SigningKey        string `config:"signing_key"`
	SigningPassphrase string `config:"signing_passphrase"`
	// Armor writes ASCII armor instead of binary OpenPGP.
	Armor bool `config:"armor"`
	// Compression is PGPCompressionNone (the default when empty),
	// PGPCompressionZip or PGPCompressionZlib. It is applied when every
	// recipient's key lists it among its preferences, as GnuPG's keys do.
	Compression string `config:"compression"`
	// Name is a template for the new name, with the placeholders of
	// RenameConfig.Name; empty appends ".pgp", or ".asc" with Armor.
	Name string `config:"name"`
}

// PGPEncrypt encrypts each file for its recipients with OpenPGP, signing it
// when it has a signing key, and renames it. The content streams through
// in constant memory. The new size and sha256 are unknown (Size -1, SHA256
// ""). It is safe for concurrent use.
//
// Unlike the other stages its output differs from run to run: each file
// gets a fresh session key; see the package doc.
type PGPEncrypt struct {
	to     openpgp.EntityList
	signer *openpgp.Entity
	armor  bool
	config *packet.Config
	rename *Rename // nil: append ext
	ext    string
}

// NewPGPEncrypt reads and checks the keys and returns the stage. Problems
// are *pipeline.FieldError values naming the flow file's fields
// (recipients, signing_key, signing_passphrase, compression, name), joined.
func NewPGPEncrypt(cfg PGPEncryptConfig) (*PGPEncrypt, error) {
	const stage = "pgp_encrypt"
	s := &PGPEncrypt{armor: cfg.Armor, ext: ".pgp"}
	if cfg.Armor {
		s.ext = ".asc"
	}
	var errs []error
	if len(cfg.Recipients) == 0 {
		errs = append(errs, fieldError(stage, "recipients", "no recipients: give at least one public key (a key file's path, or armored key text)"))
	}
	to, err := readKeyList(stage, "recipients", cfg.Recipients)
	errs = append(errs, err)
	now := time.Now()
	for _, e := range to {
		if _, ok := e.EncryptionKey(now); !ok {
			errs = append(errs, fieldError(stage, "recipients", "key %s has no valid encryption key (expired, revoked, or for signing only): ask its owner for a current public key", describeEntity(e)))
		}
	}
	s.to = to
	if cfg.SigningKey != "" {
		s.signer, err = readSigner(stage, cfg.SigningKey, cfg.SigningPassphrase, now)
		errs = append(errs, err)
	}
	if s.config, err = pgpConfig(cfg.Compression); err != nil {
		errs = append(errs, fieldError(stage, "compression", "%q: %v", cfg.Compression, err))
	}
	if s.rename, err = optionalRename(stage, cfg.Name); err != nil {
		errs = append(errs, err)
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return s, nil
}

// optionalRename returns a Rename for a name template, or nil for none.
func optionalRename(stage, tmpl string) (*Rename, error) {
	if tmpl == "" {
		return nil, nil
	}
	if err := pipeline.CheckNameTemplate(tmpl); err != nil {
		return nil, fieldError(stage, "name", "%v", err)
	}
	return NewRename(RenameConfig{Name: tmpl})
}

// readSigner reads the one private key of a signing key file and unlocks it.
func readSigner(stage, file, passphrase string, now time.Time) (*openpgp.Entity, error) {
	keys, err := ParseKeys(file)
	if err != nil {
		return nil, fieldError(stage, "signing_key", "%v", err)
	}
	if len(keys) != 1 {
		return nil, fieldError(stage, "signing_key", "%s holds %d keys (%s): give a file with the one key that signs", file, len(keys), describeEntities(keys))
	}
	e := keys[0]
	if e.PrivateKey == nil {
		return nil, errPublicOnly(stage, "signing_key", e, "signing")
	}
	if err := unlock(stage, "signing_passphrase", e, passphrase); err != nil {
		return nil, err
	}
	if k, ok := e.SigningKey(now); !ok || k.PrivateKey == nil || k.PrivateKey.Dummy() {
		return nil, fieldError(stage, "signing_key", "%s has no valid private signing key (expired, revoked, kept on a card, or for encryption only)", describeEntity(e))
	}
	return e, nil
}

// Process returns f renamed and a reader of the encrypted content, which is
// also an io.Closer; see the package doc. Encrypting runs on a goroutine
// started by the first Read and stopped by Close or by the end of r. Errors
// reading r are returned by the reader, wrapped, with their permanence kept.
func (s *PGPEncrypt) Process(ctx context.Context, f pipeline.File, r io.Reader) (pipeline.File, io.Reader, error) {
	in := f
	if s.rename != nil {
		var err error
		if f, _, err = s.rename.Process(ctx, f, nil); err != nil {
			return pipeline.File{}, nil, err
		}
	} else {
		f.Name += s.ext
	}
	f.Size = -1
	f.SHA256 = ""
	return f, newPipedReader(func(w io.Writer) error { return s.encrypt(w, r, in) }), nil
}

// encrypt writes r, encrypted, to w. A nil error means the output is complete.
func (s *PGPEncrypt) encrypt(w io.Writer, r io.Reader, f pipeline.File) (err error) {
	fail := func(err error) error {
		if errors.Is(err, errReaderClosed) {
			return err
		}
		return fmt.Errorf("encrypting %q: %w", f.Name, err)
	}
	out := w
	if s.armor {
		aw, err := armor.Encode(w, "PGP MESSAGE", nil)
		if err != nil {
			return fail(err)
		}
		defer func() {
			if cerr := aw.Close(); err == nil && cerr != nil {
				err = fail(cerr)
			}
		}()
		out = aw
	}
	hints := &openpgp.FileHints{IsBinary: true, FileName: path.Base(f.Name), ModTime: f.ModTime}
	pt, err := openpgp.Encrypt(out, s.to, s.signer, hints, s.config)
	if err != nil {
		return fail(err)
	}
	if _, err := io.Copy(pt, r); err != nil {
		_ = pt.Close() // the copy failed: what it would flush is not wanted
		return fail(err)
	}
	if err := pt.Close(); err != nil {
		return fail(err)
	}
	return nil
}

var _ pipeline.Stage = (*PGPEncrypt)(nil)
