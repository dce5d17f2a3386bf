package testkit

import (
	"bufio"
	"bytes"
	"fmt"
	"net"
	"os/exec"
	"strings"
	"syscall"
	"time"

	"github.com/mftflow/mftflow/internal/discard"
)

// Daemon is a server process a test started (sshd, vsftpd), with its
// output kept for error messages.
type Daemon struct {
	name   string
	cmd    *exec.Cmd
	out    bytes.Buffer
	exited chan struct{}
}

// StartDaemon starts the program bin with args and a minimal environment.
func StartDaemon(bin string, args ...string) (*Daemon, error) {
	d := &Daemon{name: bin, cmd: exec.Command(bin, args...), exited: make(chan struct{})}
	d.cmd.Env = []string{"PATH=/usr/sbin:/usr/bin:/sbin:/bin"}
	d.cmd.Stdout, d.cmd.Stderr = &d.out, &d.out
	if err := d.cmd.Start(); err != nil {
		return nil, err
	}
	go func() { _ = d.cmd.Wait(); close(d.exited) }() // exited is the news; the output says why
	return d, nil
}

// WaitGreeting waits until a connection to addr reads a first line that
// starts with prefix ("SSH-2.0-", "220"); wrap, when set, wraps each
// connection (in TLS, say). It fails when the daemon exits or limit passes,
// with the daemon's output.
func (d *Daemon) WaitGreeting(addr, prefix string, wrap func(net.Conn) net.Conn, limit time.Duration) error {
	for deadline := time.Now().Add(limit); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		select {
		case <-d.exited:
			return fmt.Errorf("%s exited; output:\n%s", d.name, d.out.String())
		default:
		}
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err != nil {
			continue
		}
		if wrap != nil {
			c = wrap(c)
		}
		_ = c.SetDeadline(time.Now().Add(5 * time.Second)) // without it, a read that hangs fails the wait
		line, _ := bufio.NewReader(c).ReadString('\n')
		discard.Close(c)
		if strings.HasPrefix(line, prefix) {
			return nil
		}
	}
	return fmt.Errorf("no greeting from %s at %s after %v; output:\n%s", d.name, addr, limit, d.out.String())
}

// Stop ends the daemon: SIGTERM, then SIGKILL after five seconds.
func (d *Daemon) Stop() {
	_ = d.cmd.Process.Signal(syscall.SIGTERM) // fails only when it has exited already
	select {
	case <-d.exited:
	case <-time.After(5 * time.Second):
		_ = d.cmd.Process.Kill()
		<-d.exited
	}
}

// FreePort returns a TCP port of 127.0.0.1 free at the time of the call.
func FreePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer discard.Close(l)
	return l.Addr().(*net.TCPAddr).Port, nil
}
