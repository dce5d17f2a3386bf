// Package natscluster starts a real NATS JetStream cluster for tests: separate
// nats-server processes on 127.0.0.1, each with its own client, cluster and
// monitoring ports (chosen at run time) and its own store directory.
//
// The server binary is not built from the module: scripts/nats-server.sh
// builds the nats-server version pinned in go.mod into bin/nats-server.
// Start finds it through the MFTFLOW_NATS_SERVER environment variable, then
// bin/nats-server below the module root, then PATH, and skips the test with
// a message saying how to get it when there is none.
//
// Separate processes, rather than servers embedded in the test binary, are
// what lets a test kill a node with SIGKILL and restart it on the same store,
// as an operator's cluster would see it.
package natscluster
