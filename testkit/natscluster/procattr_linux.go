package natscluster

import "syscall"

// procAttr makes the kernel kill a server when the test process dies, so a
// test binary ended by a timeout leaves no server running.
func procAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
