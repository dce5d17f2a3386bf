package sla_test

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/mftflow/mftflow/pipeline"
	"github.com/mftflow/mftflow/pipeline/sla"
	"github.com/mftflow/mftflow/testkit"
)

var berlin = func() *time.Location {
	loc, err := time.LoadLocation("Europe/Berlin")
	if err != nil {
		panic(err)
	}
	return loc
}()

// at parses "2006-01-02 15:04" in Berlin.
func at(t testing.TB, s string) time.Time {
	t.Helper()
	v, err := time.ParseInLocation("2006-01-02 15:04", s, berlin)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// dailyOrders is the expectation most tests watch.
var dailyOrders = pipeline.Expectation{
	Name:       "daily-orders",
	Files:      "orders-*.csv",
	By:         "Mon-Fri 06:00",
	TimeZone:   "Europe/Berlin",
	WarnBefore: 30 * time.Minute,
}

// recorder keeps the events a watcher raises.
type recorder struct {
	mu     sync.Mutex
	events []pipeline.Event
}

func (r *recorder) Emit(e pipeline.Event) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.events = append(r.events, e)
}

// take returns the events raised since the last take.
func (r *recorder) take() []pipeline.Event {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := r.events
	r.events = nil
	return out
}

// runner is one running watcher with its clock and events.
type runner struct {
	t      *testing.T
	clock  *testkit.ManualClock
	w      *sla.Watcher
	events *recorder
}

// watch starts a watcher of exps on store, on clock, until the test ends.
func watch(t *testing.T, clock *testkit.ManualClock, store sla.Store, reg prometheus.Registerer, exps ...pipeline.Expectation) *runner {
	t.Helper()
	events := &recorder{}
	w, err := sla.New("orders", exps, sla.Options{Clock: clock, Events: events, Store: store, Metrics: reg, Runner: "r1"})
	if err != nil {
		t.Fatal(err)
	}
	ran := make(chan error, 1)
	go func() { ran <- w.Run(context.Background()) }()
	t.Cleanup(func() {
		w.Close()
		if err := <-ran; err != nil {
			t.Errorf("Run: %v", err)
		}
	})
	r := &runner{t: t, clock: clock, w: w, events: events}
	r.flush() // the watcher starts watching at the clock's time
	return r
}

// flush waits until the watcher has handled everything up to now.
func (r *runner) flush() {
	r.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := r.w.Flush(ctx); err != nil {
		r.t.Fatalf("Flush: %v", err)
	}
}

// set moves the clock to when (Berlin time) and returns what was raised.
func (r *runner) set(when string) []pipeline.Event {
	r.t.Helper()
	r.clock.Set(at(r.t, when))
	r.flush()
	return r.events.take()
}

// arrive has the source offer a file now and returns what was raised.
func (r *runner) arrive(name string) []pipeline.Event {
	r.t.Helper()
	r.w.Emit(pipeline.Event{Kind: pipeline.EventDiscovered, Flow: "orders", Name: name, FileID: "id-" + name, Time: r.clock.Now()})
	r.flush()
	return r.events.take()
}

func (r *runner) status() sla.Status {
	r.t.Helper()
	s, err := r.w.Status(context.Background())
	if err != nil || len(s) != 1 {
		r.t.Fatalf("Status = %v, %v", s, err)
	}
	return s[0]
}

// event is what the tests compare of an event.
type event struct {
	Kind         pipeline.EventKind
	Time         string
	Name, Detail string
}

func summary(t *testing.T, events []pipeline.Event) []event {
	var out []event
	for _, e := range events {
		if e.Flow != "orders" || e.Runner != "r1" {
			t.Errorf("event %+v: want flow orders, runner r1", e)
		}
		out = append(out, event{e.Kind, e.Time.In(berlin).Format("2006-01-02 15:04"), e.Name, e.Detail})
	}
	return out
}

func expect(t *testing.T, step string, got []pipeline.Event, want ...event) {
	t.Helper()
	if diff := cmp.Diff(want, summary(t, got)); diff != "" {
		t.Errorf("%s: events (-want +got):\n%s", step, diff)
	}
}

