// Package pipeline holds the contracts every mftflow connector implements, the
// registry that maps connector names to config specs and constructors, and the
// flow spec shared by flow files and the Go API.
//
// A flow is one Source, zero or more Stages and one or more Sinks. The engine
// (package pipeline/engine) moves each file as chunks through NATS JetStream
// (package pipeline/bus): a Source yields Items, Stages transform their content
// as streams, and each Sink receives the file as numbered parts that may be
// written concurrently, then a Commit. When every sink is done the engine calls
// Item.Ack with the Outcome.
//
// Required interfaces are small; optional abilities are one-method interfaces
// found by type assertion (RangeOpener, ManifestFirst).
//
// # Connector toolkit
//
// What every connector would otherwise write again lives here once, so that
// connectors import only this package besides their protocol libraries:
// include/exclude/ignore patterns (MatchAny, Included, Polling), when a
// polled file is ready (Poller, PollLoop), after-actions (AfterDelete,
// AfterMove, ApplyAfter, Companions), naming and overwrite policies with
// rename suffixes (Naming, WithSuffix, TargetExists, TargetAppeared), the
// part writer of sinks that write parts into a temporary file (CopyAt,
// TempFileParts), how an upload ends (UploadEnd, CheckPart), and the specs
// of connectors to a server's directory (RemoteConnector,
// RemoteSourceFields, RemoteSinkFields).
package pipeline
