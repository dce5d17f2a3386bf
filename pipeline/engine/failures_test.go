package engine_test

import (
	"context"
	"errors"
	"io"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/mftflow/mftflow/pipeline"
	"github.com/mftflow/mftflow/pipeline/bus"
	"github.com/mftflow/mftflow/pipeline/engine"
	"github.com/mftflow/mftflow/testkit"
)

// failOpening is a flakySource whose items named in errs fail to open with
// the error given; the others open as usual.
func failOpening(mem *testkit.MemorySource, errs map[string]error) flakySource {
	return flakySource{mem, func(it pipeline.Item, ctx context.Context) (io.ReadCloser, error) {
		if err := errs[it.File().Name]; err != nil {
			return nil, err
		}
		return it.Open(ctx)
	}}
}

// A file refused for its name and one that cannot be read fail before any
// delivery: status gives each its error, as the run counted them failed.
func TestStatusNamesFilesFailedBeforeDelivery(t *testing.T) {
	e := newEnv(t)
	mem := testkit.NewMemorySource(map[string][]byte{`bad\name.txt`: []byte("x"), "locked.csv": []byte("y"), "ok.txt": []byte("z")}, true)
	src := failOpening(mem, map[string]error{"locked.csv": pipeline.Permanent(errors.New("permission denied"))})
	run := runToEnd(t, e.engine(t, engine.Options{}), pipeline.Flow{
		Name: "before", Source: pipeline.SourceOf(src), Sinks: []pipeline.SinkSpec{pipeline.SinkOf("mem", testkit.NewMemorySink())},
	})
	if s := run.Stats(); s.FilesFailed != 2 || s.FilesPassed != 1 {
		t.Errorf("stats %+v, want 2 failed and 1 passed", s)
	}
	st, err := engine.ReadStatus(context.Background(), e.js, "before")
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	for _, f := range st[0].Files {
		got[f.Manifest.Name] = f.Error
		if f.Error != "" && len(f.Deliveries) != 0 {
			t.Errorf("%s failed before delivery but has deliveries %+v", f.Manifest.Name, f.Deliveries)
		}
	}
	want := map[string]string{
		`bad\name.txt`: `file name "bad\\name.txt": contains a backslash: unsafe file name`,
		"locked.csv":   "opening locked.csv: permission denied",
		"ok.txt":       "",
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("errors of files failed before delivery (-want +got):\n%s", diff)
	}
}

// Errors recorded in KV, told to the source and shown by status carry no
// URL user info, whichever connector wrote them.
func TestRecordedErrorsHideURLUserInfo(t *testing.T) {
	e := newEnv(t)
	mem := testkit.NewMemorySource(map[string][]byte{"a.txt": []byte("a"), "b.txt": []byte("b")}, true)
	src := failOpening(mem, map[string]error{
		"b.txt": pipeline.Permanent(errors.New(`GET "https://tok3nsecret@files.example.com/b.txt": 500`)),
	})
	bad := testkit.FailAlways(testkit.NewMemorySink(), pipeline.Permanent(errors.New(`PUT "http://user:topsecret@127.0.0.1:1/a.txt": connection refused`)))
	runToEnd(t, e.engine(t, engine.Options{}), pipeline.Flow{
		Name: "secrets", Source: pipeline.SourceOf(src), Sinks: []pipeline.SinkSpec{pipeline.SinkOf("bad", bad)},
	})
	secrets := []string{"topsecret", "tok3nsecret"}
	leaks := func(where, s string) {
		t.Helper()
		for _, sec := range secrets {
			if strings.Contains(s, sec) {
				t.Errorf("%s holds %q: %s", where, sec, s)
			}
		}
	}
	for name, o := range mem.Acked() {
		leaks("the outcome of "+name, o.Message)
	}
	kv, err := e.js.KeyValue(context.Background(), bus.Names{Flow: "secrets"}.Bucket())
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, key := range flowKeys(t, e, "secrets") {
		entry, err := kv.Get(context.Background(), key)
		if errors.Is(err, jetstream.ErrKeyNotFound) {
			continue
		}
		if err != nil {
			t.Fatal(err)
		}
		n++
		leaks("KV "+key, string(entry.Value()))
	}
	if n == 0 {
		t.Fatal("no KV records")
	}
	st, err := engine.ReadStatus(context.Background(), e.js, "secrets")
	if err != nil {
		t.Fatal(err)
	}
	var errs []string
	for _, f := range st[0].Files {
		if f.Error != "" {
			errs = append(errs, f.Error)
		}
		for _, d := range f.Deliveries {
			errs = append(errs, d.Error)
		}
	}
	want := []string{
		`opening a.txt on sink bad: opening "a.txt": PUT "http://user:xxxxx@127.0.0.1:1/a.txt": connection refused`,
		`opening b.txt: GET "https://xxxxx@files.example.com/b.txt": 500`,
	}
	if diff := cmp.Diff(want, errs); diff != "" {
		t.Errorf("status errors (-want +got):\n%s", diff)
	}
}
