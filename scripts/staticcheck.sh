#!/usr/bin/env bash
# Builds the pinned staticcheck into ./bin (relative to the module root)
# unless it is already there, then prints its path. make lint runs it.
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/pinned.sh"
pinned staticcheck honnef.co/go/tools/cmd/staticcheck "${STATICCHECK_VERSION:-v0.8.2}"
