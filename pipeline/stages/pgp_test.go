package stages_test

import (
	"bytes"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ProtonMail/go-crypto/openpgp"
	"github.com/ProtonMail/go-crypto/openpgp/packet"

	"github.com/mftflow/mftflow/pipeline"
	"github.com/mftflow/mftflow/pipeline/stages"
)

func newEncrypt(t testing.TB, cfg stages.PGPEncryptConfig) *stages.PGPEncrypt {
	t.Helper()
	s, err := stages.NewPGPEncrypt(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func newDecrypt(t testing.TB, cfg stages.PGPDecryptConfig) *stages.PGPDecrypt {
	t.Helper()
	s, err := stages.NewPGPDecrypt(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// encryptFor encrypts data for to (and signs it with signer, if set) through
// the stage.
func encryptFor(t *testing.T, data []byte, armor bool, to pgpKey, signer *pgpKey) []byte {
	t.Helper()
	cfg := stages.PGPEncryptConfig{Recipients: []string{to.publicFile}, Armor: armor}
	if signer != nil {
		cfg.SigningKey, cfg.SigningPassphrase = signer.privateFile, signer.passphrase
	}
	_, out := mustRun(t, newEncrypt(t, cfg), pipeline.File{Name: "a.csv", Size: int64(len(data))}, data)
	return out
}

func TestPGPRoundTrip(t *testing.T) {
	data := randomBytes(300<<10, 7)
	for _, kind := range []string{"rsa", "25519"} {
		for _, signed := range []bool{false, true} {
			for _, armor := range []bool{false, true} {
				t.Run(fmt.Sprintf("%s/signed=%v/armor=%v", kind, signed, armor), func(t *testing.T) {
					bob := testKey(t, "bob-"+kind, true)
					alice := testKey(t, "alice-"+kind, true)
					cfg := stages.PGPEncryptConfig{Recipients: []string{bob.publicFile}, Armor: armor}
					dcfg := stages.PGPDecryptConfig{PrivateKeys: []string{bob.privateFile}, Passphrases: []string{bob.passphrase}}
					if signed {
						cfg.SigningKey, cfg.SigningPassphrase = alice.privateFile, alice.passphrase
						dcfg.RequireSignature, dcfg.Signers = true, []string{alice.public} // armored text, as from "${ALICE_KEY}"
					}
					f, enc := mustRun(t, newEncrypt(t, cfg), pipeline.File{Name: "in/a.csv", Size: int64(len(data)), SHA256: sum(data)}, data)
					want := "in/a.csv.pgp"
					if armor {
						want = "in/a.csv.asc"
					}
					if f.Name != want || f.Size != -1 || f.SHA256 != "" {
						t.Errorf("encrypted file: %q size %d sha256 %q; want %q, -1, \"\"", f.Name, f.Size, f.SHA256, want)
					}
					if armor != bytes.HasPrefix(enc, []byte("-----BEGIN PGP MESSAGE-----")) {
						t.Errorf("armor %v, output starts %q", armor, enc[:min(40, len(enc))])
					}
					f, dec := mustRun(t, newDecrypt(t, dcfg), f, enc)
					if f.Name != "in/a.csv" || sum(dec) != sum(data) {
						t.Errorf("decrypted: %q, sha256 %s; want in/a.csv, %s", f.Name, sum(dec), sum(data))
					}
				})
			}
		}
	}
}

func TestPGPNames(t *testing.T) {
	bob := testKey(t, "bob-25519", false)
	enc := newEncrypt(t, stages.PGPEncryptConfig{Recipients: []string{bob.publicFile}, Name: "out/{stem}.gpg"})
	f, ct := mustRun(t, enc, pipeline.File{Name: "x/report.csv"}, []byte("x"))
	if f.Name != "out/report.gpg" {
		t.Errorf("template: %q, want out/report.gpg", f.Name)
	}
	for in, want := range map[string]string{"a.csv.pgp": "a.csv", "a.csv.GPG": "a.csv", "d/a.asc": "d/a", "a.csv": "a.csv", ".pgp": ".pgp", "d/.asc": "d/.asc"} {
		dec := newDecrypt(t, stages.PGPDecryptConfig{PrivateKeys: []string{bob.privateFile}})
		f, _ := mustRun(t, dec, pipeline.File{Name: in}, ct)
		if f.Name != want {
			t.Errorf("decrypting %q: name %q, want %q", in, f.Name, want)
		}
	}
	dec := newDecrypt(t, stages.PGPDecryptConfig{PrivateKeys: []string{bob.privateFile}, Name: "{dir}/{stem}.txt"})
	if f, _ := mustRun(t, dec, pipeline.File{Name: "d/a.pgp"}, ct); f.Name != "d/a.txt" {
		t.Errorf("decrypt template: %q, want d/a.txt", f.Name)
	}
}

// Several recipients: each can decrypt; key files with several keys count
// every key.
func TestPGPSeveralRecipients(t *testing.T) {
	bob, carol := testKey(t, "bob-rsa", true), testKey(t, "carol-25519", false)
	data := textBytes(10 << 10)
	enc := newEncrypt(t, stages.PGPEncryptConfig{Recipients: []string{bob.publicFile, carol.public}})
	_, ct := mustRun(t, enc, pipeline.File{Name: "a"}, data)
	for _, k := range []pgpKey{bob, carol} {
		dec := newDecrypt(t, stages.PGPDecryptConfig{PrivateKeys: []string{k.privateFile}, Passphrases: []string{k.passphrase}})
		if _, out := mustRun(t, dec, pipeline.File{Name: "a.pgp"}, ct); !bytes.Equal(out, data) {
			t.Errorf("%s: round trip differs", k.entity.PrimaryIdentity().Name)
		}
	}
	// One stage with both keys, and a passphrase per file.
	dec := newDecrypt(t, stages.PGPDecryptConfig{PrivateKeys: []string{carol.privateFile, bob.privateFile}, Passphrases: []string{"", bob.passphrase}})
	if _, out := mustRun(t, dec, pipeline.File{Name: "a.pgp"}, ct); !bytes.Equal(out, data) {
		t.Error("two private keys: round trip differs")
	}
}

// The failures a partner's file can cause: each permanent, with a message
// that names the keys and says what to do.
func TestPGPDecryptFailures(t *testing.T) {
	bob, carol := testKey(t, "bob-rsa", true), testKey(t, "carol-25519", false)
	alice, mallory := testKey(t, "alice-25519", true), testKey(t, "mallory-rsa", false)
	data := randomBytes(100<<10, 3)
	forBob := stages.PGPDecryptConfig{PrivateKeys: []string{bob.privateFile}, Passphrases: []string{bob.passphrase}}
	trusting := forBob
	trusting.RequireSignature, trusting.Signers = true, []string{alice.publicFile}
	tampered := encryptFor(t, data, false, bob, &alice)
	tampered[len(tampered)/2] ^= 0x01
	tamperedUnsigned := encryptFor(t, data, false, bob, nil)
	tamperedUnsigned[len(tamperedUnsigned)-30] ^= 0x80
	tamperedArmored := encryptFor(t, data, true, bob, nil)
	i := bytes.IndexByte(tamperedArmored[len(tamperedArmored)/2:], 'A') + len(tamperedArmored)/2
	tamperedArmored[i] = 'B'

	for _, tt := range []struct {
		desc string
		cfg  stages.PGPDecryptConfig
		ct   []byte
		is   error
		want string
	}{
		{"wrong key", forBob, encryptFor(t, data, false, carol, nil), stages.ErrNoPrivateKey,
			`decrypting "a.csv.pgp": no private key for the file: it is encrypted for key ` + carol.encID() + `, and private_keys hold ` + bob.encID() + ` of ` + bob.id() + ` (bob-rsa <bob-rsa@example.com>): add the private key of one of its recipients to private_keys, or ask the sender to encrypt for yours`},
		{"missing signature", trusting, encryptFor(t, data, false, bob, nil), stages.ErrNotSigned,
			`decrypting "a.csv.pgp": not signed, and require_signature is true: ask the sender to sign it with a key among signers (` + alice.id() + ` (alice-25519 <alice-25519@example.com>))`},
		{"untrusted signer", trusting, encryptFor(t, data, false, bob, &mallory), stages.ErrUntrustedSigner,
			`decrypting "a.csv.pgp": signer not trusted: signed by key ` + mallory.id() + `, which is not among signers (` + alice.id() + ` (alice-25519 <alice-25519@example.com>)): add its public key to signers if you trust it, or ask the sender to sign with a trusted key`},
		{"bad signature", trusting, forgedSignature(t, bob, alice), stages.ErrBadSignature,
			`decrypting "a.csv.pgp": bad signature by key ` + alice.id() + ` (alice-25519 <alice-25519@example.com>) (openpgp: invalid signature: EdDSA verification failure): the content is not what that key signed; it was changed after signing, or the signature is not genuine: do not use the file, and ask the sender for it again`},
		{"tampered signed", trusting, tampered, stages.ErrTampered,
			`decrypting "a.csv.pgp": damaged or tampered content: the file is not an OpenPGP message, is truncated, or failed its integrity check (openpgp: decryption with session key failed: parsing error): ask the sender for it again`},
		{"tampered at the end", forBob, tamperedUnsigned, stages.ErrTampered,
			`decrypting "a.csv.pgp": damaged or tampered content: the file is not an OpenPGP message, is truncated, or failed its integrity check (openpgp: invalid signature: MDC hash mismatch): ask the sender for it again`},
		{"tampered key packet", forBob, tamperedKeyPacket(t, encryptFor(t, data, false, bob, nil)), stages.ErrTampered,
			`decrypting "a.csv.pgp": damaged or tampered content: the session key encrypted for key ` + bob.encID() + ` of ` + bob.id() + ` (bob-rsa <bob-rsa@example.com>) does not decrypt with that private key: the file is damaged or was changed on the way; ask the sender for it again`},
		{"tampered armored", forBob, tamperedArmored, stages.ErrTampered,
			`decrypting "a.csv.pgp": damaged or tampered content: the file is not an OpenPGP message, is truncated, or failed its integrity check (openpgp: invalid signature: MDC hash mismatch): ask the sender for it again`},
		{"truncated", forBob, encryptFor(t, data, false, bob, nil)[:50<<10], stages.ErrTampered,
			`decrypting "a.csv.pgp": damaged or tampered content: the file is not an OpenPGP message, is truncated, or failed its integrity check (openpgp: decryption with session key failed: parsing error): ask the sender for it again`},
		{"not OpenPGP", forBob, []byte("plain text, not encrypted\n"), stages.ErrTampered,
			`decrypting "a.csv.pgp": damaged or tampered content: the file is not an OpenPGP message, is truncated, or failed its integrity check (openpgp: invalid data: tag byte does not have MSB set): ask the sender for it again`},
		{"only signed", forBob, signedOnly(t, alice, data), stages.ErrNotEncrypted,
			`decrypting "a.csv.pgp": not encrypted: it is OpenPGP data without encryption; ask the sender to encrypt it for ` + bob.id() + ` (bob-rsa <bob-rsa@example.com>)`},
	} {
		t.Run(tt.desc, func(t *testing.T) {
			dec := newDecrypt(t, tt.cfg)
			_, out, err := run(t, dec, pipeline.File{Name: "a.csv.pgp"}, bytes.NewReader(tt.ct))
			if err == nil {
				t.Fatalf("no error; %d bytes out", len(out))
			}
			if !errors.Is(err, tt.is) || !pipeline.IsPermanent(err) {
				t.Errorf("%v: want permanent, wrapping %q", err, tt.is)
			}
			if err.Error() != tt.want {
				t.Errorf("error:\n got %s\nwant %s", err, tt.want)
			}
		})
	}
}

// tamperedKeyPacket changes a byte of the first packet, the session key
// encrypted for the recipient.
func tamperedKeyPacket(t *testing.T, ct []byte) []byte {
	t.Helper()
	ct = bytes.Clone(ct)
	ct[100] ^= 0x01
	return ct
}

// signedOnly returns data signed by signer, not encrypted.
func signedOnly(t *testing.T, signer pgpKey, data []byte) []byte {
	t.Helper()
	var b bytes.Buffer
	w, err := openpgp.Sign(&b, signer.entity, &openpgp.FileHints{IsBinary: true}, nil)
	if err != nil {
		t.Fatal(err)
	}
	w.Write(data)
	w.Close()
	return b.Bytes()
}

// forgedSignature returns a message encrypted for to whose content was
// changed after signer signed it: a signed message, altered, then
// encrypted, so that the integrity check passes and the signature fails.
func forgedSignature(t *testing.T, to, signer pgpKey) []byte {
	t.Helper()
	signed := signedOnly(t, signer, []byte("pay 100 to account 1234"))
	forged := bytes.Replace(signed, []byte("100"), []byte("900"), 1)
	key := make([]byte, 32)
	rand.Read(key)
	var b bytes.Buffer
	enc, ok := to.entity.EncryptionKey(time.Now())
	if !ok {
		t.Fatal("no encryption key")
	}
	if err := packet.SerializeEncryptedKeyAEAD(&b, enc.PublicKey, packet.CipherAES256, false, key, nil); err != nil {
		t.Fatal(err)
	}
	w, err := packet.SerializeSymmetricallyEncrypted(&b, packet.CipherAES256, false, packet.CipherSuite{}, key, nil)
	if err != nil {
		t.Fatal(err)
	}
	w.Write(forged)
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// Without require_signature, a file signed by a trusted signer is still
// checked, and one signed by another key or not at all passes.
func TestPGPOptionalSignature(t *testing.T) {
	bob, alice, mallory := testKey(t, "bob-25519", false), testKey(t, "alice-rsa", false), testKey(t, "mallory-25519", false)
	data := textBytes(5000)
	dec := newDecrypt(t, stages.PGPDecryptConfig{PrivateKeys: []string{bob.privateFile}, Signers: []string{alice.publicFile}})
	for _, signer := range []*pgpKey{nil, &alice, &mallory} {
		if _, out := mustRun(t, dec, pipeline.File{Name: "a.pgp"}, encryptFor(t, data, false, bob, signer)); !bytes.Equal(out, data) {
			t.Error("round trip differs")
		}
	}
	_, _, err := run(t, dec, pipeline.File{Name: "a.pgp"}, bytes.NewReader(forgedSignature(t, bob, alice)))
	if !errors.Is(err, stages.ErrBadSignature) {
		t.Errorf("forged signature of a trusted signer: %v, want %v", err, stages.ErrBadSignature)
	}
}

// An error of the input stays the input's: retryable, not "tampered".
func TestPGPSourceErrorsPassThrough(t *testing.T) {
	bob := testKey(t, "bob-25519", false)
	ct := encryptFor(t, randomBytes(200<<10, 1), false, bob, nil)
	cut := errors.New("connection reset")
	dec := newDecrypt(t, stages.PGPDecryptConfig{PrivateKeys: []string{bob.privateFile}})
	for _, at := range []int{0, 100, 100 << 10} {
		_, _, err := run(t, dec, pipeline.File{Name: "a.pgp"}, &errAfterReader{data: ct[:at], err: cut})
		if !errors.Is(err, cut) || pipeline.IsPermanent(err) || errors.Is(err, stages.ErrTampered) {
			t.Errorf("decrypting, input failing at %d: %v; want the input's error, retryable", at, err)
		}
	}
	enc := newEncrypt(t, stages.PGPEncryptConfig{Recipients: []string{bob.publicFile}})
	_, _, err := run(t, enc, pipeline.File{Name: "a"}, &errAfterReader{data: []byte("abc"), err: cut})
	if !errors.Is(err, cut) || pipeline.IsPermanent(err) {
		t.Errorf("encrypting, input failing: %v; want the input's error, retryable", err)
	}
}

// Many files at once through one pair of stages (run with -race).
func TestPGPConcurrent(t *testing.T) {
	bob, alice := testKey(t, "bob-rsa", true), testKey(t, "alice-25519", true)
	enc := newEncrypt(t, stages.PGPEncryptConfig{Recipients: []string{bob.publicFile}, SigningKey: alice.privateFile, SigningPassphrase: alice.passphrase})
	dec := newDecrypt(t, stages.PGPDecryptConfig{PrivateKeys: []string{bob.privateFile}, Passphrases: []string{bob.passphrase}, RequireSignature: true, Signers: []string{alice.publicFile}})
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Go(func() {
			data := randomBytes(64<<10+i, uint64(i))
			_, ct, err := run(t, enc, pipeline.File{Name: "a"}, bytes.NewReader(data))
			if err != nil {
				t.Error(err)
				return
			}
			_, out, err := run(t, dec, pipeline.File{Name: "a.pgp"}, bytes.NewReader(ct))
			if err != nil || !bytes.Equal(out, data) {
				t.Errorf("file %d: %v", i, err)
			}
		})
	}
	wg.Wait()
}

// Closing the encrypting reader half-way stops its goroutine.
func TestPGPEncryptClose(t *testing.T) {
	bob := testKey(t, "bob-25519", false)
	enc := newEncrypt(t, stages.PGPEncryptConfig{Recipients: []string{bob.publicFile}})
	_, r, err := enc.Process(t.Context(), pipeline.File{Name: "a"}, bytes.NewReader(randomBytes(4<<20, 2)))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.ReadFull(r, make([]byte, 1000)); err != nil {
		t.Fatal(err)
	}
	r.(io.Closer).Close()
	if _, err := r.Read(make([]byte, 10)); err == nil {
		t.Error("Read after Close: no error")
	}
}

// Bad keys and settings fail when the stage is built, naming the field.
func TestPGPConfigErrors(t *testing.T) {
	bob, alice := testKey(t, "bob-rsa", true), testKey(t, "alice-25519", false)
	dir := t.TempDir()
	notKey := dir + "/notes.txt"
	if err := os.WriteFile(notKey, []byte("meeting notes\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	missing := dir + "/missing.asc"
	for _, tt := range []struct {
		desc string
		err  error
		want string
	}{
		{"no recipients", encryptErr(stages.PGPEncryptConfig{}),
			`pgp_encrypt: field "recipients": no recipients: give at least one public key (a key file's path, or armored key text)`},
		{"missing key file", encryptErr(stages.PGPEncryptConfig{Recipients: []string{missing}}),
			`pgp_encrypt: field "recipients": item 1: reading key file: open ` + missing + `: no such file or directory: check the path, and that the runner may read it`},
		{"not a key", encryptErr(stages.PGPEncryptConfig{Recipients: []string{bob.publicFile, notKey}}),
			`pgp_encrypt: field "recipients": item 2: key file ` + notKey + ` holds no usable OpenPGP key (openpgp: invalid data: tag byte does not have MSB set): give a key exported with gpg --export (public) or gpg --export-secret-keys (private), armored or binary`},
		{"bad key text", encryptErr(stages.PGPEncryptConfig{Recipients: []string{"-----BEGIN PGP PUBLIC KEY BLOCK-----\n\nnot base64\n-----END PGP PUBLIC KEY BLOCK-----\n"}}),
			`pgp_encrypt: field "recipients": item 1: the armored key text holds no usable OpenPGP key (illegal base64 data at input byte 3): paste a whole block exported with gpg --export --armor`},
		{"public signing key", encryptErr(stages.PGPEncryptConfig{Recipients: []string{bob.publicFile}, SigningKey: alice.publicFile}),
			`pgp_encrypt: field "signing_key": ` + alice.id() + ` (alice-25519 <alice-25519@example.com>) is a public key: signing needs the private key; export it with gpg --export-secret-keys ` + alice.id()},
		{"wrong signing passphrase", encryptErr(stages.PGPEncryptConfig{Recipients: []string{alice.publicFile}, SigningKey: bob.privateFile, SigningPassphrase: "wrong-secret"}),
			`pgp_encrypt: field "signing_passphrase": the passphrase does not unlock the private key ` + bob.id() + ` (bob-rsa <bob-rsa@example.com>) (openpgp: invalid data: private key checksum failure): check the passphrase`},
		{"no signing passphrase", encryptErr(stages.PGPEncryptConfig{Recipients: []string{alice.publicFile}, SigningKey: bob.privateFile}),
			`pgp_encrypt: field "signing_passphrase": the private key ` + bob.id() + ` (bob-rsa <bob-rsa@example.com>) is protected by a passphrase and none is given: set signing_passphrase (from the environment: "${VAR}")`},
		{"bad compression", encryptErr(stages.PGPEncryptConfig{Recipients: []string{bob.publicFile}, Compression: "bzip2"}),
			`pgp_encrypt: field "compression": "bzip2": want none, zip or zlib`},
		{"bad name", encryptErr(stages.PGPEncryptConfig{Recipients: []string{bob.publicFile}, Name: "/out/{name}"}),
			`pgp_encrypt: field "name": name template "/out/{name}" makes unsafe names (absolute path): every file would be refused`},
		{"public key to decrypt", decryptErr(stages.PGPDecryptConfig{PrivateKeys: []string{bob.publicFile}}),
			`pgp_decrypt: field "private_keys": ` + bob.id() + ` (bob-rsa <bob-rsa@example.com>) is a public key: decrypting needs the private key; export it with gpg --export-secret-keys ` + bob.id()},
		{"wrong passphrase", decryptErr(stages.PGPDecryptConfig{PrivateKeys: []string{bob.privateFile}, Passphrases: []string{"wrong-secret"}}),
			`pgp_decrypt: field "passphrase": the passphrase does not unlock the private key ` + bob.id() + ` (bob-rsa <bob-rsa@example.com>) (openpgp: invalid data: private key checksum failure): check the passphrase`},
		{"private key as text", decryptErr(stages.PGPDecryptConfig{PrivateKeys: []string{alice.public}}),
			`pgp_decrypt: field "private_keys": item 1 is key text: give the path of a private key file, so that the key stays out of flow values`},
		{"passphrase count", decryptErr(stages.PGPDecryptConfig{PrivateKeys: []string{alice.privateFile}, Passphrases: []string{"a", "b"}}),
			`pgp_decrypt: field "passphrase": 2 passphrases for 1 private key files: give one for all, or one per file in the order of private_keys`},
		{"signature without signers", decryptErr(stages.PGPDecryptConfig{PrivateKeys: []string{alice.privateFile}, RequireSignature: true}),
			`pgp_decrypt: field "require_signature": true, but no signers are given: list in signers the public keys of the senders whose signatures you trust`},
		{"no private keys", decryptErr(stages.PGPDecryptConfig{}),
			`pgp_decrypt: field "private_keys": no private keys: give the path of at least one private key file`},
	} {
		t.Run(tt.desc, func(t *testing.T) {
			if tt.err == nil {
				t.Fatalf("no error, want %s", tt.want)
			}
			if tt.err.Error() != tt.want {
				t.Errorf("error:\n got %s\nwant %s", tt.err, tt.want)
			}
			var fe *pipeline.FieldError
			if !errors.As(tt.err, &fe) {
				t.Errorf("%v holds no *pipeline.FieldError", tt.err)
			}
			if strings.Contains(tt.err.Error(), "wrong-secret") || strings.Contains(tt.err.Error(), bob.passphrase) {
				t.Errorf("the error shows a passphrase: %v", tt.err)
			}
		})
	}
}

func encryptErr(cfg stages.PGPEncryptConfig) error {
	_, err := stages.NewPGPEncrypt(cfg)
	return err
}

func decryptErr(cfg stages.PGPDecryptConfig) error {
	_, err := stages.NewPGPDecrypt(cfg)
	return err
}