// A weekday expectation: the warning at 05:30, the miss at 06:00, a late
// file at 06:20 clearing it; the next day a file on time raises nothing.
func TestWarningMissAndLateFile(t *testing.T) {
	r := watch(t, testkit.NewManualClock(at(t, "2026-03-02 00:00")), nil, nil, dailyOrders) // a Monday

	expect(t, "05:29", r.set("2026-03-02 05:29"))
	expect(t, "05:30", r.set("2026-03-02 05:30"), event{pipeline.EventSLAWarning, "2026-03-02 05:30", "",
		`daily-orders: 0 of 1 files matching "orders-*.csv", due Mon 2026-03-02 06:00 CET (in 30m)`})
	if s := r.status(); s.State != sla.StateWarning || !s.Since.Equal(at(t, "2026-03-02 05:30")) {
		t.Errorf("status at 05:30: %+v", s)
	}
	expect(t, "05:59", r.set("2026-03-02 05:59"))
	expect(t, "06:00", r.set("2026-03-02 06:00"), event{pipeline.EventSLAMissed, "2026-03-02 06:00", "",
		`daily-orders: 0 of 1 files matching "orders-*.csv" by the deadline Mon 2026-03-02 06:00 CET`})
	want := sla.Status{
		Name: "daily-orders", Files: "orders-*.csv", State: sla.StateMissed, Since: at(t, "2026-03-02 06:00"),
		Deadline: at(t, "2026-03-03 06:00"), WarnAt: at(t, "2026-03-03 05:30"), Expected: 1,
		MissedDeadline: at(t, "2026-03-02 06:00"),
	}
	if diff := cmp.Diff(want, r.status()); diff != "" {
		t.Errorf("status after the miss (-want +got):\n%s", diff)
	}

	expect(t, "another file", append(r.set("2026-03-02 06:20"), r.arrive("invoice.pdf")...))
	expect(t, "late file", r.arrive("orders-0302.csv"), event{pipeline.EventSLAMet, "2026-03-02 06:20", "orders-0302.csv",
		`daily-orders: 1 of 1 files matching "orders-*.csv": late, orders-0302.csv arrived 20m after the deadline Mon 2026-03-02 06:00 CET`})
	if s := r.status(); s.State != sla.StateOK || !s.Since.Equal(at(t, "2026-03-02 06:20")) || s.Arrived != 0 {
		t.Errorf("status after the late file: %+v", s)
	}

	// Tuesday: on time, so nothing to raise.
	expect(t, "Tuesday's file", append(r.set("2026-03-03 05:00"), r.arrive("orders-0303.csv")...))
	for _, when := range []string{"2026-03-03 05:30", "2026-03-03 06:00", "2026-03-03 12:00"} {
		expect(t, when, r.set(when))
	}
	if s := r.status(); s.State != sla.StateOK || !s.Deadline.Equal(at(t, "2026-03-04 06:00")) || s.Arrived != 0 {
		t.Errorf("status on Tuesday after the deadline: %+v", s)
	}
}

// A file that arrives after the warning and before the deadline clears
// the warning; the same file offered again is not counted twice.
func TestWarningCleared(t *testing.T) {
	exp := dailyOrders
	exp.Count = 2
	r := watch(t, testkit.NewManualClock(at(t, "2026-03-02 00:00")), nil, nil, exp)
	expect(t, "first", r.arrive("orders-a.csv"))
	expect(t, "05:30", r.set("2026-03-02 05:30"), event{pipeline.EventSLAWarning, "2026-03-02 05:30", "",
		`daily-orders: 1 of 2 files matching "orders-*.csv", due Mon 2026-03-02 06:00 CET (in 30m)`})
	expect(t, "first again", append(r.set("2026-03-02 05:40"), r.arrive("orders-a.csv")...))
	expect(t, "second", append(r.set("2026-03-02 05:45"), r.arrive("orders-b.csv")...), event{pipeline.EventSLAMet, "2026-03-02 05:45", "orders-b.csv",
		`daily-orders: 2 of 2 files matching "orders-*.csv", 15m before the deadline Mon 2026-03-02 06:00 CET, after a warning`})
	expect(t, "06:00", r.set("2026-03-02 06:00"))
}

