//go:build unix && !linux

package supervisor

import "syscall"

// sysProcAttr puts the child in its own process group (no parent-death
// signal outside Linux: SweepOrphan covers a crashed launcher).
func sysProcAttr(syscall.Signal) *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true}
}

// sysProcAttrNoDeathSignal: a process group of its own only.
func sysProcAttrNoDeathSignal() *syscall.SysProcAttr { return &syscall.SysProcAttr{Setpgid: true} }
