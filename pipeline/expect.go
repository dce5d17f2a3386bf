package pipeline

import (
	"errors"
	"fmt"
	"regexp"
	"strings"
	"time"

	"github.com/bmatcuk/doublestar/v4"
	"github.com/robfig/cron/v3"
)

// Expectation is an arrival SLA: at least Count files whose names match
// Files are expected at the source by each deadline that By names. Package
// pipeline/sla watches expectations, fed the flow's discovered events; this
// type only says what is expected, so that flow files and Go programs can
// write it without importing the watcher.
type Expectation struct {
	// Name identifies the expectation in events, status, metrics and its
	// state on the bus: 1 to 64 letters, digits, '-' or '_'. Default:
	// ExpectationName(Files).
	Name string
	// Files is a doublestar glob matched against a file's name at the
	// source (the discovered event's Name): "orders-*.csv" matches at the
	// top only, "**/orders-*.csv" in any directory.
	Files string
	// By names the deadlines: "[DAYS ]HH:MM", DAYS being daily (the
	// default), weekdays, weekends, or a comma list of days and day ranges
	// ("Mon-Fri", "Sat,Sun"); or "cron: EXPR" with a five-field cron
	// expression ("cron: 0 6 * * 1-5") or a descriptor (@daily, @weekly).
	// Each deadline ends a period that began at the deadline before it.
	By string
	// TimeZone is the IANA zone of By and Holidays. "" is UTC; a flow's
	// WithDefaults puts its schedule's zone here when it names one.
	TimeZone string
	// Count is how many files are expected per period; 0 means 1.
	Count int
	// WarnBefore, when above 0, raises a warning this long before a
	// deadline if fewer than Count files have arrived. It must be shorter
	// than the shortest period.
	WarnBefore time.Duration
	// Holidays are dates whose deadlines are skipped, written as in
	// Schedule.Holidays: "2026-12-25", or "12-25" for every year. The
	// period of the next deadline then begins at the one before.
	Holidays []string
	// Pos is where the expectation was declared; zero for Go.
	Pos Pos
}

// Bounds of expectations, checked by Expectation.Check and Flow.Check.
const (
	// MaxExpectations is the most expectations a flow may have.
	MaxExpectations = 64
	// MaxExpectCount bounds Expectation.Count: the watcher keeps the id of
	// each file counted in a period, to count a file offered twice once.
	MaxExpectCount = 1000
)

// ExpectError is an Expectation's bad setting: Field ("by", "holidays")
// and, for holidays, Index (-1 otherwise).
type ExpectError struct {
	Field string
	Index int
	Err   error
}

func (e *ExpectError) Error() string {
	if e.Index < 0 {
		return fmt.Sprintf("%s: %v", e.Field, e.Err)
	}
	return fmt.Sprintf("%s[%d]: %v", e.Field, e.Index, e.Err)
}

func (e *ExpectError) Unwrap() error { return e.Err }

// ByHint says what Expectation.By looks like.
const ByHint = `want "[DAYS ]HH:MM" such as "Mon-Fri 06:00", "daily 06:00" or "Sat,Sun 09:30", or "cron: 0 6 * * 1-5"`

// expectNameRule is the rule for expectation names, as for flows and sinks:
// names go into KV keys and metric labels as they are.
var expectNameRule = regexp.MustCompile(`^[A-Za-z0-9_-]{1,64}$`)

// ExpectationName derives a name from a glob: each run of characters other
// than letters, digits, '-' and '_' becomes one '-', cut to 64 characters
// ("orders-*.csv" gives "orders-csv"); a glob with none gives "files".
func ExpectationName(files string) string {
	var b strings.Builder
	dash := false
	for _, r := range files {
		ok := r < 0x80 && (r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '_' || r == '-')
		switch {
		case ok:
			b.WriteRune(r)
			dash = r == '-'
		case b.Len() > 0 && !dash:
			b.WriteByte('-')
			dash = true
		}
	}
	name := strings.TrimRight(b.String(), "-")
	if len(name) > 64 {
		name = strings.TrimRight(name[:64], "-")
	}
	if name == "" {
		return "files"
	}
	return name
}

// WithDefaults returns e with its name, count and zone filled in; zone is
// the flow's default zone ("" for UTC).
func (e Expectation) WithDefaults(zone string) Expectation {
	if e.Name == "" {
		e.Name = ExpectationName(e.Files)
	}
	if e.Count == 0 {
		e.Count = 1
	}
	if e.TimeZone == "" {
		e.TimeZone = zone
	}
	if e.TimeZone == "" {
		e.TimeZone = "UTC"
	}
	return e
}

