// Package localproc is the compute driver that runs pipeline runtimes as local
// processes (the local stack and tests). It implements compute.Driver.
//
// # Layout under Root
//
//	storage/<pipeline>-<pipelineID>/             the runtime's storage (checkpoints); outlives
//	                                             every deployment, removed only by ClearStorage
//	deployments/<pipeline>/<deploymentID>/
//	    deployment.json                          what was started: pid, process start time,
//	                                             command, storage directory, …
//	    pid                                      the pid, as text
//	    port                                     written by the runtime once it listens
//	    exit                                     how the process ended (JSON), when known
//	    stop-requested                           present once Deprovision began
//	    runtime.log                              the runtime's stdout and stderr (default)
//
// Everything the driver knows is on disk, so a new Driver over the same Root (a
// restarted control plane) finds the deployments again: Deployments lists them,
// Check and Deprovision work on them, CleanupOrphans stops those nobody wants.
// One control plane per Root at a time.
//
// # Launch contract
//
// The runtime is the operator's RuntimeCommand (or RuntimeBinary); nothing a
// pipeline's runtime_config says changes what runs. It gets an explicit,
// minimal environment (never the control plane's: no credentials or keys
// leak to it): PATH, HOME and TMPDIR, the operator's RuntimeEnv, and:
//
//	SLUICE_RUNTIME_CONFIG  the pipeline's runtime_config JSON
//	SLUICE_STORAGE_DIR     storage/<pipeline>-<pipelineID>
//	SLUICE_INITIAL         Running or Paused
//	SLUICE_LISTEN          127.0.0.1:0
//	SLUICE_PORT_FILE       deployments/<pipeline>/<deploymentID>/port: the runtime writes
//	                       its bound port there (atomically) once it listens
//	SLUICE_PIPELINE        the pipeline name
//	SLUICE_DEPLOYMENT_ID   the deployment id
//
// It runs in its own process group (a terminal Ctrl-C to the control plane does
// not reach it). Deprovision sends SIGTERM to the group, then SIGKILL after the
// grace period.
//
// Process liveness is kill(pid, 0) plus, on Linux, the process start time from
// /proc/<pid>/stat compared with the one recorded at spawn (a reused pid is not
// mistaken for the runtime); zombies count as gone.
package localproc

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/sluicehq/sluice/internal/compute"
	"github.com/sluicehq/sluice/internal/supervisor"
)

var _ compute.Driver = (*Driver)(nil)

// Defaults.
const (
	DefaultGracePeriod  = 10 * time.Second
	DefaultStartTimeout = 30 * time.Second
	// killWait bounds the wait for a process to vanish after SIGKILL.
	killWait  = 10 * time.Second
	pollEvery = 10 * time.Millisecond
)

// Files of a deployment's run directory.
const (
	metaFile          = "deployment.json"
	pidFile           = "pid"
	portFile          = "port"
	exitFile          = "exit"
	stopRequestedFile = "stop-requested"
	logFile           = "runtime.log"
)

// Config configures a Driver.
type Config struct {
	// Root holds the storage and the deployments' run directories.
	Root string
	// RuntimeBinary is the runtime to run (the built sample runtime), when
	// RuntimeCommand is empty.
	RuntimeBinary string
	// RuntimeCommand is the runtime's argv (the operator's choice, e.g. a
	// wrapper script); it wins over RuntimeBinary.
	RuntimeCommand []string
	// RuntimeEnv are extra KEY=VALUE variables for every runtime.
	RuntimeEnv []string
	// GracePeriod is how long Deprovision waits after SIGTERM before SIGKILL
	// (default 10s).
	GracePeriod time.Duration
	// StartTimeout bounds how long Provision waits for the runtime to report its
	// port (default 30s). On expiry Provision fails with compute.ErrTemporary and
	// leaves the process running: a retry with the same deployment id waits again.
	StartTimeout time.Duration
	// Logger receives the driver's logs (default: discarded).
	Logger *slog.Logger
	// Stdout and Stderr receive the runtimes' output; each defaults to the
	// deployment's runtime.log file.
	Stdout io.Writer
	Stderr io.Writer
}

