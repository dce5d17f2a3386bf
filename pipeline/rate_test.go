package pipeline_test

import (
	"errors"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/mftflow/mftflow/pipeline"
)

func TestParseRate(t *testing.T) {
	const h, m = time.Hour, time.Minute
	day := 24 * h
	tests := []struct {
		in   string
		want pipeline.Rate
		back string // String(), when not in
	}{
		{"off", pipeline.Rate{}, ""},
		{"", pipeline.Rate{}, "off"},
		{"0", pipeline.Rate{}, "off"},
		{"10M", pipeline.Rate{Slots: []pipeline.RateSlot{{Limit: 10 << 20}}}, "10MiB"},
		{" 512KiB ", pipeline.Rate{Slots: []pipeline.RateSlot{{Limit: 512 << 10}}}, "512KiB"},
		{"10MB", pipeline.Rate{Slots: []pipeline.RateSlot{{Limit: 10e6}}}, "10000000"},
		{"08:00,10M 18:00,off", pipeline.Rate{Slots: []pipeline.RateSlot{{Start: 8 * h, Limit: 10 << 20}, {Start: 18 * h}}}, "08:00,10MiB 18:00,off"},
		{"0:00,1M 7:30,off", pipeline.Rate{Slots: []pipeline.RateSlot{{Limit: 1 << 20}, {Start: 7*h + 30*m}}}, "00:00,1MiB 07:30,off"},
		{"Mon-08:00,512k Fri-23:59,10M sunday-10:00,off", pipeline.Rate{Weekly: true, Slots: []pipeline.RateSlot{
			{Start: 8 * h, Limit: 512 << 10}, {Start: 4*day + 23*h + 59*m, Limit: 10 << 20}, {Start: 6*day + 10*h},
		}}, "Mon-08:00,512KiB Fri-23:59,10MiB Sun-10:00,off"},
	}
	for _, tt := range tests {
		got, err := pipeline.ParseRate(tt.in)
		if err != nil {
			t.Errorf("ParseRate(%q): %v", tt.in, err)
			continue
		}
		if d := cmp.Diff(tt.want, got); d != "" {
			t.Errorf("ParseRate(%q) (-want +got):\n%s", tt.in, d)
		}
		back := tt.back
		if back == "" {
			back = tt.in
		}
		if s := got.String(); s != back {
			t.Errorf("ParseRate(%q).String() = %q, want %q", tt.in, s, back)
		}
	}
}

func TestParseRateErrors(t *testing.T) {
	tests := []struct {
		in     string
		offset int
		msg    string
	}{
		{"10 MB/s", 0, `"10 MB/s" is not a size or a timetable: write 10MB, 512KiB, off, or "08:00,10M 18:00,off"`},
		{"  fast", 2, `"fast" is not a size or a timetable: write 10MB, 512KiB, off, or "08:00,10M 18:00,off"`},
		{"08:00 10M", 0, `"08:00 10M" is not a size or a timetable: write 10MB, 512KiB, off, or "08:00,10M 18:00,off"`},
		{"100", 0, `100 bytes/s is below the least limit of 1KiB/s: write a unit, such as 100K or 100M, or off`},
		{"10M:1M", 0, `"10M:1M": separate upload and download limits are not supported (a rate limits what is written to sinks): write one size`},
		{"08:00,10M 25:00,off", 10, `timetable entry "25:00,off": "25:00" is not a time of day: write HH:MM from 00:00 to 23:59`},
		{"8:5,1M", 0, `timetable entry "8:5,1M": "8:5" is not a time of day: write HH:MM from 00:00 to 23:59`},
		{"08:60,1M", 0, `timetable entry "08:60,1M": "08:60" is not a time of day: write HH:MM from 00:00 to 23:59`},
		{"08:00,10Q", 0, `timetable entry "08:00,10Q": "10Q" is not a size: write 10M, 512KiB or off`},
		{"08:00,1M 09:00", 9, `timetable entry "09:00": want TIME,LIMIT as in "08:00,10M" or "Mon-08:00,10M"`},
		{"08:00,1M,2M", 0, `timetable entry "08:00,1M,2M": want TIME,LIMIT as in "08:00,10M" or "Mon-08:00,10M"`},
		{"08:00,10", 0, `timetable entry "08:00,10": 10 bytes/s is below the least limit of 1KiB/s: write a unit, such as 10K or 10M, or off`},
		{"08:00,1M:off", 0, `timetable entry "08:00,1M:off": "1M:off": separate upload and download limits are not supported (a rate limits what is written to sinks): write one size`},
		{"18:00,off 08:00,10M", 10, `timetable entry "08:00,10M" comes after "18:00,off": list the entries in order through the day`},
		{"08:00,1M 08:00,2M", 9, `timetable entry "08:00,2M" is at the same time as "08:00,1M": give each time one limit`},
		{"Mo-08:00,1M", 0, `timetable entry "Mo-08:00,1M": "Mo" is not a day: write Mon, Tue, Wed, Thu, Fri, Sat or Sun`},
		{"Tue-08:00,1M Mon-09:00,off", 13, `timetable entry "Mon-09:00,off" comes after "Tue-08:00,1M": list the entries in order through the week, from Monday`},
		{"Mon-08:00,1M 18:00,off", 13, `timetable entry "18:00,off" has no day but "Mon-08:00,1M" has one: give every entry a day, or none`},
		{"08:00,1M Mon-18:00,off", 9, `timetable entry "08:00,1M" has no day but "Mon-18:00,off" has one: give every entry a day, or none`},
	}
	for _, tt := range tests {
		_, err := pipeline.ParseRate(tt.in)
		var re *pipeline.RateError
		if !errors.As(err, &re) {
			t.Errorf("ParseRate(%q) = %v, want a *RateError", tt.in, err)
			continue
		}
		if re.Msg != tt.msg || re.Offset != tt.offset {
			t.Errorf("ParseRate(%q):\n got %d %s\nwant %d %s", tt.in, re.Offset, re.Msg, tt.offset, tt.msg)
		}
	}
}

