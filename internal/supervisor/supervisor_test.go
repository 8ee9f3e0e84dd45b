package supervisor

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// waitFor polls cond (the bound is only a failure timeout).
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(20 * time.Second); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		if cond() {
			return
		}
	}
	t.Fatalf("never: %s", what)
}

func readyOn(word string) func(context.Context, *Process) error {
	return func(ctx context.Context, p *Process) error {
		for !strings.Contains(p.Tail(), word) {
			select {
			case <-ctx.Done():
				return context.Cause(ctx)
			case <-time.After(10 * time.Millisecond):
			}
		}
		return nil
	}
}

func alive(pid int) bool { return startTicks(pid) != 0 }

func TestProcessReadyLogsAndGroupKill(t *testing.T) {
	var out strings.Builder
	var mu sync.Mutex
	lines := NewLineWriter(func(l []byte) { mu.Lock(); out.Write(l); out.WriteByte('|'); mu.Unlock() })
	p, err := Start(context.Background(), Spec{Name: "sh", Path: "sh", Args: []string{"-c", "sleep 60 & echo child=$!; echo ready; wait"},
		Stdout: lines, Ready: readyOn("ready")})
	if err != nil {
		t.Fatal(err)
	}
	tail := p.Tail()
	i := strings.Index(tail, "child=")
	child, _ := strconv.Atoi(strings.Fields(tail[i+len("child="):])[0])
	if !alive(child) {
		t.Fatalf("the grandchild %d is not running (output %q)", child, tail)
	}
	if err := p.Stop(5 * time.Second); err != nil {
		t.Fatal(err)
	}
	<-p.Done()
	waitFor(t, "the grandchild is gone with its group", func() bool { return !alive(child) })
	mu.Lock()
	defer mu.Unlock()
	if !strings.Contains(out.String(), "ready|") {
		t.Errorf("captured lines %q", out.String())
	}
}

func TestProcessExitsBeforeReady(t *testing.T) {
	_, err := Start(context.Background(), Spec{Name: "sh", Path: "sh", Args: []string{"-c", "echo bad config >&2; exit 3"},
		Ready: readyOn("never")})
	if !errors.Is(err, ErrExited) {
		t.Fatalf("err %v, want ErrExited", err)
	}
}

func TestProcessReadyTimeout(t *testing.T) {
	_, err := Start(context.Background(), Spec{Name: "sleep", Path: "sleep", Args: []string{"60"}, Ready: readyOn("never"),
		StartTimeout: 200 * time.Millisecond})
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("err %v, want the deadline", err)
	}
}

func TestSweepOrphan(t *testing.T) {
	pidFile := filepath.Join(t.TempDir(), "part.pid")
	p, err := Start(context.Background(), Spec{Name: "sleep", Path: "sleep", Args: []string{"60"}, PIDFile: pidFile})
	if err != nil {
		t.Fatal(err)
	}
	// A second start on the same pid file (the next run after a crash)
	// ends the first group.
	q, err := Start(context.Background(), Spec{Name: "sleep", Path: "sleep", Args: []string{"60"}, PIDFile: pidFile})
	if err != nil {
		t.Fatal(err)
	}
	defer q.Kill()
	select {
	case <-p.Done():
	case <-time.After(10 * time.Second):
		t.Fatal("the orphan was not swept")
	}
	if SweepOrphan(filepath.Join(t.TempDir(), "none.pid")) {
		t.Error("swept a missing pid file")
	}
}

// recorder collects the states a supervisor went through.
type recorder struct {
	mu     sync.Mutex
	states []Status
}

func (r *recorder) add(s Status) { r.mu.Lock(); r.states = append(r.states, s); r.mu.Unlock() }
func (r *recorder) seq() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	var b []string
	for _, s := range r.states {
		b = append(b, string(s.State))
	}
	return strings.Join(b, ",")
}

