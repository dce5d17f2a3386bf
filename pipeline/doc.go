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
package pipeline
