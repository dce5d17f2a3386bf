package sftp_test

import (
	"fmt"
	"path"
	"testing"

	"github.com/mftflow/mftflow/connectors/sftp"
	"github.com/mftflow/mftflow/pipeline"
	"github.com/mftflow/mftflow/testkit"
	"github.com/mftflow/mftflow/testkit/sshd"
)

// TestFlowSFTPToSFTP moves files from one directory of a real OpenSSH server
// to another through the engine and NATS JetStream: big files are read with
// parallel range reads and written with parallel parts, each lands with a
// trigger file, and the originals are archived once delivered.
func TestFlowSFTPToSFTP(t *testing.T) {
	srv := sshd.Start(t)
	files := map[string][]byte{
		"empty.dat":       {},
		"one.txt":         []byte("1"),
		"dir/chunked.bin": testkit.RandomContent(1, 3<<20+17),
		"dir/sub/big.bin": testkit.RandomContent(2, 9<<20+5),
	}
	for name, content := range files {
		srv.WriteFile(t, path.Join("inbox", name), content)
	}
	srv.Mkdir(t, "outbox")
	conn := func(extra map[string]any) map[string]any {
		c := map[string]any{"host": srv.Host, "port": srv.Port, "user": srv.User, "private_key": srv.ClientKey, "known_hosts": srv.KnownHostsFile}
		for k, v := range extra {
			c[k] = v
		}
		return c
	}
	reg := pipeline.NewRegistry()
	if err := sftp.Register(reg); err != nil {
		t.Fatal(err)
	}
	testkit.RunFlow(t, reg, pipeline.Flow{
		Name: "sftp-to-sftp",
		Source: pipeline.Use("sftp", conn(map[string]any{
			"directory": srv.Path("inbox"), "recursive": true, "watch": false, "stable_for": "0s",
			"after": "move", "archive_dir": srv.Path("archive"),
		})),
		Sinks: []pipeline.SinkSpec{{Name: "out", Component: pipeline.Use("sftp", conn(map[string]any{
			"directory": srv.Path("outbox"), "part_size": "1MiB", "trigger": "{name}.done",
		}))}},
	})
	var want []string
	for name, content := range files {
		want = append(want, name, name+".done")
		got, ok := srv.ReadFile(t, path.Join("outbox", name))
		if !ok || testkit.SHA256Hex(got) != testkit.SHA256Hex(content) {
			t.Errorf("outbox/%s: %d bytes (present %v), want %d bytes sha256 %.16s", name, len(got), ok, len(content), testkit.SHA256Hex(content))
		}
		if _, ok := srv.ReadFile(t, path.Join("archive", name)); !ok {
			t.Errorf("archive/%s is missing", name)
		}
	}
	if got := srv.List(t, "outbox"); len(got) != len(want) {
		t.Errorf("outbox holds %q, want %d files (each with its trigger, no temporary files)", got, len(want))
	}
	if got := srv.List(t, "inbox"); len(got) != 0 {
		t.Errorf("inbox still holds %q after every file was archived", got)
	}
}

func ExampleRegister() {
	r := pipeline.NewRegistry()
	if err := sftp.Register(r); err != nil {
		panic(err)
	}
	spec, _ := r.Lookup(pipeline.KindSink, "sftp")
	for _, f := range spec.Fields {
		if f.Secret {
			fmt.Println(f.Name, "is a secret")
		}
	}
	// Output:
	// password is a secret
	// private_key_passphrase is a secret
}
