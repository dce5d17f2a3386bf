#!/usr/bin/env bash
# Builds the pinned rclone that the benchmarks measure the runner against
# into ./bin/rclone (relative to the module root) unless it is already there,
# then prints its path. The baseline is the newest rclone release on the Go
# module proxy when it was pinned (an old distribution package is several
# times slower on small files); set RCLONE_VERSION to measure another.
set -euo pipefail

RCLONE_VERSION="${RCLONE_VERSION:-v1.76.0}"
. "$(dirname "${BASH_SOURCE[0]}")/pinned.sh"
pinned rclone github.com/rclone/rclone "$RCLONE_VERSION"
