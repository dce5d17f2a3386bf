package pipeline_test

import (
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/mftflow/mftflow/pipeline"
)

// demoTarget is embedded to show that promoted fields decode too.
type demoTarget struct {
	Path string `config:"path"`
	Mode string `config:"mode"`
}

type demoOptions struct {
	demoTarget
	Count    int               `config:"count"`
	DryRun   bool              `config:"dry_run"`
	Timeout  time.Duration     `config:"timeout"`
	PartSize int64             `config:"part_size"`
	Tags     []string          `config:"tags"`
	Headers  map[string]string `config:"headers"`
	Password string            `config:"password"`
	Pin      int               `config:"pin"`
	Note     string            // not a config field
}

func TestDecode(t *testing.T) {
	c, err := pipeline.ParseConfig(demoSpec(), map[string]any{
		"path": "/data", "dry_run": true, "tags": []any{"a", "b"}, "headers": map[string]any{"k": "v"}, "pin": 7,
	})
	if err != nil {
		t.Fatal(err)
	}
	got, err := pipeline.Decode[demoOptions](c)
	if err != nil {
		t.Fatal(err)
	}
	want := demoOptions{
		demoTarget: demoTarget{Path: "/data", Mode: "copy"}, Count: 3, DryRun: true, Timeout: 30 * time.Second,
		PartSize: 8 << 20, Tags: []string{"a", "b"}, Headers: map[string]string{"k": "v"}, Pin: 7,
	}
	if diff := cmp.Diff(want, got, cmp.AllowUnexported(demoOptions{})); diff != "" {
		t.Errorf("options (-want +got):\n%s", diff)
	}
	checked := pipeline.CheckOptions(func(o demoOptions) error {
		if o.Path != "/data" {
			t.Errorf("Check got path %q", o.Path)
		}
		return nil
	})
	if err := checked(c); err != nil {
		t.Error(err)
	}
}

// An options struct that disagrees with its spec fails registration, naming
// the connector, the Go field and the tag; Decode returns the same error.
func TestOptionsMismatch(t *testing.T) {
	type wrongType struct {
		demoTarget
		Count int `config:"count"`
		Size  int `config:"part_size"`
	}
	type unknownTag struct {
		demoOptions
		Typo string `config:"pathh"`
	}
	type twice struct {
		demoOptions
		Again string `config:"path"`
	}
	type missing struct {
		Path string `config:"path"`
	}
	type viaPointer struct {
		*demoTarget
		demoOptions
	}
	tests := []struct {
		opts any
		want string
	}{
		{wrongType{}, `connector "demo": options field wrongType.Size (config:"part_size"): is int, a size field wants int64`},
		{unknownTag{}, `connector "demo": options field unknownTag.Typo (config:"pathh"): no such config field (known: path, count, dry_run, timeout, part_size, tags, headers, mode, password, pin)`},
		{twice{}, `connector "demo": options field twice.Again (config:"path"): the tag is used twice`},
		{missing{}, `connector "demo": field "count": no field of options pipeline_test.missing is tagged config:"count"`},
		{viaPointer{}, `connector "demo": options field viaPointer.Path (config:"path"): not settable: export it, and embed structs by value`},
		{"a string", `connector "demo": options string: want a struct`},
	}
	for _, tt := range tests {
		spec := demoSpec()
		spec.Options = tt.opts
		r := pipeline.NewRegistry()
		err := r.RegisterSink(spec, nil)
		if err == nil || err.Error() != tt.want {
			t.Errorf("%T: registering: got %v\nwant %s", tt.opts, err, tt.want)
		}
		if len(r.Names(pipeline.KindSink)) > 0 {
			t.Errorf("%T: registered despite the error", tt.opts)
		}
	}
	spec := demoSpec()
	spec.Options = demoOptions{}
	if err := pipeline.NewRegistry().RegisterSink(spec, nil); err != nil {
		t.Errorf("matching options: %v", err)
	}
	c, err := pipeline.ParseConfig(demoSpec(), map[string]any{"path": "/data"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := pipeline.Decode[unknownTag](c); err == nil || !strings.Contains(err.Error(), `unknownTag.Typo (config:"pathh")`) {
		t.Errorf("Decode with a typo: got %v", err)
	}
	if _, ok := pipeline.PlaceOptions(func(missing) (pipeline.Place, bool) { return pipeline.Place{}, true })(c); ok {
		t.Error("PlaceOptions with a mismatched struct found a place")
	}
}
