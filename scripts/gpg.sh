#!/usr/bin/env bash
# Installs what the OpenPGP stages' interoperability tests need, then prints
# the gpg path: Debian's GnuPG (gpg, gpg-agent, gpgconf). The tests run gpg
# with a temporary GNUPGHOME of their own; the user's keyring is not read or
# changed.
#
# Safe to run again: nothing is done when gpg is there.
set -euo pipefail

GPG="${MFTFLOW_GPG:-/usr/bin/gpg}"

sudo=()
if [[ "$(id -u)" != 0 ]]; then
	sudo=(sudo)
fi

if [[ ! -x "$GPG" ]] || ! command -v gpg-agent >/dev/null; then
	echo "installing gnupg" >&2
	"${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update -qq >&2
	"${sudo[@]}" env DEBIAN_FRONTEND=noninteractive \
		apt-get install -y -qq --no-install-recommends gnupg >&2
fi

echo "$GPG"
