#!/usr/bin/env bash
# Builds the pinned rclone that the benchmarks measure the runner against
# into ./bin/rclone (relative to the module root) unless it is already there,
# then prints its path. The baseline is the newest rclone release on the Go
# module proxy when it was pinned (an old distribution package is several
# times slower on small files); set RCLONE_VERSION to measure another.
set -euo pipefail

RCLONE_VERSION="${RCLONE_VERSION:-v1.76.0}"
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
bin="$root/bin"
target="$bin/rclone"
stamp="$bin/rclone.version" # the version bin/rclone was built from

if [[ ! -x "$target" || "$(cat "$stamp" 2>/dev/null)" != "$RCLONE_VERSION" ]]; then
	mkdir -p "$bin"
	echo "building rclone@$RCLONE_VERSION into $bin (takes about four minutes)" >&2
	# Outside any module's influence: "go install pkg@version" ignores the
	# current module. -trimpath keeps the binary free of this machine's paths.
	(cd "$bin" && GOBIN="$bin" GOFLAGS=-buildvcs=false CGO_ENABLED=0 \
		go install -trimpath "github.com/rclone/rclone@$RCLONE_VERSION")
	echo "$RCLONE_VERSION" >"$stamp"
fi
echo "$target"