// Driver runs runtimes as local processes.
type Driver struct {
	cfg Config
	log *slog.Logger

	mu       sync.Mutex
	locks    map[string]*sync.Mutex // per pipeline: serializes its lifecycle calls
	children map[string]*child      // processes spawned by this Driver, by run dir
	waiters  sync.WaitGroup
}

// child is a process this Driver spawned and reaps.
type child struct {
	pid  int
	done chan struct{} // closed once reaped and its exit file written
}

// New returns a driver over cfg.Root (created if needed). Deployments left by an
// earlier driver over the same Root are found from their run directories.
func New(cfg Config) (*Driver, error) {
	if cfg.Root == "" {
		return nil, errors.New("localproc: Root is required")
	}
	root, err := filepath.Abs(cfg.Root)
	if err != nil {
		return nil, fmt.Errorf("localproc: %w", err)
	}
	cfg.Root = root
	if cfg.RuntimeBinary != "" {
		if cfg.RuntimeBinary, err = filepath.Abs(cfg.RuntimeBinary); err != nil {
			return nil, fmt.Errorf("localproc: %w", err)
		}
	}
	if cfg.GracePeriod <= 0 {
		cfg.GracePeriod = DefaultGracePeriod
	}
	if cfg.StartTimeout <= 0 {
		cfg.StartTimeout = DefaultStartTimeout
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	for _, dir := range []string{filepath.Join(root, "storage"), filepath.Join(root, "deployments")} {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return nil, fmt.Errorf("localproc: %w", err)
		}
	}
	d := &Driver{
		cfg:      cfg,
		log:      cfg.Logger.With("component", "localproc"),
		locks:    map[string]*sync.Mutex{},
		children: map[string]*child{},
	}
	if infos, err := d.Deployments(); err == nil {
		alive := 0
		for _, i := range infos {
			if i.Alive {
				alive++
				d.log.Info("found live deployment", "pipeline", i.Pipeline, "deployment_id", i.DeploymentID, "pid", i.PID, "location", i.Location)
			}
		}
		d.log.Info("driver ready", "root", root, "deployments", len(infos), "alive", alive)
	}
	return d, nil
}

var (
	pipelineNameRE = regexp.MustCompile(`^[a-zA-Z0-9_-]{1,63}$`)
	idRE           = regexp.MustCompile(`^[a-zA-Z0-9_-]{1,128}$`)
)

func validate(pipeline string, ids ...string) error {
	if !pipelineNameRE.MatchString(pipeline) {
		return fmt.Errorf("localproc: invalid pipeline name %q", pipeline)
	}
	for _, id := range ids {
		if !idRE.MatchString(id) {
			return fmt.Errorf("localproc: invalid id %q", id)
		}
	}
	return nil
}

// StorageDir is where a pipeline's storage lives.
func (d *Driver) StorageDir(pipeline, pipelineID string) string {
	return filepath.Join(d.cfg.Root, "storage", pipeline+"-"+pipelineID)
}

// RunDir is a deployment's run directory.
func (d *Driver) RunDir(pipeline, deploymentID string) string {
	return filepath.Join(d.cfg.Root, "deployments", pipeline, deploymentID)
}

func (d *Driver) lockPipeline(pipeline string) func() {
	d.mu.Lock()
	l, ok := d.locks[pipeline]
	if !ok {
		l = &sync.Mutex{}
		d.locks[pipeline] = l
	}
	d.mu.Unlock()
	l.Lock()
	return l.Unlock
}

func (d *Driver) childOf(runDir string) *child {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.children[runDir]
}

