#!/usr/bin/env bash
# Builds the pinned errcheck into ./bin (relative to the module root) unless
# it is already there, then prints its path. make lint runs it.
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/pinned.sh"
pinned errcheck github.com/kisielk/errcheck "${ERRCHECK_VERSION:-v1.30.0}"
