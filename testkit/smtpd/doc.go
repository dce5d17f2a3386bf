// Package smtpd starts a real SMTP server for tests of code that sends
// mail: github.com/emersion/go-smtp's server, a Go module dependency, so
// nothing needs installing.
//
// Start listens on 127.0.0.1 on a free port and speaks STARTTLS (or, with
// Options.ImplicitTLS, TLS from the first byte) with a self-signed
// certificate made for 127.0.0.1 and localhost, which Server.TLSConfig
// trusts. It offers AUTH PLAIN only over TLS and refuses MAIL before a
// login, so a message it received came through TLS and a login with the
// server's User and Password. It keeps what it receives (Messages, Wait)
// and stops when the test ends.
//
// Options.Refuse makes it answer DATA with an error, to test what a
// sender does with a refused or failed message.
package smtpd
