package stages_test

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/mftflow/mftflow/pipeline"
	"github.com/mftflow/mftflow/pipeline/stages"
)

// gnupg runs Debian's gpg with a keyring of its own.
type gnupg struct {
	t    *testing.T
	bin  string
	home string
	// mu runs one gpg at a time: concurrent gpg processes on one keyring
	// fail now and then ("keydb_search failed").
	mu sync.Mutex
}

// newGnuPG returns a gpg with an empty temporary GNUPGHOME, or skips the
// test when gpg is not installed. The home is short: gpg-agent's socket
// lives there, and socket paths are limited to about 100 bytes.
func newGnuPG(t *testing.T) *gnupg {
	t.Helper()
	bin, err := exec.LookPath("gpg")
	if err != nil {
		t.Skip("gpg not found: run scripts/gpg.sh (installs Debian's gnupg)")
	}
	home, err := os.MkdirTemp("", "gpg")
	if err != nil {
		t.Fatal(err)
	}
	os.Chmod(home, 0o700)
	g := &gnupg{t: t, bin: bin, home: home}
	t.Cleanup(func() {
		kill := exec.Command("gpgconf", "--kill", "gpg-agent")
		kill.Env = append(os.Environ(), "GNUPGHOME="+home)
		kill.Run()
		os.RemoveAll(home)
	})
	return g
}

// run runs gpg in batch mode and returns its stdout and its status lines.
func (g *gnupg) run(stdin []byte, args ...string) (stdout []byte, status string) {
	g.t.Helper()
	full := append([]string{"--batch", "--yes", "--no-tty", "--pinentry-mode", "loopback", "--status-fd", "2"}, args...)
	cmd := exec.Command(g.bin, full...)
	cmd.Env = append(os.Environ(), "GNUPGHOME="+g.home)
	cmd.Stdin = bytes.NewReader(stdin)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	g.mu.Lock()
	err := cmd.Run()
	g.mu.Unlock()
	if err != nil {
		g.t.Fatalf("gpg %s: %v\n%s", strings.Join(args, " "), err, errb.String())
	}
	return out.Bytes(), errb.String()
}

// genKey makes a key of kind ("rsa": rsa3072, else ed25519 with a cv25519
// subkey) and returns its fingerprint.
func (g *gnupg) genKey(kind, uid, passphrase string) string {
	g.t.Helper()
	primary, sub := "ed25519", "cv25519"
	if kind == "rsa" {
		primary, sub = "rsa3072", "rsa3072"
	}
	g.run(nil, "--passphrase", passphrase, "--quick-gen-key", uid, primary, "sign,cert", "never")
	out, _ := g.run(nil, "--with-colons", "--list-keys", uid)
	var fpr string
	for _, line := range strings.Split(string(out), "\n") {
		if f := strings.Split(line, ":"); f[0] == "fpr" {
			fpr = f[9]
			break
		}
	}
	if fpr == "" {
		g.t.Fatalf("no fingerprint for %s in\n%s", uid, out)
	}
	g.run(nil, "--passphrase", passphrase, "--quick-add-key", fpr, sub, "encr", "never")
	return fpr
}

// export writes a key to a file in dir and returns its path.
func (g *gnupg) export(dir, name string, args ...string) string {
	g.t.Helper()
	out, _ := g.run(nil, args...)
	if len(out) == 0 {
		g.t.Fatalf("gpg %v exported nothing", args)
	}
	path := filepath.Join(dir, name)
	if err := os.WriteFile(path, out, 0o600); err != nil {
		g.t.Fatal(err)
	}
	return path
}

// gpgPair is, for one kind of key, a partner's key pair made by gpg and
// ours, also made by gpg and exported to files, protected by a passphrase.
type gpgPair struct {
	partnerFpr, partnerPub string // the partner encrypts and signs with gpg
	oursFpr, oursPub       string
	oursSec, oursPass      string
}

