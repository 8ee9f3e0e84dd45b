// Package supervisor runs the parts of the local stack that can die on their
// own: child processes (DynamoDB Local, the Step Functions service) and
// in-process servers (the Lambda Invoke endpoint).
//
// Two pieces:
//
//   - Start runs one child process in its own process group, with its
//     output captured (to writers, and the last 16 KiB kept for error
//     messages), waits for a readiness probe, and kills the whole group on
//     Stop/Kill. An optional pid file lets the next run sweep a group a
//     crashed run left behind (SweepOrphan).
//   - Supervisor watches one part: it starts it, notices when the running
//     incarnation ends, reports the part Down, and starts it again after a
//     capped exponential back-off (Restarting, then Up), until Stop. Its
//     Status (state, since when, last error, restarts) is what the local
//     stack's /healthz and terminal show.
//
// Users: internal/dynamolocal and internal/localsfn start their child
// through Start; internal/localstack supervises them and the in-process
// Lambda endpoint with Supervisor; internal/compute/localproc spawns and
// reaps the pipelines' runtimes through Start (OutliveParent, NoTail) and
// never restarts them: a runtime that dies is its pipeline's failure.
package supervisor

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/sluicehq/sluice/internal/proctree"
)

// Spec describes a child process.
type Spec struct {
	// Name of the part, for error messages.
	Name string
	// Path and Args (without argv[0]) of the command; Dir its working
	// directory; Env its environment (nil: this process's).
	Path string
	Args []string
	Dir  string
	Env  []string
	// Stdout and Stderr receive the output (nil: discarded). The last 16 KiB
	// of both is kept either way (Process.Tail).
	Stdout, Stderr io.Writer
	// Ready is the readiness probe: it returns nil once the process serves.
	// Its ctx ends at StartTimeout, and as soon as the process exits (cause
	// ErrExited). Nil: ready once started.
	Ready func(ctx context.Context, p *Process) error
	// StartTimeout bounds Ready (default 30 s).
	StartTimeout time.Duration
	// ParentDeathSignal is sent to the child by the kernel if this process
	// dies first (Linux; 0: SIGKILL).
	ParentDeathSignal syscall.Signal
	// OutliveParent: no parent-death signal (the pipelines' runtimes end by
	// their driver's Deprovision or Shutdown, not with their launcher).
	OutliveParent bool
	// NoTail: the output goes straight to Stdout and Stderr (an *os.File is
	// inherited by the child, no copying) and no tail is kept.
	NoTail bool
	// PIDFile, when set, holds "pid start-ticks" while the process runs, so
	// SweepOrphan can end a group left behind by a crashed launcher.
	PIDFile string
}

// ErrExited is the cause of Ready's ctx when the process exits before it is
// ready.
var ErrExited = errors.New("process exited")

// Process is a running (or ended) child process, leader of its own process
// group.
type Process struct {
	name    string
	cmd     *exec.Cmd
	done    chan struct{}
	waitErr error // set before done is closed
	tail    *TailBuffer
	pidFile string
	stopMu  sync.Mutex
}

// Start starts the process and returns once Ready accepted it. When Ready
// fails (or times out, or the process exits first) the group is killed and
// Ready's error returned.
func Start(ctx context.Context, spec Spec) (*Process, error) {
	if spec.PIDFile != "" {
		SweepOrphan(spec.PIDFile)
	}
	p := &Process{name: spec.Name, tail: NewTailBuffer(16 << 10), done: make(chan struct{}), pidFile: spec.PIDFile}
	cmd := exec.Command(spec.Path, spec.Args...)
	cmd.Dir, cmd.Env = spec.Dir, spec.Env
	if spec.NoTail {
		cmd.Stdout, cmd.Stderr = spec.Stdout, spec.Stderr
	} else {
		cmd.Stdout = teeTo(p.tail, spec.Stdout)
		cmd.Stderr = teeTo(p.tail, spec.Stderr)
		if spec.Stdout == spec.Stderr {
			cmd.Stderr = cmd.Stdout // one writer: exec copies with one goroutine
		}
	}
	cmd.SysProcAttr = sysProcAttr(spec.ParentDeathSignal)
	if spec.OutliveParent {
		cmd.SysProcAttr = sysProcAttrNoDeathSignal()
	}
	cmd.WaitDelay = 2 * time.Second
	p.cmd = cmd
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("%s: starting %s: %w", spec.Name, spec.Path, err)
	}
	if spec.PIDFile != "" {
		_ = os.WriteFile(spec.PIDFile, []byte(fmt.Sprintf("%d %d\n", cmd.Process.Pid, startTicks(cmd.Process.Pid))), 0o644)
	}
	go func() {
		p.waitErr = cmd.Wait()
		if p.pidFile != "" {
			_ = os.Remove(p.pidFile)
		}
		close(p.done)
	}()
	if spec.Ready == nil {
		return p, nil
	}
	timeout := spec.StartTimeout
	if timeout <= 0 {
		timeout = 30 * time.Second
	}
	rctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	rctx, cancelT := context.WithTimeout(rctx, timeout)
	defer cancelT()
	go func() {
		select {
		case <-p.done:
			cancel(ErrExited)
		case <-rctx.Done():
		}
	}()
	if err := spec.Ready(rctx, p); err != nil {
		_ = p.Kill()
		return nil, err
	}
	return p, nil
}

func teeTo(tail *TailBuffer, w io.Writer) io.Writer {
	if w == nil {
		return tail
	}
	return io.MultiWriter(tail, w)
}

// Pid is the process id (and process group id).
func (p *Process) Pid() int { return p.cmd.Process.Pid }

// Done is closed once the process has exited and been reaped.
func (p *Process) Done() <-chan struct{} { return p.done }

