package stages

import (
	"bufio"
	"bytes"
	"crypto"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/ProtonMail/go-crypto/openpgp"
	"github.com/ProtonMail/go-crypto/openpgp/packet"

	"github.com/mftflow/mftflow/internal/discard"
	"github.com/mftflow/mftflow/pipeline"
)

// Errors of pgp_decrypt, for errors.Is. Each is returned wrapped in a
// permanent error whose message names the file and the keys involved.
var (
	// ErrNoPrivateKey: the file is encrypted for none of the private keys.
	ErrNoPrivateKey = errors.New("no private key for the file")
	// ErrNotEncrypted: the content is OpenPGP data, but not encrypted.
	ErrNotEncrypted = errors.New("not encrypted")
	// ErrNotSigned: a signature is required and the file has none.
	ErrNotSigned = errors.New("not signed")
	// ErrUntrustedSigner: a signature is required and the file is signed
	// by a key that is not among the trusted signers.
	ErrUntrustedSigner = errors.New("signer not trusted")
	// ErrBadSignature: the signature does not match the content.
	ErrBadSignature = errors.New("bad signature")
	// ErrTampered: the content is not OpenPGP data, is damaged, or fails
	// its integrity check (MDC), which detects any change to the ciphertext.
	ErrTampered = errors.New("damaged or tampered content")
)

// armorStart begins every armored OpenPGP block.
const armorStart = "-----BEGIN PGP "

// isArmoredText tells key text given in a flow value ("${PARTNER_KEY}")
// from a key file's path: a path never starts with an armor line.
func isArmoredText(item string) bool {
	return strings.HasPrefix(strings.TrimLeft(item, " \t\r\n"), armorStart)
}

// ParseKeys reads OpenPGP keys from one item of a key list: armored key
// text, or else the path of a key file, armored or binary. It returns every
// key the item holds, and an error that names the item (never its content)
// and says what to do.
func ParseKeys(item string) (openpgp.EntityList, error) {
	if isArmoredText(item) {
		keys, err := readKeys(strings.NewReader(item))
		if err != nil {
			return nil, fmt.Errorf("the armored key text holds no usable OpenPGP key (%v): paste a whole block exported with gpg --export --armor", err)
		}
		return keys, nil
	}
	if item == "" {
		return nil, errors.New("empty: give the path of a key file, or armored key text")
	}
	f, err := os.Open(item)
	if err != nil {
		return nil, fmt.Errorf("reading key file: %v: check the path, and that the runner may read it", err)
	}
	defer discard.Close(f)
	keys, err := readKeys(f)
	if err != nil {
		return nil, fmt.Errorf("key file %s holds no usable OpenPGP key (%v): give a key exported with gpg --export (public) or gpg --export-secret-keys (private), armored or binary", item, err)
	}
	return keys, nil
}

// readKeys reads an armored or binary key ring.
func readKeys(r io.Reader) (openpgp.EntityList, error) {
	br := bufio.NewReader(r)
	head, _ := br.Peek(512)
	var (
		keys openpgp.EntityList
		err  error
	)
	if bytes.Contains(head, []byte(armorStart)) {
		keys, err = openpgp.ReadArmoredKeyRing(br)
	} else {
		keys, err = openpgp.ReadKeyRing(br)
	}
	if err == nil && len(keys) == 0 {
		err = errors.New("no key found")
	}
	return keys, err
}

// keyID formats a key id as gpg --keyid-format long prints it.
func keyID(id uint64) string { return fmt.Sprintf("%016X", id) }

// describeEntity names a key for messages: its key id and primary user id.
func describeEntity(e *openpgp.Entity) string {
	s := keyID(e.PrimaryKey.KeyId)
	if id := e.PrimaryIdentity(); id != nil && id.Name != "" {
		s += " (" + id.Name + ")"
	}
	return s
}

// describeKey names a (sub)key: its own id and, for a subkey, its primary.
func describeKey(k openpgp.Key) string {
	if k.Entity == nil || k.PublicKey.KeyId == k.Entity.PrimaryKey.KeyId {
		return describeEntity(k.Entity)
	}
	return keyID(k.PublicKey.KeyId) + " of " + describeEntity(k.Entity)
}

// describeEntities lists keys for messages.
func describeEntities(el openpgp.EntityList) string {
	names := make([]string, len(el))
	for i, e := range el {
		names[i] = describeEntity(e)
	}
	return strings.Join(names, ", ")
}

// readKeyList reads every item of a key list field; problems are
// *pipeline.FieldError values naming the item, joined.
func readKeyList(stage, field string, items []string) (openpgp.EntityList, error) {
	var (
		all  openpgp.EntityList
		errs []error
	)
	for i, item := range items {
		keys, err := ParseKeys(item)
		if err != nil {
			errs = append(errs, fieldError(stage, field, "item %d: %v", i+1, err))
			continue
		}
		all = append(all, keys...)
	}
	return all, errors.Join(errs...)
}

// unlock decrypts e's private keys with passphrase. The passphrase never
// appears in the error.
func unlock(stage, field string, e *openpgp.Entity, passphrase string) error {
	if !isLocked(e) {
		return nil
	}
	if passphrase == "" {
		return fieldError(stage, field, "the private key %s is protected by a passphrase and none is given: set %s (from the environment: \"${VAR}\")", describeEntity(e), field)
	}
	if err := e.DecryptPrivateKeys([]byte(passphrase)); err != nil {
		return fieldError(stage, field, "the passphrase does not unlock the private key %s (%v): check the passphrase", describeEntity(e), err)
	}
	return nil
}

// isLocked reports whether any of e's private keys is still encrypted.
func isLocked(e *openpgp.Entity) bool {
	if e.PrivateKey != nil && !e.PrivateKey.Dummy() && e.PrivateKey.Encrypted {
		return true
	}
	for _, sub := range e.Subkeys {
		if sub.PrivateKey != nil && !sub.PrivateKey.Dummy() && sub.PrivateKey.Encrypted {
			return true
		}
	}
	return false
}

// errPublicOnly says that a file holds a public key where the private key
// is needed.
func errPublicOnly(stage, field string, e *openpgp.Entity, need string) error {
	return fieldError(stage, field, "%s is a public key: %s needs the private key; export it with gpg --export-secret-keys %s",
		describeEntity(e), need, keyID(e.PrimaryKey.KeyId))
}

// pgpConfig is the library configuration both stages use: AES-256 and
// SHA-256, as GnuPG prefers, and the compression asked for (GnuPG reads
// ZIP and ZLIB).
func pgpConfig(compression string) (*packet.Config, error) {
	c := &packet.Config{DefaultCipher: packet.CipherAES256, DefaultHash: crypto.SHA256}
	switch compression {
	case "", PGPCompressionNone:
		c.DefaultCompressionAlgo = packet.CompressionNone
	case PGPCompressionZip:
		c.DefaultCompressionAlgo = packet.CompressionZIP
	case PGPCompressionZlib:
		c.DefaultCompressionAlgo = packet.CompressionZLIB
	default:
		return nil, fmt.Errorf("want %s, %s or %s", PGPCompressionNone, PGPCompressionZip, PGPCompressionZlib)
	}
	if c.DefaultCompressionAlgo != packet.CompressionNone {
		c.CompressionConfig = &packet.CompressionConfig{Level: packet.DefaultCompression}
	}
	return c, nil
}

// permanentf returns a permanent error for a file's content.
func permanentf(format string, args ...any) error {
	return pipeline.Permanent(fmt.Errorf(format, args...))
}
