package localproc

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"github.com/sluicehq/sluice/internal/testkit"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/sluicehq/sluice/internal/compute"
	"github.com/sluicehq/sluice/internal/runtimeclient"
	"github.com/sluicehq/sluice/internal/sampleruntime"
)

// runtimeBinary is the sample runtime, built once for this test binary.
var runtimeBinary string

func TestMain(m *testing.M) {
	os.Exit(runTests(m))
}

func runTests(m *testing.M) int {
	root, err := moduleRoot()
	if err != nil {
		fmt.Fprintln(os.Stderr, "localproc tests:", err)
		return 1
	}
	tmp, err := os.MkdirTemp("", "localproc-test-bin-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "localproc tests:", err)
		return 1
	}
	defer os.RemoveAll(tmp)
	runtimeBinary = filepath.Join(tmp, "sample-runtime")
	build := exec.Command("go", "build", "-o", runtimeBinary, "./infra/sample-runtime")
	build.Dir = root
	if out, err := build.CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "localproc tests: building the sample runtime: %v\n%s", err, out)
		return 1
	}
	return m.Run()
}

// moduleRoot walks up from the working directory to the go.mod.
func moduleRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("go.mod not found above the working directory")
		}
		dir = parent
	}
}

const waitDeadline = 20 * time.Second

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(waitDeadline)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func newDriver(t *testing.T, root string) *Driver {
	t.Helper()
	d, err := New(Config{Root: root, RuntimeBinary: runtimeBinary, GracePeriod: 5 * time.Second, StartTimeout: 15 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		if err := d.Shutdown(ctx); err != nil {
			t.Errorf("shutdown: %v", err)
		}
	})
	return d
}

const fastConfig = `{"events_per_sec":20000,"checkpoint_interval_secs":0}`

func req(pipeline, deploymentID, cfg, initial string) compute.ProvisionRequest {
	return compute.ProvisionRequest{
		Pipeline:      pipeline,
		PipelineID:    "id-" + pipeline,
		DeploymentID:  deploymentID,
		RuntimeConfig: json.RawMessage(cfg),
		Initial:       initial,
	}
}