// count: 3 with two files is a miss; the third, late, clears it.
func TestCountShort(t *testing.T) {
	exp := dailyOrders
	exp.Count, exp.WarnBefore = 3, 0
	r := watch(t, testkit.NewManualClock(at(t, "2026-03-02 00:00")), nil, nil, exp)
	expect(t, "two files", append(r.arrive("orders-a.csv"), r.arrive("orders-b.csv")...))
	expect(t, "06:00", r.set("2026-03-02 06:00"), event{pipeline.EventSLAMissed, "2026-03-02 06:00", "",
		`daily-orders: 2 of 3 files matching "orders-*.csv" by the deadline Mon 2026-03-02 06:00 CET`})
	if s := r.status(); s.MissedArrived != 2 || s.Arrived != 0 {
		t.Errorf("status: %+v", s)
	}
	expect(t, "third", append(r.set("2026-03-02 07:05"), r.arrive("orders-c.csv")...), event{pipeline.EventSLAMet, "2026-03-02 07:05", "orders-c.csv",
		`daily-orders: 3 of 3 files matching "orders-*.csv": late, orders-c.csv arrived 1h5m after the deadline Mon 2026-03-02 06:00 CET`})
	// Files beyond the missed period's count go to the current one.
	expect(t, "fourth", r.arrive("orders-d.csv"))
	if s := r.status(); s.Arrived != 1 || s.State != sla.StateOK {
		t.Errorf("status after a fourth file: %+v", s)
	}
}

// A missed period that no late file clears is dropped at the next
// deadline, which is judged on its own.
func TestMissNotClearedUntilNextDeadline(t *testing.T) {
	exp := dailyOrders
	exp.WarnBefore = 0
	r := watch(t, testkit.NewManualClock(at(t, "2026-03-02 00:00")), nil, nil, exp)
	if got := r.set("2026-03-02 06:00"); len(got) != 1 || got[0].Kind != pipeline.EventSLAMissed {
		t.Fatalf("Monday 06:00: %v", summary(t, got))
	}
	expect(t, "Tuesday 06:00", r.set("2026-03-03 06:00"), event{pipeline.EventSLAMissed, "2026-03-03 06:00", "",
		`daily-orders: 0 of 1 files matching "orders-*.csv" by the deadline Tue 2026-03-03 06:00 CET`})
	// Tuesday's file, late, clears Tuesday's miss only.
	if got := r.arrive("orders-x.csv"); len(got) != 1 || !strings.HasSuffix(got[0].Detail, "late, orders-x.csv arrived at the deadline Tue 2026-03-03 06:00 CET") {
		t.Errorf("late file: %v", summary(t, got))
	}
}

// On a holiday nothing is expected: the period runs on to the next
// working day's deadline.
func TestHoliday(t *testing.T) {
	exp := dailyOrders
	exp.Holidays = []string{"2026-12-25", "01-01"}
	r := watch(t, testkit.NewManualClock(at(t, "2026-12-24 07:00")), nil, nil, exp) // Thursday, after its deadline
	expect(t, "start", r.set("2026-12-24 07:00"))
	if s := r.status(); !s.Deadline.Equal(at(t, "2026-12-28 06:00")) {
		t.Errorf("deadline after Christmas Eve = %v, want Monday 28th 06:00", s.Deadline.In(berlin))
	}
	for _, when := range []string{"2026-12-25 05:30", "2026-12-25 06:00", "2026-12-26 06:00", "2026-12-27 06:00"} {
		expect(t, when, r.set(when))
	}
	expect(t, "Monday's file", r.arrive("orders-1228.csv"))
	for _, when := range []string{"2026-12-28 06:00", "2026-12-31 05:00", "2026-12-31 06:00"} {
		r.set(when)
		r.arrive("orders-" + when[:10] + ".csv")
	}
	expect(t, "New Year's Day", r.set("2027-01-01 06:00"))
	if s := r.status(); !s.Deadline.Equal(at(t, "2027-01-04 06:00")) || s.State != sla.StateOK {
		t.Errorf("status on New Year's Day: %+v", s)
	}
}

