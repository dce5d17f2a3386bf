package pipeline_test

import (
	"testing"
	"time"

	"github.com/mftflow/mftflow/pipeline"
)

func mustCompile(t *testing.T, s pipeline.Schedule) *pipeline.Timetable {
	t.Helper()
	tt, err := s.Compile()
	if err != nil {
		t.Fatal(err)
	}
	return tt
}

func at(t *testing.T, loc *time.Location, s string) time.Time {
	t.Helper()
	v, err := time.ParseInLocation("2006-01-02 15:04", s, loc)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// Cron ticks are kept only inside windows and off holidays, in the
// schedule's zone, whatever the runner's.
func TestTimetableNext(t *testing.T) {
	berlin, _ := time.LoadLocation("Europe/Berlin")
	tt := mustCompile(t, pipeline.Schedule{
		Cron:     "0,30 * * * *",
		TimeZone: "Europe/Berlin",
		Windows:  []string{"Mon-Fri 08:00-18:00", "Sat 09:00-10:00"},
		Holidays: []string{"2026-12-24", "12-25"},
	})
	for _, c := range []struct{ now, want string }{
		{"2026-12-07 07:10", "2026-12-07 08:00"}, // Monday, before the window
		{"2026-12-07 08:00", "2026-12-07 08:30"}, // strictly after now
		{"2026-12-07 17:45", "2026-12-08 08:00"}, // 18:00 is outside
		{"2026-12-11 17:50", "2026-12-12 09:00"}, // Friday evening to Saturday's window
		{"2026-12-12 09:40", "2026-12-14 08:00"}, // Saturday 10:00 is outside, Sunday has none
		{"2026-12-23 18:00", "2026-12-26 09:00"}, // 24th and 25th are holidays, then Saturday's window
	} {
		got, until := tt.Next(at(t, berlin, c.now))
		if want := at(t, berlin, c.want); !got.Equal(want) || !until.IsZero() {
			t.Errorf("Next(%s) = %s (until %v), want %s", c.now, got.In(berlin).Format("Mon 2006-01-02 15:04"), until, want.Format("Mon 2006-01-02 15:04"))
		}
	}
	// The same instant seen from another zone gives the same answer.
	tokyo, _ := time.LoadLocation("Asia/Tokyo")
	if got, _ := tt.Next(at(t, berlin, "2026-12-07 07:10").In(tokyo)); !got.Equal(at(t, berlin, "2026-12-07 08:00")) {
		t.Errorf("Next from Tokyo's clock = %s", got)
	}
}

// Without cron the source polls while a window is open: Next gives the
// window's start (now if open) and its end; windows may run past midnight.
func TestTimetableWindowsOnly(t *testing.T) {
	tt := mustCompile(t, pipeline.Schedule{TimeZone: "UTC", Windows: []string{"22:00-06:00"}, Holidays: []string{"2026-12-31"}})
	utc := time.UTC
	for _, c := range []struct{ now, from, until string }{
		{"2026-12-07 12:00", "2026-12-07 22:00", "2026-12-08 06:00"},
		{"2026-12-08 03:17", "2026-12-08 03:17", "2026-12-08 06:00"},
		{"2026-12-30 23:00", "2026-12-30 23:00", "2026-12-31 00:00"}, // the holiday starts at midnight
		{"2026-12-31 10:00", "2027-01-01 00:00", "2027-01-01 06:00"},
	} {
		from, until := tt.Next(at(t, utc, c.now))
		if !from.Equal(at(t, utc, c.from)) || !until.Equal(at(t, utc, c.until)) {
			t.Errorf("Next(%s) = %s until %s, want %s until %s", c.now, from.Format("01-02 15:04"), until.Format("01-02 15:04"), c.from, c.until)
		}
	}
}

// Bad entries are refused with the entry's place and what to write.
func TestScheduleErrors(t *testing.T) {
	for _, c := range []struct {
		s    pipeline.Schedule
		want string
	}{
		{pipeline.Schedule{Cron: "0 25 * * *"}, `schedule.cron: "0 25 * * *": end of range (25) above maximum (23): 25: want five fields (minute hour day-of-month month day-of-week) such as "0 6 * * 1-5", or @hourly, @daily, @every 15m`},
		{pipeline.Schedule{TimeZone: "Mars/Olympus"}, `schedule.time_zone: unknown time zone "Mars/Olympus": use an IANA name such as Europe/Berlin or UTC`},
		{pipeline.Schedule{Windows: []string{"Mon-Fri 08:00-18:00", "Funday 09:00-10:00"}}, `schedule.windows[1]: "Funday 09:00-10:00": "Funday" is not a day or day range (Mon, Tue, Wed, Thu, Fri, Sat, Sun): want "[DAYS ]HH:MM-HH:MM", such as "Mon-Fri 08:00-18:00" or "22:00-06:00"`},
		{pipeline.Schedule{Windows: []string{"Mon 25:00-26:00"}}, `schedule.windows[0]: "Mon 25:00-26:00": "25:00" is not a time of day (00:00 to 24:00): want "[DAYS ]HH:MM-HH:MM", such as "Mon-Fri 08:00-18:00" or "22:00-06:00"`},
		{pipeline.Schedule{Windows: []string{"Mon 08:00-08:00"}}, `schedule.windows[0]: "Mon 08:00-08:00": the window is empty (it starts and ends at 08:00): want "[DAYS ]HH:MM-HH:MM", such as "Mon-Fri 08:00-18:00" or "22:00-06:00"`},
		{pipeline.Schedule{Windows: []string{"Mon-Fri 08:00-18:00", "Wed 17:00-19:00"}}, `schedule.windows[1]: "Wed 17:00-19:00" overlaps windows[0] "Mon-Fri 08:00-18:00" on Wed 17:00: merge them or make them apart`},
		{pipeline.Schedule{Windows: []string{"Sun 23:00-01:00", "Mon 00:30-02:00"}}, `schedule.windows[1]: "Mon 00:30-02:00" overlaps windows[0] "Sun 23:00-01:00" on Mon 00:30: merge them or make them apart`},
		{pipeline.Schedule{Holidays: []string{"24.12.2026"}}, `schedule.holidays[0]: "24.12.2026" is not a date: want 2026-12-24, or 12-25 for every year`},
		{pipeline.Schedule{Cron: "0 3 * * *", Windows: []string{"Mon 08:00-09:00"}}, `schedule.cron: "0 3 * * *" never fires inside the windows: widen a window or change the expression`},
	} {
		_, err := c.s.Compile()
		if err == nil || err.Error() != c.want {
			t.Errorf("Compile(%+v):\n got %v\nwant %s", c.s, err, c.want)
		}
	}
}

// Parsing never panics on arbitrary entries.
func FuzzSchedule(f *testing.F) {
	for _, s := range []string{"Mon-Fri 08:00-18:00", "22:00-06:00", "Sat,Sun 10:00-12:00", "Sun-Sat 00:00-24:00", "x", "Mon 8:0-9:00", " - "} {
		f.Add(s, "0 6 * * 1-5", "12-25")
	}
	f.Fuzz(func(t *testing.T, window, expr, holiday string) {
		tt, err := pipeline.Schedule{Cron: expr, TimeZone: "UTC", Windows: []string{window}, Holidays: []string{holiday}}.Compile()
		if err == nil {
			tt.Next(time.Date(2026, 12, 7, 0, 0, 0, 0, time.UTC))
		}
	})
}
