package pipeline_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/mftflow/mftflow/pipeline"
)

func TestPollingWalk(t *testing.T) {
	p := pipeline.Polling{Recursive: true, Ignore: pipeline.DefaultIgnore(), Exclude: []string{"skip"}}
	entries := []pipeline.RemoteEntry{
		{Name: "."}, {Name: ".."},
		{Name: "a.csv", Regular: true, Size: 3},
		{Name: "a.csv.tmp", Regular: true},
		{Name: "sub", Dir: true},
		{Name: "skip", Dir: true},
		{Name: "archive", Dir: true},
		{Name: "link"},
	}
	var found []pipeline.Listed
	var entered []string
	err := p.Walk("/in", "", "/in/archive", entries, &found, func(abs, rel string) error {
		entered = append(entered, abs+" "+rel)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]pipeline.Listed{{Name: "a.csv", Size: 3}}, found); diff != "" {
		t.Errorf("found (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]string{"/in/sub sub"}, entered); diff != "" {
		t.Errorf("entered (-want +got):\n%s", diff)
	}
}

func TestApplyAfter(t *testing.T) {
	passed := pipeline.Outcome{Status: pipeline.Passed, Attrs: map[string]string{pipeline.AttrCompanions: "{name}.md5"}}
	for _, tc := range []struct {
		name    string
		o       pipeline.Outcome
		after   string
		here    bool
		want    []string
		wantErr bool
	}{
		{"passed", passed, pipeline.AfterDelete, true, []string{"a.csv.md5", "a.csv"}, false},
		{"dealt with before", passed, pipeline.AfterMove, false, []string{"a.csv.md5"}, false},
		{"leave", passed, pipeline.AfterLeave, true, nil, false},
		{"failed", pipeline.Outcome{Status: pipeline.Failed}, pipeline.AfterDelete, true, nil, false},
		{"changed", passed, pipeline.AfterDelete, true, nil, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var applied []string
			err := pipeline.ApplyAfter(tc.o, "a.csv", tc.after, func() (bool, error) {
				if tc.wantErr {
					return false, errors.New("changed")
				}
				return tc.here, nil
			}, func(name string) error {
				applied = append(applied, name)
				return nil
			})
			if (err != nil) != tc.wantErr {
				t.Fatalf("error %v, want one: %v", err, tc.wantErr)
			}
			if diff := cmp.Diff(tc.want, applied); diff != "" {
				t.Errorf("applied (-want +got):\n%s", diff)
			}
		})
	}
}

type emptyLister struct{}

func (emptyLister) List(context.Context) ([]pipeline.Listed, error) { return nil, nil }
func (emptyLister) Recheck(context.Context, pipeline.Listed) (bool, error) {
	return true, nil
}

func TestPollLoopStop(t *testing.T) {
	l := pipeline.NewPollLoop(pipeline.Poller{Watch: true, PollInterval: time.Hour})
	done := make(chan error, 1)
	go func() {
		_, err := l.Next(context.Background(), emptyLister{})
		done <- err
	}()
	if !l.Stop() {
		t.Fatal("first Stop did not report it")
	}
	if l.Stop() {
		t.Fatal("second Stop reported it was the first")
	}
	if err := <-done; !errors.Is(err, pipeline.ErrPollerStopped) {
		t.Fatalf("Next after Stop: %v, want ErrPollerStopped", err)
	}
}