// The deadline stays at 06:00 local time across the changes to and from
// summer time.
func TestDaylightSaving(t *testing.T) {
	for _, c := range []struct {
		name, from     string
		deadline, warn time.Time // in UTC
		zone           string
	}{
		{"spring", "2026-03-27 06:30", time.Date(2026, 3, 30, 4, 0, 0, 0, time.UTC), time.Date(2026, 3, 30, 3, 30, 0, 0, time.UTC), "CEST"},
		{"autumn", "2026-10-23 06:30", time.Date(2026, 10, 26, 5, 0, 0, 0, time.UTC), time.Date(2026, 10, 26, 4, 30, 0, 0, time.UTC), "CET"},
	} {
		t.Run(c.name, func(t *testing.T) {
			clock := testkit.NewManualClock(at(t, c.from))
			r := watch(t, clock, nil, nil, dailyOrders)
			expect(t, "Friday", r.set(c.from))
			if s := r.status(); !s.Deadline.Equal(c.deadline) || !s.WarnAt.Equal(c.warn) {
				t.Errorf("deadline %v, warning %v; want %v, %v", s.Deadline, s.WarnAt, c.deadline, c.warn)
			}
			clock.Set(c.warn.Add(-time.Minute))
			r.flush()
			expect(t, "before the warning", r.events.take())
			clock.Set(c.warn)
			r.flush()
			if got := r.events.take(); len(got) != 1 || got[0].Kind != pipeline.EventSLAWarning {
				t.Errorf("at the warning time: %v", summary(t, got))
			}
			clock.Set(c.deadline.Add(-time.Second))
			r.flush()
			expect(t, "before the deadline", r.events.take())
			clock.Set(c.deadline)
			r.flush()
			got := r.events.take()
			if len(got) != 1 || got[0].Kind != pipeline.EventSLAMissed || !strings.HasSuffix(got[0].Detail, "06:00 "+c.zone) {
				t.Errorf("at the deadline: %v", summary(t, got))
			}
		})
	}
}

// stores are the Store implementations the restart and sharing tests run on.
var stores = []struct {
	name string
	new  func(t *testing.T) sla.Store
}{
	{"memory", func(*testing.T) sla.Store { return sla.NewMemoryStore() }},
	{"kv", func(t *testing.T) sla.Store {
		nc := testkit.ConnectNATS(t, testkit.StartNATS(t))
		js, err := jetstream.New(nc)
		if err != nil {
			t.Fatal(err)
		}
		kv, err := js.CreateKeyValue(context.Background(), jetstream.KeyValueConfig{Bucket: "mft_orders", History: 1})
		if err != nil {
			t.Fatal(err)
		}
		return sla.NewKVStore(kv)
	}},
}

// A watcher started again on the same store neither repeats a warning or
// a miss nor forgets the miss: a late file still clears it.
func TestRestart(t *testing.T) {
	for _, st := range stores {
		t.Run(st.name, func(t *testing.T) {
			store := st.new(t)
			clock := testkit.NewManualClock(at(t, "2026-03-02 00:00"))
			first := watch(t, clock, store, nil, dailyOrders)
			first.set("2026-03-02 05:30")
			first.set("2026-03-02 06:00")
			first.w.Close()

			second := watch(t, clock, store, nil, dailyOrders)
			expect(t, "after the restart", second.set("2026-03-02 06:10"))
			if s := second.status(); s.State != sla.StateMissed || !s.Since.Equal(at(t, "2026-03-02 06:00")) {
				t.Errorf("status after the restart: %+v", s)
			}
			got := second.set("2026-03-02 06:20")
			got = append(got, second.arrive("orders-0302.csv")...)
			if len(got) != 1 || got[0].Kind != pipeline.EventSLAMet || got[0].Name != "orders-0302.csv" {
				t.Errorf("late file after the restart: %v", summary(t, got))
			}
		})
	}
}

// A restart between the warning and the deadline does not warn again.
func TestRestartAfterWarning(t *testing.T) {
	store := sla.NewMemoryStore()
	clock := testkit.NewManualClock(at(t, "2026-03-02 05:00"))
	first := watch(t, clock, store, nil, dailyOrders)
	if got := first.set("2026-03-02 05:35"); len(got) != 1 || got[0].Kind != pipeline.EventSLAWarning {
		t.Fatalf("warning: %v", summary(t, got))
	}
	first.w.Close()
	second := watch(t, clock, store, nil, dailyOrders)
	expect(t, "05:40", second.set("2026-03-02 05:40"))
	if got := second.set("2026-03-02 06:00"); len(got) != 1 || got[0].Kind != pipeline.EventSLAMissed {
		t.Errorf("miss: %v", summary(t, got))
	}
}

