package s3

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/mftflow/mftflow/pipeline"
)

func checkSpec(t *testing.T, k pipeline.Kind) pipeline.Spec {
	t.Helper()
	r := pipeline.NewRegistry()
	if err := Register(r); err != nil {
		t.Fatal(err)
	}
	s, _ := r.Lookup(k, "s3")
	return s
}

func checkConfig(t *testing.T, s pipeline.Spec, raw map[string]any) pipeline.Config {
	t.Helper()
	full := map[string]any{"bucket": "b", "access_key_id": "k", "secret_access_key": "s"}
	for k, v := range raw {
		full[k] = v
	}
	c, err := pipeline.ParseConfig(s, full)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestChecks(t *testing.T) {
	tests := []struct {
		kind pipeline.Kind
		raw  map[string]any
		want []string
	}{
		{pipeline.KindSink, map[string]any{"key": "{date}/{name}", "part_size": "5GiB", "concurrency": 64, "sse": "aws:kms", "kms_key_id": "k"}, nil},
		{pipeline.KindSink, map[string]any{"key": "{nmae}", "part_size": "6GiB", "unknown_size_part_size": "8GiB", "concurrency": 65, "kms_key_id": "k", "prefix": "/in"}, []string{
			`s3: field "prefix": "/in": keys do not start with a slash; drop it`,
			`s3: field "key": name template "{nmae}": unknown placeholder {nmae} (known: {name} {base} {dir} {stem} {ext} {date} {time} {id} {attr.KEY})`,
			`s3: field "part_size": 6GiB is above S3's limit of 5GiB per part; lower it`,
			`s3: field "unknown_size_part_size": 8GiB is above S3's limit of 5GiB per part; lower it`,
			`s3: field "concurrency": 65: want 0 (the sink's parallelism) to 64 parts of one file at once`,
			`s3: field "kms_key_id": is set but sse is not "aws:kms": set sse: aws:kms, or remove kms_key_id`,
		}},
		{pipeline.KindSink, map[string]any{"endpoint": "ftp://x"}, []string{
			`s3: field "endpoint": "ftp://x": want a URL such as https://s3.example.com or http://127.0.0.1:9000`,
		}},
		{pipeline.KindSink, map[string]any{"access_key_id": ""}, []string{
			`access_key_id and secret_access_key are required with static credentials; set them (for example from ${ENV} in the flow file) or set credentials: default to use the AWS SDK's default chain`,
		}},
		{pipeline.KindSource, map[string]any{"include": []string{"[a"}, "after": "move", "prefix": "in", "archive_prefix": "in/done"}, []string{
			`s3: field "include": invalid glob pattern "[a": close every "[" and "{", or escape them with "\"`,
			`s3: field "archive_prefix": "in/done" lies below prefix "in": moved objects would be read again; choose a prefix outside it`,
		}},
		{pipeline.KindSource, map[string]any{"after": "move"}, []string{
			`s3: field "archive_prefix": required when after is "move": name the prefix delivered objects are moved to`,
		}},
		{pipeline.KindSource, map[string]any{"after": "tag"}, []string{
			`s3: field "after_tags": required when after is "tag": give the tags to set, such as {mftflow: delivered}`,
		}},
	}
	for _, tt := range tests {
		s := checkSpec(t, tt.kind)
		c := checkConfig(t, s, tt.raw)
		var got []string
		if err := s.Check(c); err != nil {
			got = strings.Split(err.Error(), "\n")
		}
		if diff := cmp.Diff(tt.want, got); diff != "" {
			t.Errorf("%s %v (-want +got):\n%s", tt.kind, tt.raw, diff)
		}
	}
}

func TestPlaces(t *testing.T) {
	sink := checkSpec(t, pipeline.KindSink)
	for _, tt := range []struct {
		raw              map[string]any
		store, dir, text string
	}{
		{map[string]any{}, "s3  b", "", "s3://b/"},
		{map[string]any{"prefix": "in/", "key": "x/{date}/{name}"}, "s3  b", "in/x", "s3://b/in/x/"},
		{map[string]any{"prefix": "a//b", "endpoint": "HTTP://Host:9000/"}, "s3 http://host:9000 b", "a/b", "s3://b/a/b/ at HTTP://Host:9000/"},
	} {
		p, ok := sink.Place(checkConfig(t, sink, tt.raw))
		if !ok || p.Store != tt.store || p.Dir != tt.dir || p.Text != tt.text {
			t.Errorf("sink place of %v = %+v, %v; want %q %q %q", tt.raw, p, ok, tt.store, tt.dir, tt.text)
		}
	}
	source := checkSpec(t, pipeline.KindSource)
	p, ok := source.Place(checkConfig(t, source, map[string]any{"prefix": "/in/", "exclude": []string{"out/**"}}))
	if !ok || p.Dir != "in" || !p.Skips("out") || !p.Skips("out/x") || p.Skips("other") {
		t.Errorf("source place %+v, %v", p, ok)
	}
}
