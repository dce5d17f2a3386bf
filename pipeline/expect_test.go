package pipeline_test

import (
	"strings"
	"testing"
	"time"

	"github.com/mftflow/mftflow/pipeline"
)

func mustDeadlines(t *testing.T, e pipeline.Expectation) *pipeline.Deadlines {
	t.Helper()
	d, err := e.Deadlines()
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// Next gives the first deadline after a time, on the days By names and not
// on holidays, at the local time By names whatever the offset that day.
func TestDeadlinesNext(t *testing.T) {
	berlin, _ := time.LoadLocation("Europe/Berlin")
	const layout = "Mon 2006-01-02 15:04 MST"
	for _, c := range []struct {
		by       string
		holidays []string
		now      string // Berlin
		want     string
	}{
		{"Mon-Fri 06:00", nil, "2026-03-06 05:59", "Fri 2026-03-06 06:00 CET"},
		{"Mon-Fri 06:00", nil, "2026-03-06 06:00", "Mon 2026-03-09 06:00 CET"}, // strictly after
		{"weekdays 06:00", nil, "2026-03-07 12:00", "Mon 2026-03-09 06:00 CET"},
		{"daily 06:00", nil, "2026-03-28 07:00", "Sun 2026-03-29 06:00 CEST"}, // summer time begins that night
		{"06:00", nil, "2026-10-24 07:00", "Sun 2026-10-25 06:00 CET"},        // and ends
		{"Sat,Sun 09:30", nil, "2026-03-02 00:00", "Sat 2026-03-07 09:30 CET"},
		{"weekends 09:30", nil, "2026-03-07 10:00", "Sun 2026-03-08 09:30 CET"},
		{"Fri-Mon 06:00", nil, "2026-03-03 00:00", "Fri 2026-03-06 06:00 CET"},
		{"Mon 24:00", nil, "2026-03-02 23:00", "Tue 2026-03-03 00:00 CET"}, // the end of Monday
		{"Mon 24:00", []string{"2026-03-02"}, "2026-03-02 23:00", "Tue 2026-03-10 00:00 CET"},
		{"Mon-Fri 06:00", []string{"2026-12-24", "12-25"}, "2026-12-23 07:00", "Mon 2026-12-28 06:00 CET"},
		{"Mon-Fri 06:00", []string{"12-25"}, "2027-12-24 07:00", "Mon 2027-12-27 06:00 CET"},
		{"cron: 0 6 * * 1-5", nil, "2026-03-06 06:00", "Mon 2026-03-09 06:00 CET"},
		{"cron: 30 2 * * *", nil, "2026-03-28 03:00", "Mon 2026-03-30 02:30 CEST"}, // 02:30 does not exist on the 29th
		{"cron: 0 6 * * 1-5", []string{"2026-03-09"}, "2026-03-06 06:00", "Tue 2026-03-10 06:00 CET"},
		{"cron: @daily", nil, "2026-03-06 06:00", "Sat 2026-03-07 00:00 CET"},
	} {
		d := mustDeadlines(t, pipeline.Expectation{Files: "*", By: c.by, TimeZone: "Europe/Berlin", Holidays: c.holidays})
		now, _ := time.ParseInLocation("2006-01-02 15:04", c.now, berlin)
		if got := d.Next(now).In(berlin).Format(layout); got != c.want {
			t.Errorf("%q after %s = %s, want %s", c.by, c.now, got, c.want)
		}
	}
}

// Shortest finds the shortest period, daylight-saving days included.
func TestDeadlinesShortest(t *testing.T) {
	for _, c := range []struct {
		by, zone string
		want     time.Duration
	}{
		{"daily 06:00", "Europe/Berlin", 23 * time.Hour},
		{"daily 06:00", "UTC", 24 * time.Hour},
		{"Mon,Thu 06:00", "UTC", 72 * time.Hour},
		{"cron: */15 8-17 * * *", "UTC", 15 * time.Minute},
	} {
		if got, _ := mustDeadlines(t, pipeline.Expectation{By: c.by, TimeZone: c.zone}).Shortest(); got != c.want {
			t.Errorf("%q in %s: shortest %v, want %v", c.by, c.zone, got, c.want)
		}
	}
}

func TestExpectationCheck(t *testing.T) {
	ok := pipeline.Expectation{Files: "orders-*.csv", By: "Mon-Fri 06:00"}
	for _, c := range []struct {
		change func(*pipeline.Expectation)
		want   string
	}{
		{func(e *pipeline.Expectation) {}, ""},
		{func(e *pipeline.Expectation) { e.WarnBefore = 23*time.Hour + 59*time.Minute }, ""},
		{func(e *pipeline.Expectation) { e.Name = "orders.csv" }, `name: "orders.csv": use 1 to 64 letters, digits, '-' or '_'`},
		{func(e *pipeline.Expectation) { e.Files = "" }, `files: missing: give the glob of the expected file names, such as "orders-*.csv"`},
		{func(e *pipeline.Expectation) { e.Count = -1 }, `count: must be at least 1 (the files expected per period), got -1`},
		{func(e *pipeline.Expectation) { e.Count = 1001 }, `count: 1001 is above the limit of 1000 files per period; lower it, or split the expectation by name`},
		{func(e *pipeline.Expectation) { e.WarnBefore = -time.Second }, `warn_before: must not be negative, got -1s`},
		{func(e *pipeline.Expectation) { e.WarnBefore = 24 * time.Hour },
			`warn_before: 24h0m0s is not shorter than the shortest period, 24h0m0s (from Thu 2026-01-01 06:00 UTC to Fri 2026-01-02 06:00 UTC): the warning would come before the period begins; shorten it`},
		{func(e *pipeline.Expectation) { e.TimeZone = "Local" }, `time_zone: "Local" is each runner's own zone, and the runners of a flow must agree on deadlines: use an IANA name such as Europe/Berlin or UTC`},
		{func(e *pipeline.Expectation) { e.By = "cron: TZ=UTC 0 6 * * *" }, `by: "cron: TZ=UTC 0 6 * * *": write the time zone under time_zone, not in the expression`},
		{func(e *pipeline.Expectation) { e.By = "Mon-Fri 6" }, `by: "Mon-Fri 6": "6" is not a time of day (00:00 to 24:00): ` + pipeline.ByHint},
		{func(e *pipeline.Expectation) { e.By = "Mon-Fri by 06:00" }, `by: "Mon-Fri by 06:00": too many words: ` + pipeline.ByHint},
		{func(e *pipeline.Expectation) { e.Holidays = []string{"12-25", "Dec 24"} }, `holidays[1]: "Dec 24" is not a date: want 2026-12-24, or 12-25 for every year`},
	} {
		e := ok
		c.change(&e)
		got := ""
		if err := e.Check(); err != nil {
			got = err.Error()
		}
		if got != c.want {
			t.Errorf("Check of %+v:\n got %s\nwant %s", e, got, c.want)
		}
	}
}

func TestExpectationName(t *testing.T) {
	for files, want := range map[string]string{
		"orders-*.csv":            "orders-csv",
		"**/*.xml":                "xml",
		"*":                       "files",
		"in/{a,b}_?.TXT":          "in-a-b-_-TXT",
		"ü*x":                     "x",
		strings.Repeat("ab.", 30): strings.Repeat("ab-", 21) + "a",
	} {
		if got := pipeline.ExpectationName(files); got != want {
			t.Errorf("ExpectationName(%q) = %q, want %q", files, got, want)
		}
	}
}

// Flow.Check checks expectations built in Go, with their defaults: the
// zone of the schedule, names from globs.
func TestFlowCheckExpectations(t *testing.T) {
	f := pipeline.Flow{
		Name: "orders", Source: pipeline.Use("local", nil), Sinks: []pipeline.SinkSpec{{Name: "a", Component: pipeline.Use("local", nil)}},
		Schedule: &pipeline.Schedule{TimeZone: "Europe/Berlin"},
		Expectations: []pipeline.Expectation{
			{Files: "orders-*.csv", By: "daily 06:00", WarnBefore: 23*time.Hour + 30*time.Minute},
			{Files: "orders-*.csv", By: "07:00"},
		},
	}
	want := `expectation "orders-csv": warn_before: 23h30m0s is not shorter than the shortest period, 23h0m0s (from Sat 2026-03-28 06:00 CET to Sun 2026-03-29 06:00 CEST): the warning would come before the period begins; shorten it
expectation name "orders-csv" is used twice (expectations 1 and 2): give each its own name`
	if err := f.Check(); err == nil || err.Error() != want {
		t.Errorf("Check:\n got %v\nwant %s", err, want)
	}
	if got := f.WithDefaults().Expectations[0]; got.TimeZone != "Europe/Berlin" || got.Name != "orders-csv" || got.Count != 1 {
		t.Errorf("WithDefaults: %+v", got)
	}
}
