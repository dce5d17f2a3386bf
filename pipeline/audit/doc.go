// Package audit keeps a flow's audit trail: every step of every file
// (pipeline.Event: discovered, renamed or dropped by a stage, read with its
// sha256, each delivery attempt and part retry with its error, each commit
// with where the sink put the file, the source's ack with the outcome,
// replays with who asked) appended to a JetStream stream of the flow's own,
// MFT_<flow>_AUDIT, by every runner of the flow.
//
// # Records and the chain
//
// A Trail batches events into records (group commit: one publish carries
// what the flow's files did while the one before it was on its way), so
// the trail costs little next to the chunks. Each Record carries the next
// index of the flow's trail and the sha256 of the record before it, as
// stored; it is published with the stream's last sequence as the expected
// one, so records of several runners form one chain: a runner that finds
// another's record at the end reads it and chains after it. Verify walks
// the chain and names the first record that was removed, changed or moved.
// A chain can only prove itself back to its first record: records removed
// from the head look like records aged out by retention, and a whole tail
// rewritten with fresh hashes is a valid chain. Verify therefore prints the
// head (index and hash), which an operator may keep elsewhere and compare
// later.
//
// # Complete, and nothing twice
//
// The engine emits an event after the step took effect and before it
// records the step in its own state (the source's ack: before the source
// is told, since a source that deletes the file never offers it again), and Emit returns once the event is
// stored (or, with the bus down, after a bounded wait, the event staying
// queued). A runner killed in between does the step again after its
// restart and emits the same event again; events carry an identity (file,
// kind, sink, attempt...) and a Trail drops one whose identity it holds
// already: the events of its own run, and those of the last records of the
// trail when it opens (Options.Recall), which is where the steps a killed
// runner left half done were recorded.
//
// Retention (age, size) is the trail's own, independent of the chunks'.
package audit