func client(t *testing.T, loc string) *runtimeclient.Client {
	t.Helper()
	c, err := runtimeclient.New(loc)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func stats(t *testing.T, c *runtimeclient.Client) sampleruntime.Stats {
	t.Helper()
	raw, err := c.Stats(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	var s sampleruntime.Stats
	if err := json.Unmarshal(raw, &s); err != nil {
		t.Fatal(err)
	}
	return s
}

func waitStatus(t *testing.T, c *runtimeclient.Client, want string) {
	t.Helper()
	waitFor(t, "runtime status "+want, func() bool {
		rep, err := c.Status(context.Background())
		return err == nil && string(rep.RuntimeStatus) == want
	})
}

func waitCount(t *testing.T, c *runtimeclient.Client, atLeast uint64) sampleruntime.Stats {
	t.Helper()
	var s sampleruntime.Stats
	waitFor(t, fmt.Sprintf("count ≥ %d", atLeast), func() bool { s = stats(t, c); return s.Count >= atLeast })
	return s
}

func check(t *testing.T, d *Driver, pipeline, id string) compute.CheckResult {
	t.Helper()
	r, err := d.Check(context.Background(), pipeline, id)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func TestProvisionStatsDeprovision(t *testing.T) {
	root := t.TempDir()
	d := newDriver(t, root)
	ctx := context.Background()
	dep, err := d.Provision(ctx, req("p1", "dep-1", fastConfig, "Running"))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(dep.Location, "http://127.0.0.1:") || dep.Handle == "" {
		t.Fatalf("deployment = %+v", dep)
	}
	pid, _ := strconv.Atoi(dep.Handle)
	c := client(t, dep.Location)
	waitStatus(t, c, "Running")
	s := waitCount(t, c, 100)
	if !s.State().Consistent() || s.Pipeline != "p1" || s.DeploymentID != "dep-1" {
		t.Errorf("stats = %+v", s)
	}
	if r := check(t, d, "p1", "dep-1"); r.State != compute.StateRunning || r.Location != dep.Location {
		t.Errorf("check = %+v", r)
	}
	// Its own process group, so a terminal Ctrl-C does not reach it.
	if st, err := readProcStat(pid); err != nil || st.pgrp != pid {
		t.Errorf("process group = %+v (%v), want %d", st, err, pid)
	}
	runDir := d.RunDir("p1", "dep-1")
	for _, f := range []string{metaFile, pidFile, portFile, logFile} {
		if _, err := os.Stat(filepath.Join(runDir, f)); err != nil {
			t.Errorf("run dir file %s: %v", f, err)
		}
	}
	if b, _ := os.ReadFile(filepath.Join(runDir, logFile)); !strings.Contains(string(b), `"deployment_id":"dep-1"`) {
		t.Errorf("runtime log = %s", b)
	}

	// A checkpoint, so there is something in storage to keep.
	if _, err := c.Checkpoint(ctx); err != nil {
		t.Fatal(err)
	}
	if err := d.Deprovision(ctx, "p1", "dep-1"); err != nil {
		t.Fatal(err)
	}
	if err := d.Deprovision(ctx, "p1", "dep-1"); err != nil {
		t.Fatalf("second deprovision: %v", err)
	}
	if err := d.Deprovision(ctx, "p1", "never-existed"); err != nil {
		t.Fatalf("deprovision of a missing deployment: %v", err)
	}
	r := check(t, d, "p1", "dep-1")
	// The sample runtime handles SIGTERM gracefully: exit code 0.
	if r.State != compute.StateGone || !strings.Contains(r.Reason, "deprovisioned (exited with code 0)") {
		t.Errorf("check after deprovision = %+v", r)
	}
	if processAlive(pid, 0) {
		t.Error("process still alive")
	}
	// Storage outlives the deployment.
	m, _ := filepath.Glob(filepath.Join(d.StorageDir("p1", "id-p1"), "checkpoint-*.json"))
	if len(m) != 1 {
		t.Errorf("storage after deprovision: %v", m)
	}
	if r := check(t, d, "p1", "nope"); r.State != compute.StateGone || r.Reason == "" {
		t.Errorf("check of unknown deployment = %+v", r)
	}
	if _, err := c.Status(ctx); !runtimeclient.IsTemporary(err) {
		t.Errorf("status of a deprovisioned runtime: %v", err)
	}
}

func TestProvisionIsIdempotent(t *testing.T) {
	d := newDriver(t, t.TempDir())
	ctx := context.Background()
	dep1, err := d.Provision(ctx, req("p1", "dep-1", fastConfig, "Paused"))
	if err != nil {
		t.Fatal(err)
	}
	dep2, err := d.Provision(ctx, req("p1", "dep-1", fastConfig, "Paused"))
	if err != nil {
		t.Fatal(err)
	}
	if dep1 != dep2 {
		t.Errorf("repeat returned %+v, first %+v", dep2, dep1)
	}
	infos, _ := d.Deployments()
	if len(infos) != 1 {
		t.Errorf("deployments = %+v", infos)
	}
	waitStatus(t, client(t, dep1.Location), "Paused")
}

func TestConcurrentProvisionOfOneDeployment(t *testing.T) {
	d := newDriver(t, t.TempDir())
	var wg sync.WaitGroup
	deps := make([]compute.Deployment, 4)
	errs := make([]error, 4)
	for i := range deps {
		wg.Add(1)
		go func() {
			defer wg.Done()
			deps[i], errs[i] = d.Provision(context.Background(), req("p1", "dep-1", fastConfig, ""))
		}()
	}
	wg.Wait()
	for i := range deps {
		if errs[i] != nil || deps[i] != deps[0] {
			t.Errorf("provision %d = %+v, %v (first %+v)", i, deps[i], errs[i], deps[0])
		}
	}
}

// A new deployment of a pipeline stops the old one first: never two writers on one storage.
func TestNewDeploymentStopsPrevious(t *testing.T) {
	d := newDriver(t, t.TempDir())
	ctx := context.Background()
	old, err := d.Provision(ctx, req("p1", "dep-1", fastConfig, ""))
	if err != nil {
		t.Fatal(err)
	}
	other, err := d.Provision(ctx, req("p2", "dep-9", fastConfig, ""))
	if err != nil {
		t.Fatal(err)
	}
	dep, err := d.Provision(ctx, req("p1", "dep-2", fastConfig, ""))
	if err != nil {
		t.Fatal(err)
	}
	if r := check(t, d, "p1", "dep-1"); r.State != compute.StateGone {
		t.Errorf("old deployment = %+v", r)
	}
	if r := check(t, d, "p1", "dep-2"); r.State != compute.StateRunning || r.Location != dep.Location || dep.Location == old.Location {
		t.Errorf("new deployment = %+v (old %s)", r, old.Location)
	}
	if r := check(t, d, "p2", "dep-9"); r.State != compute.StateRunning || r.Location != other.Location {
		t.Errorf("another pipeline's deployment was touched: %+v", r)
	}
}

// Suspend, deprovision, provision a new deployment: it resumes exactly where the
// suspend checkpoint left off.
func TestReprovisionResumesFromCheckpoint(t *testing.T) {
	d := newDriver(t, t.TempDir())
	ctx := context.Background()
	dep, err := d.Provision(ctx, req("p1", "dep-1", fastConfig, ""))
	if err != nil {
		t.Fatal(err)
	}
	c := client(t, dep.Location)
	waitCount(t, c, 500)
	if err := c.Suspend(ctx); err != nil {
		t.Fatal(err)
	}
	waitStatus(t, c, "Suspended")
	final := stats(t, c)
	rep, err := c.Status(ctx)
	if err != nil {
		t.Fatal(err)
	}
	cps, err := rep.Checkpoints()
	if err != nil || len(cps) == 0 {
		t.Fatalf("checkpoints = %v, %v", cps, err)
	}
	last := cps[len(cps)-1]
	if last.SequenceNumber != final.LastSequenceNumber {
		t.Fatalf("suspend checkpoint at %d, state at %d", last.SequenceNumber, final.LastSequenceNumber)
	}
	if err := d.Deprovision(ctx, "p1", "dep-1"); err != nil {
		t.Fatal(err)
	}

	dep2, err := d.Provision(ctx, req("p1", "dep-2", fastConfig, "Paused"))
	if err != nil {
		t.Fatal(err)
	}
	c2 := client(t, dep2.Location)
	waitStatus(t, c2, "Paused")
	s := stats(t, c2)
	if s.State() != final.State() || s.RestoredFromCheckpoint == nil || *s.RestoredFromCheckpoint != last.UUID ||
		s.RestoredSequenceNumber == nil || *s.RestoredSequenceNumber != final.LastSequenceNumber {
		t.Fatalf("restored %+v, suspended at %+v", s, final)
	}
	if err := c2.Start(ctx); err != nil {
		t.Fatal(err)
	}
	s = waitCount(t, c2, final.Count+200)
	if !s.State().Consistent() {
		t.Fatalf("inconsistent after resume: %+v", s)
	}
}

// A restarted control plane (a new Driver over the same Root) finds the
// deployments, keeps the wanted ones and stops the orphans.
func TestOrphanCleanupAfterRestart(t *testing.T) {
	root := t.TempDir()
	d1 := newDriver(t, root)
	ctx := context.Background()
	keepDep, err := d1.Provision(ctx, req("keep", "dep-k", fastConfig, ""))
	if err != nil {
		t.Fatal(err)
	}
	orphan, err := d1.Provision(ctx, req("orphan", "dep-o", fastConfig, ""))
	if err != nil {
		t.Fatal(err)
	}

	d2 := newDriver(t, root) // the "restarted" control plane
	infos, err := d2.Deployments()
	if err != nil {
		t.Fatal(err)
	}
	if len(infos) != 2 {
		t.Fatalf("deployments = %+v", infos)
	}
	for _, i := range infos {
		if !i.Alive || i.Location == "" || i.PipelineID != "id-"+i.Pipeline || i.StorageDir == "" || i.RunDir == "" {
			t.Errorf("info = %+v", i)
		}
	}
	stopped, err := d2.CleanupOrphans(ctx, func(pipeline, id string) bool { return pipeline == "keep" && id == "dep-k" })
	if err != nil {
		t.Fatal(err)
	}
	if len(stopped) != 1 || stopped[0].DeploymentID != "dep-o" {
		t.Errorf("stopped = %+v", stopped)
	}
	if r := check(t, d2, "orphan", "dep-o"); r.State != compute.StateGone || !strings.Contains(r.Reason, "deprovisioned") {
		t.Errorf("orphan = %+v", r)
	}
	if _, err := client(t, orphan.Location).Status(ctx); !runtimeclient.IsTemporary(err) {
		t.Errorf("orphan still answers: %v", err)
	}
	if r := check(t, d2, "keep", "dep-k"); r.State != compute.StateRunning || r.Location != keepDep.Location {
		t.Errorf("kept = %+v", r)
	}
	// The new driver adopts the kept deployment: Provision returns it.
	again, err := d2.Provision(ctx, req("keep", "dep-k", fastConfig, ""))
	if err != nil || again != keepDep {
		t.Errorf("re-provision after restart = %+v, %v (want %+v)", again, err, keepDep)
	}
	// Nothing else to clean.
	if stopped, err := d2.CleanupOrphans(ctx, func(string, string) bool { return false }); err != nil || len(stopped) != 1 {
		t.Errorf("second cleanup = %+v, %v", stopped, err)
	}
	if r := check(t, d2, "keep", "dep-k"); r.State != compute.StateGone {
		t.Errorf("kept after cleanup-all = %+v", r)
	}
}

func TestCrashIsReportedGone(t *testing.T) {
	d := newDriver(t, t.TempDir())
	ctx := context.Background()
	dep, err := d.Provision(ctx, req("p1", "dep-1", `{"fault":{"crash_after_secs":0.3},"checkpoint_interval_secs":0}`, ""))
	if err != nil {
		t.Fatal(err)
	}
	var r compute.CheckResult
	waitFor(t, "the crash", func() bool { r = check(t, d, "p1", "dep-1"); return r.State == compute.StateGone })
	if !strings.Contains(r.Reason, "exited with code 3") || strings.Contains(r.Reason, "deprovisioned") {
		t.Errorf("reason = %q", r.Reason)
	}
	if r.Location != dep.Location {
		t.Errorf("location = %q", r.Location)
	}
	infos, _ := d.Deployments()
	if len(infos) != 1 || infos[0].Alive || !strings.Contains(infos[0].ExitReason, "code 3") {
		t.Errorf("infos = %+v", infos)
	}
	// Repeating the Provision of that deployment returns it (Check says why it is gone);
	// it does not start a second process.
	again, err := d.Provision(ctx, req("p1", "dep-1", fastConfig, ""))
	if err != nil || again != dep {
		t.Errorf("repeat = %+v, %v", again, err)
	}
	if r := check(t, d, "p1", "dep-1"); r.State != compute.StateGone {
		t.Errorf("after repeat = %+v", r)
	}
	if err := d.Deprovision(ctx, "p1", "dep-1"); err != nil {
		t.Errorf("deprovision of a crashed runtime: %v", err)
	}
	// A restarted driver (no exit status of its own) still reports the recorded reason.
	d2 := newDriver(t, d.cfg.Root)
	if r := check(t, d2, "p1", "dep-1"); r.State != compute.StateGone || !strings.Contains(r.Reason, "code 3") {
		t.Errorf("after restart = %+v", r)
	}
}

func TestStartupFailure(t *testing.T) {
	failing, err := New(Config{Root: t.TempDir(), RuntimeCommand: []string{"/bin/sh", "-c", "echo boom-on-stderr >&2; exit 7"}, GracePeriod: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer failing.Shutdown(context.Background())
	ctx := context.Background()
	cfg := `{}`
	d := failing
	_, err = d.Provision(ctx, req("p1", "dep-1", cfg, ""))
	if err == nil || !strings.Contains(err.Error(), "exited with code 7") || !strings.Contains(err.Error(), "boom-on-stderr") {
		t.Fatalf("err = %v", err)
	}
	if errors.Is(err, compute.ErrTemporary) {
		t.Error("a runtime that exits at once is not a temporary failure")
	}
	// Repeating it fails the same way, without a second process.
	_, err2 := d.Provision(ctx, req("p1", "dep-1", cfg, ""))
	if err2 == nil || !strings.Contains(err2.Error(), "exited with code 7") {
		t.Errorf("repeat: %v", err2)
	}
	if b, _ := os.ReadFile(filepath.Join(d.RunDir("p1", "dep-1"), logFile)); strings.Count(string(b), "boom-on-stderr") != 1 {
		t.Errorf("the runtime ran more than once: %q", b)
	}
	// A launch failure of the runtime itself (bad runtime_config).
	d = newDriver(t, t.TempDir())
	_, err = d.Provision(ctx, req("p1", "dep-2", `{"events_per_sec":"fast"}`, ""))
	if err == nil || !strings.Contains(err.Error(), "exited with code 2") {
		t.Errorf("bad config: %v", err)
	}
}

func TestBadRequests(t *testing.T) {
	d := newDriver(t, t.TempDir())
	ctx := context.Background()
	bad := []compute.ProvisionRequest{
		req("../etc", "dep-1", fastConfig, ""),
		req("p1", "dep/1", fastConfig, ""),
		req("p1", "dep-1", fastConfig, "Suspended"),
		req("p1", "dep-1", `[1]`, ""),
	}
	for _, r := range bad {
		if _, err := d.Provision(ctx, r); err == nil {
			t.Errorf("provision %+v: want error", r)
		}
	}
	if err := d.Deprovision(ctx, "a/b", "x"); err == nil {
		t.Error("deprovision with a bad name accepted")
	}
	if _, err := d.Check(ctx, "p", ".."); err == nil {
		t.Error("check with a bad id accepted")
	}
	if err := d.ClearStorage(ctx, "p", "../x"); err == nil {
		t.Error("clear storage with a bad id accepted")
	}
	if _, err := New(Config{}); err == nil {
		t.Error("New without Root accepted")
	}
	noBin, err := New(Config{Root: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := noBin.Provision(ctx, req("p1", "dep-1", fastConfig, "")); err == nil {
		t.Error("provision without a runtime binary accepted")
	}
}

// Issue 14: what runs is the operator's configuration. A runtime_config
// naming a command (a record from before the API refused it) runs the
// configured runtime all the same, and the runtime's environment is minimal:
// none of the control plane's variables (credentials, keys) reach it.
func TestRuntimeConfigCannotChooseWhatRuns(t *testing.T) {
	t.Setenv("AWS_SECRET_ACCESS_KEY", "s3cr3t-of-the-control-plane")
	root := t.TempDir()
	pwned := filepath.Join(root, "pwned")
	d := newDriver(t, root)
	cfg, _ := json.Marshal(map[string]any{"command": []string{"/bin/sh", "-c", "touch " + pwned}, "events_per_sec": 1000, "checkpoint_interval_secs": 0})
	dep, err := d.Provision(context.Background(), req("p1", "dep-1", string(cfg), ""))
	if err != nil {
		t.Fatal(err)
	}
	waitStatus(t, client(t, dep.Location), "Running")
	if _, err := os.Stat(pwned); err == nil {
		t.Fatal("runtime_config.command ran on the host")
	}

	envFile := filepath.Join(root, "env")
	dumper, err := New(Config{Root: t.TempDir(), GracePeriod: time.Second,
		RuntimeCommand: []string{"/bin/sh", "-c", `env > ` + strconv.Quote(envFile) + `; echo 1 > "$SLUICE_PORT_FILE"; sleep 300`},
		RuntimeEnv:     []string{"OPERATOR_SETTING=1"}})
	if err != nil {
		t.Fatal(err)
	}
	defer dumper.Shutdown(context.Background())
	if _, err := dumper.Provision(context.Background(), req("p2", "dep-2", `{}`, "")); err != nil {
		t.Fatal(err)
	}
	env, err := os.ReadFile(envFile)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(env), "s3cr3t") {
		t.Fatalf("the control plane's environment reached the runtime:\n%s", env)
	}
	for _, want := range []string{"OPERATOR_SETTING=1", "SLUICE_PIPELINE=p2", "SLUICE_PROGRAM_DIR=", "PATH="} {
		if !strings.Contains(string(env), want) {
			t.Errorf("runtime environment lacks %s:\n%s", want, env)
		}
	}
}

// A runtime that ignores SIGTERM is killed (with its whole process group) after
// the grace period.
func TestDeprovisionKillsAfterGracePeriod(t *testing.T) {
	script := `trap '' TERM; sleep 300 & echo $! > "$SLUICE_PORT_FILE.child"; echo 1 > "$SLUICE_PORT_FILE"; wait`
	d, err := New(Config{Root: t.TempDir(), GracePeriod: 200 * time.Millisecond, RuntimeCommand: []string{"/bin/sh", "-c", script}})
	if err != nil {
		t.Fatal(err)
	}
	defer d.Shutdown(context.Background())
	dep, err := d.Provision(context.Background(), req("p1", "dep-1", `{}`, ""))
	if err != nil {
		t.Fatal(err)
	}
	pid, _ := strconv.Atoi(dep.Handle)
	b, err := os.ReadFile(filepath.Join(d.RunDir("p1", "dep-1"), portFile+".child"))
	if err != nil {
		t.Fatal(err)
	}
	childPid, _ := strconv.Atoi(strings.TrimSpace(string(b)))
	if !processAlive(childPid, 0) {
		t.Fatal("grandchild not running")
	}
	if err := d.Deprovision(context.Background(), "p1", "dep-1"); err != nil {
		t.Fatal(err)
	}
	if processAlive(pid, 0) {
		t.Error("runtime survived")
	}
	waitFor(t, "the grandchild to die", func() bool { return !processAlive(childPid, 0) })
	r := check(t, d, "p1", "dep-1")
	if r.State != compute.StateGone || !strings.Contains(r.Reason, "SIGKILL") {
		t.Errorf("check = %+v", r)
	}
}

func TestDeprovisionRespectsContext(t *testing.T) {
	script := `trap '' TERM; echo 1 > "$SLUICE_PORT_FILE"; while :; do sleep 1; done`
	d, err := New(Config{Root: t.TempDir(), GracePeriod: time.Minute, RuntimeCommand: []string{"/bin/sh", "-c", script}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := d.Provision(context.Background(), req("p1", "dep-1", `{}`, "")); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	if err := d.Deprovision(ctx, "p1", "dep-1"); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("deprovision = %v", err)
	}
	if r := check(t, d, "p1", "dep-1"); r.State != compute.StateRunning {
		t.Errorf("check = %+v", r)
	}
	// Clean up for real: SIGKILL the group directly (the grace period is a minute).
	pidB, _ := os.ReadFile(filepath.Join(d.RunDir("p1", "dep-1"), pidFile))
	pid, _ := strconv.Atoi(strings.TrimSpace(string(pidB)))
	_ = syscall.Kill(-pid, syscall.SIGKILL)
	waitFor(t, "the kill", func() bool { return check(t, d, "p1", "dep-1").State == compute.StateGone })
}

func TestStartTimeoutIsTemporary(t *testing.T) {
	// The runtime reports its port only once the test lets it (no timing assumption).
	script := `while [ ! -e "$SLUICE_PORT_FILE.go" ]; do sleep 0.02; done; echo 1 > "$SLUICE_PORT_FILE"; exec sleep 300`
	d, err := New(Config{Root: t.TempDir(), GracePeriod: time.Second, StartTimeout: 100 * time.Millisecond, RuntimeCommand: []string{"/bin/sh", "-c", script}})
	if err != nil {
		t.Fatal(err)
	}
	defer d.Shutdown(context.Background())
	r := req("p1", "dep-1", `{}`, "")
	_, err = d.Provision(context.Background(), r)
	if !errors.Is(err, compute.ErrTemporary) {
		t.Fatalf("err = %v", err)
	}
	if c := check(t, d, "p1", "dep-1"); c.State != compute.StateStarting {
		t.Errorf("check while starting = %+v", c)
	}
	if err := os.WriteFile(filepath.Join(d.RunDir("p1", "dep-1"), portFile+".go"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	// Retrying waits for the same process.
	var dep compute.Deployment
	waitFor(t, "the retried provision", func() bool {
		dep, err = d.Provision(context.Background(), r)
		return err == nil
	})
	if dep.Location != "http://127.0.0.1:1" {
		t.Errorf("deployment = %+v", dep)
	}
}

func TestClearStorage(t *testing.T) {
	d := newDriver(t, t.TempDir())
	ctx := context.Background()
	dep, err := d.Provision(ctx, req("p1", "dep-1", fastConfig, ""))
	if err != nil {
		t.Fatal(err)
	}
	c := client(t, dep.Location)
	waitStatus(t, c, "Running")
	if _, err := c.Checkpoint(ctx); err != nil {
		t.Fatal(err)
	}
	storage := d.StorageDir("p1", "id-p1")
	if err := d.ClearStorage(ctx, "p1", "id-p1"); err == nil {
		t.Fatal("cleared the storage of a live deployment")
	}
	if err := d.Deprovision(ctx, "p1", "dep-1"); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(storage); err != nil {
		t.Fatalf("storage gone after deprovision: %v", err)
	}
	if err := d.ClearStorage(ctx, "p1", "id-p1"); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(storage); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("storage still there: %v", err)
	}
	if err := d.ClearStorage(ctx, "p1", "id-p1"); err != nil {
		t.Fatalf("second clear: %v", err)
	}
	// The next deployment starts from scratch.
	dep2, err := d.Provision(ctx, req("p1", "dep-2", fastConfig, "Paused"))
	if err != nil {
		t.Fatal(err)
	}
	c2 := client(t, dep2.Location)
	waitStatus(t, c2, "Paused")
	if s := stats(t, c2); s.RestoredFromCheckpoint != nil || s.Count != 0 {
		t.Errorf("stats after clear = %+v", s)
	}
}

func TestShutdownStopsEverything(t *testing.T) {
	root := t.TempDir()
	d, err := New(Config{Root: root, RuntimeBinary: runtimeBinary, GracePeriod: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	for _, p := range []string{"a", "b", "c"} {
		if _, err := d.Provision(ctx, req(p, "dep-"+p, fastConfig, "")); err != nil {
			t.Fatal(err)
		}
	}
	if err := d.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	infos, err := d.Deployments()
	if err != nil {
		t.Fatal(err)
	}
	for _, i := range infos {
		if i.Alive {
			t.Errorf("still alive: %+v", i)
		}
	}
	if len(infos) != 3 {
		t.Errorf("infos = %+v", infos)
	}
}

func TestStdoutStderrOverride(t *testing.T) {
	var buf testkit.SyncBuffer
	d, err := New(Config{Root: t.TempDir(), RuntimeBinary: runtimeBinary, Stdout: &buf, Stderr: &buf})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := d.Provision(context.Background(), req("p1", "dep-1", fastConfig, "")); err != nil {
		t.Fatal(err)
	}
	if err := d.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(buf.String(), `"msg":"listening"`) {
		t.Errorf("output = %s", buf.String())
	}
	if _, err := os.Stat(filepath.Join(d.RunDir("p1", "dep-1"), logFile)); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("log file created although output is redirected: %v", err)
	}
}

func TestProcessAliveGuardsPidReuse(t *testing.T) {
	pid := os.Getpid()
	ticks := processStartTicks(pid)
	if ticks == 0 {
		t.Skip("/proc not available")
	}
	if !processAlive(pid, ticks) || !processAlive(pid, 0) {
		t.Error("own process not alive")
	}
	if processAlive(pid, ticks+1) {
		t.Error("a different start time must mean a different process")
	}
	if processAlive(0, 0) || processAlive(-1, 0) {
		t.Error("non-positive pids are never alive")
	}
	// A reaped child is gone.
	cmd := exec.Command("/bin/true")
	if err := cmd.Run(); err != nil {
		t.Fatal(err)
	}
	if processAlive(cmd.Process.Pid, 0) {
		// The pid may have been reused in between, very unlikely; tolerate only that.
		if st, err := readProcStat(cmd.Process.Pid); err == nil && st.state != 'Z' {
			t.Logf("pid %d reused", cmd.Process.Pid)
		} else {
			t.Error("reaped child reported alive")
		}
	}
}

func TestReadProcStatOddComm(t *testing.T) {
	// A command name with spaces and parentheses must not confuse the parser.
	dir := t.TempDir()
	odd := filepath.Join(dir, "a (b) c")
	if err := os.Symlink("/bin/sleep", odd); err != nil {
		t.Skip(err)
	}
	cmd := exec.Command(odd, "30")
	if err := cmd.Start(); err != nil {
		t.Skip(err)
	}
	defer func() { _ = cmd.Process.Kill(); _ = cmd.Wait() }()
	st, err := readProcStat(cmd.Process.Pid)
	if err != nil {
		t.Fatal(err)
	}
	if st.startTicks == 0 || st.pgrp == 0 {
		t.Errorf("stat = %+v", st)
	}
}

// Issue 12: the program is handed to the runtime: SLUICE_PROGRAM_DIR holds
// program.json and the files, as written by the user.
func TestProvisionWritesTheProgram(t *testing.T) {
	runDir := t.TempDir()
	prog := compute.Program{Version: 3, Code: "CREATE TABLE t(x INT);", UdfRust: "fn f() {}", UdfToml: "[deps]", Config: []byte(`{"profile":"dev"}`)}
	dir, err := writeProgram(runDir, prog)
	if err != nil {
		t.Fatal(err)
	}
	sql, _ := os.ReadFile(filepath.Join(dir, "program.sql"))
	js, _ := os.ReadFile(filepath.Join(dir, "program.json"))
	if string(sql) != prog.Code || !strings.Contains(string(js), `"program_version":3`) || !strings.Contains(string(js), `"profile":"dev"`) {
		t.Fatalf("program.sql %q program.json %s", sql, js)
	}
	// A repeat (the same deployment provisioned again) rewrites it whole.
	prog.Code = "x"
	if _, err := writeProgram(runDir, prog); err != nil {
		t.Fatal(err)
	}
	if sql, _ := os.ReadFile(filepath.Join(dir, "program.sql")); string(sql) != "x" {
		t.Fatalf("rewritten program.sql %q", sql)
	}
}
