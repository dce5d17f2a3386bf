package pipeline_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/mftflow/mftflow/pipeline"
)

func nopStage(context.Context, pipeline.Config) (pipeline.Stage, error) {
	return pipeline.StageFunc(func(_ context.Context, f pipeline.File, r io.Reader) (pipeline.File, io.Reader, error) {
		return f, r, nil
	}), nil
}

func TestRegistryDuplicate(t *testing.T) {
	r := pipeline.NewRegistry()
	if err := r.RegisterStage(pipeline.Spec{Name: "match"}, nopStage); err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		spec pipeline.Spec
		want string
	}{
		{pipeline.Spec{Name: "match"}, `registering stage "match" from built-in: the name is taken by built-in`},
		{pipeline.Spec{Name: "match", Origin: "/opt/plugins/match"}, `registering stage "match" from /opt/plugins/match: the name is taken by built-in`},
	} {
		err := r.RegisterStage(tt.spec, nopStage)
		if err == nil || err.Error() != tt.want {
			t.Errorf("got %v, want %q", err, tt.want)
		}
	}
	// Kinds have their own names.
	sink := func(context.Context, pipeline.Config) (pipeline.Sink, error) { return nil, nil }
	if err := r.RegisterSink(pipeline.Spec{Name: "match"}, sink); err != nil {
		t.Errorf("a sink named like a stage: %v", err)
	}
}

func TestRegistryInvalidSpec(t *testing.T) {
	for _, tt := range []struct {
		spec pipeline.Spec
		want string
	}{
		{pipeline.Spec{Name: "S3"}, `connector name "S3": use lowercase letters, digits and underscores, starting with a letter`},
		{pipeline.Spec{Name: "my-sink"}, `connector name "my-sink": use lowercase letters, digits and underscores, starting with a letter`},
		{pipeline.Spec{Name: ""}, `connector name "": use lowercase letters, digits and underscores, starting with a letter`},
		{pipeline.Spec{Name: "x", Fields: []pipeline.Field{{Name: "Bad", Type: pipeline.TypeInt}}}, `connector "x": field name "Bad": use lowercase letters, digits and underscores`},
		{pipeline.Spec{Name: "x", Fields: []pipeline.Field{{Name: "a", Type: pipeline.TypeInt}, {Name: "a", Type: pipeline.TypeString}}}, `connector "x": field "a" is declared twice`},
		{pipeline.Spec{Name: "x", Fields: []pipeline.Field{{Name: "a", Type: "float"}}}, `connector "x": field "a" has unknown type "float"`},
		{pipeline.Spec{Name: "x", Fields: []pipeline.Field{{Name: "a", Type: pipeline.TypeInt, Default: "abc"}}}, `connector "x": default of field "a": want an integer, got string abc`},
		{pipeline.Spec{Name: "x", Fields: []pipeline.Field{{Name: "a", Type: pipeline.TypeString, Default: "c", Enum: []string{"a", "b"}}}}, `connector "x": default of field "a": want one of a, b, got "c"`},
	} {
		err := pipeline.NewRegistry().RegisterStage(tt.spec, nopStage)
		if err == nil || err.Error() != tt.want {
			t.Errorf("%+v: got %v, want %q", tt.spec, err, tt.want)
		}
	}
}

func TestRegistryUnknown(t *testing.T) {
	r := pipeline.NewRegistry()
	ctx := context.Background()
	_, err := r.NewSource(ctx, "local", nil)
	if want := `unknown source connector "local" (known: none)`; err == nil || err.Error() != want {
		t.Errorf("empty registry: got %v, want %q", err, want)
	}
	sink := func(context.Context, pipeline.Config) (pipeline.Sink, error) { return nil, nil }
	for _, name := range []string{"s3", "local", "thru_dropoff"} {
		if err := r.RegisterSink(pipeline.Spec{Name: name}, sink); err != nil {
			t.Fatal(err)
		}
	}
	_, err = r.NewSink(ctx, "s4", nil)
	want := `unknown sink connector "s4" (known: local, s3, thru_dropoff)`
	if err == nil || err.Error() != want {
		t.Errorf("got %v, want %q", err, want)
	}
	var unknown *pipeline.UnknownError
	if !errors.As(err, &unknown) || unknown.Kind != pipeline.KindSink || unknown.Name != "s4" ||
		!cmp.Equal(unknown.Known, []string{"local", "s3", "thru_dropoff"}) {
		t.Errorf("got %#v", err)
	}
	// A sink name is not a stage name.
	if _, err := r.NewStage(ctx, "s3", nil); err == nil || err.Error() != `unknown stage connector "s3" (known: none)` {
		t.Errorf("stage s3: got %v", err)
	}
}

