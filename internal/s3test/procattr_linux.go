package s3test

import "syscall"

// procAttr makes the kernel kill the gateway when the test binary dies without running its
// cleanups (a test timeout panics, for example).
func procAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
