package ftps_test

import (
	"fmt"
	"maps"
	"path"
	"testing"

	"github.com/mftflow/mftflow/connectors/ftps"
	"github.com/mftflow/mftflow/pipeline"
	"github.com/mftflow/mftflow/testkit"
	"github.com/mftflow/mftflow/testkit/ftpd"
)

// TestFlowFTPSToFTPS moves files from one directory of a real vsftpd to
// another through the engine and NATS JetStream, names that FTP commands
// and listings handle badly among them: big files are read with parallel
// range reads and written part after part, each lands with a trigger file,
// and the originals are archived once delivered.
func TestFlowFTPSToFTPS(t *testing.T) {
	srv := ftpd.Start(t, ftpd.Options{Implicit: true})
	files := map[string][]byte{
		"empty.dat":             {},
		"a b  c.txt":            []byte("spaces"),
		"-l.txt":                []byte("looks like a LIST option"),
		"ünïcødé ✓.csv":         []byte("utf-8"),
		"semi;colon#hash%.txt":  []byte("punctuation"),
		"dir/chunked.bin":       testkit.RandomContent(1, 3<<20+17),
		"dir/sub dir/big.bin":   testkit.RandomContent(2, 9<<20+5),
		"dir/sub dir/ trailing": []byte("leading space"),
	}
	for name, content := range files {
		srv.WriteFile(t, path.Join("inbox", name), content)
	}
	srv.Mkdir(t, "outbox")
	conn := func(extra map[string]any) map[string]any {
		c := map[string]any{"host": srv.Host, "port": srv.Port, "user": srv.User, "password": srv.Password,
			"ca_file": srv.CAFile, "tls": "implicit", "disable_tls13": true}
		maps.Copy(c, extra)
		return c
	}
	reg := pipeline.NewRegistry()
	if err := ftps.Register(reg); err != nil {
		t.Fatal(err)
	}
	testkit.RunFlow(t, reg, pipeline.Flow{
		Name: "ftps-to-ftps",
		Source: pipeline.Use("ftps", conn(map[string]any{
			"directory": srv.Path("inbox"), "recursive": true, "watch": false, "stable_for": "0s", "ignore": []string{},
			"after": "move", "archive_dir": srv.Path("archive"),
		})),
		Sinks: []pipeline.SinkSpec{{Name: "out", Component: pipeline.Use("ftps", conn(map[string]any{
			"directory": srv.Path("outbox"), "part_size": "1MiB", "trigger": "{name}.done",
		}))}},
	})
	var want []string
	for name, content := range files {
		want = append(want, name, name+".done")
		got, ok := srv.ReadFile(t, path.Join("outbox", name))
		if !ok || testkit.SHA256Hex(got) != testkit.SHA256Hex(content) {
			t.Errorf("outbox/%q: %d bytes (present %v), want %d bytes sha256 %.16s", name, len(got), ok, len(content), testkit.SHA256Hex(content))
		}
		if _, ok := srv.ReadFile(t, path.Join("archive", name)); !ok {
			t.Errorf("archive/%q is missing", name)
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
	if err := ftps.Register(r); err != nil {
		panic(err)
	}
	spec, _ := r.Lookup(pipeline.KindSink, "ftps")
	for _, f := range spec.Fields {
		if f.Secret {
			fmt.Println(f.Name, "is a secret")
		}
	}
	// Output:
	// password is a secret
}
