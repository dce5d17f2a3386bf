package thru_test

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/mftflow/mftflow/connectors/thru"
	"github.com/mftflow/mftflow/pipeline"
	"github.com/mftflow/mftflow/pipeline/engine"
	"github.com/mftflow/mftflow/pipeline/stages"
	"github.com/mftflow/mftflow/testkit"
	"github.com/mftflow/mftflow/testkit/thrusim"
)

// runOutcomeFlow picks up the site's files through an attrs stage setting
// set into a memory sink, until the site has an outcome for each of n files.
func runOutcomeFlow(t *testing.T, site *thrusim.Server, set map[string]string, n int) *testkit.MemorySink {
	t.Helper()
	src, err := thru.NewSource(context.Background(), thru.SourceConfig{Client: clientConfig(t, site), PollInterval: 10 * time.Millisecond,
		SpoolDir: t.TempDir(), SenderAttributes: true})
	if err != nil {
		t.Fatal(err)
	}
	attrs, err := stages.NewAttrs(stages.AttrsConfig{Set: set})
	if err != nil {
		t.Fatal(err)
	}
	sink := testkit.NewMemorySink()
	eng, err := engine.New(testkit.ConnectNATS(t, testkit.StartNATS(t)), engine.Options{RunID: "run-batch"})
	if err != nil {
		t.Fatal(err)
	}
	run, err := eng.Start(t.Context(), pipeline.Flow{Name: "thru-batch", Source: pipeline.SourceOf(src),
		Stages: []pipeline.Component{pipeline.StageOf(attrs)}, Sinks: []pipeline.SinkSpec{pipeline.SinkOf("out", sink)}})
	if err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(30 * time.Second)
	for len(site.Outcomes()) < n && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := run.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	if got := len(site.Outcomes()); got != n {
		t.Fatalf("%d outcomes, want %d: %+v", got, n, site.Outcomes())
	}
	return sink
}

// The flow sets the batch counts and the recipients as attributes; the
// site's FlowOutcome carries them.
func TestFlowOutcomeBatchCountsAndRecipients(t *testing.T) {
	if testing.Short() {
		t.Skip("starts NATS")
	}
	site := newSite(t, nil)
	code, _ := site.AddPickup("TRN1", "orders-120.csv", []byte("id\n1\n"))
	runOutcomeFlow(t, site, map[string]string{
		thru.AttrBatchTotal:  "120",
		thru.AttrBatchFailed: "3",
		// The sender's participant code (P1), from sender_attributes.
		thru.AttrRecipients: "{attr." + thru.AttrSenderCode + "}, ORG2",
	}, 1)
	o := site.Outcomes()[0]
	if o.FileCode != code || o.FlowOutcome != thru.OutcomePassed || o.BatchTotalRecordCount != 120 || o.BatchFailedRecordCount != 3 ||
		!slices.Equal(o.SelectiveDropOffRecipients, []string{"P1", "ORG2"}) {
		t.Fatalf("outcome %+v; want passed, 120 records, 3 failed, recipients P1 and ORG2", o)
	}
}

// Counts that are not whole numbers, or more failed records than the
// total, fail the file before delivery, and the site hears why.
func TestFlowOutcomeBadBatchCounts(t *testing.T) {
	if testing.Short() {
		t.Skip("starts NATS")
	}
	site := newSite(t, nil)
	codes := map[string]string{}
	for _, name := range []string{"12x.csv", "5.csv", "9.csv"} {
		codes[name], _ = site.AddPickup("TRN1", name, []byte(name))
	}
	sink := runOutcomeFlow(t, site, map[string]string{thru.AttrBatchTotal: "{stem}", thru.AttrBatchFailed: "7"}, 3)
	byCode := map[string]thru.FlowOutcome{}
	for _, o := range site.Outcomes() {
		byCode[o.FileCode] = o
	}
	for name, want := range map[string]string{
		"12x.csv": fmt.Sprintf(`thru source: file "12x.csv" (File Code %s): attribute thru.batch_total = "12x" is not a record count: `+
			`want a whole number, 0 or more, such as "120"; correct the stage that sets it`, codes["12x.csv"]),
		"5.csv": fmt.Sprintf(`thru source: file "5.csv" (File Code %s): attribute thru.batch_failed = 7 is more than thru.batch_total = 5: `+
			`a batch cannot fail more records than it holds; set thru.batch_total to the batch's record count`, codes["5.csv"]),
	} {
		if o := byCode[codes[name]]; o.FlowOutcome != thru.OutcomeFailed || o.ActivityMessage != want || o.BatchTotalRecordCount != 0 {
			t.Errorf("%s: outcome %+v\nwant failed with %q", name, o, want)
		}
	}
	if o := byCode[codes["9.csv"]]; o.FlowOutcome != thru.OutcomePassed || o.BatchTotalRecordCount != 9 || o.BatchFailedRecordCount != 7 {
		t.Errorf("9.csv: outcome %+v; want passed, 9 records, 7 failed", o)
	}
	if files := sink.Files(); len(files) != 1 || files["9.csv"] == nil {
		t.Errorf("the sink holds %d files; want 9.csv alone", len(files))
	}
}

