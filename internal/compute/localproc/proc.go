package localproc

import (
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"syscall"
)

// procStat is what the driver reads from /proc/<pid>/stat.
type procStat struct {
	state      byte   // R, S, D, Z, X, …
	pgrp       int    // process group id
	startTicks uint64 // start time after boot, in clock ticks
}

// errNoProc reports that /proc is not available (not Linux): liveness then rests
// on kill(pid, 0) alone and the pid-reuse guard is off.
var errNoProc = errors.New("/proc not available")

func readProcStat(pid int) (procStat, error) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		if _, serr := os.Stat("/proc/self/stat"); serr != nil {
			return procStat{}, errNoProc
		}
		return procStat{}, err
	}
	// "pid (comm) state ppid pgrp …": comm may hold spaces and parentheses, so
	// parse from the last ')'.
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return procStat{}, fmt.Errorf("malformed /proc/%d/stat", pid)
	}
	f := strings.Fields(s[i+1:])
	// f[0] is field 3 (state); field n is f[n-3].
	if len(f) < 20 || len(f[0]) != 1 {
		return procStat{}, fmt.Errorf("malformed /proc/%d/stat", pid)
	}
	pgrp, err1 := strconv.Atoi(f[5-3])
	start, err2 := strconv.ParseUint(f[22-3], 10, 64)
	if err1 != nil || err2 != nil {
		return procStat{}, fmt.Errorf("malformed /proc/%d/stat", pid)
	}
	return procStat{state: f[0][0], pgrp: pgrp, startTicks: start}, nil
}

// processStartTicks returns a process's start time (0 when unknown).
func processStartTicks(pid int) uint64 {
	st, err := readProcStat(pid)
	if err != nil {
		return 0
	}
	return st.startTicks
}

// processAlive reports whether pid is a live (not zombie) process that started at
// startTicks (when known: this guards against the pid having been reused).
func processAlive(pid int, startTicks uint64) bool {
	if pid <= 0 {
		return false
	}
	if err := syscall.Kill(pid, 0); err != nil && !errors.Is(err, syscall.EPERM) {
		return false
	}
	st, err := readProcStat(pid)
	if errors.Is(err, errNoProc) {
		return true
	}
	if err != nil {
		return false
	}
	if st.state == 'Z' || st.state == 'X' {
		return false
	}
	return startTicks == 0 || st.startTicks == startTicks
}

// signalGroup signals the process group led by pid (children run with Setpgid).
func signalGroup(pid int, sig syscall.Signal) error {
	err := syscall.Kill(-pid, sig)
	if errors.Is(err, syscall.ESRCH) {
		return nil
	}
	return err
}

// exitReason describes how a child ended.
func exitReason(ps *os.ProcessState) (code *int, signal, reason string) {
	if ps == nil {
		return nil, "", "exit status unknown"
	}
	if ws, ok := ps.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
		sig := ws.Signal()
		name := signalName(sig)
		return nil, name, fmt.Sprintf("killed by signal %s", name)
	}
	c := ps.ExitCode()
	return &c, "", fmt.Sprintf("exited with code %d", c)
}

func signalName(sig syscall.Signal) string {
	switch sig {
	case syscall.SIGTERM:
		return "SIGTERM"
	case syscall.SIGKILL:
		return "SIGKILL"
	case syscall.SIGINT:
		return "SIGINT"
	case syscall.SIGSEGV:
		return "SIGSEGV"
	case syscall.SIGABRT:
		return "SIGABRT"
	case syscall.SIGHUP:
		return "SIGHUP"
	case syscall.SIGQUIT:
		return "SIGQUIT"
	}
	return fmt.Sprintf("%d (%s)", int(sig), sig.String())
}
