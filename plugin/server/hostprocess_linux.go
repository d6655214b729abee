package main

import "syscall"

// hostSysProcAttr puts codex-host in its own process group and has the kernel send it SIGTERM if
// the plugin process dies without stopping it (the server may kill plugins with SIGKILL), so a
// managed host never outlives its plugin.
func hostSysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGTERM}
}
