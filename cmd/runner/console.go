package main

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
	"golang.org/x/term"

	"github.com/mftflow/mftflow/console"
	"github.com/mftflow/mftflow/internal/discard"
	"github.com/mftflow/mftflow/ops"
	"github.com/mftflow/mftflow/pipeline/engine"
)

// consoleFlags are the flags of the operator console and of the --http
// server it shares: "runner run --http ADDR --console" and "runner console".
type consoleFlags struct {
	on      bool // --console (run only; runner console is always on)
	access  string
	noAuth  bool
	tlsCert string
	tlsKey  string
	loaded  *console.Access // the access file, read by check
}

func (f *consoleFlags) register(fs *pflag.FlagSet, withSwitch bool) {
	if withSwitch {
		fs.BoolVar(&f.on, "console", false, "serve the operator console at /console on the --http address (needs --console-access or --console-insecure-no-auth)")
	}
	fs.StringVar(&f.access, "console-access", "", "the console's access file: users (bcrypt-hashed passwords) and tokens (sha256), each a viewer or an operator; see \"runner console hash-password\"")
	fs.BoolVar(&f.noAuth, "console-insecure-no-auth", false, "serve the console without login, everyone an operator; only on a loopback --http address")
	fs.StringVar(&f.tlsCert, "http-tls-cert", "", "serve --http over HTTPS with this PEM certificate (chain) (with --http-tls-key)")
	fs.StringVar(&f.tlsKey, "http-tls-key", "", "the PEM key of --http-tls-cert")
}

// check reports flag combinations that cannot work, for an --http address
// addr.
func (f *consoleFlags) check(addr string) error {
	switch {
	case (f.tlsCert == "") != (f.tlsKey == ""):
		return errors.New("--http-tls-cert and --http-tls-key go together: give both, or neither for plain HTTP")
	case f.tlsCert != "" && addr == "":
		return errors.New("--http-tls-cert needs --http ADDR: it is the certificate of that server")
	case !f.on && (f.access != "" || f.noAuth):
		return errors.New("--console-access and --console-insecure-no-auth need --console")
	case !f.on:
		return nil
	case addr == "":
		return errors.New("--console needs --http ADDR: the console is served beside /metrics on that address")
	case f.access != "" && f.noAuth:
		return errors.New("--console-access and --console-insecure-no-auth exclude each other: with an access file everyone logs in")
	case f.access == "" && !f.noAuth:
		return errors.New("the console needs --console-access FILE (users and tokens with roles; \"runner console hash-password\" hashes a password), or --console-insecure-no-auth on a loopback address")
	case f.noAuth && !loopbackAddr(addr):
		return fmt.Errorf("--console-insecure-no-auth: --http %s is not a loopback address; without login the console is served on 127.0.0.1 or [::1] only", addr)
	case f.access != "":
		a, err := console.LoadAccess(f.access)
		if err != nil {
			return fmt.Errorf("--console-access: %w", err)
		}
		f.loaded = a
	}
	return nil
}

// loopbackAddr reports whether host:port names a loopback address
// ("localhost" included).
func loopbackAddr(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return false
	}
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// tls returns the --http server's TLS configuration, nil for plain HTTP.
func (f *consoleFlags) tls() (*tls.Config, error) {
	if f.tlsCert == "" {
		return nil, nil
	}
	cfg, err := ops.LoadTLS(f.tlsCert, f.tlsKey)
	if err != nil {
		return nil, fmt.Errorf("--http-tls-cert: %w", err)
	}
	return cfg, nil
}

// open starts the console (nil when off; check first) over js; stats, if set, gives the
// counters of this process's runs, runID their run id.
func (f *consoleFlags) open(js jetstream.JetStream, stats func() []engine.Stats, runID string, log *slog.Logger) (*console.Console, error) {
	if !f.on {
		return nil, nil
	}
	return console.New(console.Options{JS: js, Access: f.loaded, NoAuth: f.noAuth, Secure: f.tlsCert != "",
		Stats: stats, RunID: runID, Logger: log})
}

// warnPlain says in the log when passwords would cross the network in the
// clear.
func (f *consoleFlags) warnPlain(addr string, log *slog.Logger) {
	if f.on && f.access != "" && f.tlsCert == "" && !loopbackAddr(addr) {
		log.Warn("the console is served over plain HTTP on a non-loopback address: passwords and sessions cross the network in the clear; give --http-tls-cert and --http-tls-key", "http", addr)
	}
}

type consoleOptions struct {
	http  string
	flags consoleFlags
}

func newConsoleCmd(g *globalOptions) *cobra.Command {
	o := &consoleOptions{flags: consoleFlags{on: true}}
	cmd := &cobra.Command{
		Use:   "console --http ADDR (--console-access FILE | --console-insecure-no-auth)",
		Short: "Serve the operator console for the flows on a NATS server, without running any",
		Long: `Console serves the operator console (and /healthz, /readyz, /metrics, /status)
for every flow on a NATS server: the flows and their runners, live transfers,
failed deliveries with a Replay button, each file's timeline from the audit
trail, arrival SLAs, and search. It runs no flow: it attaches to the runners'
cluster with --nats-url, or to the runner using the data directory, as
"runner status" does.

Users log in with a name and password from the access file (--console-access),
or programs send "Authorization: Bearer TOKEN"; viewers see, operators may also
replay. Give --http-tls-cert and --http-tls-key to serve HTTPS.`,
		Example: `  runner console --nats-url nats://n1:4222 --http :8443 --console-access access.yaml \
      --http-tls-cert console.crt --http-tls-key console.key
  runner console --http 127.0.0.1:8080 --console-insecure-no-auth
  runner console hash-password < password.txt`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := o.flags.check(o.http); err != nil {
				return &exitError{exitErr, err.Error()}
			}
			return serveConsole(g, o)
		},
	}
	cmd.Flags().StringVar(&o.http, "http", "127.0.0.1:8080", "serve the console on this address")
	o.flags.register(cmd.Flags(), false)
	cmd.AddCommand(newHashPasswordCmd(g), newNewTokenCmd(g))
	return cmd
}

