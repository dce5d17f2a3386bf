#!/usr/bin/env bash
# Builds the pinned MinIO server used by the S3 connector's tests into ./bin/minio
# (relative to the module root) unless it is already there, then prints its path.
#
# The build takes about five minutes on two cores. The version is a Go
# pseudo-version of github.com/minio/minio, pinned so every machine tests
# against the same server; raise it only together with a test run.
set -euo pipefail

MINIO_VERSION="${MINIO_VERSION:-v0.0.0-20260212201848-7aac2a2c5b7c}"

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
bin="$root/bin"
target="$bin/minio"
stamp="$bin/minio.version" # the version bin/minio was built from

if [[ ! -x "$target" || "$(cat "$stamp" 2>/dev/null)" != "$MINIO_VERSION" ]]; then
	mkdir -p "$bin"
	echo "building minio@$MINIO_VERSION into $bin (takes a few minutes)" >&2
	# Outside any module's influence: "go install pkg@version" ignores the
	# current module. -trimpath keeps the binary free of this machine's paths.
	(cd "$bin" && GOBIN="$bin" GOFLAGS=-buildvcs=false CGO_ENABLED=0 \
		go install -trimpath "github.com/minio/minio@$MINIO_VERSION")
	echo "$MINIO_VERSION" >"$stamp"
fi
echo "$target"
