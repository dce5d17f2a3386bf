// Package bench measures a flow's throughput over a sweep of tuning
// settings, so that chunk size, parallelism, part size and compression can
// be chosen from evidence on the operator's own path. "runner bench" is its
// command line; Go programs that embed the engine use it directly.
//
// A sweep is the cross product of its lists (Sweep.Points). Each point is
// run Warmup times without being counted, then Runs times; every run uses a
// fresh flow name, so nothing is "already delivered", and its streams, KV
// bucket and the outputs it created are removed after it. For each point
// the Report gives the median and spread (min–max) of MB/s and files/s over
// the counted runs, the peak RSS and median CPU seconds of a run, and the
// retries. Next to each chunk size it gives the bus's own ceiling: the same
// number of bytes published with JetStream async publish and read back with
// an ordered consumer, in messages of that chunk size, on the same server,
// with no source, sink, checksum or compression (so a flow that compresses
// text can pass it: fewer bytes cross the bus). The best point is the one
// with the highest median MB/s; Report.Snippet is the flow-file text that
// selects it.
//
// # Targets
//
// A run writes only where the flow says: the flow's sinks, or for the
// synthetic workload (Workload), a directory the bench created. The flow's
// source is read once per run, so it must be repeatable: a source with an
// "after" setting must leave its files ("after: leave"), and a source
// without a "watch" setting (a queue that hands each file out once) is
// refused; "watch" is turned off for the bench so that each run ends when
// the files present at its start are delivered. Local sinks write each run
// under a subdirectory "mftflow-bench-<run>" of their path (through the
// sink's name template), which is removed after the run; other sinks keep
// what they received, as they would in a real run.
//
// # Measuring
//
// An Executor runs one Job and measures it. InProcess runs it in this
// process: CPU seconds are the getrusage(RUSAGE_SELF) difference, and peak
// RSS is the highest VmRSS sampled from /proc/self/status every 20ms during
// the run — a lower bound, since the process's own high-water mark (VmHWM)
// covers its whole life and so would carry one run's peak into the next.
// The runner instead runs every job in a child process of its own ("runner
// bench" runs "runner bench --child"): peak RSS is then the kernel's
// ru_maxrss of that process and CPU seconds its user plus system time,
// embedded NATS server included, which is what "runner run" costs.
// Measurement.RSSMethod says which of the two a number comes from.
package bench
