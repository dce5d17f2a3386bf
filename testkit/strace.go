package testkit

import (
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"testing"
)

// Strace returns the path of strace(1), for tests that check the order of
// the system calls a program makes, or skips t when it is not installed
// (Debian package strace).
func Strace(t testing.TB) string {
	t.Helper()
	p, err := exec.LookPath("strace")
	if err != nil {
		t.Skip("strace is not installed (Debian package strace): cannot watch the order of system calls")
	}
	return p
}

// SysCall is one system call in a log written by strace -f -o FILE.
type SysCall struct {
	PID  int
	Name string
	// Args is what strace printed between the parentheses; with -y, file
	// descriptors carry their paths ("5</data/out>").
	Args string
	// Result is what follows "= ": "0", "-1 ENOENT (No such file or
	// directory)"; "" when the process ended inside the call.
	Result string
	// Start and End are the positions, in log order, of the line where the
	// call began and the line where it returned: another process's call
	// may begin and end in between. A call B began after call A returned
	// when B.Start > A.End.
	Start, End int
}

// OK reports whether the call returned 0 or a count, not an error.
func (c SysCall) OK() bool {
	return c.Result != "" && !strings.HasPrefix(c.Result, "-")
}

var (
	straceLine     = regexp.MustCompile(`^(?:(\d+)\s+)?(.*)$`)
	straceCall     = regexp.MustCompile(`^(\w+)\((.*)$`)
	straceResumed  = regexp.MustCompile(`^<\.\.\. (\w+) resumed>(.*)$`)
	straceReturned = regexp.MustCompile(`^(.*)\)\s+= (.*)$`)
)

// ParseStrace returns the system calls of an strace -f log in the order
// they began, joining the halves of calls that strace split ("<unfinished
// ...>" and "<... name resumed>") when processes interleaved. Signals and
// exits are left out.
func ParseStrace(log string) []SysCall {
	var calls []SysCall
	open := map[int]int{} // pid -> index in calls of its unfinished call
	for pos, l := range strings.Split(log, "\n") {
		m := straceLine.FindStringSubmatch(strings.TrimSpace(l))
		if m == nil || m[2] == "" {
			continue
		}
		pid, _ := strconv.Atoi(m[1])
		rest := m[2]
		if r := straceResumed.FindStringSubmatch(rest); r != nil {
			i, ok := open[pid]
			if !ok {
				continue
			}
			delete(open, pid)
			c := &calls[i]
			c.End = pos
			if ret := straceReturned.FindStringSubmatch(r[2]); ret != nil {
				c.Args += ret[1]
				c.Result = ret[2]
			}
			continue
		}
		cm := straceCall.FindStringSubmatch(rest)
		if cm == nil {
			continue // --- SIGNAL ---, +++ exited +++
		}
		c := SysCall{PID: pid, Name: cm[1], Start: pos, End: pos}
		if args, ok := strings.CutSuffix(cm[2], " <unfinished ...>"); ok {
			c.Args = args
			open[pid] = len(calls)
		} else if ret := straceReturned.FindStringSubmatch(cm[2]); ret != nil {
			c.Args, c.Result = ret[1], ret[2]
		} else {
			c.Args = strings.TrimSuffix(cm[2], ")") // "= ?": the process ended
		}
		calls = append(calls, c)
	}
	return calls
}
