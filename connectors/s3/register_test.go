package s3

import (
	"strings"
	"testing"

	"github.com/mftflow/mftflow/pipeline"
)

func TestRegister(t *testing.T) {
	r := pipeline.NewRegistry()
	if err := Register(r); err != nil {
		t.Fatal(err)
	}
	for _, k := range []pipeline.Kind{pipeline.KindSource, pipeline.KindSink} {
		spec, ok := r.Lookup(k, "s3")
		if !ok {
			t.Fatalf("no %s s3", k)
		}
		for _, f := range spec.Fields {
			if f.Doc == "" {
				t.Errorf("%s field %q has no doc", k, f.Name)
			}
			secret := f.Name == "secret_access_key" || f.Name == "session_token"
			if f.Secret != secret {
				t.Errorf("%s field %q: Secret = %v, want %v", k, f.Name, f.Secret, secret)
			}
		}
	}
	// Built from flow-file values, with defaults applied.
	raw := map[string]any{"bucket": "b", "access_key_id": "id", "secret_access_key": "secret", "part_size": "16MiB"}
	sink, err := r.NewSink(t.Context(), "s3", raw)
	if err != nil {
		t.Fatal(err)
	}
	cfg := sink.(*Sink).cfg
	if cfg.PartSize != 16<<20 || cfg.UnknownSizePartSize != DefaultUnknownSizePartSize || cfg.SmallFileSize != DefaultSmallFileSize ||
		cfg.Overwrite != OverwriteReplace || cfg.Checksum != ChecksumCRC32C || cfg.Key != "{name}" || cfg.Region != DefaultRegion {
		t.Errorf("sink config %+v", cfg)
	}
	src, err := r.NewSource(t.Context(), "s3", map[string]any{"bucket": "b", "credentials": "static", "access_key_id": "id", "secret_access_key": "s", "watch": false})
	if err != nil {
		t.Fatal(err)
	}
	if c := src.(*Source).cfg; c.After != AfterLeave || c.PollInterval != DefaultPollInterval || c.Watch {
		t.Errorf("source config %+v", c)
	}
	// A bad secret is never echoed.
	_, err = r.NewSink(t.Context(), "s3", map[string]any{"bucket": "b", "access_key_id": "id", "secret_access_key": []any{"hunter2"}})
	if err == nil || strings.Contains(err.Error(), "hunter2") {
		t.Errorf("bad secret: %v", err)
	}
	// credentials: default needs no keys. The SDK's chain reads the
	// environment: keep this machine's out of it.
	none := t.TempDir() + "/none"
	for _, v := range []string{"AWS_CA_BUNDLE", "AWS_PROFILE", "AWS_REGION", "AWS_DEFAULT_REGION", "AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_S3"} {
		t.Setenv(v, "")
	}
	t.Setenv("AWS_CONFIG_FILE", none)
	t.Setenv("AWS_SHARED_CREDENTIALS_FILE", none)
	if _, err := r.NewSink(t.Context(), "s3", map[string]any{"bucket": "b", "credentials": "default", "region": "eu-west-1"}); err != nil {
		t.Errorf("credentials default: %v", err)
	}
}
