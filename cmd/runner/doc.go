// Command runner runs mftflow flows and inspects their state.
//
//	runner run FLOW.yaml...         run flows until their sources are exhausted (or forever, for watching sources)
//	runner validate FLOW.yaml...    check flow files without side effects
//	runner connectors [--json]      list every source, stage and sink with its config fields
//	runner status [--failed]        show per-flow, per-sink delivery state from JetStream
//	runner replay --flow NAME ...   queue failed deliveries again, delivered from the bus (not the source)
//	runner audit --flow NAME ...    files' timelines from a flow's audit trail; verify, export it
//	runner console --http ADDR ...  serve the operator console for the flows on a NATS server (package console)
//	runner bench [FLOW.yaml]        measure throughput over a sweep of tuning settings (package bench)
//	runner version                  print the version
//
// By default the runner starts an embedded NATS server with JetStream whose
// store lives in the data directory (--data, default ./.mftflow). One runner
// at a time may use a data directory: it holds runner.lock (an flock, so a
// killed runner never leaves a stale lock behind) and publishes its server's
// address in nats.url so that "runner status" can read a running runner's
// state. With --nats-url the runner joins an existing NATS server or cluster
// instead, and several runners may share the same flows.
//
// --bus-sync sets when the embedded server flushes its store to stable
// storage: always (every write; a power cut loses nothing it acknowledged),
// an interval (a power cut may lose that much of the bus's state; files still
// at their sources are then read and delivered again), or auto: always when
// a flow's source hands each file out once (pipeline.Spec.HandsOutOnce: the
// bus then holds the only copy until the sinks commit), else nats-server's
// default of two minutes. Sources give files up only once the sinks' copies
// are durable (see the engine's package doc), whatever the setting.
//
// Exit codes: 0 when every file passed or was skipped, including after a
// graceful stop on SIGINT or SIGTERM; 3 when some deliveries failed (after a
// stop too); 1 for any other error (a bad flow file, NATS unreachable, a run
// that could not continue). A second SIGINT or SIGTERM, a second or more
// after the first, exits 1 at once; files in flight then resume on the next
// run. (A repeat within the second is taken as the same request: timeout(1)
// signals both its child and the child's process group.)
//
// "runner run --http ADDR --console" serves the operator console beside the
// operations endpoints, with this process's runs' live counters; "runner
// console" serves it alone, attached to a cluster (--nats-url) or to the
// runner using the data directory. Either needs --console-access FILE
// (users with bcrypt-hashed passwords and tokens, each a viewer or an
// operator) or, on a loopback address only, --console-insecure-no-auth;
// --http-tls-cert and --http-tls-key serve HTTPS.
//
// Output follows rclone: progress (bars on a terminal, else a line per flow
// every --stats) and the final summary go to stdout; logs and errors go to
// stderr, errors as "runner: message".
package main