func serveConsole(g *globalOptions, o *consoleOptions) error {
	c, js, err := connectJetStream(g)
	if err != nil {
		return err
	}
	defer c.Close()
	if c.embedded != nil {
		// It would hold the data directory, and no runner could start on it.
		return &exitError{exitErr, fmt.Sprintf("no runner is using %s: start \"runner run --data %s ...\" first (or serve the console from it with --http ADDR --console), or give --nats-url", g.data, g.data)}
	}
	con, err := o.flags.open(js, nil, "", g.logger)
	if err != nil {
		return &exitError{exitErr, err.Error()}
	}
	defer discard.Close(con)
	tlsCfg, err := o.flags.tls()
	if err != nil {
		return &exitError{exitErr, err.Error()}
	}
	h, err := ops.NewHandler(ops.Options{Conn: c.nc, Logger: g.logger, Console: con})
	if err != nil {
		return &exitError{exitErr, err.Error()}
	}
	srv, err := ops.ListenTLS(o.http, h, tlsCfg, g.logger)
	if err != nil {
		return &exitError{exitErr, fmt.Sprintf("--http %s: %v; choose another address or stop what listens there", o.http, err)}
	}
	o.flags.warnPlain(o.http, g.logger)
	g.logger.Info("console listening", "url", serverURL(srv.Addr(), tlsCfg != nil)+ops.ConsolePath+"/", "nats", c.where)
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM)
	defer signal.Stop(sigs)
	<-sigs
	ctx, cancel := context.WithTimeout(context.Background(), opsShutdownGrace)
	defer cancel()
	discard.Close(con) // ends the event streams, so that shutting down does not wait for them
	if err := srv.Shutdown(ctx); err != nil && !errors.Is(err, http.ErrServerClosed) {
		g.logger.Warn("the console did not shut down cleanly", "err", err)
	}
	return nil
}

// serverURL is the URL of a server listening on addr.
func serverURL(addr string, https bool) string {
	if https {
		return "https://" + addr
	}
	return "http://" + addr
}

func newHashPasswordCmd(g *globalOptions) *cobra.Command {
	return &cobra.Command{
		Use:   "hash-password",
		Short: "Print the bcrypt hash of a password (read from the terminal or standard input) for an access file",
		Example: `  runner console hash-password
  printf '%s' "$PASSWORD" | runner console hash-password`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			pw, err := readPassword(cmd.InOrStdin(), g.stderr)
			if err != nil {
				return &exitError{exitErr, err.Error()}
			}
			h, err := console.HashPassword(pw)
			if err != nil {
				return &exitError{exitErr, err.Error()}
			}
			_, err = fmt.Fprintln(g.stdout, h)
			return err
		},
	}
}

// readPassword reads a password without echo from a terminal, else the
// first line of in.
func readPassword(in io.Reader, prompt io.Writer) (string, error) {
	if f, ok := in.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
		warnf(prompt, "password: ")
		b, err := term.ReadPassword(int(f.Fd()))
		warnf(prompt, "\n")
		return string(b), err
	}
	line, err := bufio.NewReader(in).ReadString('\n')
	if err != nil && !errors.Is(err, io.EOF) {
		return "", fmt.Errorf("reading the password: %w", err)
	}
	line = strings.TrimRight(line, "\r\n")
	if line == "" {
		return "", errors.New("no password on standard input")
	}
	return line, nil
}

func newNewTokenCmd(g *globalOptions) *cobra.Command {
	var name, role string
	cmd := &cobra.Command{
		Use:   "new-token --name NAME [--role viewer|operator]",
		Short: "Make an access token: prints the token (give it to the program) and the access file's line",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if name == "" {
				return &exitError{exitErr, "new-token needs --name: who uses the token, for the audit trail"}
			}
			if role != string(console.RoleViewer) && role != string(console.RoleOperator) {
				return &exitError{exitErr, fmt.Sprintf("--role %q: want viewer or operator", role)}
			}
			tok, sum, err := console.NewToken()
			if err != nil {
				return &exitError{exitErr, err.Error()}
			}
			_, err = fmt.Fprintf(g.stdout, "token (shown once; the console keeps only its sha256):\n  %s\naccess file, under tokens:\n  - {name: %s, sha256: %s, role: %s}\n", tok, name, sum, role)
			return err // a token shown to no one is no token
		},
	}
	cmd.Flags().StringVar(&name, "name", "", "who uses the token")
	cmd.Flags().StringVar(&role, "role", string(console.RoleViewer), "viewer or operator")
	return cmd
}
