// Package sdk turns connectors written against the pipeline contracts into a
// plugin binary the runner loads from its plugins directory.
//
// An author writes a source, stage or sink exactly as a built-in one is
// written (pipeline.Source, pipeline.Stage, pipeline.Sink), registers it in
// a pipeline.Registry with its spec, and calls Serve from main:
//
//	func main() {
//		r := pipeline.NewRegistry()
//		if err := r.RegisterSink(mySpec, newMySink); err != nil {
//			log.Fatal(err)
//		}
//		sdk.Serve(r, sdk.Version("1.0.0"))
//	}
//
// The runner starts the binary once to read its specs, then one process per
// connector instance in a flow. Errors keep their identity across the
// process boundary: pipeline.Permanent errors fail the delivery at once,
// pipeline.ErrSkip and pipeline.ErrExists are seen as such, everything else
// is retried. Log with log/slog: Serve points slog's default logger at the
// runner, which shows the records in its own log with the plugin's name.
//
// Run by hand, a plugin binary says it must be started by the runner and
// exits.
package sdk
