package host

import (
	"os/exec"
	"syscall"
)

// dieWithParent makes the kernel kill the plugin when the runner dies, even
// by SIGKILL, so no plugin process is left behind to hold files or ports.
func dieWithParent(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
