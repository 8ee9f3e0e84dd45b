// Package proctree reads the process tree from Linux's /proc, so tests can
// prove that a stack they stopped left no process behind (pid reuse is
// guarded by each process's start time).
package proctree

import (
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"
)

// Proc is one process: its pid, its start time in clock ticks since boot and
// its command line.
type Proc struct {
	PID   int
	Start string
	Cmd   string
}

// stat reads ppid and start time from /proc/<pid>/stat; ok is false for a
// process that is gone or a zombie.
func stat(pid int) (ppid int, start string, ok bool) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0, "", false
	}
	s := string(b)
	f := strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
	if len(f) < 20 || f[0] == "Z" || f[0] == "X" {
		return 0, "", false
	}
	ppid, _ = strconv.Atoi(f[1])
	return ppid, f[19], true
}

func cmdline(pid int) string {
	b, _ := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/cmdline")
	return strings.TrimSpace(strings.ReplaceAll(string(b), "\x00", " "))
}

func pids() []int {
	entries, _ := os.ReadDir("/proc")
	out := make([]int, 0, len(entries))
	for _, e := range entries {
		if pid, err := strconv.Atoi(e.Name()); err == nil {
			out = append(out, pid)
		}
	}
	return out
}

// Descendants lists the live descendants of root, breadth first.
func Descendants(root int) []Proc {
	children := map[int][]int{}
	for _, pid := range pids() {
		if ppid, _, ok := stat(pid); ok {
			children[ppid] = append(children[ppid], pid)
		}
	}
	var out []Proc
	queue := children[root]
	for len(queue) > 0 {
		pid := queue[0]
		queue = queue[1:]
		if _, start, ok := stat(pid); ok {
			out = append(out, Proc{PID: pid, Start: start, Cmd: cmdline(pid)})
		}
		queue = append(queue, children[pid]...)
	}
	return out
}

// Alive lists the processes of procs that still run (same pid and start
// time) and every other process, but this one, whose command line mentions
// needle (as pgrep -f would).
func Alive(procs []Proc, needle string) []string {
	var alive []string
	for _, p := range procs {
		if _, start, ok := stat(p.PID); ok && start == p.Start {
			alive = append(alive, fmt.Sprintf("%d %s", p.PID, p.Cmd))
		}
	}
	if needle == "" {
		return alive
	}
	for _, pid := range pids() {
		if pid == os.Getpid() {
			continue
		}
		if _, _, ok := stat(pid); ok && strings.Contains(cmdline(pid), needle) {
			alive = append(alive, fmt.Sprintf("%d %s (mentions %s)", pid, cmdline(pid), needle))
		}
	}
	return alive
}

// WaitGone waits up to limit until none of procs (nor any process mentioning
// needle) runs, and returns what is still alive then.
func WaitGone(procs []Proc, needle string, limit time.Duration) []string {
	deadline := time.Now().Add(limit)
	for {
		alive := Alive(procs, needle)
		if len(alive) == 0 || time.Now().After(deadline) {
			return alive
		}
		time.Sleep(50 * time.Millisecond)
	}
}
