//go:build unix && !linux

package e2e

import "syscall"

// procAttr puts a started process in its own process group, so that a kill reaches whatever
// it started too.
func procAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true}
}
