package s3

import (
	"testing"

	"github.com/mftflow/mftflow/pipeline"
)

func TestAckRemovesOnlyWhatTheAfterActionTakesAway(t *testing.T) {
	for _, tc := range []struct {
		after  string
		status pipeline.Status
		want   bool
	}{
		{AfterDelete, pipeline.Passed, true},
		{AfterMove, pipeline.Passed, true},
		{AfterDelete, pipeline.Mixed, false},
		{AfterDelete, pipeline.Failed, false},
		{AfterMove, pipeline.Skipped, false},
		{AfterTag, pipeline.Passed, false},
		{AfterLeave, pipeline.Passed, false},
	} {
		it := &item{s: &Source{cfg: SourceConfig{After: tc.after}}}
		if got := it.AckRemoves(tc.status); got != tc.want {
			t.Errorf("after %s, %v: AckRemoves %v, want %v", tc.after, tc.status, got, tc.want)
		}
	}
}
