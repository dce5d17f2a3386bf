package s3

import (
	"errors"
	"fmt"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/mftflow/mftflow/pipeline"
	"github.com/mftflow/mftflow/testkit/minio"
)

func newTestSource(t *testing.T, cfg SourceConfig) *Source {
	t.Helper()
	src, err := NewSource(t.Context(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { src.Close() })
	return src
}

// drain returns the names Next offers until io.EOF.
func drain(t *testing.T, src *Source) ([]string, []pipeline.Item) {
	t.Helper()
	var names []string
	var items []pipeline.Item
	for {
		it, err := src.Next(t.Context())
		if errors.Is(err, io.EOF) {
			return names, items
		}
		if err != nil {
			t.Fatal(err)
		}
		names = append(names, it.File().Name)
		items = append(items, it)
	}
}

func TestSourceGlobs(t *testing.T) {
	srv := minio.StartMinIO(t)
	for _, k := range []string{"in/a.csv", "in/b.txt", "in/x/c.csv", "in/x/skip.csv", "in/folder/", "out/d.csv"} {
		putObject(t, srv, srv.Bucket, k, []byte(k))
	}
	src := newTestSource(t, SourceConfig{
		ClientConfig: clientConfig(srv, srv.Bucket), Prefix: "in/",
		Include: []string{"**/*.csv"}, Exclude: []string{"**/skip*"},
	})
	names, items := drain(t, src)
	if got := strings.Join(names, " "); got != "a.csv x/c.csv" {
		t.Errorf("offered %q, want a.csv x/c.csv", got)
	}
	f := items[0].File()
	if !strings.HasPrefix(f.Key, "in/a.csv|") || f.Attrs["s3.etag"] == "" || f.Size != int64(len("in/a.csv")) {
		t.Errorf("file %+v", f)
	}
}

func TestSourceWatchAndAfter(t *testing.T) {
	srv := minio.StartMinIO(t)
	putObject(t, srv, srv.Bucket, "in/one.txt", []byte("one"))
	putObject(t, srv, srv.Bucket, "in/two.txt", []byte("two"))
	putObject(t, srv, srv.Bucket, "in/three.txt", []byte("three"))
	src := newTestSource(t, SourceConfig{
		ClientConfig: clientConfig(srv, srv.Bucket), Prefix: "in", Watch: true, PollInterval: 50 * time.Millisecond,
		After: AfterMove, ArchivePrefix: "done",
	})
	next := func() pipeline.Item {
		t.Helper()
		it, err := src.Next(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		return it
	}
	got := map[string]pipeline.Item{}
	for range 3 {
		it := next()
		got[it.File().Name] = it
	}
	// A new object and a replaced one show up at the next poll.
	putObject(t, srv, srv.Bucket, "in/four.txt", []byte("four"))
	putObject(t, srv, srv.Bucket, "in/one.txt", []byte("one, again"))
	later := map[string]bool{}
	for range 2 {
		later[next().File().Name] = true
	}
	if !later["four.txt"] || !later["one.txt"] {
		t.Errorf("after the change, offered %v; want four.txt and the new one.txt", later)
	}
	// Moving: only Passed moves; twice is fine.
	two := got["two.txt"]
	if err := two.Ack(t.Context(), pipeline.Outcome{Status: pipeline.Failed}); err != nil {
		t.Fatal(err)
	}
	if _, ok := getObject(t, srv, srv.Bucket, "in/two.txt"); !ok {
		t.Fatal("a failed file was moved")
	}
	for range 2 {
		if err := two.Ack(t.Context(), pipeline.Outcome{Status: pipeline.Passed}); err != nil {
			t.Fatal(err)
		}
	}
	if _, ok := getObject(t, srv, srv.Bucket, "in/two.txt"); ok {
		t.Error("in/two.txt is still there after a move")
	}
	if b, ok := getObject(t, srv, srv.Bucket, "done/two.txt"); !ok || string(b) != "two" {
		t.Errorf("done/two.txt: %q, %v", b, ok)
	}
	// The first one.txt was replaced: it is left alone, with an error.
	err := got["one.txt"].Ack(t.Context(), pipeline.Outcome{Status: pipeline.Passed})
	if want := fmt.Sprintf("s3 source: s3://%s/in/one.txt changed since it was delivered; left in place", srv.Bucket); err == nil || err.Error() != want {
		t.Errorf("Ack of a replaced object: %v, want %s", err, want)
	}
	// Reading the replaced version fails clearly rather than mixing versions.
	if _, err := got["one.txt"].(pipeline.RangeOpener).OpenRange(t.Context(), 0, 2); err == nil || !pipeline.IsPermanent(err) {
		t.Errorf("OpenRange of a replaced object: %v, want a permanent error", err)
	}
}

func TestSourceAfterDeleteAndTag(t *testing.T) {
	srv := minio.StartMinIO(t)
	putObject(t, srv, srv.Bucket, "a.txt", []byte("a"))
	src := newTestSource(t, SourceConfig{ClientConfig: clientConfig(srv, srv.Bucket), After: AfterTag, AfterTags: map[string]string{"mftflow": "delivered"}})
	_, items := drain(t, src)
	if err := items[0].Ack(t.Context(), pipeline.Outcome{Status: pipeline.Passed}); err != nil {
		t.Fatal(err)
	}
	tags, err := srv.Client.GetObjectTagging(t.Context(), &s3.GetObjectTaggingInput{Bucket: aws.String(srv.Bucket), Key: aws.String("a.txt")})
	if err != nil || len(tags.TagSet) != 1 || aws.ToString(tags.TagSet[0].Value) != "delivered" {
		t.Errorf("tags %+v, %v", tags, err)
	}
	src = newTestSource(t, SourceConfig{ClientConfig: clientConfig(srv, srv.Bucket), After: AfterDelete})
	_, items = drain(t, src)
	for range 2 {
		if err := items[0].Ack(t.Context(), pipeline.Outcome{Status: pipeline.Passed}); err != nil {
			t.Fatal(err)
		}
	}
	if _, ok := getObject(t, srv, srv.Bucket, "a.txt"); ok {
		t.Error("a.txt is still there after delete")
	}
}

func TestSourceErrors(t *testing.T) {
	srv := minio.StartMinIO(t)
	for _, tc := range []struct {
		name   string
		change func(c *SourceConfig)
		want   string
	}{
		{"wrong secret", func(c *SourceConfig) { c.SecretAccessKey = "nope" },
			`s3 ListObjectsV2 s3://BUCKET/in/ at ENDPOINT: 403 SignatureDoesNotMatch: the request signature does not match: check secret_access_key (and that region matches the bucket's)`},
		{"missing bucket", func(c *SourceConfig) { c.Bucket = "no-such-bucket" },
			`s3 ListObjectsV2 s3://no-such-bucket/in/ at ENDPOINT: 404 NoSuchBucket: bucket "no-such-bucket" does not exist: create it or fix the bucket setting`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := SourceConfig{ClientConfig: clientConfig(srv, srv.Bucket), Prefix: "in"}
			tc.change(&cfg)
			_, err := newTestSource(t, cfg).Next(t.Context())
			want := strings.NewReplacer("BUCKET", srv.Bucket, "ENDPOINT", srv.Endpoint).Replace(tc.want)
			if err == nil || err.Error() != want || !pipeline.IsPermanent(err) {
				t.Errorf("got  %v\nwant %s (permanent)", err, want)
			}
		})
	}
	for _, tc := range []struct {
		cfg  SourceConfig
		want string
	}{
		{SourceConfig{After: AfterMove}, `s3 source: after is "move" but archive_prefix is empty: set archive_prefix`},
		{SourceConfig{After: AfterMove, Prefix: "in", ArchivePrefix: "in/done"}, `s3 source: archive_prefix "in/done" lies below prefix "in": moved objects would be read again`},
		{SourceConfig{Include: []string{"[a"}}, `s3 source: glob "[a" is not valid`},
	} {
		tc.cfg.ClientConfig = clientConfig(srv, srv.Bucket)
		if _, err := NewSource(t.Context(), tc.cfg); err == nil || err.Error() != tc.want {
			t.Errorf("got %v, want %s", err, tc.want)
		}
	}
}
