// Package engine runs flows: it reads files from a flow's source through its
// stages onto the JetStream bus as chunks, and delivers them from the bus to
// each sink as concurrently written parts.
//
// Per file, one goroutine of the runner that took it from the source ingests
// it (source → stages → chunks, with a checkpoint in the file's manifest every
// few chunks so an interrupted read resumes instead of restarting) and then
// waits until every sink's delivery is final before acking the source.
// Deliveries are tasks on a work-queue stream, one consumer per sink, so any
// runner sharing the flow may take them: the owner reads the file's chunks in
// order, verifies them, groups them into the sink's parts, writes several at
// once, records each finished part in the delivery record, checks the whole
// file's sha256 and commits. A delivery that fails is retried with backoff
// (JetStream redelivers the task after a delay) until its retry budget is
// spent; then it is marked failed and the other sinks are not affected.
//
// Deliveries start as soon as a file's ingest begins, so reading and writing
// overlap; a sink that needs the final size and sha256 up front implements
// pipeline.ManifestFirst and is opened once the file is completely on the bus.
package engine
