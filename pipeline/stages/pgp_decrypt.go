package stages

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"path"
	"strings"

	"github.com/ProtonMail/go-crypto/openpgp"
	"github.com/ProtonMail/go-crypto/openpgp/armor"
	pgperrors "github.com/ProtonMail/go-crypto/openpgp/errors"
	"github.com/ProtonMail/go-crypto/openpgp/packet"

	"github.com/mftflow/mftflow/pipeline"
)

// PGPDecryptConfig sets a PGPDecrypt stage's keys and output.
type PGPDecryptConfig struct {
	// PrivateKeys are paths of private key files (armored or binary); a
	// file is decrypted with whichever of them it is encrypted for.
	PrivateKeys []string `config:"private_keys"`
	// Passphrases unlock the private keys: one for all of them, or one per
	// key file in the order of PrivateKeys. Keys without a passphrase need
	// none.
	Passphrases []string `config:"passphrase"`
	// RequireSignature fails every file that is not signed by one of
	// Signers. Without it, a file signed by one of Signers is still
	// verified (a bad signature fails it) and other files pass unverified.
	RequireSignature bool `config:"require_signature"`
	// Signers are the trusted signers' public keys, each item a key file's
	// path or armored key text, as PGPEncryptConfig.Recipients.
	Signers []string `config:"signers"`
	// Name is a template for the new name, with the placeholders of
	// RenameConfig.Name; empty removes ".pgp", ".gpg" or ".asc" (in any
	// case) and keeps a name without one.
	Name string `config:"name"`
}

// PGPDecrypt decrypts OpenPGP files, armored or binary, and checks their
// signature. The content streams through in constant memory; the
// signature and the integrity check (MDC) can only be checked at the end,
// so the reader returns the content as it goes and fails at the end, in
// place of io.EOF, when a check fails: the engine then fails the file and
// no sink commits it. The new size and sha256 are unknown (Size -1, SHA256
// ""). It is safe for concurrent use.
type PGPDecrypt struct {
	private openpgp.EntityList
	signers openpgp.EntityList
	require bool
	rename  *Rename // nil: remove the extension
	config  *packet.Config
}

// pgpExts are the extensions PGPDecrypt removes by default.
var pgpExts = []string{".pgp", ".gpg", ".asc"}