func TestRegistrySpecsSorted(t *testing.T) {
	r := pipeline.NewRegistry()
	for _, name := range []string{"zeta", "alpha", "mid", "beta2", "beta"} {
		if err := r.RegisterStage(pipeline.Spec{Name: name, Summary: "s " + name}, nopStage); err != nil {
			t.Fatal(err)
		}
	}
	want := []string{"alpha", "beta", "beta2", "mid", "zeta"}
	if diff := cmp.Diff(want, r.Names(pipeline.KindStage)); diff != "" {
		t.Errorf("Names (-want +got):\n%s", diff)
	}
	specs := r.Specs(pipeline.KindStage)
	for i, s := range specs {
		if s.Name != want[i] || s.Kind != pipeline.KindStage || s.Summary != "s "+want[i] {
			t.Errorf("Specs()[%d] = %+v", i, s)
		}
	}
	if got := r.Specs(pipeline.KindSource); len(got) != 0 {
		t.Errorf("no sources registered, got %v", got)
	}
	s, ok := r.Lookup(pipeline.KindStage, "mid")
	if !ok || s.Name != "mid" {
		t.Errorf("Lookup(mid) = %+v, %v", s, ok)
	}
	if _, ok := r.Lookup(pipeline.KindSink, "mid"); ok {
		t.Errorf("Lookup(sink mid) found a stage")
	}
}

func TestRegistryBuildsWithParsedConfig(t *testing.T) {
	r := pipeline.NewRegistry()
	spec := pipeline.Spec{Name: "tag", Fields: []pipeline.Field{
		{Name: "key", Type: pipeline.TypeString, Required: true},
		{Name: "value", Type: pipeline.TypeString, Default: "yes"},
	}}
	called := 0
	err := r.RegisterStage(spec, func(_ context.Context, c pipeline.Config) (pipeline.Stage, error) {
		called++
		if c.String("key") == "fail" {
			return nil, errors.New("tag: key fail is refused")
		}
		return pipeline.StageFunc(func(_ context.Context, f pipeline.File, r io.Reader) (pipeline.File, io.Reader, error) {
			return f.WithAttr(c.String("key"), c.String("value")), r, nil
		}), nil
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	s, err := r.NewStage(ctx, "tag", map[string]any{"key": "code"})
	if err != nil {
		t.Fatal(err)
	}
	f, _, err := s.Process(ctx, pipeline.File{Name: "a"}, nil)
	if err != nil || f.Attr("code") != "yes" {
		t.Errorf("got %+v, %v", f, err)
	}
	// A config error stops before the constructor.
	_, err = r.NewStage(ctx, "tag", map[string]any{"value": 1})
	if want := `tag: field "key": required field is missing`; err == nil || err.Error() != want {
		t.Errorf("got %v, want %q", err, want)
	}
	if _, err := r.NewStage(ctx, "tag", map[string]any{"key": "fail"}); err == nil || err.Error() != "tag: key fail is refused" {
		t.Errorf("constructor error: got %v", err)
	}
	if called != 2 {
		t.Errorf("constructor called %d times, want 2", called)
	}
}

func TestRegistryConcurrentUse(t *testing.T) {
	r := pipeline.NewRegistry()
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := range 20 {
				name := fmt.Sprintf("s%d_%d", i, j)
				if err := r.RegisterStage(pipeline.Spec{Name: name}, nopStage); err != nil {
					t.Error(err)
				}
				r.Specs(pipeline.KindStage)
				r.Lookup(pipeline.KindStage, name)
				if _, err := r.NewStage(context.Background(), name, nil); err != nil {
					t.Error(err)
				}
			}
		}()
	}
	wg.Wait()
	if n := len(r.Names(pipeline.KindStage)); n != 160 {
		t.Errorf("%d stages registered, want 160", n)
	}
}