func TestSupervisorRestartsAKilledChild(t *testing.T) {
	rec := &recorder{}
	sup := New(Config{Name: "sleeper", MinBackoff: time.Millisecond, OnChange: rec.add,
		Start: func(ctx context.Context) (Instance, error) {
			return Start(ctx, Spec{Name: "sleeper", Path: "sleep", Args: []string{"60"}})
		},
		Stop: func(i Instance) error { return i.(*Process).Stop(time.Second) },
	})
	if err := sup.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	first := sup.Status()
	if first.State != Up || first.Pid == 0 {
		t.Fatalf("status %+v", first)
	}
	_ = syscall.Kill(first.Pid, syscall.SIGKILL)
	waitFor(t, "restarted", func() bool { s := sup.Status(); return s.State == Up && s.Restarts == 1 })
	st := sup.Status()
	if st.Pid == first.Pid || !strings.Contains(st.LastError, "killed") {
		t.Errorf("after the restart: %+v", st)
	}
	if err := sup.Stop(); err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(rec.seq(), "up,down,restarting,up,stopped") {
		t.Errorf("states %s", rec.seq())
	}
	waitFor(t, "the last incarnation is stopped", func() bool { return !alive(st.Pid) })
	if sup.Status().State != Stopped {
		t.Errorf("status after Stop: %+v", sup.Status())
	}
}

// chanInst is an in-process instance ended by closing its channel.
type chanInst chan struct{}

func (c chanInst) Done() <-chan struct{} { return c }

func TestSupervisorBacksOffFailedRestarts(t *testing.T) {
	rec := &recorder{}
	var mu sync.Mutex
	starts := 0
	var cur chanInst
	sup := New(Config{Name: "flaky", MinBackoff: time.Millisecond, MaxBackoff: 4 * time.Millisecond, OnChange: rec.add,
		Start: func(context.Context) (Instance, error) {
			mu.Lock()
			defer mu.Unlock()
			starts++
			if starts > 1 && starts < 4 {
				return nil, errors.New("port busy")
			}
			cur = make(chanInst)
			return cur, nil
		},
		Stop: func(i Instance) error { close(i.(chanInst)); return nil },
	})
	if err := sup.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	close(cur)
	mu.Unlock()
	waitFor(t, "up again", func() bool { s := sup.Status(); return s.State == Up && s.Restarts == 1 })
	if got := rec.seq(); got != "up,down,restarting,down,restarting,down,restarting,up" {
		t.Errorf("states %s", got)
	}
	if st := sup.Status(); st.LastError != "port busy" {
		t.Errorf("last error %q", st.LastError)
	}
	_ = sup.Stop()
	mu.Lock()
	defer mu.Unlock()
	if starts != 4 {
		t.Errorf("%d starts, want 4", starts)
	}
}

func TestSupervisorFirstStartFails(t *testing.T) {
	sup := New(Config{Name: "x", Start: func(context.Context) (Instance, error) { return nil, errors.New("no java") }})
	if err := sup.Start(context.Background()); err == nil {
		t.Fatal("no error")
	}
	if st := sup.Status(); st.State != Stopped {
		t.Errorf("status %+v", st)
	}
	if err := sup.Stop(); err != nil {
		t.Error(err)
	}
}

func TestBackoffIsCapped(t *testing.T) {
	got := []time.Duration{}
	for n := range 6 {
		got = append(got, backoff(250*time.Millisecond, time.Second, n))
	}
	want := []time.Duration{250 * time.Millisecond, 500 * time.Millisecond, time.Second, time.Second, time.Second, time.Second}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("backoff %v, want %v", got, want)
		}
	}
}

func TestProcessNoTailWritesStraightToTheFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "runtime.log")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	p, err := Start(context.Background(), Spec{Name: "sh", Path: "sh", Args: []string{"-c", "echo hi; exit 4"},
		Stdout: f, Stderr: f, NoTail: true, OutliveParent: true})
	if err != nil {
		t.Fatal(err)
	}
	<-p.Done()
	if st := p.ProcessState(); st == nil || st.ExitCode() != 4 {
		t.Fatalf("process state %v", st)
	}
	if b, _ := os.ReadFile(path); string(b) != "hi\n" || p.Tail() != "" {
		t.Errorf("file %q, tail %q", b, p.Tail())
	}
}

func TestReadPIDFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "x.pid")
	if err := os.WriteFile(path, []byte("1234 5678\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if pid, ticks, err := ReadPIDFile(path); err != nil || pid != 1234 || ticks != 5678 {
		t.Errorf("ReadPIDFile = %d, %d, %v; want 1234, 5678", pid, ticks, err)
	}
	for _, bad := range []string{"", "1234", "x 5678", "1234 y"} {
		_ = os.WriteFile(path, []byte(bad), 0o644)
		if _, _, err := ReadPIDFile(path); err == nil {
			t.Errorf("PID file %q was read", bad)
		}
	}
	if _, _, err := ReadPIDFile(filepath.Join(t.TempDir(), "none")); !os.IsNotExist(err) {
		t.Errorf("missing PID file: %v", err)
	}
}
