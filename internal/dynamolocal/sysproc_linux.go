package dynamolocal

import "syscall"

// sysProcAttr puts the emulator in its own process group (so Stop reaches
// everything it spawned and a Ctrl-C in a terminal reaches it only through
// us) and asks the kernel to SIGTERM it should this process die first, so no
// JVM outlives a killed test binary or local stack.
func sysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGTERM}
}
