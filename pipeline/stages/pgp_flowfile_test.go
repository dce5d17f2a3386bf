package stages_test

import (
	"strings"
	"testing"

	"github.com/mftflow/mftflow/pipeline"
	"github.com/mftflow/mftflow/pipeline/flowfile"
	"github.com/mftflow/mftflow/pipeline/stages"
	"github.com/mftflow/mftflow/testkit"
)

// A flow file's bad keys and passphrases are reported at their values, as
// "runner validate" prints them, without the passphrase.
func TestPGPFlowFileErrors(t *testing.T) {
	bob, alice := testKey(t, "bob-rsa", true), testKey(t, "alice-25519", false)
	reg := pipeline.NewRegistry()
	if err := testkit.Register(reg); err != nil {
		t.Fatal(err)
	}
	if err := stages.Register(reg); err != nil {
		t.Fatal(err)
	}
	env := map[string]string{"PASS": "not-the-passphrase", "PARTNER_KEY": alice.public, "BOB_KEY": bob.privateFile}
	lookup := func(k string) (string, bool) { v, ok := env[k]; return v, ok }
	flow := `name: pgp
source:
  memory: {}
stages:
  - pgp_encrypt:
      recipients: ["${PARTNER_KEY}", ` + bob.privateFile + `]
      compression: zlib
  - pgp_decrypt:
      private_keys: ${BOB_KEY}
      passphrase: ${PASS}
      require_signature: true
sinks:
  - memory: {}
`
	_, err := flowfile.Parse("flow.yaml", []byte(flow), reg, lookup)
	want := `flow.yaml:10:19: pgp_decrypt stage: field "passphrase": the passphrase does not unlock the private key ` + bob.id() + ` (bob-rsa <bob-rsa@example.com>) (openpgp: invalid data: private key checksum failure): check the passphrase
flow.yaml:11:26: pgp_decrypt stage: field "require_signature": true, but no signers are given: list in signers the public keys of the senders whose signatures you trust`
	if err == nil || err.Error() != want {
		t.Errorf("error:\n%v\nwant:\n%s", err, want)
	}
	if err != nil && strings.Contains(err.Error(), env["PASS"]) {
		t.Error("the error shows the passphrase")
	}

	// Corrected, the flow parses; a public key as a recipient given from its
	// private key file is fine.
	env["PASS"] = bob.passphrase
	flow = strings.Replace(flow, "      require_signature: true\n", "      require_signature: true\n      signers: ${PARTNER_KEY}\n", 1)
	if _, err := flowfile.Parse("flow.yaml", []byte(flow), reg, lookup); err != nil {
		t.Fatal(err)
	}
}
