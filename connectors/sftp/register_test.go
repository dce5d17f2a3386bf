package sftp

import (
	"errors"
	"io"
	"path"
	"strings"
	"testing"

	"github.com/mftflow/mftflow/pipeline"
	"github.com/mftflow/mftflow/testkit"
	"github.com/mftflow/mftflow/testkit/sshd"
)

func TestRegister(t *testing.T) {
	r := pipeline.NewRegistry()
	if err := Register(r); err != nil {
		t.Fatal(err)
	}
	for _, k := range []pipeline.Kind{pipeline.KindSource, pipeline.KindSink} {
		spec, ok := r.Lookup(k, "sftp")
		if !ok {
			t.Fatalf("no %s sftp", k)
		}
		for _, f := range spec.Fields {
			if f.Doc == "" {
				t.Errorf("%s field %q has no doc", k, f.Name)
			}
			secret := f.Name == "password" || f.Name == "private_key_passphrase"
			if f.Secret != secret {
				t.Errorf("%s field %q: Secret = %v, want %v", k, f.Name, f.Secret, secret)
			}
		}
	}
	// Built from flow-file values, with defaults applied.
	base := map[string]any{"host": "sftp.example.com", "user": "u", "password": "p", "known_hosts": "/dev/null", "directory": "/in"}
	with := func(extra map[string]any) map[string]any {
		m := map[string]any{}
		for k, v := range base {
			m[k] = v
		}
		for k, v := range extra {
			m[k] = v
		}
		return m
	}
	sink, err := r.NewSink(t.Context(), "sftp", with(map[string]any{"part_size": "16MiB", "keepalive": "0s"}))
	if err != nil {
		t.Fatal(err)
	}
	sc := sink.(*Sink).cfg
	if sc.Port != DefaultPort || sc.PartSize != 16<<20 || sc.Overwrite != OverwriteReplace || sc.Name != "{name}" ||
		sc.TempName != pipeline.DefaultTempName || sc.KeepAlive >= 0 || sc.ConnectTimeout != DefaultConnectTimeout || sc.InsecureIgnoreHostKey {
		t.Errorf("sink config %+v", sc)
	}
	sink.Close()
	src, err := r.NewSource(t.Context(), "sftp", base)
	if err != nil {
		t.Fatal(err)
	}
	if c := src.(*Source).cfg; c.After != pipeline.AfterLeave || c.PollInterval != pipeline.DefaultPollInterval || !c.Watch || c.Recursive ||
		c.StableFor != pipeline.DefaultStableFor || c.KeepAlive != DefaultKeepAlive || len(c.Ignore) == 0 {
		t.Errorf("source config %+v", c)
	}
	src.Close()
	// A bad secret is never echoed.
	_, err = r.NewSink(t.Context(), "sftp", with(map[string]any{"password": []any{"hunter2"}}))
	if err == nil || strings.Contains(err.Error(), "hunter2") {
		t.Errorf("bad secret: %v", err)
	}
	// No known_hosts and no explicit insecure flag.
	raw := with(nil)
	delete(raw, "known_hosts")
	_, err = r.NewSink(t.Context(), "sftp", raw)
	if err == nil || !strings.HasPrefix(err.Error(), `sftp: field "known_hosts": required unless insecure_ignore_host_key is true`) {
		t.Errorf("without known_hosts: %v", err)
	}
}

// TestThroughRegistry moves a file from an SFTP directory to another with
// connectors built from flow-file values.
func TestThroughRegistry(t *testing.T) {
	srv := sshd.Start(t)
	in, out := srv.FreshDir(t, "in"), srv.FreshDir(t, "out")
	content := testkit.RandomContent(9, 500_000)
	srv.WriteFile(t, path.Join(in, "report.csv"), content)
	r := pipeline.NewRegistry()
	if err := Register(r); err != nil {
		t.Fatal(err)
	}
	conn := map[string]any{"host": srv.Host, "port": srv.Port, "user": srv.User, "private_key": srv.ClientKey, "known_hosts": srv.KnownHostsFile}
	raw := func(extra map[string]any) map[string]any {
		m := map[string]any{}
		for k, v := range conn {
			m[k] = v
		}
		for k, v := range extra {
			m[k] = v
		}
		return m
	}
	src, err := r.NewSource(t.Context(), "sftp", raw(map[string]any{"directory": srv.Path(in), "watch": false, "stable_for": "0s", "after": "delete"}))
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	sink, err := r.NewSink(t.Context(), "sftp", raw(map[string]any{"directory": srv.Path(out), "name": "{stem}-copy{ext}", "trigger": "{name}.done"}))
	if err != nil {
		t.Fatal(err)
	}
	defer sink.Close()
	it, err := src.Next(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	got := testkit.ReadItem(t, it)
	f := it.File()
	f.ID = "registry"
	if err := testkit.Deliver(t.Context(), sink, f, got); err != nil {
		t.Fatal(err)
	}
	if err := it.Ack(t.Context(), pipeline.Outcome{Status: pipeline.Passed}); err != nil {
		t.Fatal(err)
	}
	if _, err := src.Next(t.Context()); !errors.Is(err, io.EOF) {
		t.Fatalf("Next after the only file: %v, want io.EOF", err)
	}
	expectFiles(t, srv, in)
	expectFiles(t, srv, out, "report-copy.csv", "report-copy.csv.done")
	expectContent(t, srv, path.Join(out, "report-copy.csv"), content)
}
