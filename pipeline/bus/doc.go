// Package bus is mftflow's use of NATS JetStream: the names of streams,
// subjects and KV buckets, the encoding of file chunks as messages, the
// records kept in KV, and the embedded nats-server used when no external
// server is given.
//
// Layout, per flow F:
//
//	stream MFT_F_CHUNKS   subjects mft.F.chunk.<file id>     limits retention, file storage
//	stream MFT_F_TASKS    subjects mft.F.task.<sink>         work-queue retention
//	KV     mft_F          file.<file id>                     Manifest
//	                      dlv.<file id>.<sink>               Delivery
//	                      lease.source                       which runner polls the source (engine)
//
// Chunks live in a limits stream because several sinks read them; they are
// purged by subject once every sink committed the file (or after the flow's
// retention). Tasks live in a work-queue stream with one consumer per sink:
// whoever holds a task owns that file's delivery to that sink.
//
// Replicas: streams, bucket and consumers share one replica count (Setup).
// Unset, it is 3 on a JetStream cluster of three or more servers and 1
// otherwise (DetectReplicas), and never lower than the flow's existing
// streams already have; set, existing streams are changed to it.
package bus