// NewPGPDecrypt reads the keys, unlocks the private ones and returns the
// stage. Problems are *pipeline.FieldError values naming the flow file's
// fields (private_keys, passphrase, signers, require_signature, name),
// joined. No passphrase appears in them.
func NewPGPDecrypt(cfg PGPDecryptConfig) (*PGPDecrypt, error) {
	const stage = "pgp_decrypt"
	s := &PGPDecrypt{require: cfg.RequireSignature}
	var errs []error
	if len(cfg.PrivateKeys) == 0 {
		errs = append(errs, fieldError(stage, "private_keys", "no private keys: give the path of at least one private key file"))
	}
	if n := len(cfg.Passphrases); n > 1 && n != len(cfg.PrivateKeys) {
		errs = append(errs, fieldError(stage, "passphrase", "%d passphrases for %d private key files: give one for all, or one per file in the order of private_keys", n, len(cfg.PrivateKeys)))
	}
	for i, item := range cfg.PrivateKeys {
		if isArmoredText(item) {
			errs = append(errs, fieldError(stage, "private_keys", "item %d is key text: give the path of a private key file, so that the key stays out of flow values", i+1))
			continue
		}
		keys, err := ParseKeys(item)
		if err != nil {
			errs = append(errs, fieldError(stage, "private_keys", "item %d: %v", i+1, err))
			continue
		}
		if err := s.addPrivate(stage, keys, passphraseFor(cfg.Passphrases, i)); err != nil {
			errs = append(errs, err)
		}
	}
	signers, err := readKeyList(stage, "signers", cfg.Signers)
	errs = append(errs, err)
	s.signers = signers
	if cfg.RequireSignature && len(cfg.Signers) == 0 {
		errs = append(errs, fieldError(stage, "require_signature", "true, but no signers are given: list in signers the public keys of the senders whose signatures you trust"))
	}
	s.config, _ = pgpConfig("")
	if s.rename, err = optionalRename(stage, cfg.Name); err != nil {
		errs = append(errs, err)
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return s, nil
}

func passphraseFor(list []string, i int) string {
	switch {
	case len(list) == 1:
		return list[0]
	case i < len(list):
		return list[i]
	}
	return ""
}

// addPrivate unlocks keys and keeps them.
func (s *PGPDecrypt) addPrivate(stage string, keys openpgp.EntityList, passphrase string) error {
	var errs []error
	for _, e := range keys {
		if e.PrivateKey == nil {
			errs = append(errs, errPublicOnly(stage, "private_keys", e, "decrypting"))
			continue
		}
		if err := unlock(stage, "passphrase", e, passphrase); err != nil {
			errs = append(errs, err)
			continue
		}
		if len(openpgp.EntityList{e}.DecryptionKeys()) == 0 {
			errs = append(errs, fieldError(stage, "private_keys", "%s holds no private encryption key (a signing key only, or kept on a card): give the key that files are encrypted for", describeEntity(e)))
			continue
		}
		s.private = append(s.private, e)
	}
	return errors.Join(errs...)
}

// Process returns f under its new name and a reader of the decrypted
// content, which is also an io.Closer. Nothing is read until the reader
// is. The reader's errors for the content are permanent and wrap
// ErrNoPrivateKey, ErrNotEncrypted, ErrNotSigned, ErrUntrustedSigner,
// ErrBadSignature or ErrTampered; an error reading r is returned wrapped,
// its permanence kept. Close must not be called while a Read is in
// progress.
func (s *PGPDecrypt) Process(ctx context.Context, f pipeline.File, r io.Reader) (pipeline.File, io.Reader, error) {
	dr := &decryptReader{s: s, src: &sourceReader{r: r}, name: f.Name}
	if s.rename != nil {
		var err error
		if f, _, err = s.rename.Process(ctx, f, nil); err != nil {
			return pipeline.File{}, nil, err
		}
	} else {
		f.Name = trimPGPExt(f.Name)
	}
	f.Size = -1
	f.SHA256 = ""
	return f, dr, nil
}

// trimPGPExt removes a known extension from name, unless nothing would be
// left of its last element.
func trimPGPExt(name string) string {
	ext := strings.ToLower(path.Ext(name))
	for _, e := range pgpExts {
		if ext == e && len(path.Base(name)) > len(ext) {
			return name[:len(name)-len(ext)]
		}
	}
	return name
}

// messageKeys is the key ring of one message: the stage's private keys for
// decrypting, its trusted signers for verifying, so that a file signed by
// one of the private keys' owners is not taken as trusted for that. It
// records the key ids the message is encrypted for.
type messageKeys struct {
	s     *PGPDecrypt
	asked []uint64
}

func (k *messageKeys) KeysById(id uint64) []openpgp.Key {
	k.asked = append(k.asked, id)
	return k.s.private.KeysById(id)
}

func (k *messageKeys) KeysByIdUsage(id uint64, usage byte) []openpgp.Key {
	return k.s.signers.KeysByIdUsage(id, usage)
}

func (k *messageKeys) DecryptionKeys() []openpgp.Key {
	k.asked = append(k.asked, 0) // an anonymous recipient
	return k.s.private.DecryptionKeys()
}

// decryptReader opens the message on the first Read.
type decryptReader struct {
	s    *PGPDecrypt
	src  *sourceReader
	name string
	md   *openpgp.MessageDetails
	err  error // returned by every Read once set
}

func (d *decryptReader) Read(p []byte) (int, error) {
	if d.md == nil && d.err == nil {
		d.err = d.open()
	}
	if d.err != nil {
		return 0, d.err
	}
	n, err := d.md.UnverifiedBody.Read(p)
	switch {
	case err == io.EOF:
		// The MDC has been checked by now; the signature is checked here.
		if d.err = d.checkSignature(); d.err != nil {
			return n, d.err
		}
		d.err = io.EOF
	case err != nil:
		d.err = d.damaged(err)
	}
	return n, d.err
}

// open reads the message's header: the key it is encrypted for, its
// signer. It fails for a file that cannot be decrypted or whose signer is
// not accepted, before any content is returned.
func (d *decryptReader) open() error {
	body, err := d.dearmor()
	if err != nil {
		return err
	}
	keys := &messageKeys{s: d.s}
	md, err := openpgp.ReadMessage(body, keys, nil, d.s.config)
	if err != nil {
		if d.src.err != nil {
			return fmt.Errorf("decrypting %q: %w", d.name, d.src.err)
		}
		if errors.Is(err, pgperrors.ErrKeyIncorrect) {
			return d.noKey(keys.asked)
		}
		return d.damaged(err)
	}
	if !md.IsEncrypted {
		return permanentf("decrypting %q: %w: it is OpenPGP data without encryption; ask the sender to encrypt it for %s", d.name, ErrNotEncrypted, describeEntities(d.s.private))
	}
	d.md = md
	switch {
	case !md.IsSigned && d.s.require:
		return permanentf("decrypting %q: %w, and require_signature is true: ask the sender to sign it with a key among signers (%s)", d.name, ErrNotSigned, describeEntities(d.s.signers))
	case md.IsSigned && md.SignedBy == nil && d.s.require:
		return permanentf("decrypting %q: %w: signed by key %s, which is not among signers (%s): add its public key to signers if you trust it, or ask the sender to sign with a trusted key",
			d.name, ErrUntrustedSigner, keyID(md.SignedByKeyId), describeEntities(d.s.signers))
	case md.IsSigned && md.SignedBy != nil && md.SignatureError != nil:
		return d.badSignature(md.SignatureError)
	}
	return nil
}

// dearmor returns the binary message, removing ASCII armor if the content
// starts with it.
func (d *decryptReader) dearmor() (io.Reader, error) {
	br := bufio.NewReaderSize(d.src, 64<<10)
	head, _ := br.Peek(len(armorStart) + 64)
	if d.src.err != nil {
		return nil, fmt.Errorf("decrypting %q: %w", d.name, d.src.err)
	}
	if !bytes.HasPrefix(bytes.TrimLeft(head, " \t\r\n"), []byte(armorStart)) {
		return br, nil
	}
	block, err := armor.Decode(br)
	if err != nil {
		if d.src.err != nil {
			return nil, fmt.Errorf("decrypting %q: %w", d.name, d.src.err)
		}
		return nil, d.damaged(err)
	}
	if block.Type != openpgp.MessageType {
		return nil, permanentf("decrypting %q: %w: the armor holds a %s, not a %s", d.name, ErrTampered, block.Type, openpgp.MessageType)
	}
	return block.Body, nil
}

// checkSignature checks, at the end of the content, the signature of a
// signer the stage trusts.
func (d *decryptReader) checkSignature() error {
	md := d.md
	if !md.IsSigned || md.SignedBy == nil {
		return nil
	}
	if md.SignatureError != nil {
		return d.badSignature(md.SignatureError)
	}
	if md.Signature == nil {
		return d.badSignature(errors.New("no signature packet after the content"))
	}
	return nil
}

func (d *decryptReader) badSignature(cause error) error {
	return permanentf("decrypting %q: %w by key %s (%v): the content is not what that key signed; it was changed after signing, or the signature is not genuine: do not use the file, and ask the sender for it again",
		d.name, ErrBadSignature, describeKey(*d.md.SignedBy), cause)
}

// noKey explains a message that none of the private keys opens.
func (d *decryptReader) noKey(asked []uint64) error {
	if len(asked) == 0 {
		return permanentf("decrypting %q: %w: it is encrypted with a passphrase, not for a key; pgp_decrypt decrypts files encrypted for its private keys (%s)",
			d.name, ErrNoPrivateKey, describeEntities(d.s.private))
	}
	ids := make([]string, len(asked))
	for i, id := range asked {
		ids[i] = keyID(id)
		if id == 0 {
			ids[i] = "an anonymous recipient"
			continue
		}
		if keys := d.s.private.KeysById(id); len(keys) > 0 {
			// Ours, and still no session key: the key packet is damaged.
			return permanentf("decrypting %q: %w: the session key encrypted for key %s does not decrypt with that private key: the file is damaged or was changed on the way; ask the sender for it again",
				d.name, ErrTampered, describeKey(keys[0]))
		}
	}
	var ours []string
	for _, k := range d.s.private.DecryptionKeys() {
		ours = append(ours, describeKey(k))
	}
	return permanentf("decrypting %q: %w: it is encrypted for key %s, and private_keys hold %s: add the private key of one of its recipients to private_keys, or ask the sender to encrypt for yours",
		d.name, ErrNoPrivateKey, strings.Join(ids, ", "), strings.Join(ours, ", "))
}

// damaged turns a decoding error into the reader's error: the source's own
// error when reading it failed, else a permanent ErrTampered.
func (d *decryptReader) damaged(err error) error {
	if d.src.err != nil {
		return fmt.Errorf("decrypting %q: %w", d.name, d.src.err)
	}
	if err == io.EOF {
		err = io.ErrUnexpectedEOF
	}
	return permanentf("decrypting %q: %w: the file is not an OpenPGP message, is truncated, or failed its integrity check (%v): ask the sender for it again", d.name, ErrTampered, err)
}

// errDecryptClosed is returned by Read after Close.
var errDecryptClosed = errors.New("pgp_decrypt: reader closed")

// Close stops the reader; it does not close the input.
func (d *decryptReader) Close() error {
	d.err = errDecryptClosed
	return nil
}

var _ pipeline.Stage = (*PGPDecrypt)(nil)
