//go:build !linux

package main

import "syscall"

// hostSysProcAttr puts codex-host in its own process group. Outside Linux there is no parent-death
// signal; the plugin stops the host on deactivate.
func hostSysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true}
}