// Check reports every bad setting of e, each a *ExpectError, joined.
func (e Expectation) Check() error {
	var errs []error
	bad := func(field string, format string, args ...any) {
		errs = append(errs, &ExpectError{Field: field, Index: -1, Err: fmt.Errorf(format, args...)})
	}
	if e.Name != "" && !expectNameRule.MatchString(e.Name) {
		bad("name", "%q: use 1 to 64 letters, digits, '-' or '_'", e.Name)
	}
	switch {
	case e.Files == "":
		bad("files", `missing: give the glob of the expected file names, such as "orders-*.csv"`)
	case !doublestar.ValidatePattern(e.Files):
		bad("files", `%q is not a valid glob: close every "[" and "{", or escape them with "\"`, e.Files)
	}
	if e.Count < 0 {
		bad("count", "must be at least 1 (the files expected per period), got %d", e.Count)
	}
	if e.Count > MaxExpectCount {
		bad("count", "%d is above the limit of %d files per period; lower it, or split the expectation by name", e.Count, MaxExpectCount)
	}
	if e.WarnBefore < 0 {
		bad("warn_before", "must not be negative, got %v", e.WarnBefore)
	}
	d, err := e.Deadlines()
	if err != nil {
		return errors.Join(append(errs, unjoinErrs(err)...)...)
	}
	if err := d.checkWarning(e.WarnBefore); err != nil {
		errs = append(errs, &ExpectError{Field: "warn_before", Index: -1, Err: err})
	}
	return errors.Join(errs...)
}

func unjoinErrs(err error) []error {
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		return j.Unwrap()
	}
	return []error{err}
}

// Deadlines is a compiled Expectation: when its periods end.
type Deadlines struct {
	days   [7]bool // by time.Weekday, with minute; unused with cron
	minute int     // of the day, 0 to 1440
	cron   cron.Schedule
	loc    *time.Location
	dates  map[string]bool // holidays, "2006-01-02" and "01-02"
}

// deadlineHorizon bounds the search for the next deadline; robfig/cron
// gives up after five years too.
const deadlineHorizon = 5 * 366

