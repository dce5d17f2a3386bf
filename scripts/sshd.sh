#!/usr/bin/env bash
# Installs what the SFTP connector's tests need, then prints the sshd path:
#
#   - Debian's OpenSSH server (/usr/sbin/sshd), which testkit/sshd starts on a
#     random port with its own temporary configuration; the system's own ssh
#     service is not started or changed;
#   - the privilege separation directory /run/sshd that sshd insists on when
#     it runs as root;
#   - when run as root, the local test user mftflow-sftp with the fixed
#     password below, for the password login tests. It has no shell
#     (/usr/sbin/nologin) and the tests' sshd allows it nothing but SFTP.
#
# Safe to run again: each step is skipped when already done.
set -euo pipefail

SSHD="${MFTFLOW_SSHD:-/usr/sbin/sshd}"
TEST_USER="mftflow-sftp"
TEST_PASSWORD="mftflow-sftp-password" # must match testkit/sshd

sudo=()
if [[ "$(id -u)" != 0 ]]; then
	sudo=(sudo)
fi

if [[ ! -x "$SSHD" ]]; then
	echo "installing openssh-server" >&2
	"${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update -qq >&2
	"${sudo[@]}" env DEBIAN_FRONTEND=noninteractive \
		apt-get install -y -qq --no-install-recommends openssh-server >&2
fi
# The package may start its own service; the tests never use it.

if [[ ! -d /run/sshd ]]; then
	"${sudo[@]}" mkdir -p /run/sshd
	"${sudo[@]}" chmod 0755 /run/sshd
fi

if [[ "$(id -u)" == 0 ]]; then
	if ! id "$TEST_USER" >/dev/null 2>&1; then
		echo "creating test user $TEST_USER" >&2
		useradd --system --no-create-home --home-dir /nonexistent \
			--shell /usr/sbin/nologin "$TEST_USER"
	fi
	# Set every time: cheap, and repairs a password changed by hand.
	echo "$TEST_USER:$TEST_PASSWORD" | chpasswd
fi

echo "$SSHD"
