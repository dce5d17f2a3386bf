package engine_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"
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

// losingSink is a sink that loses what the first attempt at each file
// wrote, as S3 does with a multipart upload aborted by a lifecycle rule, or
// MinIO with one whose completion a dying client interrupted: the first
// Commit of each file fails with pipeline.Lost.
type losingSink struct {
	pipeline.Sink
	mu   sync.Mutex
	lost map[string]bool
}

type losingUpload struct {
	pipeline.Upload
	s    *losingSink
	name string
}

func (s *losingSink) Open(ctx context.Context, f pipeline.File, resume []byte) (pipeline.Upload, error) {
	up, err := s.Sink.Open(ctx, f, resume)
	if err != nil {
		return nil, err
	}
	return &losingUpload{Upload: up, s: s, name: f.Name}, nil
}

func (u *losingUpload) Commit(ctx context.Context, f pipeline.File) error {
	u.s.mu.Lock()
	first := !u.s.lost[u.name]
	u.s.lost[u.name] = true
	u.s.mu.Unlock()
	if first {
		return pipeline.Lost(fmt.Errorf("%s: the multipart upload is gone and no object is there", u.name))
	}
	return u.Upload.Commit(ctx, f)
}

// TestLostUploadIsReadAgain: a sink that lost what the earlier attempt
// wrote fails the delivery, and the run reads the file again from its
// source and delivers it afresh to that sink, a large file and small ones
// (sent in a group) alike; the other sink, which committed, is not sent it
// again.
func TestLostUploadIsReadAgain(t *testing.T) {
	e := newEnv(t)
	files := map[string][]byte{"big.bin": testkit.RandomContent(1, 5<<20+3), "a.txt": []byte("a"), "b.txt": []byte("bb")}
	src := testkit.NewMemorySource(files, true)
	good, lossy := testkit.NewMemorySink(), &losingSink{Sink: testkit.NewMemorySink(), lost: map[string]bool{}}
	r := runToEnd(t, e.engine(t, engine.Options{}), pipeline.Flow{
		Name: "lost", Source: pipeline.SourceOf(src),
		Sinks: []pipeline.SinkSpec{pipeline.SinkOf("good", good), pipeline.SinkOf("lossy", lossy)},
	})
	for name, o := range src.Acked() {
		if o.Status != pipeline.Passed {
			t.Errorf("%s: %s (%s), want passed", name, o.Status, o.Message)
		}
	}
	if st := r.Stats(); st.FilesPassed != int64(len(files)) {
		t.Errorf("%d files passed, want %d: %+v", st.FilesPassed, len(files), st)
	}
	for sink, got := range map[string]map[string][]byte{"good": good.Files(), "lossy": lossy.Sink.(*testkit.MemorySink).Files()} {
		if diff := cmp.Diff(files, got); diff != "" {
			t.Errorf("sink %s holds (-want +got):\n%s", sink, diff)
		}
	}
	if n := good.Commits(); n != len(files) {
		t.Errorf("the sink that kept its uploads committed %d times, want %d (once a file)", n, len(files))
	}
}
