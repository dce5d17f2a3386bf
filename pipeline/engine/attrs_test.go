package engine_test

import (
	"context"
	"fmt"
	"io"
	"strings"
	"testing"

	"github.com/mftflow/mftflow/pipeline"
	"github.com/mftflow/mftflow/pipeline/engine"
	"github.com/mftflow/mftflow/testkit"
)

// The outcome a source acks carries the attributes the stages left, for a
// small file that travels in a group and a large one that goes alone; a
// later run that meets the files again acks the same attributes, read from
// their manifests, not made by its own stages.
func TestOutcomeCarriesFinalAttrs(t *testing.T) {
	e := newEnv(t)
	files := map[string][]byte{"small.csv": []byte("id\n1\n"), "big.bin": testkit.RandomContent(41, 3<<20), "skip.log": []byte("x")}
	src := testkit.NewMemorySource(files, true)
	flow := func(src pipeline.Source, run string) pipeline.Flow {
		tag := pipeline.StageFunc(func(ctx context.Context, f pipeline.File, r io.Reader) (pipeline.File, io.Reader, error) {
			if strings.HasSuffix(f.Name, ".log") {
				return f, nil, fmt.Errorf("logs stay home: %w", pipeline.ErrSkip)
			}
			return f.WithAttr("records", run+" "+f.Name), r, nil
		})
		return pipeline.Flow{Name: "attrs", Source: pipeline.SourceOf(src), Stages: []pipeline.Component{pipeline.StageOf(tag)},
			Sinks: []pipeline.SinkSpec{pipeline.SinkOf("mem", testkit.NewMemorySink())}}
	}
	check := func(when string) {
		t.Helper()
		acked := src.Acked()
		for _, name := range []string{"small.csv", "big.bin"} {
			if o := acked[name]; o.Status != pipeline.Passed || o.Attrs["records"] != "first "+name {
				t.Errorf("%s: %s acked %v with attributes %v; want passed with records %q", when, name, o.Status, o.Attrs, "first "+name)
			}
		}
	}
	runToEnd(t, e.engine(t, engine.Options{}), flow(src, "first"))
	check("first run")
	if o := src.Acked()["skip.log"]; o.Status != pipeline.Skipped || o.Attrs["records"] != "" {
		t.Errorf("skip.log acked %v with attributes %v; want skipped with the source's (none)", o.Status, o.Attrs)
	}
	runToEnd(t, e.engine(t, engine.Options{}), flow(src.Reopen(), "second"))
	check("a run after a restart")
}

// attrSource offers its files as attrItems.
type attrSource struct{ pipeline.Source }

// attrItem refuses, as a pipeline.AttrChecker, a file whose stages left a
// records attribute that is not "ok".
type attrItem struct{ pipeline.Item }

func (s attrSource) Next(ctx context.Context) (pipeline.Item, error) {
	it, err := s.Source.Next(ctx)
	if err != nil {
		return nil, err
	}
	return attrItem{it}, nil
}

func (attrItem) CheckAttrs(f pipeline.File) error {
	if v := f.Attr("records"); v != "ok" {
		return fmt.Errorf("attribute records = %q: want ok", v)
	}
	return nil
}

// A file whose attributes its source's item refuses fails before any sink
// gets it, with the item's words, small or large.
func TestAttrCheckerFailsFileBeforeDelivery(t *testing.T) {
	e := newEnv(t)
	files := map[string][]byte{"good.csv": []byte("1"), "bad.csv": []byte("2"), "bad.bin": testkit.RandomContent(42, 3<<20)}
	mem := testkit.NewMemorySource(files, true)
	sink := testkit.NewMemorySink()
	set := pipeline.StageFunc(func(ctx context.Context, f pipeline.File, r io.Reader) (pipeline.File, io.Reader, error) {
		v := "ok"
		if strings.HasPrefix(f.Name, "bad") {
			v = "12x"
		}
		return f.WithAttr("records", v), r, nil
	})
	run := runToEnd(t, e.engine(t, engine.Options{}), pipeline.Flow{Name: "checked", Source: pipeline.SourceOf(attrSource{mem}),
		Stages: []pipeline.Component{pipeline.StageOf(set)}, Sinks: []pipeline.SinkSpec{pipeline.SinkOf("mem", sink)}})
	acked := mem.Acked()
	for _, name := range []string{"bad.csv", "bad.bin"} {
		if o := acked[name]; o.Status != pipeline.Failed || o.Message != `attribute records = "12x": want ok` {
			t.Errorf("%s acked %v %q; want failed with the item's words", name, o.Status, o.Message)
		}
	}
	if _, ok := sink.Files()["good.csv"]; !ok || len(sink.Files()) != 1 || acked["good.csv"].Status != pipeline.Passed {
		t.Errorf("sink holds %d files, good.csv acked %v; want good.csv alone, passed", len(sink.Files()), acked["good.csv"].Status)
	}
	if s := run.Stats(); s.FilesFailed != 2 || s.FilesPassed != 1 {
		t.Errorf("stats %+v", s)
	}
}
