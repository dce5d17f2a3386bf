#!/usr/bin/env bash
# Builds the pinned MinIO server used by the S3 connector's tests into ./bin/minio
# (relative to the module root) unless it is already there, then prints its path.
#
# The build takes about five minutes on two cores. The version is a Go
# pseudo-version of github.com/minio/minio, pinned so every machine tests
# against the same server; raise it only together with a test run.
set -euo pipefail

MINIO_VERSION="${MINIO_VERSION:-v0.0.0-20260212201848-7aac2a2c5b7c}"

. "$(dirname "${BASH_SOURCE[0]}")/pinned.sh"
pinned minio github.com/minio/minio "$MINIO_VERSION"
