package thru

import (
	"strings"
	"testing"

	"github.com/mftflow/mftflow/pipeline"
)

// The sink's Check finds what NewSink refuses, without a prefix that
// repeats the connector's name.
func TestCheckSink(t *testing.T) {
	r := pipeline.NewRegistry()
	if err := Register(r); err != nil {
		t.Fatal(err)
	}
	spec, _ := r.Lookup(pipeline.KindSink, "thru")
	tests := []struct {
		raw  map[string]any
		want string // the message starts with it; "" for none
	}{
		{map[string]any{"base_url": "https://x.example", "mode": "content", "endpoint_path": "flow:F/endpoint:E/flowendpoint:1", "api_key": "k"}, ""},
		{map[string]any{"base_url": "https://x.example"}, "mode dropoff needs flow_code, aes_key and the header keys"},
		{map[string]any{"base_url": "https://x.example", "mode": "content", "api_key": "k", "endpoint_path": "nope"}, "endpoint_path: "},
		{map[string]any{"base_url": "https://x.example", "mode": "content", "endpoint_path": "flow:F/endpoint:E/flowendpoint:1"}, "mode content needs api_key or bearer_token"},
	}
	for _, tt := range tests {
		c, err := pipeline.ParseConfig(spec, tt.raw)
		if err != nil {
			t.Fatal(err)
		}
		got := ""
		if err := spec.Check(c); err != nil {
			got = err.Error()
		}
		if (tt.want == "") != (got == "") || !strings.HasPrefix(got, tt.want) {
			t.Errorf("%v: %q, want %q...", tt.raw, got, tt.want)
		}
	}
}
