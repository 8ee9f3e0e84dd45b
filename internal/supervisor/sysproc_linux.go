//go:build linux

package supervisor

import "syscall"

// sysProcAttr puts the child in its own process group (Stop reaches all it
// spawns; a Ctrl-C on the terminal reaches it only through us) and has the
// kernel signal it should this process die first.
func sysProcAttr(deathSig syscall.Signal) *syscall.SysProcAttr {
	if deathSig == 0 {
		deathSig = syscall.SIGKILL
	}
	return &syscall.SysProcAttr{Setpgid: true, Pdeathsig: deathSig}
}

// sysProcAttrNoDeathSignal: a process group of its own only.
func sysProcAttrNoDeathSignal() *syscall.SysProcAttr { return &syscall.SysProcAttr{Setpgid: true} }
