// Package sshd starts a real OpenSSH server for tests of SFTP code.
//
// The server is Debian's /usr/sbin/sshd, installed by scripts/sshd.sh; it is
// not a Go dependency. Start finds it through the MFTFLOW_SSHD environment
// variable, then /usr/sbin/sshd, then PATH, and skips the test with a
// message saying how to get it when there is none.
//
// Each server runs on 127.0.0.1 on a port chosen at run time with its own
// configuration, host key, client key and log in a temporary directory. It
// offers SFTP only (internal-sftp, no shell), as Thru's SFTP endpoints do.
// Logins use the generated client key; when the tests run as root and
// scripts/sshd.sh created the user mftflow-sftp, they log in as that
// unprivileged user, which may also use its password. Otherwise they log in
// as the current user with the key only (an sshd that is not root can
// neither check passwords nor switch users).
package sshd