// Every wrong value is refused with what is wrong and what to do; a file
// without the attributes passes.
func TestSourceChecksOutcomeAttrs(t *testing.T) {
	site := newSite(t, nil)
	code, _ := site.AddPickup("TRN1", "a.csv", []byte("x"))
	src, err := thru.NewSource(context.Background(), thru.SourceConfig{Client: clientConfig(t, site), PollInterval: 10 * time.Millisecond, SpoolDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	it, err := src.Next(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	checker, ok := it.(pipeline.AttrChecker)
	if !ok {
		t.Fatal("the thru source's items do not check attributes")
	}
	prefix := `thru source: file "out/a.csv" (File Code ` + code + `): `
	for _, tc := range []struct {
		attrs map[string]string
		want  string
	}{
		{nil, ""},
		{map[string]string{thru.AttrBatchTotal: " 10 ", thru.AttrBatchFailed: "10", thru.AttrRecipients: "A, B"}, ""},
		{map[string]string{thru.AttrBatchTotal: "-1"}, `attribute thru.batch_total = "-1" is not a record count: want a whole number, 0 or more, such as "120"; correct the stage that sets it`},
		{map[string]string{thru.AttrBatchFailed: "1.5"}, `attribute thru.batch_failed = "1.5" is not a record count: want a whole number, 0 or more, such as "3"; correct the stage that sets it`},
		{map[string]string{thru.AttrBatchFailed: "2"}, `attribute thru.batch_failed = 2 is more than thru.batch_total = 0: a batch cannot fail more records than it holds; set thru.batch_total to the batch's record count`},
		{map[string]string{thru.AttrRecipients: "ORG1,,ORG2"}, `attribute thru.recipients = "ORG1,,ORG2": recipient 2 is empty: want recipient codes separated by commas, such as "ORG1,ORG2", or no thru.recipients attribute at all to send the file to every recipient`},
		{map[string]string{thru.AttrRecipients: ""}, `attribute thru.recipients = "": recipient 1 is empty: want recipient codes separated by commas, such as "ORG1,ORG2", or no thru.recipients attribute at all to send the file to every recipient`},
	} {
		err := checker.CheckAttrs(pipeline.File{Name: "out/a.csv", Attrs: tc.attrs})
		if tc.want == "" && err != nil || tc.want != "" && (err == nil || err.Error() != prefix+tc.want) {
			t.Errorf("%v: %v\nwant %s", tc.attrs, err, prefix+tc.want)
		}
	}
	// Should wrong values reach Ack after all, the outcome goes without
	// them (no recipients rather than wrong ones) and says why.
	err = it.Ack(t.Context(), pipeline.Outcome{Status: pipeline.Failed, Message: "stage 1 failed",
		Attrs: map[string]string{thru.AttrBatchTotal: "x", thru.AttrRecipients: "A"}})
	if err != nil {
		t.Fatal(err)
	}
	want := `thru source: file "a.csv" (File Code ` + code + `): attribute thru.batch_total = "x" is not a record count: ` +
		`want a whole number, 0 or more, such as "120"; correct the stage that sets it`
	if o := site.Outcomes(); len(o) != 1 || o[0].BatchTotalRecordCount != 0 || o[0].SelectiveDropOffRecipients != nil || o[0].ActivityDetail != want {
		t.Fatalf("outcomes %+v\nwant one without counts or recipients, its detail %q", o, want)
	}
}
