package stages_test

import (
	"bytes"
	"strings"
	"testing"

	"github.com/mftflow/mftflow/pipeline"
	"github.com/mftflow/mftflow/pipeline/stages"
)

// Any content fails, if it fails, with a permanent error: retrying cannot
// repair corrupt data.
func FuzzDecompress(f *testing.F) {
	d, err := stages.NewDecompress(stages.DecompressConfig{})
	if err != nil {
		f.Fatal(err)
	}
	for _, format := range []string{stages.FormatGzip, stages.FormatZstd} {
		c, err := stages.NewCompress(stages.CompressConfig{Format: format})
		if err != nil {
			f.Fatal(err)
		}
		for _, data := range []string{"", "x", "hello hello hello hello"} {
			_, r, _ := c.Process(f.Context(), pipeline.File{Name: "a"}, bytes.NewReader([]byte(data)))
			var b bytes.Buffer
			if _, err := b.ReadFrom(r); err != nil {
				f.Fatal(err)
			}
			f.Add(b.Bytes(), uint8(0))
		}
	}
	f.Add([]byte("plain"), uint8(1))
	names := []string{"a.gz", "a.zst", "a"}
	f.Fuzz(func(t *testing.T, data []byte, which uint8) {
		_, _, err := run(t, d, pipeline.File{Name: names[int(which)%len(names)]}, bytes.NewReader(data))
		if err != nil && !pipeline.IsPermanent(err) {
			t.Fatalf("%v is not permanent", err)
		}
	})
}

// Key text from a flow value gives keys or an error, never a panic, and
// the error never quotes the text.
func FuzzPGPKeyText(f *testing.F) {
	f.Add(testKey(f, "fuzz-25519", false).public)
	f.Add("-----BEGIN PGP PUBLIC KEY BLOCK-----\n\nmQINBF\n-----END PGP PUBLIC KEY BLOCK-----\n")
	f.Add("-----BEGIN PGP PRIVATE KEY BLOCK-----\n\n=abcd\n-----END PGP PRIVATE KEY BLOCK-----")
	f.Add("  \n-----BEGIN PGP MESSAGE-----\n\nhQEMA\n-----END PGP MESSAGE-----\n")
	f.Fuzz(func(t *testing.T, text string) {
		if !strings.HasPrefix(strings.TrimLeft(text, " \t\r\n"), "-----BEGIN PGP ") {
			text = "-----BEGIN PGP PUBLIC KEY BLOCK-----\n" + text // key text, never a path
		}
		keys, err := stages.ParseKeys(text)
		if err != nil {
			if len(text) > 40 && strings.Contains(err.Error(), text) {
				t.Errorf("the error quotes the key text: %v", err)
			}
			return
		}
		if len(keys) == 0 {
			t.Error("no keys and no error")
		}
	})
}

// Any content fails, if it fails, with a permanent error: retrying cannot
// repair a damaged or forged file.
func FuzzPGPDecrypt(f *testing.F) {
	bob, alice := testKey(f, "fuzz-25519", false), testKey(f, "fuzz-signer-25519", false)
	enc, err := stages.NewPGPEncrypt(stages.PGPEncryptConfig{Recipients: []string{bob.publicFile}, SigningKey: alice.privateFile})
	if err != nil {
		f.Fatal(err)
	}
	for _, data := range []string{"", "x", "hello hello hello hello"} {
		_, r, _ := enc.Process(f.Context(), pipeline.File{Name: "a"}, strings.NewReader(data))
		var b bytes.Buffer
		if _, err := b.ReadFrom(r); err != nil {
			f.Fatal(err)
		}
		f.Add(b.Bytes(), false)
	}
	f.Add([]byte("-----BEGIN PGP MESSAGE-----\n\nhQEMA\n-----END PGP MESSAGE-----\n"), true)
	f.Add([]byte("plain"), false)
	dec, err := stages.NewPGPDecrypt(stages.PGPDecryptConfig{PrivateKeys: []string{bob.privateFile}, Signers: []string{alice.publicFile}})
	if err != nil {
		f.Fatal(err)
	}
	strict, err := stages.NewPGPDecrypt(stages.PGPDecryptConfig{PrivateKeys: []string{bob.privateFile}, RequireSignature: true, Signers: []string{alice.publicFile}})
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, data []byte, require bool) {
		s := dec
		if require {
			s = strict
		}
		_, _, err := run(t, s, pipeline.File{Name: "a.pgp"}, bytes.NewReader(data))
		if err != nil && !pipeline.IsPermanent(err) {
			t.Fatalf("%v is not permanent", err)
		}
	})
}