// Two watchers sharing a store, as two runners of a flow share its KV
// bucket, raise each event once between them.
func TestSharedStore(t *testing.T) {
	for _, st := range stores {
		t.Run(st.name, func(t *testing.T) {
			store := st.new(t)
			clock := testkit.NewManualClock(at(t, "2026-03-02 00:00"))
			a := watch(t, clock, store, nil, dailyOrders)
			b := watch(t, clock, store, nil, dailyOrders)
			both := func(do func(r *runner)) []pipeline.EventKind {
				var wg sync.WaitGroup
				for _, r := range []*runner{a, b} {
					wg.Add(1)
					go func() { defer wg.Done(); do(r) }()
				}
				wg.Wait()
				var kinds []pipeline.EventKind
				for _, r := range []*runner{a, b} {
					for _, e := range r.events.take() {
						kinds = append(kinds, e.Kind)
					}
				}
				return kinds
			}
			steps := []struct {
				name string
				do   func(r *runner)
				want []pipeline.EventKind
			}{
				{"05:30", func(r *runner) { clock.Set(at(t, "2026-03-02 05:30")); r.flush() }, []pipeline.EventKind{pipeline.EventSLAWarning}},
				{"06:00", func(r *runner) { clock.Set(at(t, "2026-03-02 06:00")); r.flush() }, []pipeline.EventKind{pipeline.EventSLAMissed}},
				// Both see the file (in a cluster one runner would).
				{"late file", func(r *runner) {
					clock.Set(at(t, "2026-03-02 06:20"))
					r.w.Emit(pipeline.Event{Kind: pipeline.EventDiscovered, Flow: "orders", Name: "orders-0302.csv", FileID: "f1", Time: clock.Now()})
					r.flush()
				}, []pipeline.EventKind{pipeline.EventSLAMet}},
				{"Tuesday", func(r *runner) { clock.Set(at(t, "2026-03-03 05:45")); r.flush() }, []pipeline.EventKind{pipeline.EventSLAWarning}},
				{"Tuesday's deadline", func(r *runner) { clock.Set(at(t, "2026-03-03 06:00")); r.flush() }, []pipeline.EventKind{pipeline.EventSLAMissed}},
			}
			for _, s := range steps {
				if diff := cmp.Diff(s.want, both(s.do)); diff != "" {
					t.Errorf("%s: events (-want +got):\n%s", s.name, diff)
				}
			}
		})
	}
}

// The metrics follow the state, and count what this process raised.
func TestMetrics(t *testing.T) {
	reg := prometheus.NewRegistry()
	r := watch(t, testkit.NewManualClock(at(t, "2026-03-02 00:00")), nil, reg, dailyOrders)
	r.set("2026-03-02 05:30")
	r.set("2026-03-02 06:00")
	want := map[string]float64{
		"mftflow_sla_state": 2, "mftflow_sla_misses_total": 1, "mftflow_sla_warnings_total": 1,
		"mftflow_sla_arrived_files": 0, "mftflow_sla_next_deadline_timestamp_seconds": float64(at(t, "2026-03-03 06:00").Unix()),
	}
	if diff := cmp.Diff(want, gather(t, reg)); diff != "" {
		t.Errorf("after the miss (-want +got):\n%s", diff)
	}
	r.set("2026-03-02 06:20")
	r.arrive("orders-1.csv")
	want["mftflow_sla_state"], want["mftflow_sla_met_total"] = 0, 1
	if diff := cmp.Diff(want, gather(t, reg)); diff != "" {
		t.Errorf("after the late file (-want +got):\n%s", diff)
	}
	r.w.Close()
	if diff := cmp.Diff(map[string]float64{"mftflow_sla_misses_total": 1, "mftflow_sla_warnings_total": 1, "mftflow_sla_met_total": 1}, gather(t, reg)); diff != "" {
		t.Errorf("after Close, only counters stay (-want +got):\n%s", diff)
	}
}

// gather returns the value of each series in reg for flow orders and
// expectation daily-orders, by metric name.
func gather(t *testing.T, reg *prometheus.Registry) map[string]float64 {
	t.Helper()
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]float64{}
	for _, f := range families {
		for _, m := range f.Metric {
			labels := map[string]string{}
			for _, l := range m.Label {
				labels[l.GetName()] = l.GetValue()
			}
			if labels["flow"] != "orders" || labels["expectation"] != "daily-orders" {
				t.Errorf("%s has labels %v", f.GetName(), labels)
			}
			out[f.GetName()] = m.GetGauge().GetValue() + m.GetCounter().GetValue()
		}
	}
	return out
}

