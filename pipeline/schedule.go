package pipeline

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/robfig/cron/v3"
)

// Schedule says when a flow's source is polled: at the ticks of a cron
// expression, only inside the allowed windows and never on a holiday, in
// one time zone. Each tick takes the files the source holds then (as with
// watch: false), delivers them and waits for the next tick. Without Cron,
// the source polls as configured while a window is open and rests while
// it is closed.
type Schedule struct {
	// Cron is a standard cron expression (minute hour day-of-month month
	// day-of-week, "0 6 * * 1-5") or a descriptor ("@hourly", "@every 15m").
	Cron string
	// TimeZone is an IANA zone name ("Europe/Berlin"); "" is the runner's
	// local zone.
	TimeZone string
	// Windows are the times polls may happen, each "[DAYS ]HH:MM-HH:MM":
	// "Mon-Fri 08:00-18:00", "Sat,Sun 10:00-12:00", "22:00-06:00" (every
	// day, past midnight). None: always.
	Windows []string
	// Holidays are dates with no poll: "2026-12-24", or "12-25" for every
	// year.
	Holidays []string
}

// ScheduleError is a Schedule's bad entry: Field ("cron", "windows") and,
// for lists, Index.
type ScheduleError struct {
	Field string
	Index int // -1 for single values
	Err   error
}

func (e *ScheduleError) Error() string {
	if e.Index < 0 {
		return fmt.Sprintf("schedule.%s: %v", e.Field, e.Err)
	}
	return fmt.Sprintf("schedule.%s[%d]: %v", e.Field, e.Index, e.Err)
}

func (e *ScheduleError) Unwrap() error { return e.Err }

// Timetable is a compiled Schedule.
type Timetable struct {
	cron    cron.Schedule // nil: poll continuously while open
	loc     *time.Location
	windows []window
	dates   map[string]bool // "2006-01-02" and "01-02"
}

// window is a weekly window: on days, from start to end minutes after
// midnight; end ≤ start runs past midnight into the next day.
type window struct {
	days       [7]bool // by time.Weekday
	start, end int
}

// horizon bounds the search for the next open time.
const horizon = 400 * 24 * time.Hour

// Compile checks s and returns its timetable. Errors are ScheduleErrors
// naming the entry; a cron expression that never fires inside the windows
// is one.
func (s Schedule) Compile() (*Timetable, error) {
	t := &Timetable{loc: time.Local, dates: map[string]bool{}}
	if s.TimeZone != "" {
		loc, err := time.LoadLocation(s.TimeZone)
		if err != nil {
			return nil, &ScheduleError{"time_zone", -1, fmt.Errorf("unknown time zone %q: use an IANA name such as Europe/Berlin or UTC", s.TimeZone)}
		}
		t.loc = loc
	}
	if s.Cron != "" {
		c, err := cron.ParseStandard(s.Cron)
		if err != nil {
			return nil, &ScheduleError{"cron", -1, fmt.Errorf("%q: %v: want five fields (minute hour day-of-month month day-of-week) such as \"0 6 * * 1-5\", or @hourly, @daily, @every 15m", s.Cron, err)}
		}
		t.cron = c
	}
	var minutes [7 * 1440]int8 // which window holds each minute of the week, +1
	for i, w := range s.Windows {
		win, err := parseWindow(w)
		if err != nil {
			return nil, &ScheduleError{"windows", i, err}
		}
		if other, at := win.claim(&minutes, i); other >= 0 {
			return nil, &ScheduleError{"windows", i, fmt.Errorf("%q overlaps windows[%d] %q on %s: merge them or make them apart", w, other, s.Windows[other], at)}
		}
		t.windows = append(t.windows, win)
	}
	for i, h := range s.Holidays {
		d, err := parseHoliday(h)
		if err != nil {
			return nil, &ScheduleError{"holidays", i, err}
		}
		t.dates[d] = true
	}
	if t.cron != nil && len(t.windows) > 0 {
		if at, _ := t.Next(time.Now()); at.IsZero() {
			return nil, &ScheduleError{"cron", -1, fmt.Errorf("%q never fires inside the windows: widen a window or change the expression", s.Cron)}
		}
	}
	return t, nil
}

var weekdayByName = map[string]time.Weekday{"sun": 0, "mon": 1, "tue": 2, "wed": 3, "thu": 4, "fri": 5, "sat": 6}

// parseWindow parses "[DAYS ]HH:MM-HH:MM"; DAYS is a comma list of days or
// day ranges ("Mon-Fri,Sun").
func parseWindow(s string) (window, error) {
	bad := func(format string, args ...any) (window, error) {
		return window{}, fmt.Errorf("%q: "+format+`: want "[DAYS ]HH:MM-HH:MM", such as "Mon-Fri 08:00-18:00" or "22:00-06:00"`, append([]any{s}, args...)...)
	}
	var w window
	days, span, ok := strings.Cut(strings.TrimSpace(s), " ")
	if !ok {
		days, span = "", days
		w.days = [7]bool{true, true, true, true, true, true, true}
	}
	var err error
	if days != "" {
		if w.days, err = parseDays(days); err != nil {
			return bad("%v", err)
		}
	}
	from, to, ok := strings.Cut(strings.TrimSpace(span), "-")
	if !ok {
		return bad("no time range")
	}
	if w.start, err = parseClock(from); err != nil {
		return bad("%v", err)
	}
	if w.end, err = parseClock(to); err != nil {
		return bad("%v", err)
	}
	if w.start == w.end {
		return bad("the window is empty (it starts and ends at %s)", from)
	}
	return w, nil
}

