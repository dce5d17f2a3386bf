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

bin="$root/bin"
target="$bin/nats-server"
stamp="$bin/nats-server.version" # the version bin/nats-server was built from

if [[ ! -x "$target" || "$(cat "$stamp" 2>/dev/null)" != "$NATS_SERVER_VERSION" ]]; then
	mkdir -p "$bin"
	echo "building nats-server@$NATS_SERVER_VERSION into $bin (takes a minute or two)" >&2
	# Outside any module's influence: "go install pkg@version" ignores the
	# current module. -trimpath keeps the binary free of this machine's paths.
	(cd "$bin" && GOBIN="$bin" GOFLAGS=-buildvcs=false CGO_ENABLED=0 \
		go install -trimpath "github.com/nats-io/nats-server/v2@$NATS_SERVER_VERSION")
	echo "$NATS_SERVER_VERSION" >"$stamp"
fi
echo "$target"
