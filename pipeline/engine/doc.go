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
// A sink that lost what earlier attempts wrote (pipeline.Lost: a temporary
// file gone, a multipart upload aborted, or broken by a server that stopped
// while completing it) fails the delivery at once, and the runner that
// holds the file reads it again from its source for the sinks that did not
// commit it, as the next run would (at most maxRereads times).
//
// In the code, each of these is a small type with a method per step, in the
// order they run: a version (ingest.go) takes one version of a file from
// the source to its outcome (accept, group, readManifest, rejoin, again,
// read; reading onto the bus in read.go and publish.go, outcomes and acks
// in finish.go); a delivery (attempt.go, its tasks in deliver.go) is one
// attempt at one sink (begin, waitForFile, open, write, await, claim,
// commit; fail records an attempt that ends early), and its partWriter
// (parts.go) reads the chunks in order and writes the parts. Small files
// are grouped in group.go, a group delivered in groupdeliver.go, and a
// member made a file of its own again in ungroup.go. KV keys are built and
// taken apart in package bus (bus.DeliveryKey, bus.ParseKey).
//
// Deliveries start as soon as a file's ingest begins, so reading and writing
// overlap; a sink that needs the final size and sha256 up front implements
// pipeline.ManifestFirst and is opened once the file is completely on the bus.
//
// Per-file round trips to JetStream, not bytes, bound how many small files
// a second go through, so small files travel in groups. A new file that
// fits in one chunk and in inlineMax (32 KiB), in a flow that does not
// retain chunks, is read and handed to the open group; a group closes at
// 128 files, 512 KiB (or the chunk size) or 5 ms after its first file, and
// then: each member's manifest is created naming the group (a file that has
// a manifest already was offered before, and goes its own way instead),
// the members' bytes are published as one chunk, the group's record
// (bus.Group: each member's name, size, sha256 and place in that chunk) is
// written, and one task per sink is queued. A sink's delivery of a group
// opens and writes each member that is not final yet, claims the commit
// once for all of them, commits each, and writes one record
// (bus.GroupDelivery) saying how each member ended: a member that fails is
// tried again by the group's next attempt, with its own failure count
// against the sink's retry budget, or fails alone. Once every sink's record
// is final each member's source item is acked with its own outcome, and the
// group's chunk is removed when every member passed. A group of n files to
// s sinks costs n manifest writes, sent at once, and about 4 + 8s other
// bus operations, where a file alone to one sink costs about 10.
//
// Status, replay and reruns stay per file: status fills in a member's
// deliveries from its group's records; a replay, or a rerun that must send
// a member again, first makes it a file of its own (its bytes into its
// manifest, its deliveries into records of their own), which then goes the
// way of any other file. A run offered a member whose group was never
// written (the run writing it died between the manifests and the group)
// writes the group's record as abandoned first, so that the writer, should
// it still be alive, cannot write it after all, and reads the file afresh.
// After many files that turned out known (a restart over a folder that
// keeps its files), a run looks at a file's manifest before reading it.
//
// A file that does not go into a group but fits in one chunk takes a
// shorter path too (unless an earlier read of it was interrupted): its
// chunk is published, then its manifest is written ready at once, then its
// tasks are queued (a run that finds a ready file queues them again, in
// case the one before stopped in between); its deliveries read the chunk in
// one request instead of a consumer and record the part in the commit's
// record write; records are written from the revision last seen
// (bus.UpdateFrom) instead of being read first. Such a file of at most 32
// KiB, unless the flow retains chunks, carries its bytes inside its
// manifest (Manifest.Inline), so it has no chunk to publish, read or purge;
// they leave the manifest with the write that records every sink
// committed, and stay while a delivery failed, for a replay.
//
// Several runners may share a flow (the same NATS cluster, the same flow
// name): each takes delivery tasks, but only one at a time polls the source,
// the holder of a lease in the flow's KV bucket (LeaseKey), so a pickup
// folder or a Thru flow is not read twice. The holder renews the lease; when
// it stops (it died or lost NATS), another runner takes over once Options.
// LeaseTTL has passed without a renewal, and a runner that stops gracefully
// releases it at once. A run without the lease does not end by itself, even
// on a finite source, until it gets the lease and finds the source exhausted.
//
// # Durability before the source lets go
//
// A SIGKILL leaves what the process wrote in the operating system's page
// cache; a power cut does not. So when the source removes a file once it is
// delivered (Manifest.SourceRemoves, from pipeline.AckRemover at ingest), a
// delivery calls its sink's Flush between Commit and recording the commit
// (or the skip): a commit on record, which a later run trusts, is then
// never one a power cut can take back, and a flush that fails is a failed
// attempt of that delivery (the next attempt commits and flushes again).
// And before the engine acks a file with an
// outcome whose Ack removes the file from its source (the item implements
// pipeline.AckRemover and says so: local and S3 sources with "after: delete"
// or "move" for Passed, the Thru pickup, whose spooled copy goes, for any
// outcome), it calls Flush on every sink of this run that implements
// pipeline.Flusher and committed the file (every such sink, when a file
// finished by an earlier run is acked again), all at once, and acks only
// once every Flush returned nil. A sink without Flush is durable when its
// Commit returns (an object store's acknowledgement). The local sink flushes
// with one syncfs of its file system for all the files committed before the
// call, or returns at once with fsync set.
//
// When a Flush before the ack fails, the file is not acked at all: not as
// passed, which would remove a file whose only copies may not survive a
// power cut, nor as failed, which would misreport a delivered file. It stays
// at the source and is offered again after a restart; that run finds the
// file done, flushes again and acks it. Sources that keep their files are
// acked without a flush.
//
// The embedded server's own store is flushed every two minutes by default
// (bus.Sync; the runner's --bus-sync): a power cut may lose that much of the
// bus's state, and files that their sources still hold are then read and
// delivered again (subject to each sink's overwrite policy). A source that
// hands each file out once needs the bus flushed on every write.
//
// # A full bus store
//
// A write the bus refuses for want of room (bus.StoreFullError: the
// server's JetStream storage, an account's limit, a stream's max_bytes) is
// tried again with backoff: chunk and task publishes and record writes
// alike (bus.SpaceWait, one per run, which bus.Store's writes use too).
// Room comes back as deliveries write chunks and remove them. The bound,
// Options.BusFullWait, is on the spell of refusals: once the store has
// refused writes for that long with none going through, a waiting write
// gives up, and so does every later one at its first refusal until a
// write goes through. A read that gives up is not tried again: the file
// fails, its chunks are removed from the bus first so that its failure
// (and its deliveries' failures) can be recorded, and the source keeps it
// for a later run, which reads it afresh. A delivery whose record cannot
// be written is no failure of the sink's: it waits like one for a reader.
// Waits are logged once per file, then every 30 seconds, and once more
// when room comes; Run.Problems says so while they last (the runner's
// /readyz). A store that refuses every write for twice the bound and three
// lease TTLs more, so that not even a failure can be recorded nor the
// source lease taken, stops the run with that error (a finite source would
// otherwise never end).
//
// # Retention and replay
//
// A file's chunks leave the bus as the sinks write them (below the slowest
// unfinished delivery's last run of written parts), and all of them once
// every sink committed the file. With bus.retention or bus.retention_size
// set, chunks stay in full until the janitor (each run of the flow has one)
// removes them: those of files every sink committed once the retention has
// passed since the file finished, and, while the finished files' chunks
// exceed the size bound, those of the files that finished first (committed
// files before files with a failed delivery). Chunks of a file with a failed
// delivery otherwise stay.
//
// Replay queues failed deliveries again, to be delivered from those chunks:
// it checks that every chunk is there (Manifest.Purged, the subject's message
// count and its first chunk), marks the manifest Replaying (removing chunks
// marks the manifest first and skips marked files, so neither misses the
// other), resets the delivery record and publishes a task with a fresh
// message id. Whichever runner ends the replayed delivery recomputes the
// file's outcome and clears the mark; the source, acked when the file first
// finished, is not called. A "replay.<id>" key lets a run that ends by itself
// find replayed files and wait for them first.
//
// When the chunks are gone, or a replay names a sink the file was never
// queued to, the file is marked instead (Manifest.Redeliver) to be read
// again from its source. A run whose source offers a finished file reads it
// again for the sinks whose delivery failed and those the mark names: it
// starts a new epoch, keeps the records of the deliveries that committed
// (their tasks, queued again with the others, end at once) and forgets the
// rest. A source keeps a file whose delivery failed, so a rerun delivers
// what a full disk or a sink's outage stopped, without bus retention.
//
// # Crashes and restarts
//
// A delivery's retry budget counts failures at its sink (Delivery.Failures),
// not attempts: an attempt cut short because its runner stopped or died,
// or because nobody has read the file from its source for staleRead
// AckWaits (the reader's runner died; a restarted runner reads on), spends
// none of it. After abandonedRead AckWaits without a reader the file is
// taken as abandoned and the delivery fails, saying so.
//
// # Bandwidth limits
//
// A sink's rate and the flow's (pipeline.SinkSpec.Rate, pipeline.Flow.Rate)
// are applied here, where the engine hands a part to a sink, not in the
// connectors: every sink, plugins included, is limited alike. Each has one
// pipeline.Throttle for the run, shared by every part and file written at
// once, so parallelism does not multiply the limit. The reader a sink gets
// is paced as the sink reads it (pipeline.Paced); a sink that takes the
// part's slices whole (pipeline.SlicesOf) is charged for them first; a
// group member written whole (pipeline.WholeWriter) is charged before the
// write. A part written again is charged again: its bytes cross again.
//
// # Metrics
//
// With Options.Metrics set, the engine registers these Prometheus
// collectors (several engines may share one registry; series carry the flow
// name, and the sink name where there is one):
//
//	mftflow_read_bytes_total{flow}               bytes put on the bus (after the stages)
//	mftflow_read_files_total{flow}               files read completely onto the bus
//	mftflow_read_reference_files_total{flow}     of those, files whose chunks carry references
//	mftflow_source_changed_total{flow}           files found changed at their source mid-transfer
//	mftflow_chunk_publish_seconds{flow}          histogram: chunk publish to its ack
//	mftflow_delivered_bytes_total{flow,sink}     bytes of parts written to the sink
//	mftflow_delivered_files_total{flow,sink}     deliveries committed
//	mftflow_part_write_seconds{flow,sink}        histogram: one successful part write
//	mftflow_part_retries_total{flow,sink}        part writes tried again within an attempt
//	mftflow_delivery_retries_total{flow,sink}    delivery attempts failed and scheduled again
//	mftflow_delivery_failures_total{flow,sink}   deliveries failed for good
//	mftflow_deliveries_in_flight{flow,sink}      deliveries this process is working on
//	mftflow_bus_tasks_pending{flow,sink}         tasks no runner has taken yet
//	mftflow_bus_tasks_ack_pending{flow,sink}     tasks taken and not yet acknowledged
//	mftflow_bus_chunks_stored{flow}              messages in the flow's chunk stream
//	mftflow_bus_chunk_bytes_stored{flow}         bytes in the flow's chunk stream
//	mftflow_bus_info_errors_total                bus gauge reads that failed
//	mftflow_bus_store_full{flow}                 1 while the bus store refuses the flow's writes for want of room
//	mftflow_bus_writes_refused_total{flow}       writes refused for want of room (once per write)
//
// Counters count what this process did. A file counts as delivered once,
// when its committed state is recorded. Delivered bytes count each part when
// the sink accepts it: a write that fails and is tried again counts once,
// when it succeeds, and the parts a resumed delivery finds written by an
// earlier attempt (of this or another runner) are not counted again. A part
// is counted twice only when it really was sent twice: written, then lost
// from the delivery record by a crash before the record was saved. Bytes of
// a delivery that later fails for good stay counted: they were moved. A read
// resumed from a checkpoint counts again the chunks it publishes again.
//
// The bus gauges are read from JetStream at scrape time (stream and consumer
// info, within two seconds) for each flow with a run in the process; a flow
// run twice in one process is read once.
package engine
