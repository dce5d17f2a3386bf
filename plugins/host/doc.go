// Package host loads connector plugins: executables in a plugins directory,
// built with plugins/sdk, that the runner talks to over gRPC through
// hashicorp/go-plugin.
//
// Discover starts each executable once to read its specs (go-plugin
// handshake with protocol version negotiation, mutual TLS generated per
// process) and Register adds them to a registry next to the built-in
// connectors, so flow files use them by name like any other. Each connector
// instance of a flow then runs in a process of its own. A process that dies
// is started again, with backoff, on the next call; uploads and items of the
// dead process fail with a retryable error, and the engine resumes them from
// the bus and the delivery state.
//
// File content crosses as frames of at most 1 MiB, except upload parts on
// Linux: the host shares memory with each sink process (a memfd passed as
// descriptor 3, named by wire.ShmEnv), copies a part in and sends only its
// offset, which spares the data gRPC framing and TLS.
//
// Every plugin connector gets one extra config field, plugin_sha256: a
// "sha256:<hex>" pin of the binary, checked by go-plugin each time the
// process is started.
//
// Plugin output reaches the runner's slog logger: hclog records (what
// plugins/sdk makes of slog records) keep their level and attributes,
// other stderr and stdout lines are logged as they are.
package host