func TestPGPInteropWithGnuPG(t *testing.T) {
	g := newGnuPG(t)
	dir := t.TempDir()
	pairs := map[string]*gpgPair{}
	var mu sync.Mutex
	var wg sync.WaitGroup
	for _, kind := range []string{"rsa", "25519"} {
		wg.Go(func() { // each kind's keys and files, while the other's gpg runs
			p := &gpgPair{oursPass: "our " + kind + " passphrase"}
			p.partnerFpr = g.genKey(kind, "Partner "+kind+" <partner-"+kind+"@example.com>", "")
			p.oursFpr = g.genKey(kind, "Ours "+kind+" <ours-"+kind+"@example.com>", p.oursPass)
			p.partnerPub = g.export(dir, "partner-"+kind+".asc", "--armor", "--export", p.partnerFpr)
			p.oursPub = g.export(dir, "ours-"+kind+".gpg", "--export", p.oursFpr) // binary
			p.oursSec = g.export(dir, "ours-"+kind+".sec.asc", "--passphrase", p.oursPass, "--armor", "--export-secret-keys", p.oursFpr)
			mu.Lock()
			pairs[kind] = p
			mu.Unlock()
		})
	}
	wg.Wait()
	if t.Failed() {
		return
	}
	small, big := randomBytes(6000, 5), textBytes(5<<20)
	for _, kind := range []string{"rsa", "25519"} {
		for _, signed := range []bool{false, true} {
			for _, armor := range []bool{false, true} {
				for _, compression := range []string{"none", "zlib", "zip"} {
					if compression == "zip" && armor { // zip is tried in binary cells only: enough to show gpg reads it
						continue
					}
					data := small
					if kind == "rsa" && signed && !armor && compression == "zlib" {
						data = big
					}
					name := fmt.Sprintf("%s/signed=%v/armor=%v/compression=%s", kind, signed, armor, compression)
					p := pairs[kind]
					t.Run("stage to gpg/"+name, func(t *testing.T) {
						stageToGPG(t, g, p, data, signed, armor, compression)
					})
					t.Run("gpg to stage/"+name, func(t *testing.T) {
						gpgToStage(t, g, p, data, signed, armor, compression)
					})
				}
			}
		}
	}
}

// compressAlgo is gpg's number for a compression name, as --list-packets
// prints it.
var compressAlgo = map[string]string{"zip": "1", "zlib": "2"}

// stageToGPG: pgp_encrypt encrypts for the partner (signing with our key);
// gpg decrypts, checks the signature, and lists the packets.
func stageToGPG(t *testing.T, g *gnupg, p *gpgPair, data []byte, signed, armor bool, compression string) {
	cfg := stages.PGPEncryptConfig{Recipients: []string{p.partnerPub}, Armor: armor, Compression: compression}
	if signed {
		cfg.SigningKey, cfg.SigningPassphrase = p.oursSec, p.oursPass
	}
	_, ct := mustRun(t, newEncrypt(t, cfg), pipeline.File{Name: "a.csv"}, data)
	out, status := g.run(ct, "--decrypt")
	if sum(out) != sum(data) {
		t.Fatalf("gpg decrypted %d bytes, sha256 %s; want %d, %s", len(out), sum(out), len(data), sum(data))
	}
	if !strings.Contains(status, "[GNUPG:] DECRYPTION_OKAY") || !strings.Contains(status, "[GNUPG:] GOODMDC") {
		t.Errorf("gpg status lacks DECRYPTION_OKAY and GOODMDC:\n%s", status)
	}
	if got := strings.Contains(status, "[GNUPG:] VALIDSIG "+p.oursFpr); got != signed {
		t.Errorf("VALIDSIG by our key in gpg's status: %v, want %v:\n%s", got, signed, status)
	}
	packets, _ := g.run(ct, "--list-packets")
	if algo, ok := compressAlgo[compression]; ok != strings.Contains(string(packets), ":compressed packet: algo="+algo) {
		t.Errorf("compression %s: gpg lists\n%s", compression, packets)
	}
}

// gpgToStage: gpg encrypts for our key (signing with the partner's);
// pgp_decrypt decrypts and, when signed, requires the partner's signature.
func gpgToStage(t *testing.T, g *gnupg, p *gpgPair, data []byte, signed, armor bool, compression string) {
	args := []string{"--trust-model", "always", "--compress-algo", compression, "--recipient", p.oursFpr}
	if armor {
		args = append(args, "--armor")
	}
	if signed {
		args = append(args, "--local-user", p.partnerFpr, "--sign")
	}
	ct, _ := g.run(data, append(args, "--encrypt")...)
	cfg := stages.PGPDecryptConfig{PrivateKeys: []string{p.oursSec}, Passphrases: []string{p.oursPass}}
	if signed {
		cfg.RequireSignature, cfg.Signers = true, []string{p.partnerPub}
	}
	f, out := mustRun(t, newDecrypt(t, cfg), pipeline.File{Name: "a.csv.gpg"}, ct)
	if f.Name != "a.csv" || sum(out) != sum(data) {
		t.Errorf("decrypted %q, %d bytes, sha256 %s; want a.csv, %d, %s", f.Name, len(out), sum(out), len(data), sum(data))
	}
	if !signed {
		return
	}
	// The same file for a stage that trusts someone else fails.
	other := cfg
	other.Signers = []string{p.oursPub}
	_, _, err := run(t, newDecrypt(t, other), pipeline.File{Name: "a.csv.gpg"}, bytes.NewReader(ct))
	if err == nil || !strings.Contains(err.Error(), "signer not trusted") {
		t.Errorf("signed by the partner, trusting only ourselves: %v", err)
	}
}
