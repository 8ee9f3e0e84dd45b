//go:build unix && !linux

package localsfn

import "syscall"

// sysProcAttr puts the service in its own process group.
func sysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true}
}
