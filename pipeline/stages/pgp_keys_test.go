package stages_test

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/ProtonMail/go-crypto/openpgp"
	"github.com/ProtonMail/go-crypto/openpgp/armor"
	"github.com/ProtonMail/go-crypto/openpgp/packet"
)

// pgpKey is a test key pair with its files.
type pgpKey struct {
	entity     *openpgp.Entity
	public     string // armored public key text
	publicFile string
	// privateFile holds the private key, protected by passphrase when
	// that is set.
	privateFile string
	passphrase  string
}

// id is the primary key id as messages print it.
func (k pgpKey) id() string { return keyIDOf(k.entity.PrimaryKey.KeyId) }

// encID is the id of the encryption subkey, which messages name.
func (k pgpKey) encID() string { return keyIDOf(k.entity.Subkeys[0].PublicKey.KeyId) }

func keyIDOf(id uint64) string {
	const hex = "0123456789ABCDEF"
	b := make([]byte, 16)
	for i := 15; i >= 0; i-- {
		b[i] = hex[id&15]
		id >>= 4
	}
	return string(b)
}

func TestMain(m *testing.M) {
	code := m.Run()
	if keyDir != "" {
		os.RemoveAll(keyDir)
	}
	os.Exit(code)
}

// Generating RSA keys takes a while: each kind is made once per test binary.
var (
	keyDirOnce sync.Once
	keyDir     string
	keyCache   sync.Map // name -> func() pgpKey
)

// testKey returns the key called name ("alice-rsa", "bob-25519", ...): RSA
// when name ends in "rsa", else ed25519 with a cv25519 subkey; with a
// passphrase when protected.
func testKey(t testing.TB, name string, protected bool) pgpKey {
	t.Helper()
	keyDirOnce.Do(func() {
		dir, err := os.MkdirTemp("", "mftflow-pgp-keys")
		if err != nil {
			panic(err)
		}
		keyDir = dir
	})
	cacheKey := name
	if protected {
		cacheKey += "+pass"
	}
	v, _ := keyCache.LoadOrStore(cacheKey, sync.OnceValues(func() (pgpKey, error) {
		return makeKey(name, protected)
	}))
	k, err := v.(func() (pgpKey, error))()
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func makeKey(name string, protected bool) (pgpKey, error) {
	cfg := &packet.Config{Algorithm: packet.PubKeyAlgoEdDSA, Curve: packet.Curve25519}
	if strings.HasSuffix(name, "rsa") {
		cfg = &packet.Config{Algorithm: packet.PubKeyAlgoRSA, RSABits: 2048}
	}
	e, err := openpgp.NewEntity(name, "", name+"@example.com", cfg)
	if err != nil {
		return pgpKey{}, err
	}
	k := pgpKey{entity: e}
	var pub bytes.Buffer
	aw, _ := armor.Encode(&pub, openpgp.PublicKeyType, nil)
	if err := e.Serialize(aw); err != nil {
		return pgpKey{}, err
	}
	aw.Close()
	k.public = pub.String()
	suffix := ""
	if protected {
		k.passphrase = "correct horse " + name
		suffix = "-protected"
		if err := e.EncryptPrivateKeys([]byte(k.passphrase), nil); err != nil {
			return pgpKey{}, err
		}
	}
	var priv bytes.Buffer
	aw, _ = armor.Encode(&priv, openpgp.PrivateKeyType, nil)
	if err := e.SerializePrivateWithoutSigning(aw, nil); err != nil {
		return pgpKey{}, err
	}
	aw.Close()
	k.publicFile = filepath.Join(keyDir, name+suffix+".pub.asc")
	k.privateFile = filepath.Join(keyDir, name+suffix+".sec.asc")
	if err := os.WriteFile(k.publicFile, pub.Bytes(), 0o600); err != nil {
		return pgpKey{}, err
	}
	if err := os.WriteFile(k.privateFile, priv.Bytes(), 0o600); err != nil {
		return pgpKey{}, err
	}
	// The entity given back is unlocked again, for tests that sign with it.
	if protected {
		if err := e.DecryptPrivateKeys([]byte(k.passphrase)); err != nil {
			return pgpKey{}, err
		}
	}
	return k, nil
}
