package proctree

import (
	"os/exec"
	"slices"
	"syscall"
	"testing"
	"time"
)

func TestDescendantsAndAlive(t *testing.T) {
	cmd := exec.Command("sh", "-c", "sleep 30 & wait")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	var procs []Proc
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		if procs = Descendants(cmd.Process.Pid); len(procs) > 0 {
			break
		}
	}
	if !slices.ContainsFunc(procs, func(p Proc) bool { return p.Cmd == "sleep 30" }) {
		t.Fatalf("descendants of the shell: %+v", procs)
	}
	if alive := Alive(procs, ""); len(alive) != len(procs) {
		t.Fatalf("alive %v", alive)
	}
	for _, p := range procs {
		_ = syscall.Kill(p.PID, syscall.SIGKILL)
	}
	_ = cmd.Wait()
	if alive := WaitGone(procs, "", 10*time.Second); len(alive) != 0 {
		t.Fatalf("still alive after kill: %v", alive)
	}
}
