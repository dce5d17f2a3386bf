#!/usr/bin/env bash
# Builds the pinned nats-server used by the cluster tests (testkit/natscluster)
# into ./bin/nats-server (relative to the module root) unless it is already
# there, then prints its path.
#
# The version is the github.com/nats-io/nats-server/v2 version in go.mod, so
# the separate server processes of the cluster tests run the same code as the
# runner's embedded server; set NATS_SERVER_VERSION to override it.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
NATS_SERVER_VERSION="${NATS_SERVER_VERSION:-$(awk '$1 == "github.com/nats-io/nats-server/v2" { print $2; exit }' "$root/go.mod")}"
if [[ -z "$NATS_SERVER_VERSION" ]]; then
	echo "nats-server.sh: no github.com/nats-io/nats-server/v2 version in $root/go.mod; set NATS_SERVER_VERSION" >&2
	exit 1
fi

. "$(dirname "${BASH_SOURCE[0]}")/pinned.sh"
pinned nats-server github.com/nats-io/nats-server/v2 "$NATS_SERVER_VERSION"