// Provision starts the runtime of a deployment, or returns the existing one.
func (d *Driver) Provision(ctx context.Context, req compute.ProvisionRequest) (compute.Deployment, error) {
	if err := validate(req.Pipeline, req.PipelineID, req.DeploymentID); err != nil {
		return compute.Deployment{}, err
	}
	initial := req.Initial
	if initial == "" {
		initial = "Running"
	}
	if initial != "Running" && initial != "Paused" {
		return compute.Deployment{}, fmt.Errorf("localproc: initial state %q: want Running or Paused", req.Initial)
	}
	// The pipeline lock covers the decision and the spawn, not the wait for the
	// port: a forced Deprovision of a slow-starting runtime must not wait behind it.
	unlock := d.lockPipeline(req.Pipeline)
	runDir, m, err := d.provisionLocked(ctx, req, initial)
	unlock()
	if err != nil {
		return compute.Deployment{}, err
	}
	if !processAlive(m.PID, m.StartTicks) && d.childOf(runDir) == nil {
		// An earlier provisioning of this deployment whose process is gone.
		if port, err := readPort(runDir); err == nil {
			return compute.Deployment{Location: location(port), Handle: strconv.Itoa(m.PID)}, nil
		}
		return compute.Deployment{}, d.startupFailure(runDir, m)
	}
	return d.awaitPort(ctx, runDir, m)
}

