#!/usr/bin/env bash
# Installs strace(1), with which the tests check the order of the system calls
# that make a delivered file durable before its source is removed
# (connectors/local, cmd/runner); without it those tests skip. Prints its path.
# Safe to run again.
set -euo pipefail

if ! command -v strace >/dev/null 2>&1; then
	sudo=()
	if [[ "$(id -u)" != 0 ]]; then
		sudo=(sudo)
	fi
	echo "installing strace" >&2
	"${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update -qq >&2
	"${sudo[@]}" env DEBIAN_FRONTEND=noninteractive \
		apt-get install -y -qq --no-install-recommends strace >&2
fi
command -v strace
