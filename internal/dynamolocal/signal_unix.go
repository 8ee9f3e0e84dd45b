//go:build unix

package dynamolocal

import "syscall"

// signalGroup signals the process group led by pid (the emulator is started
// with Setpgid, so its pgid is its pid).
func signalGroup(pid int, sig syscall.Signal) error {
	if err := syscall.Kill(-pid, sig); err != nil {
		return syscall.Kill(pid, sig)
	}
	return nil
}