// provisionLocked finds the deployment or spawns it; the caller holds the pipeline lock.
func (d *Driver) provisionLocked(ctx context.Context, req compute.ProvisionRequest, initial string) (string, meta, error) {
	runDir := d.RunDir(req.Pipeline, req.DeploymentID)
	if m, err := readMeta(runDir); err == nil {
		return runDir, m, nil // provisioned before: idempotent repeat
	} else if !errors.Is(err, os.ErrNotExist) {
		return "", meta{}, err
	}

	// Never two writers on one storage directory: stop the pipeline's other deployments.
	others, err := d.pipelineDeployments(req.Pipeline)
	if err != nil {
		return "", meta{}, err
	}
	for _, o := range others {
		if o.m.DeploymentID == req.DeploymentID || !processAlive(o.m.PID, o.m.StartTicks) {
			continue
		}
		d.log.Info("stopping the pipeline's previous deployment first", "pipeline", req.Pipeline,
			"old_deployment_id", o.m.DeploymentID, "deployment_id", req.DeploymentID)
		if err := d.stop(ctx, o.runDir, o.m); err != nil {
			return "", meta{}, fmt.Errorf("localproc: stopping previous deployment %s: %w", o.m.DeploymentID, err)
		}
	}

	argv, err := d.command(req.RuntimeConfig)
	if err != nil {
		return "", meta{}, err
	}
	storage := d.StorageDir(req.Pipeline, req.PipelineID)
	if err := os.MkdirAll(storage, 0o755); err != nil {
		return "", meta{}, fmt.Errorf("localproc: storage: %w", err)
	}
	if err := os.MkdirAll(runDir, 0o755); err != nil {
		return "", meta{}, fmt.Errorf("localproc: run dir: %w", err)
	}
	for _, f := range []string{portFile, exitFile, stopRequestedFile, pidFile} {
		_ = os.Remove(filepath.Join(runDir, f))
	}

	runtimeConfig := string(req.RuntimeConfig)
	if strings.TrimSpace(runtimeConfig) == "" {
		runtimeConfig = "{}"
	}
	programDir, err := writeProgram(runDir, req.Program)
	if err != nil {
		return "", meta{}, err
	}
	env := d.runtimeEnv(
		compute.EnvRuntimeConfig+"="+runtimeConfig,
		compute.EnvStorageDir+"="+storage,
		compute.EnvInitial+"="+initial,
		compute.EnvListen+"=127.0.0.1:0",
		compute.EnvPortFile+"="+filepath.Join(runDir, portFile),
		compute.EnvPipeline+"="+req.Pipeline,
		compute.EnvDeploymentID+"="+req.DeploymentID,
		compute.EnvProgramDir+"="+programDir,
	)
	var logf *os.File
	if d.cfg.Stdout == nil || d.cfg.Stderr == nil {
		logf, err = os.OpenFile(filepath.Join(runDir, logFile), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
		if err != nil {
			return "", meta{}, fmt.Errorf("localproc: log file: %w", err)
		}
	}
	stdout, stderr := d.cfg.Stdout, d.cfg.Stderr
	if stdout == nil {
		stdout = logf
	}
	if stderr == nil {
		stderr = logf
	}
	// Its own process group (a Ctrl-C on the control plane's terminal does
	// not reach it; Deprovision signals the whole group), no parent-death
	// signal (the driver's Shutdown ends it), the output straight to
	// runtime.log. Never restarted: a runtime that dies is its pipeline's
	// failure (ComputeVanished).
	proc, err := supervisor.Start(context.Background(), supervisor.Spec{
		Name: "runtime " + req.DeploymentID, Path: argv[0], Args: argv[1:], Dir: runDir, Env: env,
		Stdout: stdout, Stderr: stderr, NoTail: true, OutliveParent: true,
	})
	if err != nil {
		if logf != nil {
			_ = logf.Close()
		}
		return "", meta{}, fmt.Errorf("localproc: starting runtime %q: %w", argv[0], err)
	}
	pid := proc.Pid()
	m := meta{
		Pipeline:     req.Pipeline,
		PipelineID:   req.PipelineID,
		DeploymentID: req.DeploymentID,
		PID:          pid,
		StartTicks:   processStartTicks(pid),
		Command:      argv,
		StorageDir:   storage,
		Initial:      initial,
		StartedAt:    time.Now().UTC(),
	}
	c := &child{pid: pid, done: make(chan struct{})}
	d.mu.Lock()
	d.children[runDir] = c
	d.mu.Unlock()
	d.waiters.Add(1)
	go d.reap(proc, c, runDir, m, logf)

	if err := writeMeta(runDir, m); err != nil {
		_ = signalGroup(pid, syscall.SIGKILL)
		return "", meta{}, err
	}
	d.log.Info("runtime started", "pipeline", req.Pipeline, "deployment_id", req.DeploymentID, "pid", pid, "command", argv[0])
	return runDir, m, nil
}

// awaitPort waits until the runtime wrote its port file.
func (d *Driver) awaitPort(ctx context.Context, runDir string, m meta) (compute.Deployment, error) {
	deadline := time.NewTimer(d.cfg.StartTimeout)
	defer deadline.Stop()
	tick := time.NewTicker(pollEvery)
	defer tick.Stop()
	c := d.childOf(runDir)
	for {
		if port, err := readPort(runDir); err == nil {
			return compute.Deployment{Location: location(port), Handle: strconv.Itoa(m.PID)}, nil
		}
		exited := false
		if c != nil {
			select {
			case <-c.done:
				exited = true
			default:
			}
		} else {
			exited = !processAlive(m.PID, m.StartTicks)
		}
		if exited {
			if port, err := readPort(runDir); err == nil { // wrote the port just before exiting
				return compute.Deployment{Location: location(port), Handle: strconv.Itoa(m.PID)}, nil
			}
			return compute.Deployment{}, d.startupFailure(runDir, m)
		}
		select {
		case <-ctx.Done():
			return compute.Deployment{}, fmt.Errorf("localproc: waiting for runtime %s to listen: %w", m.DeploymentID, ctx.Err())
		case <-deadline.C:
			return compute.Deployment{}, fmt.Errorf("%w: localproc: runtime %s (pid %d) did not report its port within %s",
				compute.ErrTemporary, m.DeploymentID, m.PID, d.cfg.StartTimeout)
		case <-tick.C:
		}
	}
}

func (d *Driver) startupFailure(runDir string, m meta) error {
	reason := "process is gone (exit status unknown)"
	if c := d.childOf(runDir); c != nil {
		<-c.done // gone: the reaper finishes at once
	}
	if rec, err := readExit(runDir); err == nil {
		reason = rec.Reason
	}
	msg := fmt.Sprintf("localproc: runtime %s exited during startup: %s", m.DeploymentID, reason)
	if tail := logTail(filepath.Join(runDir, logFile), 1024); tail != "" {
		msg += "; last output: " + tail
	}
	return errors.New(msg)
}

// reap waits for a spawned process and records how it ended.
func (d *Driver) reap(proc *supervisor.Process, c *child, runDir string, m meta, logf *os.File) {
	defer d.waiters.Done()
	<-proc.Done()
	code, sig, reason := exitReason(proc.ProcessState())
	if _, err := os.Stat(filepath.Join(runDir, stopRequestedFile)); err == nil {
		reason = "deprovisioned (" + reason + ")"
	}
	rec := exitRecord{ExitCode: code, Signal: sig, Reason: reason, At: time.Now().UTC()}
	if err := writeJSONFile(filepath.Join(runDir, exitFile), rec); err != nil {
		d.log.Warn("writing exit file", "run_dir", runDir, "error", err.Error())
	}
	if logf != nil {
		_ = logf.Close()
	}
	d.log.Info("runtime exited", "pipeline", m.Pipeline, "deployment_id", m.DeploymentID, "pid", c.pid, "reason", reason)
	close(c.done)
}

// Deprovision stops a deployment: SIGTERM to its process group, SIGKILL after the
// grace period. A missing or already exited deployment is success. Storage is kept.
func (d *Driver) Deprovision(ctx context.Context, pipeline, deploymentID string) error {
	if err := validate(pipeline, deploymentID); err != nil {
		return err
	}
	unlock := d.lockPipeline(pipeline)
	defer unlock()
	runDir := d.RunDir(pipeline, deploymentID)
	m, err := readMeta(runDir)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	return d.stop(ctx, runDir, m)
}

// stop ends a deployment's process (idempotent).
func (d *Driver) stop(ctx context.Context, runDir string, m meta) error {
	if _, err := os.Stat(filepath.Join(runDir, stopRequestedFile)); errors.Is(err, os.ErrNotExist) {
		_ = os.WriteFile(filepath.Join(runDir, stopRequestedFile), []byte(time.Now().UTC().Format(time.RFC3339Nano)+"\n"), 0o644)
	}
	c := d.childOf(runDir)
	gone := func() bool {
		if c != nil {
			select {
			case <-c.done:
				return true
			default:
				return false
			}
		}
		return !processAlive(m.PID, m.StartTicks)
	}
	if gone() {
		d.recordAdoptedExit(runDir, "deprovisioned (process was already gone)")
		return nil
	}
	if !processAlive(m.PID, m.StartTicks) && c != nil {
		// Exited, not reaped yet: the reaper records it.
		return waitUntil(ctx, killWait, gone)
	}
	d.log.Info("stopping runtime", "pipeline", m.Pipeline, "deployment_id", m.DeploymentID, "pid", m.PID)
	if err := signalGroup(m.PID, syscall.SIGTERM); err != nil {
		return fmt.Errorf("localproc: SIGTERM to %d: %w", m.PID, err)
	}
	how := "SIGTERM"
	if err := waitUntil(ctx, d.cfg.GracePeriod, gone); err != nil {
		if ctx.Err() != nil {
			return fmt.Errorf("localproc: stopping %s: %w", m.DeploymentID, ctx.Err())
		}
		d.log.Warn("runtime ignored SIGTERM: killing it", "pipeline", m.Pipeline, "deployment_id", m.DeploymentID,
			"pid", m.PID, "grace_period", d.cfg.GracePeriod.String())
		if err := signalGroup(m.PID, syscall.SIGKILL); err != nil {
			return fmt.Errorf("localproc: SIGKILL to %d: %w", m.PID, err)
		}
		how = "SIGKILL"
		if err := waitUntil(ctx, killWait, gone); err != nil {
			return fmt.Errorf("localproc: %s (pid %d) survived SIGKILL: %w", m.DeploymentID, m.PID, err)
		}
	}
	// Leftovers of the group (a runtime command's own children) go too. The group
	// id cannot have been reused while any member lives.
	_ = signalGroup(m.PID, syscall.SIGKILL)
	d.recordAdoptedExit(runDir, "deprovisioned (stopped by "+how+")")
	return nil
}

// recordAdoptedExit writes the exit file for a process this driver did not spawn
// (its reaper, when it has one, writes the real one).
func (d *Driver) recordAdoptedExit(runDir, reason string) {
	if d.childOf(runDir) != nil {
		return
	}
	if _, err := os.Stat(filepath.Join(runDir, exitFile)); err == nil {
		return
	}
	_ = writeJSONFile(filepath.Join(runDir, exitFile), exitRecord{Reason: reason, At: time.Now().UTC()})
}

// waitUntil polls cond until it holds, ctx is done or d passes.
func waitUntil(ctx context.Context, d time.Duration, cond func() bool) error {
	deadline := time.NewTimer(d)
	defer deadline.Stop()
	tick := time.NewTicker(pollEvery)
	defer tick.Stop()
	for !cond() {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-deadline.C:
			if cond() {
				return nil
			}
			return fmt.Errorf("still running after %s", d)
		case <-tick.C:
		}
	}
	return nil
}