// Deadlines compiles e's By, TimeZone and Holidays. Errors are
// *ExpectErrors, joined; a By that names no deadline within five years (every
// day it names is a holiday) is one.
func (e Expectation) Deadlines() (*Deadlines, error) {
	d := &Deadlines{loc: time.UTC, dates: map[string]bool{}}
	var errs []error
	if e.TimeZone != "" {
		loc, err := time.LoadLocation(e.TimeZone)
		switch {
		case strings.EqualFold(e.TimeZone, "local"):
			errs = append(errs, &ExpectError{"time_zone", -1, fmt.Errorf("%q is each runner's own zone, and the runners of a flow must agree on deadlines: use an IANA name such as Europe/Berlin or UTC", e.TimeZone)})
		case err != nil:
			errs = append(errs, &ExpectError{"time_zone", -1, fmt.Errorf("unknown time zone %q: use an IANA name such as Europe/Berlin or UTC", e.TimeZone)})
		default:
			d.loc = loc
		}
	}
	if strings.TrimSpace(e.By) == "" {
		errs = append(errs, &ExpectError{"by", -1, errors.New(`missing: say by when the files are due, such as "Mon-Fri 06:00"`)})
	} else if err := d.parseBy(e.By); err != nil {
		errs = append(errs, &ExpectError{"by", -1, err})
	}
	for i, h := range e.Holidays {
		date, err := parseHoliday(h)
		if err != nil {
			errs = append(errs, &ExpectError{"holidays", i, err})
			continue
		}
		d.dates[date] = true
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	if d.Next(expectReference(d.loc)).IsZero() {
		return nil, &ExpectError{"by", -1, fmt.Errorf("%q names no deadline within five years (holidays left out): name more days, or fewer holidays", e.By)}
	}
	return d, nil
}

// parseBy parses "[DAYS ]HH:MM" or "cron: EXPR" into d.
func (d *Deadlines) parseBy(by string) error {
	bad := func(format string, args ...any) error {
		return fmt.Errorf("%q: "+format+": "+ByHint, append([]any{by}, args...)...)
	}
	if expr, ok := strings.CutPrefix(strings.TrimSpace(by), "cron:"); ok {
		return d.parseCron(by, strings.TrimSpace(expr))
	}
	fields := strings.Fields(by)
	switch len(fields) {
	case 1:
		fields = []string{"daily", fields[0]}
	case 2:
	default:
		if zone := fields[len(fields)-1]; strings.Contains(zone, "/") || zone == "UTC" {
			return bad("write the time zone under time_zone, not in by")
		}
		return bad("too many words")
	}
	days, err := parseByDays(fields[0])
	if err != nil {
		return bad("%v", err)
	}
	minute, err := parseClock(fields[1])
	if err != nil {
		return bad("%v", err)
	}
	d.days, d.minute = days, minute
	return nil
}

// parseByDays parses the days of a By: daily, weekdays, weekends, or a list
// of days and day ranges.
func parseByDays(s string) ([7]bool, error) {
	switch strings.ToLower(s) {
	case "daily":
		return [7]bool{true, true, true, true, true, true, true}, nil
	case "weekdays":
		return [7]bool{false, true, true, true, true, true, false}, nil
	case "weekends":
		return [7]bool{true, false, false, false, false, false, true}, nil
	}
	days, err := parseDays(s)
	if err != nil {
		return days, fmt.Errorf("%w, or daily, weekdays, weekends", err)
	}
	return days, nil
}

// parseCron parses the expression of a "cron: EXPR" By.
func (d *Deadlines) parseCron(by, expr string) error {
	switch {
	case strings.HasPrefix(expr, "@every"):
		return fmt.Errorf("%q: @every counts from whenever the runner starts, so it has no fixed deadlines: write a cron expression such as \"cron: 0 */4 * * *\"", by)
	case strings.HasPrefix(expr, "TZ=") || strings.HasPrefix(expr, "CRON_TZ="):
		return fmt.Errorf("%q: write the time zone under time_zone, not in the expression", by)
	}
	c, err := cron.ParseStandard(expr)
	if err != nil {
		return fmt.Errorf("%q: %v: want five fields (minute hour day-of-month month day-of-week) such as \"cron: 0 6 * * 1-5\", or @daily, @weekly", by, err)
	}
	d.cron = c
	return nil
}

// Location is the zone of the deadlines.
func (d *Deadlines) Location() *time.Location { return d.loc }

// Next returns the first deadline after t, or the zero time when there is
// none within five years.
func (d *Deadlines) Next(t time.Time) time.Time {
	if d.cron != nil {
		return d.nextCron(t)
	}
	local := t.In(d.loc)
	// A deadline belongs to the day it names: start a day early, as
	// yesterday's "24:00" may still be ahead.
	y, m, day := local.Date()
	for i := -1; i < deadlineHorizon; i++ {
		date := time.Date(y, m, day+i, 12, 0, 0, 0, d.loc)
		if !d.days[date.Weekday()] || d.holiday(date) {
			continue
		}
		at := time.Date(y, m, day+i, d.minute/60, d.minute%60, 0, 0, d.loc)
		if at.After(t) {
			return at
		}
	}
	return time.Time{}
}

func (d *Deadlines) nextCron(t time.Time) time.Time {
	end := t.AddDate(0, 0, deadlineHorizon)
	for at := d.cron.Next(t.In(d.loc)); !at.IsZero() && at.Before(end); at = d.cron.Next(at) {
		if !d.holiday(at) {
			return at
		}
	}
	return time.Time{}
}

// holiday reports whether t's date, in the deadlines' zone, is a holiday.
func (d *Deadlines) holiday(t time.Time) bool {
	t = t.In(d.loc)
	return d.dates[t.Format("2006-01-02")] || d.dates[t.Format("01-02")]
}

// expectReference is where Check starts looking at deadlines: a fixed day,
// so that a flow file that validates today validates tomorrow.
func expectReference(loc *time.Location) time.Time {
	return time.Date(2026, 1, 1, 0, 0, 0, 0, loc)
}

// Shortest returns the shortest time between two deadlines over the year
// after the reference day (both daylight-saving changes included; at most
// 5000 deadlines), and the deadline that ends it. It is zero when there are
// fewer than two deadlines in that year.
func (d *Deadlines) Shortest() (gap time.Duration, end time.Time) {
	from := expectReference(d.loc)
	until := from.AddDate(1, 0, 7)
	prev := d.Next(from)
	for n := 0; n < 5000 && !prev.IsZero(); n++ {
		next := d.Next(prev)
		if next.IsZero() || next.After(until) {
			break
		}
		if g := next.Sub(prev); gap == 0 || g < gap {
			gap, end = g, next
		}
		prev = next
	}
	return gap, end
}

// checkWarning refuses a warning lead time that is not shorter than the
// shortest period: the warning would fall before the period began.
func (d *Deadlines) checkWarning(warn time.Duration) error {
	if warn <= 0 {
		return nil
	}
	gap, end := d.Shortest()
	if gap == 0 || warn < gap {
		return nil
	}
	const layout = "Mon 2006-01-02 15:04 MST"
	return fmt.Errorf("%v is not shorter than the shortest period, %v (from %s to %s): the warning would come before the period begins; shorten it",
		warn, gap, end.Add(-gap).In(d.loc).Format(layout), end.In(d.loc).Format(layout))
}
