package dynamolocal

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb"

	"github.com/sluicehq/sluice/internal/supervisor"
)

// Defaults for Options.
const (
	DefaultStartTimeout = 30 * time.Second
	DefaultStopTimeout  = 5 * time.Second
)

// DefaultJVMArgs make the JVM start with about a third of the CPU time
// (C1 compiler only, serial GC); the emulator's load is light, and several
// test binaries start one at once on small CI machines.
var DefaultJVMArgs = []string{"-XX:TieredStopAtLevel=1", "-XX:+UseSerialGC"}

// ErrPortInUse is wrapped by Start's error when the port is taken.
var ErrPortInUse = errors.New("port already in use")

// Options configure Start.
type Options struct {
	// JarDir holds DynamoDBLocal.jar and DynamoDBLocal_lib/ (see EnsureJar).
	JarDir string
	// Port to listen on (all interfaces, as DynamoDB Local always binds
	// 0.0.0.0). 0 picks a free one.
	Port int
	// DBPath is the data directory (created if missing); "" runs in memory.
	DBPath string
	// Java is the java binary; "" means $JAVA_HOME/bin/java if it exists,
	// else java on PATH.
	Java string
	// JVMArgs go before -jar. nil means DefaultJVMArgs; an empty non-nil
	// slice means none.
	JVMArgs []string
	// Stdout and Stderr receive the emulator's output; nil discards it.
	// The tail of stderr is kept for error messages either way.
	Stdout, Stderr io.Writer
	// StartTimeout bounds the wait for the first answered API call
	// (DefaultStartTimeout if 0). It takes about 2 s (4 s on a busy machine).
	StartTimeout time.Duration
	// StopTimeout is how long Stop waits after SIGTERM before SIGKILL
	// (DefaultStopTimeout if 0).
	StopTimeout time.Duration
	// PIDFile, when set, records the emulator's pid while it runs; a start
	// first ends an emulator a crashed launcher left behind on it
	// (supervisor.SweepOrphan).
	PIDFile string

	// skipPortCheck lets tests reach the emulator's own bind failure.
	skipPortCheck bool
}

// Instance is a running DynamoDB Local. Endpoint and Port stay the same
// across Restart.
type Instance struct {
	Endpoint string // http://127.0.0.1:<Port>
	Port     int

	opts Options // resolved: absolute paths, java found, port fixed
	mu   sync.Mutex
	proc *supervisor.Process // nil when stopped
	last *supervisor.Process // the latest process (for StderrTail)
}

// Start runs DynamoDB Local and returns once it answers ListTables.
// It fails with a clear message when java is missing or older than 17,
// when the port is taken (wrapping ErrPortInUse), or when the emulator exits
// or does not answer within StartTimeout (with the tail of its stderr).
func Start(ctx context.Context, opts Options) (*Instance, error) {
	if opts.JarDir == "" {
		return nil, errors.New("dynamolocal: Options.JarDir is empty (see EnsureJar)")
	}
	jarDir, err := filepath.Abs(opts.JarDir)
	if err != nil {
		return nil, fmt.Errorf("dynamolocal: %w", err)
	}
	opts.JarDir = jarDir
	if st, err := os.Stat(filepath.Join(jarDir, JarName)); err != nil || st.IsDir() {
		return nil, fmt.Errorf("dynamolocal: no %s in %s (see EnsureJar)", JarName, jarDir)
	}
	if opts.DBPath != "" {
		if opts.DBPath, err = filepath.Abs(opts.DBPath); err != nil {
			return nil, fmt.Errorf("dynamolocal: %w", err)
		}
		if err := os.MkdirAll(opts.DBPath, 0o755); err != nil {
			return nil, fmt.Errorf("dynamolocal: data dir: %w", err)
		}
	}
	if opts.Java, err = resolveJava(opts.Java); err != nil {
		return nil, err
	}
	if err := checkJava(ctx, opts.Java); err != nil {
		return nil, err
	}
	if opts.StartTimeout <= 0 {
		opts.StartTimeout = DefaultStartTimeout
	}
	if opts.StopTimeout <= 0 {
		opts.StopTimeout = DefaultStopTimeout
	}

	pickPort := opts.Port == 0
	for attempt := 1; ; attempt++ {
		o := opts
		if pickPort {
			if o.Port, err = freePort(); err != nil {
				return nil, fmt.Errorf("dynamolocal: picking a free port: %w", err)
			}
		}
		inst := &Instance{Endpoint: endpointFor(o.Port), Port: o.Port, opts: o}
		err = inst.start(ctx)
		if err == nil {
			return inst, nil
		}
		// Someone grabbed the port we picked between our check and java's
		// bind: pick another.
		if pickPort && errors.Is(err, ErrPortInUse) && attempt < 3 {
			continue
		}
		return nil, err
	}
}