// Check reports whether the deployment's process is alive, and where it answers.
func (d *Driver) Check(ctx context.Context, pipeline, deploymentID string) (compute.CheckResult, error) {
	if err := validate(pipeline, deploymentID); err != nil {
		return compute.CheckResult{}, err
	}
	runDir := d.RunDir(pipeline, deploymentID)
	m, err := readMeta(runDir)
	if errors.Is(err, os.ErrNotExist) {
		return compute.CheckResult{State: compute.StateGone, Reason: "no such deployment"}, nil
	}
	if err != nil {
		return compute.CheckResult{}, err
	}
	loc := ""
	if port, err := readPort(runDir); err == nil {
		loc = location(port)
	}
	if processAlive(m.PID, m.StartTicks) {
		if loc == "" {
			return compute.CheckResult{State: compute.StateStarting}, nil
		}
		return compute.CheckResult{State: compute.StateRunning, Location: loc}, nil
	}
	if c := d.childOf(runDir); c != nil {
		// Our child exited: give the reaper a moment to record how.
		select {
		case <-c.done:
		case <-time.After(2 * time.Second):
		case <-ctx.Done():
		}
	}
	return compute.CheckResult{State: compute.StateGone, Reason: d.goneReason(runDir, m), Location: loc}, nil
}

func (d *Driver) goneReason(runDir string, m meta) string {
	if rec, err := readExit(runDir); err == nil && rec.Reason != "" {
		return "runtime (pid " + strconv.Itoa(m.PID) + ") " + rec.Reason
	}
	return fmt.Sprintf("runtime (pid %d) is gone (exit status unknown: not started by this control plane process)", m.PID)
}

