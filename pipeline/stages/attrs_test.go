package stages_test

import (
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/mftflow/mftflow/pipeline"
	"github.com/mftflow/mftflow/pipeline/stages"
)

func TestAttrs(t *testing.T) {
	s, err := stages.NewAttrs(stages.AttrsConfig{Set: map[string]string{
		"thru.batch_total":  "{attr.records}",
		"thru.recipients":   "ORG1,ORG2",
		"records":           "overwritten",
		"received":          "{date}T{time}",
		"thru.batch_failed": "0",
	}})
	if err != nil {
		t.Fatal(err)
	}
	in := pipeline.File{Name: "in/a.csv", Size: 3, ModTime: time.Date(2026, 6, 22, 10, 4, 5, 0, time.UTC),
		Attrs: map[string]string{"records": "120", "thru.file_code": "FL1"}}
	out, b := mustRun(t, s, in, []byte("abc"))
	want := map[string]string{"thru.file_code": "FL1", "records": "overwritten", "thru.batch_total": "120",
		"thru.batch_failed": "0", "thru.recipients": "ORG1,ORG2", "received": "2026-06-22T100405"}
	if diff := cmp.Diff(want, out.Attrs); diff != "" || string(b) != "abc" || out.Name != in.Name {
		t.Errorf("attributes (-want +got):\n%s\ncontent %q, name %q", diff, b, out.Name)
	}
	if in.Attrs["records"] != "120" || len(in.Attrs) != 2 {
		t.Errorf("the stage changed the incoming file's attributes: %v", in.Attrs)
	}
	if !s.KeepsContent() {
		t.Error("attrs should keep the content")
	}
}
