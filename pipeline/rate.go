package pipeline

import (
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Rate is a bandwidth limit in bytes per second: one limit, or a timetable
// of limits that change at given times of the day or the week, written as
// rclone's --bwlimit: "10M", "off", "08:00,10M 18:00,off" or
// "Mon-08:00,512K Sat-00:00,off". The zero Rate sets no limit.
//
// Times are read in the time zone of the clock that asks (Rate.At), which
// for the engine is the runner's local zone (TZ), as rclone does: a
// timetable follows the working day where the runner is.
type Rate struct {
	// Slots are in order through the day (or the week when Weekly), each
	// starting at its Start; the last runs on to the first of the next
	// day (week). Empty: no limit.
	Slots []RateSlot
	// Weekly says the slots' starts count from Monday 00:00, not midnight.
	Weekly bool
}

// RateSlot is a limit from Start on.
type RateSlot struct {
	// Start is how long after midnight (after Monday 00:00 when weekly)
	// the slot starts, in whole minutes.
	Start time.Duration
	// Limit is in bytes per second; 0 means no limit.
	Limit int64
}

// MinRate is the lowest limit a Rate accepts: below it a unit was most
// likely left out ("10" for "10M").
const MinRate = 1 << 10

// RateError is a Rate that does not parse. Offset is where in the text the
// problem is (the byte offset of the entry at fault, 0 for the whole text),
// so that a flow file can point at its column.
type RateError struct {
	Offset int
	Msg    string
}

func (e *RateError) Error() string { return e.Msg }

// rateHint is what a limit looks like, for messages.
const rateHint = `write 10MB, 512KiB, off, or "08:00,10M 18:00,off"`

var weekdays = []string{"mon", "tue", "wed", "thu", "fri", "sat", "sun"}

const week = 7 * 24 * time.Hour

// ParseRate parses a limit as rclone's --bwlimit writes it: a size per
// second ("10M", "512KiB", see ParseSize), "off" (or "0", or ""), or a
// timetable of space-separated entries "HH:MM,LIMIT" (each day) or
// "Day-HH:MM,LIMIT" (each week, days Mon to Sun), in order through the day
// or the week. Errors are *RateError.
func ParseRate(s string) (Rate, error) {
	text := strings.TrimSpace(s)
	lead := len(s) - len(strings.TrimLeft(s, " \t\n\r"))
	if !strings.Contains(text, ",") {
		limit, err := rateLimit(text, "")
		if err != nil {
			err.Offset = lead
			return Rate{}, err
		}
		if limit == 0 {
			return Rate{}, nil
		}
		return Rate{Slots: []RateSlot{{Limit: limit}}}, nil
	}
	var r Rate
	var prev rateEntry
	for i, e := range rateEntries(s) {
		cur, err := parseRateEntry(e)
		if err == nil && i > 0 {
			err = cur.follows(prev)
		}
		if err != nil {
			err.Offset = e.off
			return Rate{}, err
		}
		r.Weekly = cur.weekly
		r.Slots = append(r.Slots, cur.slot)
		prev = cur
	}
	return r, nil
}

// rateEntry is one entry of a timetable, as written and as parsed.
type rateEntry struct {
	text   string
	off    int
	weekly bool
	slot   RateSlot
}

// rateEntries splits s at spaces, keeping each entry's offset.
func rateEntries(s string) []rateEntry {
	var out []rateEntry
	start := -1
	for i := 0; i <= len(s); i++ {
		space := i == len(s) || strings.ContainsRune(" \t\n\r", rune(s[i]))
		switch {
		case space && start >= 0:
			out = append(out, rateEntry{text: s[start:i], off: start})
			start = -1
		case !space && start < 0:
			start = i
		}
	}
	return out
}

// parseRateEntry parses "[Day-]HH:MM,LIMIT".
func parseRateEntry(e rateEntry) (rateEntry, *RateError) {
	fail := func(format string, args ...any) (rateEntry, *RateError) {
		return e, &RateError{Msg: fmt.Sprintf("timetable entry %q: ", e.text) + fmt.Sprintf(format, args...)}
	}
	at, value, ok := strings.Cut(e.text, ",")
	if !ok || strings.Contains(value, ",") {
		return fail(`want TIME,LIMIT as in "08:00,10M" or "Mon-08:00,10M"`)
	}
	if day, clock, ok := strings.Cut(at, "-"); ok {
		d := dayIndex(day)
		if d < 0 {
			return fail("%q is not a day: write Mon, Tue, Wed, Thu, Fri, Sat or Sun", day)
		}
		e.weekly = true
		e.slot.Start = time.Duration(d) * 24 * time.Hour
		at = clock
	}
	minutes, ok := timeOfDay(at)
	if !ok {
		return fail("%q is not a time of day: write HH:MM from 00:00 to 23:59", at)
	}
	e.slot.Start += time.Duration(minutes) * time.Minute
	limit, err := rateLimit(value, fmt.Sprintf("timetable entry %q: ", e.text))
	if err != nil {
		return e, err
	}
	e.slot.Limit = limit
	return e, nil
}

// follows checks that e may come after prev in one timetable.
func (e rateEntry) follows(prev rateEntry) *RateError {
	switch {
	case e.weekly != prev.weekly:
		with, without := e, prev
		if prev.weekly {
			with, without = prev, e
		}
		return &RateError{Msg: fmt.Sprintf("timetable entry %q has no day but %q has one: give every entry a day, or none", without.text, with.text)}
	case e.slot.Start == prev.slot.Start:
		return &RateError{Msg: fmt.Sprintf("timetable entry %q is at the same time as %q: give each time one limit", e.text, prev.text)}
	case e.slot.Start < prev.slot.Start && e.weekly:
		return &RateError{Msg: fmt.Sprintf("timetable entry %q comes after %q: list the entries in order through the week, from Monday", e.text, prev.text)}
	case e.slot.Start < prev.slot.Start:
		return &RateError{Msg: fmt.Sprintf("timetable entry %q comes after %q: list the entries in order through the day", e.text, prev.text)}
	}
	return nil
}

// dayIndex returns 0 for Monday to 6 for Sunday (three letters or the whole
// name, any case), or -1.
func dayIndex(s string) int {
	l := strings.ToLower(s)
	for i, d := range weekdays {
		if l == d || l == strings.ToLower(time.Weekday((i+1)%7).String()) {
			return i
		}
	}
	return -1
}

// timeOfDay parses "H:MM" or "HH:MM" into minutes after midnight.
func timeOfDay(s string) (int, bool) {
	h, m, ok := strings.Cut(s, ":")
	if !ok || len(h) < 1 || len(h) > 2 || len(m) != 2 || !digits(h) || !digits(m) {
		return 0, false
	}
	hh, _ := strconv.Atoi(h)
	mm, _ := strconv.Atoi(m)
	if hh > 23 || mm > 59 {
		return 0, false
	}
	return hh*60 + mm, true
}

func digits(s string) bool {
	return strings.Trim(s, "0123456789") == ""
}

// rateLimit parses one limit: a size per second, or "off", "0" or "" for
// none. prefix names the timetable entry, "" for a whole Rate.
func rateLimit(s, prefix string) (int64, *RateError) {
	t := strings.TrimSpace(s)
	if t == "" || strings.EqualFold(t, "off") {
		return 0, nil
	}
	if a, b, ok := strings.Cut(t, ":"); ok && isLimit(a) && isLimit(b) {
		return 0, &RateError{Msg: fmt.Sprintf("%s%q: separate upload and download limits are not supported (a rate limits what is written to sinks): write one size", prefix, t)}
	}
	n, err := ParseSize(t)
	if err != nil {
		if prefix != "" {
			return 0, &RateError{Msg: fmt.Sprintf("%s%q is not a size: write 10M, 512KiB or off", prefix, t)}
		}
		return 0, &RateError{Msg: fmt.Sprintf("%q is not a size or a timetable: %s", t, rateHint)}
	}
	if n > 0 && n < MinRate {
		return 0, &RateError{Msg: fmt.Sprintf("%s%d bytes/s is below the least limit of 1KiB/s: write a unit, such as %dK or %dM, or off", prefix, n, n, n)}
	}
	return n, nil
}

// isLimit reports whether s reads as one limit, for the hint about
// rclone's "UPLOAD:DOWNLOAD" form.
func isLimit(s string) bool {
	_, err := ParseSize(s)
	return err == nil || strings.EqualFold(s, "off")
}

// Check reports a Rate that ParseRate would not give, as a Rate built in
// Go might be: slots out of order, outside the day (week), not on a whole
// minute, or with a limit below MinRate.
func (r Rate) Check() error {
	period := 24 * time.Hour
	if r.Weekly {
		period = week
	}
	for i, s := range r.Slots {
		switch {
		case s.Start < 0 || s.Start >= period || s.Start%time.Minute != 0:
			return fmt.Errorf("slot %d starts at %v: want a whole minute within the %s", i+1, s.Start, map[bool]string{false: "day", true: "week"}[r.Weekly])
		case i > 0 && s.Start <= r.Slots[i-1].Start:
			return fmt.Errorf("slot %d starts at %v, not after slot %d: put the slots in order", i+1, s.Start, i)
		case s.Limit < 0 || (s.Limit > 0 && s.Limit < MinRate):
			return fmt.Errorf("slot %d: %d bytes/s: want 0 (no limit) or at least 1KiB/s", i+1, s.Limit)
		}
	}
	return nil
}

// Limited reports whether r limits anything at any time.
func (r Rate) Limited() bool {
	for _, s := range r.Slots {
		if s.Limit > 0 {
			return true
		}
	}
	return false
}

// At returns the limit at time t (bytes per second, 0 for none), read in
// t's time zone, and when it next changes (zero when it never does).
func (r Rate) At(t time.Time) (limit int64, next time.Time) {
	if len(r.Slots) == 0 {
		return 0, time.Time{}
	}
	y, mo, d := t.Date()
	base := time.Date(y, mo, d, 0, 0, 0, 0, t.Location()) // midnight, or Monday 00:00
	period := 24 * time.Hour
	if r.Weekly {
		base = base.AddDate(0, 0, -(int(t.Weekday())+6)%7)
		period = week
	}
	at := func(off time.Duration) time.Time {
		// Wall-clock arithmetic, so a slot keeps its time of day across
		// a daylight saving change.
		days := int(off / (24 * time.Hour))
		off -= time.Duration(days) * 24 * time.Hour
		return time.Date(base.Year(), base.Month(), base.Day()+days, int(off/time.Hour), int(off%time.Hour/time.Minute), 0, 0, base.Location())
	}
	cur := -1 // the last slot started by t
	for i, s := range r.Slots {
		if !at(s.Start).After(t) {
			cur = i
		}
	}
	switch {
	case len(r.Slots) == 1:
		return r.Slots[0].Limit, time.Time{}
	case cur < 0: // before the first slot, the last one runs on
		limit, next = r.Slots[len(r.Slots)-1].Limit, at(r.Slots[0].Start)
	case cur+1 < len(r.Slots):
		limit, next = r.Slots[cur].Limit, at(r.Slots[cur+1].Start)
	default:
		limit, next = r.Slots[cur].Limit, at(period+r.Slots[0].Start)
	}
	if !next.After(t) { // a wall-clock time a daylight saving change skipped
		next = t.Add(time.Minute)
	}
	return limit, next
}

// String writes r back as ParseRate reads it: "off", "10MiB" or a
// timetable.
func (r Rate) String() string {
	if !r.Limited() {
		return "off"
	}
	if len(r.Slots) == 1 && r.Slots[0].Start == 0 && !r.Weekly {
		return ExactSize(r.Slots[0].Limit)
	}
	parts := make([]string, len(r.Slots))
	for i, s := range r.Slots {
		limit := "off"
		if s.Limit > 0 {
			limit = ExactSize(s.Limit)
		}
		day := ""
		start := s.Start
		if r.Weekly {
			d := int(start / (24 * time.Hour))
			start -= time.Duration(d) * 24 * time.Hour
			day = strings.ToUpper(weekdays[d][:1]) + weekdays[d][1:] + "-"
		}
		parts[i] = fmt.Sprintf("%s%02d:%02d,%s", day, int(start/time.Hour), int(start%time.Hour/time.Minute), limit)
	}
	return strings.Join(parts, " ")
}
