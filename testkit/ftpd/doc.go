// Package ftpd starts a real FTP server with TLS for tests of FTPS code.
//
// The server is Debian's vsftpd, installed by scripts/ftpd.sh; it is not a
// Go dependency. Start finds it through the MFTFLOW_VSFTPD environment
// variable, then /usr/sbin/vsftpd, then PATH, and skips the test with a
// message saying how to get it when there is none, when the tests do not
// run as root (vsftpd checks passwords and switches to the login user as
// root only) or when the script has not created the test user.
//
// Each server runs on 127.0.0.1 on a port chosen at run time with its own
// configuration, certificate and log in a temporary directory: explicit TLS
// (AUTH TLS on the control connection) or, with Implicit, TLS from the first
// byte; logins and data connections must use TLS, and a data connection
// must resume the control connection's TLS session, as vsftpd asks by
// default. Passive mode only. The certificate is issued by a CA of its own
// (CAFile) for 127.0.0.1 and localhost. The login user is the unprivileged
// mftflow-ftp with its password; the server has no chroot, so remote paths
// are the same as local ones.
//
// Debian's vsftpd (3.0.3) fails uploads from Go's TLS 1.3 client after a few
// MiB ("426 Failure reading network stream"); clients keep to TLS 1.2 with
// it, as the ftps connector's disable_tls13 does.
package ftpd