// ClearStorage removes a pipeline's storage directory (idempotent). It refuses
// while a live deployment of that pipeline uses it.
func (d *Driver) ClearStorage(ctx context.Context, pipeline, pipelineID string) error {
	if err := validate(pipeline, pipelineID); err != nil {
		return err
	}
	unlock := d.lockPipeline(pipeline)
	defer unlock()
	dir := d.StorageDir(pipeline, pipelineID)
	deps, err := d.pipelineDeployments(pipeline)
	if err != nil {
		return err
	}
	for _, o := range deps {
		if o.m.StorageDir == dir && processAlive(o.m.PID, o.m.StartTicks) {
			return fmt.Errorf("localproc: storage of %s is in use by live deployment %s (pid %d)", pipeline, o.m.DeploymentID, o.m.PID)
		}
	}
	if err := os.RemoveAll(dir); err != nil {
		return fmt.Errorf("localproc: clearing storage: %w", err)
	}
	d.log.Info("storage cleared", "pipeline", pipeline, "pipeline_id", pipelineID)
	return nil
}

// Shutdown deprovisions every live deployment (in parallel) and waits for the
// processes this driver spawned to be reaped. The local stack calls it on Ctrl-C.
func (d *Driver) Shutdown(ctx context.Context) error {
	infos, err := d.Deployments()
	if err != nil {
		return err
	}
	var wg sync.WaitGroup
	errs := make([]error, len(infos))
	for n, i := range infos {
		if !i.Alive {
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[n] = d.Deprovision(ctx, i.Pipeline, i.DeploymentID)
		}()
	}
	wg.Wait()
	done := make(chan struct{})
	go func() { d.waiters.Wait(); close(done) }()
	select {
	case <-done:
	case <-ctx.Done():
		errs = append(errs, ctx.Err())
	}
	return errors.Join(errs...)
}

func location(port int) string { return "http://127.0.0.1:" + strconv.Itoa(port) }
