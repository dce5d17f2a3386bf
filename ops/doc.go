// Package ops serves a runner's operations endpoints over HTTP:
//
//	GET /healthz   200 "ok": the process is alive and serving.
//	GET /readyz    200 "ok" when the NATS connection is up, JetStream answers,
//	               every flow's chunk and task streams, sink consumers and KV
//	               bucket exist and no flow's bus store refuses writes for
//	               want of room (Options.Problems); else 503 with one reason
//	               a line.
//	GET /metrics   Prometheus metrics (text or protobuf, as the scraper asks):
//	               the engine's (see package pipeline/engine) and whatever
//	               else the gatherer holds.
//	GET /status    JSON of every flow's deliveries read from the KV state, the
//	               same data as "runner status --json"; ?flow=NAME (repeated or
//	               comma-separated) narrows it, and an unknown flow is a 404.
//	/console/      the operator console, when Options.Console is set (package
//	               console); "/" then leads there.
//
// NewHandler builds the handler for an application to mount where it likes;
// Listen serves it on its own address, as the runner's --http flag does, and
// ListenTLS over HTTPS (--http-tls-cert, --http-tls-key).
//
// Readiness speaks of this runner's ability to work, not of the files: a
// failed delivery does not make a runner unready. Checks that reach NATS are
// bounded by Options.Timeout, so a probe never hangs on a stalled server.
package ops
