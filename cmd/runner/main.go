package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	_ "time/tzdata" // schedules name IANA zones; a host may lack the zone files

	"github.com/mftflow/mftflow/plugins/host"
)

func main() {
	code := execute(os.Args[1:], os.Stdout, os.Stderr)
	host.Shutdown() // no plugin process outlives the runner
	os.Exit(code)
}

// exitError ends the runner with an exit code. An empty msg means the
// problem was already reported.
type exitError struct {
	code int
	msg  string
}

func (e *exitError) Error() string {
	if e.msg == "" {
		return fmt.Sprintf("exit status %d", e.code)
	}
	return e.msg
}

// Exit codes.
const (
	exitOK     = 0
	exitErr    = 1 // bad input, NATS unreachable, a run that could not continue
	exitFailed = 3 // some deliveries failed
)

// execute runs the command line args and returns the process exit code.
// Errors are printed to stderr as "runner: <message>".
func execute(args []string, stdout, stderr io.Writer) int {
	root := newRootCmd(stdout, stderr)
	root.SetArgs(args)
	err := root.Execute()
	if err == nil {
		return exitOK
	}
	var ee *exitError
	if errors.As(err, &ee) {
		if ee.msg != "" {
			warnf(stderr, "runner: %s\n", ee.msg)
		}
		return ee.code
	}
	warnf(stderr, "runner: %v\n", err)
	return exitErr
}
