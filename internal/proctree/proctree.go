// Package proctree reads Linux's /proc: one process's stat fields (Stat: the
// supervisor's start-time guard against pid reuse, the bench's CPU times)
// and the process tree, so tests can prove that a stack they stopped left
// no process behind (pid reuse is guarded by each process's start time).
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

// Stat is the fields of /proc/<pid>/stat after the parenthesised command
// name (proc(5)): Stat[0] is field 3 (state), Stat[1] field 4 (ppid),
// Stat[11] and Stat[12] fields 14 and 15 (utime, stime), Stat[19] field 22
// (starttime), in clock ticks. ok is false for a process that is gone, a
// zombie, or without /proc.
func Stat(pid int) (fields []string, ok bool) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return nil, false
	}
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return nil, false
	}
	f := strings.Fields(s[i+1:])
	if len(f) < 20 || f[0] == "Z" || f[0] == "X" {
		return nil, false
	}
	return f, true
}

// stat reads ppid and start time; ok as Stat.
func stat(pid int) (ppid int, start string, ok bool) {
	f, ok := Stat(pid)
	if !ok {
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
