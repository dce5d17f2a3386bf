// Package testkit holds what every mftflow connector's tests share:
// conformance suites for the Source and Sink contracts, in-memory reference
// connectors that pass them, awkward test doubles, and an embedded NATS
// JetStream server.
//
// # Conformance suites
//
// RunSourceTests and RunSinkTests work like testing/fstest.TestFS and
// golang.org/x/net/nettest.TestConn: a connector's test file describes how to
// build and inspect an instance (a SourceHarness or SinkHarness) and the suite
// runs one subtest per promise, each on a fresh instance. An optional ability
// the connector lacks (range reads, resume) makes its subtest skip with the
// reason. A suite fails, once its subtests have passed, if a goroutine it
// started is still running (checked with go.uber.org/goleak): a connector
// closes what it opened. A connector's own test then looks like this:
//
//	func TestSink(t *testing.T) {
//		testkit.RunSinkTests(t, testkit.SinkHarness{
//			New:  func(t *testing.T) pipeline.Sink { ... },
//			Read: func(t *testing.T, name string) ([]byte, bool) { ... },
//			List: func(t *testing.T) []string { ... },
//		})
//	}
//
// RunSiblingTests, in the same manner, checks what a source needs for files
// verified against a checksum file beside them: items that are
// pipeline.SiblingOpener, and after actions that follow
// pipeline.Companions.
//
// # How the sink suite plays the engine
//
// The sink suite drives a Sink the way the engine does, with these
// conventions (the engine follows the same ones):
//
//   - Every file has a hex File.ID, a Name, and the final Size and SHA256 at
//     Commit. At Open, Size is known and SHA256 is "", except that a sink
//     implementing pipeline.ManifestFirst gets both, and the UnknownSize
//     subtest opens with Size -1.
//   - Parts follow PartsFor: the plan's PartSize is rounded up to a whole
//     number of bus chunks of SuiteChunkSize bytes (64 KiB; a PartSize of 0
//     means one chunk per part). Every part but the last has exactly that
//     size and Offset = Number × part size; the last part has Last set.
//   - A 0-byte file is written as exactly one part, Part{Number: 0, Offset: 0,
//     Size: 0, Last: true}, with an empty reader, then committed. A non-empty
//     file never gets an empty part.
//   - Parts are written concurrently (the plan's Concurrency, or
//     pipeline.DefaultParallelism) in shuffled order, each from a plain
//     io.Reader that is neither an io.Seeker nor an io.WriterTo, as bus chunks
//     are. The ShortReads subtest hands out a few bytes per Read.
//   - File sizes depend on the sink's part size: a few parts each, so the
//     whole suite stays within a few seconds for part sizes up to a few MiB.
//
// # Reference connectors
//
// MemorySource and MemorySink keep everything in memory and are strict: the
// sink rejects missing, overlapping or misnumbered parts and a Commit whose
// size or sha256 does not match the content, so engine tests that use it find
// mistakes early. Register adds both to a registry under the name "memory".
//
// # Awkward doubles
//
// In the manner of testing/iotest, ShortReads, ShortReader and FailingReader
// misbehave on the reading side; FailEveryNth, FailAlways and Stall wrap a
// Sink to fail or hang. Each wrapper returns the interface it wraps, so it
// slots into a flow unchanged.
//
// # Helpers for connector tests
//
// WriteParts writes chosen parts of a file to an Upload as PartsFor cuts
// it; ReadItem reads an item's content; ListFiles lists a local directory as
// a SinkHarness.List does; UserDir.FreshDir gives each test its own
// directory on a server that a package shares.
//
// # Flows
//
// RunFlow runs a flow to its end on a NATS server of its own; RunToEnd and
// WaitRun do the same with an engine the test built.
//
// # NATS
//
// StartNATS runs an embedded JetStream server for one test and ConnectNATS
// connects to it; both clean up after the test.
package testkit
