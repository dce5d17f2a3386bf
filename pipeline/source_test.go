package pipeline_test

import (
	"testing"

	"github.com/mftflow/mftflow/pipeline"
)

func TestSpecHandsOutOnce(t *testing.T) {
	for _, tc := range []struct {
		spec pipeline.Spec
		want bool
	}{
		{pipeline.Spec{Name: "local", Kind: pipeline.KindSource, Fields: []pipeline.Field{{Name: "path"}, {Name: "watch"}}}, false},
		{pipeline.Spec{Name: "plugin", Kind: pipeline.KindSource, Fields: []pipeline.Field{{Name: "flow_endpoint_code"}}}, true},
		{pipeline.Spec{Name: "thru", Kind: pipeline.KindSource, Queue: true, Fields: []pipeline.Field{{Name: "watch"}}}, true},
		{pipeline.Spec{Name: "local", Kind: pipeline.KindSink, Fields: []pipeline.Field{{Name: "path"}}}, false},
	} {
		if got := tc.spec.HandsOutOnce(); got != tc.want {
			t.Errorf("%s %v: HandsOutOnce %v, want %v", tc.spec.Name, tc.spec.Kind, got, tc.want)
		}
	}
}
