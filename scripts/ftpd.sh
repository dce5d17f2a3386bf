#!/usr/bin/env bash
# Installs what the FTPS connector's tests need, then prints the vsftpd path:
#
#   - Debian's vsftpd, which testkit/ftpd starts on a random port with its
#     own temporary configuration and certificate; the system's own vsftpd
#     service is not started or changed;
#   - its empty secure_chroot_dir, /var/run/vsftpd/empty;
#   - when run as root, the local test user mftflow-ftp with the fixed
#     password below and an empty home directory, and the PAM service
#     mftflow-ftp that checks its password (Debian's vsftpd service also
#     wants a login shell, which this user does not have).
#
# Safe to run again: each step is skipped when already done.
set -euo pipefail

VSFTPD="${MFTFLOW_VSFTPD:-/usr/sbin/vsftpd}"
TEST_USER="mftflow-ftp"
TEST_PASSWORD="mftflow-ftp-password" # must match testkit/ftpd
TEST_HOME="/var/lib/mftflow-ftp"

sudo=()
if [[ "$(id -u)" != 0 ]]; then
	sudo=(sudo)
fi

if [[ ! -x "$VSFTPD" ]]; then
	echo "installing vsftpd" >&2
	"${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update -qq >&2
	"${sudo[@]}" env DEBIAN_FRONTEND=noninteractive \
		apt-get install -y -qq --no-install-recommends vsftpd >&2
fi
"${sudo[@]}" mkdir -p /var/run/vsftpd/empty

if [[ "$(id -u)" == 0 ]]; then
	if ! id "$TEST_USER" >/dev/null 2>&1; then
		echo "creating test user $TEST_USER" >&2
		useradd --system --home-dir "$TEST_HOME" --shell /usr/sbin/nologin "$TEST_USER"
	fi
	# vsftpd changes into the home directory at login.
	mkdir -p "$TEST_HOME"
	chown "$TEST_USER:" "$TEST_HOME"
	if [[ "$(getent passwd "$TEST_USER" | cut -d: -f6)" != "$TEST_HOME" ]]; then
		usermod -d "$TEST_HOME" "$TEST_USER"
	fi
	echo "$TEST_USER:$TEST_PASSWORD" | chpasswd
	cat >/etc/pam.d/mftflow-ftp <<'PAM'
# The FTPS tests' vsftpd (scripts/ftpd.sh): password logins of local users.
@include common-auth
@include common-account
@include common-session
PAM
fi

echo "$VSFTPD"
