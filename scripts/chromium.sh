#!/usr/bin/env bash
# Installs what the console's browser tests need, then prints the chromium
# path: Debian's chromium, which the tests (console/browser_test.go) start
# headless through chromedp with a temporary profile of their own, pointed
# at a console on 127.0.0.1. Nothing is fetched at test time.
#
# Safe to run again: nothing is done when chromium is there.
set -euo pipefail

CHROMIUM="${MFTFLOW_CHROMIUM:-/usr/bin/chromium}"

sudo=()
if [[ "$(id -u)" != 0 ]]; then
	sudo=(sudo)
fi

if [[ ! -x "$CHROMIUM" ]]; then
	echo "installing chromium" >&2
	"${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update -qq >&2
	"${sudo[@]}" env DEBIAN_FRONTEND=noninteractive \
		apt-get install -y -qq --no-install-recommends chromium fonts-dejavu-core >&2
fi

echo "$CHROMIUM"