// Events that are not discoveries, or of other flows, count for nothing.
func TestEmitIgnores(t *testing.T) {
	exp := dailyOrders
	exp.WarnBefore = 0
	r := watch(t, testkit.NewManualClock(at(t, "2026-03-02 00:00")), nil, nil, exp)
	for _, e := range []pipeline.Event{
		{Kind: pipeline.EventCommitted, Flow: "orders", Name: "orders-1.csv"},
		{Kind: pipeline.EventDiscovered, Flow: "other", Name: "orders-2.csv"},
		{Kind: pipeline.EventDiscovered, Flow: "orders", Name: "in/orders-3.csv"},
		{Kind: pipeline.EventSLAMissed, Flow: "orders", Name: "orders-4.csv"},
	} {
		r.w.Emit(e)
	}
	r.flush()
	if s := r.status(); s.Arrived != 0 {
		t.Errorf("arrived %d, want 0", s.Arrived)
	}
}

func TestNewRefuses(t *testing.T) {
	bad := dailyOrders
	bad.By = "Mon-Fry 06:00"
	for _, c := range []struct {
		exps []pipeline.Expectation
		want string
	}{
		{[]pipeline.Expectation{bad}, `flow orders: expectation "daily-orders": by: "Mon-Fry 06:00": "Mon-Fry" is not a day or day range`},
		{[]pipeline.Expectation{dailyOrders, dailyOrders}, `flow orders: expectation name "daily-orders" is used twice: give each expectation its own name`},
	} {
		_, err := sla.New("orders", c.exps, sla.Options{})
		if err == nil || !strings.HasPrefix(err.Error(), c.want) {
			t.Errorf("New: %v, want %s...", err, c.want)
		}
	}
}

// Flush after Close says the watcher is closed; Run a second time fails.
func TestClosed(t *testing.T) {
	r := watch(t, testkit.NewManualClock(at(t, "2026-03-02 00:00")), nil, nil, dailyOrders)
	r.flush()
	if err := r.w.Run(context.Background()); err == nil {
		t.Error("a second Run returned nil")
	}
	r.w.Close()
	if err := r.w.Flush(context.Background()); err != sla.ErrClosed {
		t.Errorf("Flush after Close: %v", err)
	}
}

// ReadStatus reads the state without a watcher, as "runner status" does.
func TestReadStatus(t *testing.T) {
	store := sla.NewMemoryStore()
	clock := testkit.NewManualClock(at(t, "2026-03-02 00:00"))
	r := watch(t, clock, store, nil, dailyOrders)
	r.arrive("orders-1.csv")
	got, err := sla.ReadStatus(context.Background(), store, []pipeline.Expectation{dailyOrders}, at(t, "2026-03-02 05:00"))
	if err != nil || len(got) != 1 || got[0].Arrived != 1 || got[0].State != sla.StateOK {
		t.Errorf("ReadStatus = %+v, %v", got, err)
	}
}

// flakyStore fails while broken is set, as a KV bucket without a leader.
type flakyStore struct {
	sla.Store
	mu     sync.Mutex
	broken bool
}

func (s *flakyStore) set(broken bool) { s.mu.Lock(); s.broken = broken; s.mu.Unlock() }

func (s *flakyStore) Save(ctx context.Context, name string, rec sla.Record, rev uint64) (uint64, error) {
	s.mu.Lock()
	broken := s.broken
	s.mu.Unlock()
	if broken {
		return 0, testkit.ErrInjected
	}
	return s.Store.Save(ctx, name, rec, rev)
}

// A file that arrives while the store fails is counted once it works.
func TestStoreFailure(t *testing.T) {
	store := &flakyStore{Store: sla.NewMemoryStore()}
	clock := testkit.NewManualClock(at(t, "2026-03-02 05:00"))
	r := watch(t, clock, store, nil, dailyOrders)
	store.set(true)
	r.w.Emit(pipeline.Event{Kind: pipeline.EventDiscovered, Flow: "orders", Name: "orders-1.csv", Time: clock.Now()})
	if err := r.w.Flush(context.Background()); err == nil || !strings.Contains(err.Error(), testkit.ErrInjected.Error()) {
		t.Fatalf("Flush with a broken store: %v", err)
	}
	store.set(false)
	expect(t, "05:30", r.set("2026-03-02 05:30"))
	if s := r.status(); s.Arrived != 1 || s.State != sla.StateOK {
		t.Errorf("status: %+v", s)
	}
}
