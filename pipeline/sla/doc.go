// Package sla watches a flow's arrival SLAs: the files a partner promised
// to deliver by a time (pipeline.Expectation, "expect:" in a flow file).
// A transfer that never starts raises no error anywhere else — no file, no
// failed delivery — so the absence itself has to be noticed: this package
// turns "orders-*.csv by 06:00 on weekdays" into events before, at and
// after the deadline.
//
// # Periods
//
// Each expectation's deadlines (By, in its zone, skipping holidays) cut
// time into periods: a period runs from one deadline to the next, and the
// files whose names match the glob that the source offers in it (the
// engine's discovered events) count for it. Arrival is when the source
// offered the file, which is when the runner saw it: a file that lay at the
// source while no runner ran counts when one finds it.
//
//   - At deadline − WarnBefore, a period short of Count files raises
//     sla_warning, once.
//   - At the deadline, a period still short raises sla_missed, once. Until
//     the next deadline a late file counts for the missed period first;
//     the one that completes it raises sla_met, its Detail saying how late.
//     At the next deadline a miss not made up is dropped (the event and the
//     misses_total counter keep it) and the new period is judged alone.
//   - sla_met is raised only to clear something: a miss, or a warning that
//     files then made up before the deadline. A period whose files arrive
//     before any warning raises nothing; the audit trail has their
//     discovered events, and status and metrics show ok. That keeps
//     notifications to pairs (warning or miss, then met) instead of a
//     message per expectation per day.
//   - A deadline on a holiday is skipped: its files count for the next
//     deadline's period.
//
// Deadlines are wall-clock times in the expectation's zone, so "06:00" is
// 06:00 local time on both sides of a daylight-saving change (the period
// across it is an hour shorter or longer). When no watcher ran at a
// deadline, the period a watcher last saw is judged when one runs again
// (the miss's Detail says how much later); periods that no watcher saw at
// all are not judged, since nobody could have seen their files either. The
// first watcher of an expectation judges the period it starts in, counting
// the files offered from then on: a source offers what it holds when the
// runner starts, so files waiting there count.
//
// # State, restarts and clusters
//
// A Store keeps each expectation's Record: the current period's count and
// what was raised for it, and the missed period that a late file may still
// clear. The KV implementation (NewKVStore) writes into the flow's JetStream
// bucket with compare-and-swap, and the watcher raises an event only after
// its write of the event went through. So a restarted watcher neither
// repeats a warning or miss nor forgets one, and the runners of a cluster,
// each with its own watcher on the same bucket, raise each event once
// between them: the others' writes fail, they read the record again and
// find it raised. A file offered twice (a restart before its ack) counts
// once, by the engine's file id. The cost of raising after the write is
// that a process that dies between the write and the Emit call loses that
// event (status and metrics still show the state): at most once, never
// twice.
//
// # Time
//
// The watcher's Clock has Now and AfterFunc only, so tests move a fake one
// (testkit.ManualClock) across deadlines hours apart without sleeping.
// Run sleeps until the next warning time or deadline, but never longer than
// a minute, so that a wall clock that jumps (NTP, a suspended machine) is
// followed within a minute. Flush waits until everything emitted and due
// so far is handled: tests use it instead of sleeping, and callers may
// before they read status.
//
// # Where the events go
//
// Emit only counts discovered events; the watcher sends its own events to
// Options.Events, a pipeline.EventSink: the engine's fan-out to the audit
// trail, notifications and embedding programs. This package neither
// formats messages for people nor sends them. Status and ReadStatus give
// each expectation's state, next deadline and counts for "runner status".
//
// # Metrics
//
// With Options.Metrics, labelled by flow and expectation:
//
//	mftflow_sla_state                            gauge    0 ok, 1 warning, 2 missed
//	mftflow_sla_arrived_files                    gauge    files counted for the current period
//	mftflow_sla_next_deadline_timestamp_seconds  gauge    the current period's deadline
//	mftflow_sla_warnings_total                   counter  sla_warning events this process raised
//	mftflow_sla_misses_total                     counter  sla_missed events this process raised
//	mftflow_sla_met_total                        counter  sla_met events this process raised
//
// The gauges show the record as this process last read or wrote it (in a
// cluster, the runner that counted the latest file is the freshest) and
// are removed when the watcher stops; counters count what this process
// raised, so the sum over a cluster's runners is the flow's total.
package sla