// parseDays parses a comma list of days and day ranges ("Mon-Fri,Sun");
// a range may wrap round the week ("Fri-Mon").
func parseDays(list string) ([7]bool, error) {
	var days [7]bool
	for _, part := range strings.Split(list, ",") {
		from, to, isRange := strings.Cut(strings.ToLower(strings.TrimSpace(part)), "-")
		a, ok1 := weekdayByName[from]
		b, ok2 := weekdayByName[to]
		if !ok1 || isRange && !ok2 {
			return days, fmt.Errorf("%q is not a day or day range (Mon, Tue, Wed, Thu, Fri, Sat, Sun)", part)
		}
		if !isRange {
			b = a
		}
		for d := a; ; d = (d + 1) % 7 {
			days[d] = true
			if d == b {
				break
			}
		}
	}
	return days, nil
}

// parseClock parses "HH:MM" (24:00 is the end of the day) into minutes.
func parseClock(s string) (int, error) {
	h, m, ok := strings.Cut(s, ":")
	hh, err1 := strconv.Atoi(h)
	mm, err2 := strconv.Atoi(m)
	if !ok || err1 != nil || err2 != nil || len(m) != 2 || hh < 0 || mm < 0 || mm > 59 || hh > 24 || hh == 24 && mm != 0 {
		return 0, fmt.Errorf("%q is not a time of day (00:00 to 24:00)", s)
	}
	return hh*60 + mm, nil
}

// claim marks the week's minutes that w covers with index i, or returns the
// index of a window already holding one of them and where.
func (w window) claim(minutes *[7 * 1440]int8, i int) (int, string) {
	length := w.end - w.start
	if length <= 0 {
		length += 1440
	}
	for d := range 7 {
		if !w.days[d] {
			continue
		}
		for m := w.start; m < w.start+length; m++ {
			at := (d*1440 + m) % len(minutes)
			if other := int(minutes[at]) - 1; other >= 0 && other != i {
				return other, fmt.Sprintf("%s %02d:%02d", time.Weekday(at / 1440).String()[:3], at%1440/60, at%60)
			}
			minutes[at] = int8(i + 1)
		}
	}
	return -1, ""
}

func parseHoliday(s string) (string, error) {
	if _, err := time.Parse("2006-01-02", s); err == nil {
		return s, nil
	}
	if _, err := time.Parse("01-02", s); err == nil {
		return s, nil
	}
	return "", fmt.Errorf("%q is not a date: want 2026-12-24, or 12-25 for every year", s)
}

// Open reports whether a poll may happen at t: inside a window (if any) and
// not on a holiday.
func (t *Timetable) Open(at time.Time) bool {
	at = at.In(t.loc)
	if t.dates[at.Format("2006-01-02")] || t.dates[at.Format("01-02")] {
		return false
	}
	if len(t.windows) == 0 {
		return true
	}
	m := at.Hour()*60 + at.Minute()
	day, yesterday := at.Weekday(), (at.Weekday()+6)%7
	for _, w := range t.windows {
		switch {
		case w.start < w.end && w.days[day] && m >= w.start && m < w.end:
			return true
		case w.start > w.end && (w.days[day] && m >= w.start || w.days[yesterday] && m < w.end):
			return true
		}
	}
	return false
}

// Cron reports whether polls happen at cron ticks (else continuously while
// open).
func (t *Timetable) Cron() bool { return t.cron != nil }

// Next returns when the next poll after now begins: the next cron tick
// that is open, or (without cron) now or the next minute the timetable
// opens; and, without cron, until when it may go on (zero: no end). Both
// are zero when nothing opens within 400 days.
func (t *Timetable) Next(now time.Time) (at, until time.Time) {
	end := now.Add(horizon)
	if t.cron != nil {
		for at = t.cron.Next(now.In(t.loc)); at.Before(end); at = t.cron.Next(at) {
			if t.Open(at) {
				return at, time.Time{}
			}
		}
		return time.Time{}, time.Time{}
	}
	at = now
	for !t.Open(at) {
		at = at.Truncate(time.Minute).Add(time.Minute)
		if !at.Before(end) {
			return time.Time{}, time.Time{}
		}
	}
	if len(t.windows) == 0 && len(t.dates) == 0 {
		return at, time.Time{}
	}
	for until = at.Truncate(time.Minute).Add(time.Minute); t.Open(until); until = until.Add(time.Minute) {
		if !until.Before(end) {
			return at, time.Time{}
		}
	}
	return at, until
}

// ErrNeverOpens is returned by a scheduled run whose timetable opens no
// poll within 400 days.
var ErrNeverOpens = errors.New("the schedule opens no poll within 400 days")
