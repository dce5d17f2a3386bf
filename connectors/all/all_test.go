package all_test

import (
	"testing"

	"github.com/mftflow/mftflow/connectors/all"
	"github.com/mftflow/mftflow/pipeline"
)

func TestRegistry(t *testing.T) {
	r, err := all.Registry()
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		kind pipeline.Kind
		name string
	}{
		{pipeline.KindSource, "local"},
		{pipeline.KindSink, "local"},
		{pipeline.KindSource, "s3"},
		{pipeline.KindSink, "s3"},
		{pipeline.KindSource, "thru"},
		{pipeline.KindSink, "thru"},
		{pipeline.KindStage, "match"},
		{pipeline.KindStage, "rename"},
		{pipeline.KindStage, "compress"},
		{pipeline.KindStage, "decompress"},
		{pipeline.KindStage, "pgp_encrypt"},
		{pipeline.KindStage, "pgp_decrypt"},
	} {
		if _, ok := r.Lookup(c.kind, c.name); !ok {
			t.Errorf("no %s %q (have %v)", c.kind, c.name, r.Names(c.kind))
		}
	}
	// Each call gives a fresh registry: adding to one leaves the next alone.
	extra := pipeline.Spec{Name: "extra", Summary: "test"}
	if err := r.RegisterStage(extra, nil); err != nil {
		t.Fatal(err)
	}
	r2, err := all.Registry()
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := r2.Lookup(pipeline.KindStage, "extra"); ok {
		t.Error("a stage added to one registry shows up in the next")
	}
}

// Every built-in connector with config fields decodes them into an options
// struct that registration checked against the fields.
func TestOptionsDeclared(t *testing.T) {
	r, err := all.Registry()
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range []pipeline.Kind{pipeline.KindSource, pipeline.KindStage, pipeline.KindSink} {
		for _, s := range r.Specs(k) {
			if len(s.Fields) > 0 && s.Options == nil {
				t.Errorf("%s %q: fields without Options", k, s.Name)
			}
		}
	}
}
