//go:build !linux

package natscluster

import "syscall"

// procAttr: without Linux's parent-death signal, servers outlive a test
// process that dies before its cleanup.
func procAttr() *syscall.SysProcAttr { return nil }
