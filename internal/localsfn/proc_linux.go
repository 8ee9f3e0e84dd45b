//go:build linux

package localsfn

import "syscall"

// sysProcAttr puts the service in its own process group (so Stop and Kill
// reach everything it spawns) and has the kernel kill it if the Go process
// dies first.
func sysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
}