// ExitErr is how the process ended (nil before Done, or on exit status 0).
func (p *Process) ExitErr() error {
	select {
	case <-p.done:
		return p.waitErr
	default:
		return nil
	}
}

// ProcessState is the ended process's state (nil before Done).
func (p *Process) ProcessState() *os.ProcessState {
	if !p.Exited() {
		return nil
	}
	return p.cmd.ProcessState
}

// Exited reports whether the process has exited.
func (p *Process) Exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// Tail is the last part of the process's output.
func (p *Process) Tail() string { return p.tail.String() }

// Signal sends sig to the process group (to the process alone if the group
// is gone).
func (p *Process) Signal(sig syscall.Signal) error {
	if p.Exited() {
		return nil
	}
	if err := syscall.Kill(-p.Pid(), sig); err != nil {
		if err := syscall.Kill(p.Pid(), sig); err != nil && !errors.Is(err, syscall.ESRCH) {
			return err
		}
	}
	return nil
}

// Stop sends SIGTERM to the group, SIGKILL after grace, and waits for the
// process to exit (at most 10 s after SIGKILL). Stopping an ended process
// does nothing.
func (p *Process) Stop(grace time.Duration) error {
	p.stopMu.Lock()
	defer p.stopMu.Unlock()
	if p.Exited() {
		p.reapGroup()
		return nil
	}
	_ = p.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
		p.reapGroup()
		return nil
	case <-time.After(grace):
	}
	return p.killLocked()
}

// Kill sends SIGKILL to the group and waits for the process to exit.
func (p *Process) Kill() error {
	p.stopMu.Lock()
	defer p.stopMu.Unlock()
	return p.killLocked()
}

func (p *Process) killLocked() error {
	_ = p.Signal(syscall.SIGKILL)
	select {
	case <-p.done:
		p.reapGroup()
		return nil
	case <-time.After(10 * time.Second):
		return fmt.Errorf("%s (pid %d) did not exit after SIGKILL", p.name, p.Pid())
	}
}

// reapGroup kills what is left of the group once its leader is gone (a
// child the leader spawned would otherwise hold the port).
func (p *Process) reapGroup() { _ = syscall.Kill(-p.Pid(), syscall.SIGKILL) }

// SweepOrphan ends the process group recorded in pidFile if its leader is
// still alive (same pid and start time: a launcher that was killed left it
// behind), then removes the file. It reports whether it killed something.
func SweepOrphan(pidFile string) bool {
	pid, ticks, err := ReadPIDFile(pidFile)
	var unreadable *os.PathError
	if errors.As(err, &unreadable) {
		return false // none (or not ours to read)
	}
	defer os.Remove(pidFile)
	if err != nil || pid <= 1 || pid == os.Getpid() {
		return false
	}
	if t := startTicks(pid); t == 0 || t != ticks {
		return false // gone, or the pid was reused
	}
	_ = syscall.Kill(-pid, syscall.SIGKILL)
	_ = syscall.Kill(pid, syscall.SIGKILL)
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline) && startTicks(pid) == ticks; {
		time.Sleep(20 * time.Millisecond)
	}
	return true
}

// ReadPIDFile reads a Spec.PIDFile: the process's pid and its start time
// in clock ticks (the guard against a reused pid).
func ReadPIDFile(path string) (pid int, startTicks uint64, err error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0, 0, err
	}
	f := strings.Fields(string(b))
	if len(f) < 2 {
		return 0, 0, fmt.Errorf("supervisor: PID file %s: want \"pid start-ticks\", got %q", path, b)
	}
	pid, err1 := strconv.Atoi(f[0])
	ticks, err2 := strconv.ParseUint(f[1], 10, 64)
	if err := errors.Join(err1, err2); err != nil {
		return 0, 0, fmt.Errorf("supervisor: PID file %s: %w", path, err)
	}
	return pid, ticks, nil
}

// startTicks is a live process's start time after boot in clock ticks, from
// /proc/<pid>/stat (0: gone, a zombie, or no /proc).
func startTicks(pid int) uint64 {
	f, ok := proctree.Stat(pid)
	if !ok {
		return 0
	}
	n, _ := strconv.ParseUint(f[19], 10, 64)
	return n
}

// TailBuffer keeps the last bytes written to it.
type TailBuffer struct {
	mu  sync.Mutex
	max int
	buf []byte
}

// NewTailBuffer keeps the last max bytes.
func NewTailBuffer(max int) *TailBuffer { return &TailBuffer{max: max} }

func (t *TailBuffer) Write(b []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.buf = append(t.buf, b...)
	if over := len(t.buf) - t.max; over > 0 {
		t.buf = append(t.buf[:0], t.buf[over:]...)
	}
	return len(b), nil
}

func (t *TailBuffer) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return string(t.buf)
}

// LineWriter calls fn with each complete line written to it (without the
// newline; the slice is only valid during the call). Close passes a last
// unterminated line.
type LineWriter struct {
	mu  sync.Mutex
	fn  func([]byte)
	buf []byte
}

// NewLineWriter returns a LineWriter calling fn.
func NewLineWriter(fn func(line []byte)) *LineWriter { return &LineWriter{fn: fn} }

func (l *LineWriter) Write(b []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.buf = append(l.buf, b...)
	for {
		i := bytes.IndexByte(l.buf, '\n')
		if i < 0 {
			break
		}
		l.fn(l.buf[:i])
		l.buf = l.buf[i+1:]
	}
	if len(l.buf) > 16<<20 {
		l.fn(l.buf)
		l.buf = nil
	}
	return len(b), nil
}

// Close passes a last unterminated line to fn.
func (l *LineWriter) Close() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.buf) > 0 {
		l.fn(l.buf)
		l.buf = nil
	}
	return nil
}