func TestRateAt(t *testing.T) {
	daily, _ := pipeline.ParseRate("08:00,10M 18:00,off")
	weekly, _ := pipeline.ParseRate("Mon-08:00,1M Fri-18:00,off")
	constant, _ := pipeline.ParseRate("2M")
	zone := time.FixedZone("X", 2*3600)
	at := func(day, hour, min int) time.Time { return time.Date(2026, 3, day, hour, min, 0, 0, zone) } // 2026-03-02 is a Monday
	tests := []struct {
		name  string
		rate  pipeline.Rate
		t     time.Time
		limit int64
		next  time.Time
	}{
		{"before the first slot, the last runs on", daily, at(3, 7, 59), 0, at(3, 8, 0)},
		{"at the start of a slot", daily, at(3, 8, 0), 10 << 20, at(3, 18, 0)},
		{"in the last slot", daily, at(3, 23, 0), 0, at(4, 8, 0)},
		{"weekly, Sunday", weekly, at(8, 12, 0), 0, at(9, 8, 0)},
		{"weekly, Wednesday", weekly, at(4, 12, 0), 1 << 20, at(6, 18, 0)},
		{"weekly, Monday before the first slot", weekly, at(2, 7, 0), 0, at(2, 8, 0)},
		{"constant", constant, at(5, 1, 2), 2 << 20, time.Time{}},
		{"none", pipeline.Rate{}, at(5, 1, 2), 0, time.Time{}},
	}
	for _, tt := range tests {
		limit, next := tt.rate.At(tt.t)
		if limit != tt.limit || !next.Equal(tt.next) {
			t.Errorf("%s: At(%v) = %d, %v; want %d, %v", tt.name, tt.t, limit, next, tt.limit, tt.next)
		}
	}
}

// TestRateAtDaylightSaving: a slot keeps its wall-clock time across a
// change of the clocks, and a slot at a time the change skips starts when
// the clocks go on.
func TestRateAtDaylightSaving(t *testing.T) {
	berlin, err := time.LoadLocation("Europe/Berlin")
	if err != nil {
		t.Skip(err)
	}
	r, _ := pipeline.ParseRate("02:30,1M 08:00,off")
	// Clocks went from 02:00 to 03:00 on 2026-03-29.
	before := time.Date(2026, 3, 28, 9, 0, 0, 0, berlin)
	if _, next := r.At(before); !next.Equal(time.Date(2026, 3, 29, 3, 30, 0, 0, berlin)) {
		t.Errorf("next change after %v: %v, want 03:30 the next day (02:30 did not exist)", before, next)
	}
	sunday := time.Date(2026, 3, 29, 5, 0, 0, 0, berlin)
	if limit, next := r.At(sunday); limit != 1<<20 || !next.Equal(time.Date(2026, 3, 29, 8, 0, 0, 0, berlin)) {
		t.Errorf("At(%v) = %d, %v; want 1MiB until 08:00", sunday, limit, next)
	}
}

func FuzzParseRate(f *testing.F) {
	for _, s := range []string{
		"off", "10M", "512KiB", "10 MB/s", "08:00,10M 18:00,off", "Mon-08:00,512k Sat-00:00,off",
		"25:00,off", "08:00,1M 08:00,2M", "18:00,off 08:00,1M", "10M:1M", "Mon-08:00,1M 09:00,off",
		"\t08:00,1M\n", "1e400", "99999999999999999999T", "23:59,1K 00:00,1K", "sunday-23:59,1t",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		r, err := pipeline.ParseRate(s)
		if err != nil {
			var re *pipeline.RateError
			if !errors.As(err, &re) || re.Offset < 0 || re.Offset > len(s) {
				t.Fatalf("ParseRate(%q): %v (%#v)", s, err, re)
			}
			return
		}
		for i, sl := range r.Slots {
			if sl.Limit < 0 || (sl.Limit > 0 && sl.Limit < pipeline.MinRate) || (i > 0 && sl.Start <= r.Slots[i-1].Start) {
				t.Fatalf("ParseRate(%q) = %+v: slot %d out of bounds or order", s, r, i)
			}
		}
		// What String writes reads back as the same Rate.
		again, err := pipeline.ParseRate(r.String())
		if err != nil {
			t.Fatalf("ParseRate(%q).String() = %q does not parse: %v", s, r.String(), err)
		}
		if r.Limited() && !cmp.Equal(r, again) {
			t.Fatalf("ParseRate(%q) = %+v, but its String %q reads as %+v", s, r, r.String(), again)
		}
		now := time.Date(2026, 3, 4, 12, 0, 0, 0, time.UTC)
		if _, next := r.At(now); !next.IsZero() && !next.After(now) {
			t.Fatalf("ParseRate(%q).At(%v): next change %v is not later", s, now, next)
		}
	})
}