func endpointFor(port int) string { return "http://127.0.0.1:" + strconv.Itoa(port) }

// freePort asks the kernel for a port that is free on all interfaces.
func freePort() (int, error) {
	l, err := net.Listen("tcp", ":0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// checkPortFree fails with ErrPortInUse if the port cannot be bound on all
// interfaces (the emulator binds 0.0.0.0, and a JVM whose bind failed does
// not exit, so this is checked up front).
func checkPortFree(port int) error {
	l, err := net.Listen("tcp", ":"+strconv.Itoa(port))
	if err != nil {
		if errors.Is(err, syscall.EADDRINUSE) {
			return fmt.Errorf("dynamolocal: cannot start DynamoDB Local on port %d: %w", port, ErrPortInUse)
		}
		return fmt.Errorf("dynamolocal: cannot start DynamoDB Local on port %d: %w", port, err)
	}
	return l.Close()
}

// args are the java arguments.
func (o *Options) args() []string {
	jvm := o.JVMArgs
	if jvm == nil {
		jvm = DefaultJVMArgs
	}
	args := append(slices.Clone(jvm),
		"-Djava.library.path="+filepath.Join(o.JarDir, LibDirName),
		"-jar", filepath.Join(o.JarDir, JarName),
		"-sharedDb", "-disableTelemetry",
		"-port", strconv.Itoa(o.Port),
	)
	if o.DBPath == "" {
		return append(args, "-inMemory")
	}
	return append(args, "-dbPath", o.DBPath)
}

// start launches the process (supervisor.Start: its own process group,
// output captured) and waits until it is ready. i.mu is not held: callers
// own i exclusively (Start) or hold the lock (Restart).
func (i *Instance) start(ctx context.Context) error {
	o := &i.opts
	if o.PIDFile != "" {
		supervisor.SweepOrphan(o.PIDFile)
	}
	if !o.skipPortCheck {
		if err := checkPortFree(o.Port); err != nil {
			return err
		}
	}
	stdout := o.Stdout
	if stdout == nil {
		stdout = io.Discard
	}
	stderr := o.Stderr
	if stderr == nil {
		stderr = io.Discard
	}
	p, err := supervisor.Start(ctx, supervisor.Spec{
		Name: "DynamoDB Local", Path: o.Java, Args: o.args(), Dir: o.JarDir,
		Stdout: stdout, Stderr: stderr, ParentDeathSignal: syscall.SIGTERM,
		StartTimeout: o.StartTimeout, PIDFile: o.PIDFile,
		Ready: func(ctx context.Context, p *supervisor.Process) error {
			i.last = p
			return i.waitReady(ctx, p)
		},
	})
	if err != nil {
		if !strings.HasPrefix(err.Error(), "dynamolocal:") {
			return fmt.Errorf("dynamolocal: %w", err)
		}
		return err
	}
	i.proc = p
	return nil
}

func (i *Instance) waitReady(ctx context.Context, p *supervisor.Process) error {
	o := &i.opts
	client, err := NewClient(ctx, i.Endpoint, func(opts *dynamodb.Options) { opts.RetryMaxAttempts = 1 })
	if err != nil {
		return err
	}
	begin := time.Now()
	ticker := time.NewTicker(100 * time.Millisecond)
	defer ticker.Stop()
	for {
		if s := p.Tail(); strings.Contains(s, "Address already in use") || strings.Contains(s, "Failed to bind") {
			return fmt.Errorf("dynamolocal: DynamoDB Local could not bind port %d: %w\nstderr:\n%s", o.Port, ErrPortInUse, tail(s, 1500))
		}
		callCtx, callCancel := context.WithTimeout(ctx, 2*time.Second)
		_, err := client.ListTables(callCtx, &dynamodb.ListTablesInput{Limit: ptr(int32(1))})
		callCancel()
		if err == nil {
			return nil
		}
		select {
		case <-p.Done():
			return fmt.Errorf("dynamolocal: DynamoDB Local (%s %s) exited during startup (%v); stderr:\n%s",
				o.Java, strings.Join(o.args(), " "), p.ExitErr(), tail(p.Tail(), 3000))
		case <-ctx.Done():
			if p.Exited() {
				continue // reported by the case above on the next round
			}
			if ctxErr := context.Cause(ctx); errors.Is(ctxErr, context.DeadlineExceeded) && time.Since(begin) >= o.StartTimeout {
				return fmt.Errorf("dynamolocal: DynamoDB Local on port %d did not answer within %v (last error: %v); stderr:\n%s",
					o.Port, o.StartTimeout, err, tail(p.Tail(), 3000))
			}
			return fmt.Errorf("dynamolocal: waiting for DynamoDB Local: %w", ctx.Err())
		case <-ticker.C:
		}
	}
}

// Stop ends the emulator: SIGTERM to its process group, SIGKILL after
// StopTimeout, then waits for it to exit. Stopping a stopped instance is a
// no-op.
func (i *Instance) Stop() error {
	if i == nil {
		return nil
	}
	i.mu.Lock()
	defer i.mu.Unlock()
	return i.stopLocked()
}

func (i *Instance) stopLocked() error {
	p := i.proc
	if p == nil {
		return nil
	}
	i.proc = nil
	if err := p.Stop(i.opts.StopTimeout); err != nil {
		return fmt.Errorf("dynamolocal: %w", err)
	}
	return nil
}

// Kill ends the emulator at once with SIGKILL to its process group, as a
// crash would (chaos tests; a persistent instance keeps what it committed).
func (i *Instance) Kill() error {
	i.mu.Lock()
	p := i.proc
	i.mu.Unlock()
	if p == nil {
		return nil
	}
	return p.Kill()
}

// Exited is closed when the current emulator process has exited (by itself,
// Kill or Stop); nil when none was started.
func (i *Instance) Exited() <-chan struct{} {
	i.mu.Lock()
	defer i.mu.Unlock()
	if i.proc == nil {
		return nil
	}
	return i.proc.Done()
}

// Process is the current emulator process (nil when stopped).
func (i *Instance) Process() *supervisor.Process {
	i.mu.Lock()
	defer i.mu.Unlock()
	return i.proc
}

// Restart stops the emulator and starts it again on the same port with the
// same options. With a DBPath the data survives; in memory it does not.
func (i *Instance) Restart(ctx context.Context) error {
	i.mu.Lock()
	defer i.mu.Unlock()
	if i.opts.JarDir == "" {
		return errors.New("dynamolocal: Restart of an instance this package did not start")
	}
	if err := i.stopLocked(); err != nil {
		return err
	}
	return i.start(ctx)
}

// Running reports whether the emulator process is alive.
func (i *Instance) Running() bool {
	i.mu.Lock()
	defer i.mu.Unlock()
	return i.proc != nil && !i.proc.Exited()
}

// Pid is the emulator's process id, 0 when stopped.
func (i *Instance) Pid() int {
	i.mu.Lock()
	defer i.mu.Unlock()
	if i.proc == nil {
		return 0
	}
	return i.proc.Pid()
}

// StderrTail returns the last part of the latest emulator process's output.
func (i *Instance) StderrTail() string {
	i.mu.Lock()
	defer i.mu.Unlock()
	if i.last == nil {
		return ""
	}
	return i.last.Tail()
}

func ptr[T any](v T) *T { return &v }
