package main

import (
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"
	"sync"

	"github.com/spf13/cobra"

	"github.com/mftflow/mftflow/pipeline"
)

// defaultData is the default data directory.
const defaultData = "./.mftflow"

// globalOptions are the flags every command shares, and what they set up.
type globalOptions struct {
	logFormat *choice
	logLevel  *choice
	data      string
	// pluginsDir holds plugin binaries (see plugins/host).
	pluginsDir string
	nats       natsOptions
	busSync    busSyncFlag // --bus-sync, for the embedded server

	stdout, stderr io.Writer
	// logOut is where log records go: stderr, or above the progress bars
	// while they are drawn.
	logOut *switchWriter
	logger *slog.Logger
}

func newRootCmd(stdout, stderr io.Writer) *cobra.Command {
	g := &globalOptions{
		logFormat: newChoice("text", "text", "json"),
		logLevel:  newChoice("info", "debug", "info", "warn", "error"),
		stdout:    stdout,
		stderr:    stderr,
		logOut:    &switchWriter{w: stderr},
	}
	root := &cobra.Command{
		Use:   "runner",
		Short: "Move files through flows of sources, stages and sinks over NATS JetStream",
		Long: `runner moves files through flows: one source, zero or more stages, one or more sinks.
Each file travels as chunks through NATS JetStream, so a transfer survives a crash
and resumes where it stopped. By default an embedded NATS server keeps its state in
the data directory (--data); with --nats-url several runners share an existing
NATS server or cluster.`,
		Version:       version(),
		SilenceErrors: true,
		SilenceUsage:  true,
		PersistentPreRunE: func(cmd *cobra.Command, args []string) error {
			if err := flagsFromEnv(cmd, os.LookupEnv); err != nil {
				return &exitError{exitErr, err.Error()}
			}
			if g.data == "" {
				return &exitError{exitErr, "--data: must not be empty"}
			}
			if err := g.nats.check(); err != nil {
				return &exitError{exitErr, err.Error()}
			}
			g.logger = newLogger(g.logOut, g.logFormat.value, g.logLevel.value)
			return nil
		},
	}
	root.SetOut(stdout)
	root.SetErr(stderr)
	root.CompletionOptions.HiddenDefaultCmd = false // runner completion bash|zsh|fish|powershell
	root.SetVersionTemplate("runner {{.Version}}\n")

	f := root.PersistentFlags()
	f.Var(g.logFormat, "log-format", "log format: text or json (logs go to stderr)")
	f.Var(g.logLevel, "log-level", "log level: debug, info, warn or error")
	f.StringVar(&g.pluginsDir, "plugins-dir", "", "directory of connector plugin executables (default: plugins.d beside the runner's executable, then ./plugins.d)")
	f.StringVar(&g.data, "data", defaultData, "data directory of the embedded NATS server (unused with --nats-url)")
	f.Var(&g.busSync, "bus-sync", busSyncUsage)
	f.StringVar(&g.nats.url, "nats-url", "", "connect to this NATS server or cluster (comma-separated URLs) instead of starting an embedded one")
	f.StringVar(&g.nats.creds, "nats-creds", "", "NATS user credentials file (.creds)")
	f.StringVar(&g.nats.tlsCA, "nats-tls-ca", "", "CA certificate file to verify the NATS server")
	f.StringVar(&g.nats.tlsCert, "nats-tls-cert", "", "client certificate file for NATS (with --nats-tls-key)")
	f.StringVar(&g.nats.tlsKey, "nats-tls-key", "", "client key file for NATS (with --nats-tls-cert)")

	root.AddCommand(
		newRunCmd(g),
		newValidateCmd(g),
		newConnectorsCmd(g),
		newStatusCmd(g),
		newReplayCmd(g),
		newAuditCmd(g),
		newConsoleCmd(g),
		newBenchCmd(g),
		newVersionCmd(),
	)
	return root
}

// choice is a string flag that accepts only some values. Its parse error
// reads: invalid argument "x" for "--flag" flag: want a, b or c.
type choice struct {
	value   string
	allowed []string
}

func newChoice(def string, allowed ...string) *choice {
	return &choice{value: def, allowed: allowed}
}

func (c *choice) String() string { return c.value }
func (c *choice) Type() string   { return strings.Join(c.allowed, "|") }

func (c *choice) Set(s string) error {
	for _, a := range c.allowed {
		if s == a {
			c.value = s
			return nil
		}
	}
	return fmt.Errorf("want %s", orList(c.allowed))
}

// orList joins items as "a, b or c".
func orList(items []string) string {
	if len(items) < 2 {
		return strings.Join(items, "")
	}
	return strings.Join(items[:len(items)-1], ", ") + " or " + items[len(items)-1]
}

func newLogger(w io.Writer, format, level string) *slog.Logger {
	var lvl slog.Level
	switch level {
	case "debug":
		lvl = slog.LevelDebug
	case "warn":
		lvl = slog.LevelWarn
	case "error":
		lvl = slog.LevelError
	default:
		lvl = slog.LevelInfo
	}
	opts := &slog.HandlerOptions{Level: lvl, ReplaceAttr: redactAttr}
	if format == "json" {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}

// redactAttr hides the user info of URLs in what is logged: messages,
// string values and errors (an error's text may quote an endpoint, and
// plugins log through here too). Other values pass unchanged.
func redactAttr(_ []string, a slog.Attr) slog.Attr {
	var s string
	switch a.Value.Kind() {
	case slog.KindString:
		s = a.Value.String()
	case slog.KindAny:
		switch v := a.Value.Any().(type) {
		case error:
			s = v.Error()
		case fmt.Stringer:
			s = v.String()
		default:
			return a
		}
	default:
		return a
	}
	if red := pipeline.RedactURLs(s); red != s {
		a.Value = slog.StringValue(red)
	}
	return a
}

// switchWriter is an io.Writer whose destination can change while loggers
// hold it.
type switchWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (s *switchWriter) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.w.Write(p)
}

// set makes w the destination and returns the previous one.
func (s *switchWriter) set(w io.Writer) io.Writer {
	s.mu.Lock()
	defer s.mu.Unlock()
	old := s.w
	s.w = w
	return old
}

// plural returns "1 file" or "2 files".
func plural(n int64, one, many string) string {
	if n == 1 {
		return "1 " + one
	}
	return fmt.Sprintf("%d %s", n, many)
}
