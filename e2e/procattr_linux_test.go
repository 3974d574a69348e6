package e2e

import "syscall"

// procAttr puts a started process in its own process group, so that a kill reaches whatever
// it started too, and makes the kernel kill it if the test binary dies without cleaning up.
func procAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
}
