package e2e

import (
	"encoding/json"
	"fmt"
	"github.com/sluicehq/sluice/internal/proctree"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/sluicehq/sluice/internal/sampleruntime"
)

// The status walks of SPEC §2.3, as a poller sees them.
var (
	gracefulWalk = []pair{{"Running", "Running"}, {"Running", "Suspended"}, {"Suspending", "Suspended"}, {"Stopping", "Stopped"}, {"Stopped", "Stopped"}}
	forcedWalk   = []pair{{"Running", "Running"}, {"Running", "Stopped"}, {"Stopping", "Stopped"}, {"Stopped", "Stopped"}}
)

// The walkthrough's runtime_config (the README walkthrough): a fast
// stream and a checkpoint every second.
var runtimeConfig = map[string]any{"events_per_sec": 5000, "checkpoint_interval_secs": 1}

// TestLocalStack starts the stack like `make run` and follows the README
// walkthrough through HTTP, then through the CLI, then stops the stack.
func TestLocalStack(t *testing.T) {
	if testing.Short() {
		t.Skip("starts the whole local stack")
	}
	begin := time.Now()
	s := startStack(t)
	t.Logf("stack up in %s", time.Since(begin).Round(time.Millisecond))

	ok := t.Run("walkthrough", func(t *testing.T) { walkthrough(t, s) })
	ok = t.Run("cli", func(t *testing.T) { cliWalkthrough(t, s) }) && ok
	t.Run("shutdown", func(t *testing.T) { shutdown(t, s) })
	if !ok {
		t.Log("a step failed; the stack was still shut down and checked")
	}
	t.Logf("total %s", time.Since(begin).Round(time.Millisecond))
}

func walkthrough(t *testing.T, s *stack) {
	step := func(name string) { t.Logf("— %s", name) }

	step("health and the API description")
	s.must(t, "GET", "/healthz", nil, 200)
	s.must(t, "GET", "/v0/openapi.json", nil, 200)

	step("1. create a pipeline")
	created := s.must(t, "POST", "/v0/pipelines", map[string]any{"name": "p1", "description": "walkthrough",
		"runtime_config": runtimeConfig}, 201).json(t)
	if created["deployment_status"] != "Stopped" || created["storage_status"] != "Cleared" {
		t.Fatalf("created: %v", created)
	}
	wantError(t, s.do(t, "POST", "/v0/pipelines", map[string]any{"name": "p1"}), 409, "DuplicateName")

	step("2. start it")
	s.must(t, "POST", "/v0/pipelines/p1/start", nil, 202)
	s.poll(t, "p1", "Running", is("Running", "Running"))

	step("3. watch it run (stats, logs)")
	first := s.waitStats(t, "p1", "events", func(st stats) bool { return st.Count > 0 })
	s.followLogUntil(t, "p1", "runtime initialized")
	if first.RestoredFromCheckpoint != nil {
		t.Fatalf("a new pipeline restored from a checkpoint: %+v", first)
	}
	// At least 1,000 events before the stop, so that resuming exactly is a
	// claim about real state, not about an empty stream.
	s.waitStats(t, "p1", "1,000 events", func(st stats) bool { return st.Count > first.Count && st.Count >= 1000 })

	step("4. graceful stop: Running → Suspending → Stopping → Stopped")
	before := s.get(t, "p1")
	lastBefore := s.waitStats(t, "p1", "a reading", func(stats) bool { return true })
	stopAt := time.Now()
	s.must(t, "POST", "/v0/pipelines/p1/stop", nil, 202)
	stopped, seen := s.poll(t, "p1", "Stopped", is("Stopped", "Stopped"))
	t.Logf("the poller saw %v", seen)
	checkWalk(t, "graceful stop", seen, gracefulWalk)
	if h := s.historySince(t, "p1", before.RefreshVersion); fmt.Sprint(h) != fmt.Sprint(gracefulWalk[1:]) {
		t.Fatalf("the history of the graceful stop is %v, want every step %v", h, gracefulWalk[1:])
	}
	if stopped.DeploymentError != nil || stopped.StorageStatus != "InUse" {
		t.Fatalf("after a graceful stop: error %+v, storage %s", stopped.DeploymentError, stopped.StorageStatus)
	}
	if stopped.Workflow == nil || stopped.Workflow.Kind != "suspend" {
		t.Fatalf("workflow %+v", stopped.Workflow)
	}
	suspendExecution := stopped.Workflow.ExecutionName
	wantError(t, s.do(t, "GET", "/v0/pipelines/p1/stats", nil), 503, "PipelineInteractionNotDeployed")
	// Stopped: the last deployment's log, to its end (the suspend's checkpoint in it).
	if l := s.do(t, "GET", "/v0/pipelines/p1/logs", nil); l.status != 200 || !strings.Contains(string(l.body), `"msg":"suspended"`) {
		t.Fatalf("the stopped pipeline's log: %d, %d bytes, no suspended line: %.2000s", l.status, len(l.body), l.body)
	}
	if stopped.StorageStatusDetails == nil || len(stopped.StorageStatusDetails.Checkpoints) == 0 {
		t.Fatalf("no checkpoints recorded: %+v", stopped.StorageStatusDetails)
	}
	cks := stopped.StorageStatusDetails.Checkpoints
	suspended := slices.MaxFunc(cks, func(a, b sampleruntime.CheckpointMeta) int { return int(a.SequenceNumber - b.SequenceNumber) })
	if suspended.SequenceNumber < lastBefore.Last || suspended.CreatedAt.Before(stopAt.Add(-time.Second)) {
		t.Fatalf("the suspend's checkpoint %+v is not the final one (last event before the stop: %d, stop at %s)", suspended, lastBefore.Last, stopAt)
	}
	if onDisk := s.newestCheckpoint(t, stopped); onDisk.UUID != suspended.UUID {
		t.Fatalf("the newest checkpoint in storage is %s, the record says %s", onDisk.UUID, suspended.UUID)
	}

	step("5. start again: the count continues exactly")
	s.must(t, "POST", "/v0/pipelines/p1/start", nil, 202)
	s.poll(t, "p1", "Running", is("Running", "Running"))
	resumed := s.waitStats(t, "p1", "the restored state", func(st stats) bool { return st.RestoredFromCheckpoint != nil })
	if *resumed.RestoredFromCheckpoint != suspended.UUID || resumed.RestoredSequenceNumber == nil || *resumed.RestoredSequenceNumber != suspended.SequenceNumber {
		t.Fatalf("resumed from %v at %v, want the suspend's checkpoint %s at %d", *resumed.RestoredFromCheckpoint, resumed.RestoredSequenceNumber, suspended.UUID, suspended.SequenceNumber)
	}
	// exact() held on every reading: count == last+1 and sum == last*(last+1)/2
	// with the state restored at the checkpoint's event, so the first event
	// after the restart was exactly checkpoint+1.
	if resumed.Last < suspended.SequenceNumber || resumed.IncarnationUUID == first.IncarnationUUID {
		t.Fatalf("after the restart: %+v", resumed)
	}

	step("6. stop?force=true, then start: resumes from the latest periodic checkpoint")
	running := s.get(t, "p1")
	periodic := waitCheckpointAfter(t, s, running, suspended.SequenceNumber)
	t.Logf("a periodic checkpoint at event %d exists", periodic.SequenceNumber)
	s.must(t, "POST", "/v0/pipelines/p1/stop?force=true", nil, 202)
	forced, seen := s.poll(t, "p1", "Stopped", is("Stopped", "Stopped"))
	t.Logf("the poller saw %v", seen)
	checkWalk(t, "forced stop", seen, forcedWalk)
	if h := s.historySince(t, "p1", running.RefreshVersion); fmt.Sprint(h) != fmt.Sprint(forcedWalk[1:]) {
		t.Fatalf("the history of the forced stop is %v, want %v", h, forcedWalk[1:])
	}
	if forced.DeploymentError != nil || forced.StorageStatus != "InUse" || forced.Workflow == nil || forced.Workflow.Kind != "stop" {
		t.Fatalf("after a forced stop: %+v", forced)
	}
	stopExecution := forced.Workflow.ExecutionName
	latest := s.newestCheckpoint(t, forced)
	if latest.SequenceNumber < periodic.SequenceNumber || latest.UUID == suspended.UUID {
		t.Fatalf("the newest checkpoint after the forced stop is %+v; a periodic one at %d existed", latest, periodic.SequenceNumber)
	}
	s.must(t, "POST", "/v0/pipelines/p1/start", nil, 202)
	s.poll(t, "p1", "Running", is("Running", "Running"))
	again := s.waitStats(t, "p1", "the restored state", func(st stats) bool { return st.RestoredFromCheckpoint != nil })
	if *again.RestoredFromCheckpoint != latest.UUID || *again.RestoredSequenceNumber != latest.SequenceNumber || again.Last < latest.SequenceNumber {
		t.Fatalf("resumed %+v, want from the latest checkpoint %s at %d", again, latest.UUID, latest.SequenceNumber)
	}
	s.must(t, "POST", "/v0/pipelines/p1/stop", nil, 202)
	s.poll(t, "p1", "Stopped", is("Stopped", "Stopped"))

	step("7. inspect the workflow executions and the table with the AWS CLI")
	awsInspect(t, s, suspendExecution, stopExecution)

	step("8. a failing suspend ends Stopped with deployment_error")
	withFault := map[string]any{"events_per_sec": 5000, "checkpoint_interval_secs": 1, "fault": map[string]any{"suspend_error": "disk full (injected)"}}
	s.must(t, "PUT", "/v0/pipelines/p1", map[string]any{"description": "walkthrough, failing suspend", "runtime_config": withFault}, 200)
	s.must(t, "POST", "/v0/pipelines/p1/start", nil, 202)
	s.poll(t, "p1", "Running", is("Running", "Running"))
	s.must(t, "POST", "/v0/pipelines/p1/stop", nil, 202)
	failed, seen := s.poll(t, "p1", "Stopped", is("Stopped", "Stopped"))
	t.Logf("the poller saw %v", seen)
	checkWalk(t, "failing suspend", seen, gracefulWalk)
	if e := failed.DeploymentError; e == nil || e.ErrorCode != "SuspendError" || !strings.Contains(e.Message, "disk full (injected)") {
		t.Fatalf("deployment_error %+v", failed.DeploymentError)
	}
	wantError(t, s.do(t, "POST", "/v0/pipelines/p1/start?dismiss_error=false", nil), 400, "CannotStartWithUndismissedError")

	step("9. dismiss the error")
	s.must(t, "POST", "/v0/pipelines/p1/dismiss_error", nil, 200)
	if p := s.get(t, "p1"); p.DeploymentError != nil {
		t.Fatalf("deployment_error after dismiss: %+v", p.DeploymentError)
	}

	step("10. clear the storage")
	wantError(t, s.do(t, "DELETE", "/v0/pipelines/p1", nil), 400, "DeleteRestrictedToClearedStorage")
	s.must(t, "POST", "/v0/pipelines/p1/clear", nil, 202)
	s.poll(t, "p1", "storage Cleared", func(p pipeline) bool { return p.StorageStatus == "Cleared" })

	step("11. delete")
	s.must(t, "DELETE", "/v0/pipelines/p1", nil, 200)
	wantError(t, s.do(t, "GET", "/v0/pipelines/p1", nil), 404, "UnknownPipelineName")
	if r := s.must(t, "GET", "/v0/pipelines", nil, 200); strings.Contains(string(r.body), `"p1"`) {
		t.Fatalf("p1 still listed: %s", r.body)
	}
}

// waitCheckpointAfter waits until the running pipeline's storage holds a
// checkpoint past event seq (the periodic checkpointer's).
func waitCheckpointAfter(t *testing.T, s *stack, p pipeline, seq int64) sampleruntime.Checkpoint {
	t.Helper()
	dir := filepath.Join(s.data, "compute", "storage", p.Name+"-"+p.ID)
	deadline := time.Now().Add(waitLimit)
	for time.Now().Before(deadline) {
		files, _ := filepath.Glob(filepath.Join(dir, "checkpoint-*.json"))
		slices.Sort(files)
		if len(files) > 0 {
			// The runtime writes files atomically (temp file, rename); an
			// old one may be pruned under us: read again next round.
			if cp, err := sampleruntime.ReadCheckpoint(files[len(files)-1]); err == nil && cp.SequenceNumber > seq {
				return cp
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("no checkpoint past event %d in %s", seq, dir)
	return sampleruntime.Checkpoint{}
}

// awsInspect runs the walkthrough's AWS CLI commands against the stack.
func awsInspect(t *testing.T, s *stack, suspendExecution, stopExecution string) {
	aws, err := exec.LookPath("aws")
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("the AWS CLI (aws) is not on PATH; CI must have it: %v", err)
		}
		t.Logf("skipping the AWS CLI inspection: %v", err)
		return
	}
	run := func(args ...string) map[string]any {
		t.Helper()
		cmd := exec.Command(aws, append(args, "--output", "json")...)
		for _, kv := range os.Environ() {
			if !strings.HasPrefix(kv, "AWS_") {
				cmd.Env = append(cmd.Env, kv)
			}
		}
		none := filepath.Join(t.TempDir(), "none")
		cmd.Env = append(cmd.Env, "AWS_ACCESS_KEY_ID=local", "AWS_SECRET_ACCESS_KEY=local", "AWS_DEFAULT_REGION=us-east-1",
			"AWS_CONFIG_FILE="+none, "AWS_SHARED_CREDENTIALS_FILE="+none)
		out, err := cmd.Output()
		if err != nil {
			stderr := ""
			if ee, ok := err.(*exec.ExitError); ok {
				stderr = string(ee.Stderr)
			}
			t.Fatalf("aws %s: %v\n%s", strings.Join(args, " "), err, stderr)
		}
		var m map[string]any
		if err := json.Unmarshal(out, &m); err != nil {
			t.Fatalf("aws %s: not JSON: %s", strings.Join(args, " "), out)
		}
		return m
	}
	machine := func(kind string) string { return "arn:aws:states:us-east-1:123456789012:stateMachine:sluice-" + kind }
	for _, want := range []struct{ kind, execution string }{{"suspend", suspendExecution}, {"stop", stopExecution}} {
		out := run("stepfunctions", "list-executions", "--endpoint-url", s.sfnURL, "--state-machine-arn", machine(want.kind))
		found := false
		execs, _ := out["executions"].([]any)
		for _, e := range execs {
			m, _ := e.(map[string]any)
			if m["name"] == want.execution {
				found = true
				if m["status"] != "SUCCEEDED" {
					t.Errorf("execution %s: %v", want.execution, m)
				}
			}
		}
		if !found {
			t.Errorf("list-executions of sluice-%s lacks %s: %v", want.kind, want.execution, out)
		}
	}
	out := run("dynamodb", "scan", "--endpoint-url", s.dynamoURL, "--table-name", "sluice-pipelines")
	items, _ := out["Items"].([]any)
	found := false
	for _, it := range items {
		m, _ := it.(map[string]any)
		attr := func(k string) any {
			v, _ := m[k].(map[string]any)
			return v["S"]
		}
		if attr("pk") == "PIPELINE#p1" && attr("sk") == "RECORD" {
			found = true
			if attr("deployment_status") != "Stopped" || attr("deployment_desired_status") != "Stopped" {
				t.Errorf("the p1 record in the table: %v", m)
			}
		}
	}
	if !found {
		t.Errorf("the scan has no p1 record (%d items)", len(items))
	}
}

// cliWalkthrough drives the same flow through the sluice binary.
func cliWalkthrough(t *testing.T, s *stack) {
	cfg, _ := json.Marshal(runtimeConfig)
	r := s.sluiceOK(t, "create", "c1", "--description", "CLI walkthrough", "--config", string(cfg))
	if !strings.HasPrefix(r.stdout, "created pipeline c1 (id ") {
		t.Errorf("create: %q", r.stdout)
	}
	r = s.sluiceOK(t, "start", "c1", "--wait")
	if lines := strings.Split(strings.TrimSpace(r.stdout), "\n"); !strings.HasPrefix(lines[len(lines)-1], "Stopped → Provisioning → Running  (") {
		t.Errorf("start --wait:\n%s", r.stdout)
	}
	s.waitStats(t, "c1", "events", func(st stats) bool { return st.Count > 0 })
	r = s.sluiceOK(t, "stats", "c1")
	var st stats
	if err := json.Unmarshal([]byte(r.stdout), &st); err != nil || !st.exact() || st.Count == 0 {
		t.Errorf("stats: %v %q", err, r.stdout)
	}
	r = s.sluiceOK(t, "status", "c1")
	if !strings.Contains(r.stdout, "Running (desired Running)") {
		t.Errorf("status:\n%s", r.stdout)
	}

	r = s.sluiceOK(t, "stop", "c1", "--wait")
	t.Logf("sluice stop c1 --wait:\n%s", r.stdout)
	lines := strings.Split(strings.TrimSpace(r.stdout), "\n")
	var statuses []string
	for _, l := range lines[1 : len(lines)-1] {
		f := strings.Fields(l) // "15:04:05.000  Suspending   desired Suspended"
		if len(f) != 4 || f[2] != "desired" {
			t.Fatalf("progress line %q", l)
		}
		statuses = append(statuses, f[1]+"/"+f[3])
	}
	if got := strings.Join(statuses, " "); got != "Running/Suspended Suspending/Suspended Stopping/Stopped Stopped/Stopped" {
		t.Errorf("progress %s", got)
	}
	if !strings.HasPrefix(lines[len(lines)-1], "Running → Suspending → Stopping → Stopped  (") {
		t.Errorf("summary %q", lines[len(lines)-1])
	}
	r = s.sluiceOK(t, "events", "c1")
	for _, want := range []string{"MarkSuspending", "MarkSuspended", "MarkStopped", "stop?force=false"} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("events lacks %s:\n%s", want, r.stdout)
		}
	}
	r = s.sluiceOK(t, "pipelines")
	if !strings.Contains(r.stdout, "c1") || !strings.Contains(r.stdout, "Stopped") {
		t.Errorf("pipelines:\n%s", r.stdout)
	}

	// A failing suspend: exit non-zero, the error printed.
	file := filepath.Join(t.TempDir(), "failing.json")
	if err := os.WriteFile(file, []byte(`{"events_per_sec":5000,"checkpoint_interval_secs":1,"fault":{"suspend_error":"disk full (injected)"}}`), 0o644); err != nil {
		t.Fatal(err)
	}
	s.sluiceOK(t, "create", "c2", "--config", "@"+file)
	s.sluiceOK(t, "start", "c2", "--wait")
	r = s.sluice(t, "stop", "c2", "--wait")
	t.Logf("sluice stop c2 --wait (failing suspend): exit %d\n%s%s", r.code, r.stdout, r.stderr)
	if r.code != 1 || r.stderr != "error: SuspendError: disk full (injected)\n" || !strings.Contains(r.stdout, "→ Stopped  (") {
		t.Errorf("failing stop --wait: exit %d\nstdout:\n%s\nstderr:\n%s", r.code, r.stdout, r.stderr)
	}
	s.sluiceOK(t, "dismiss-error", "c2")
	if r = s.sluiceOK(t, "status", "c2"); !strings.Contains(r.stdout, "deployment_error  -") {
		t.Errorf("status after dismiss-error:\n%s", r.stdout)
	}
	for _, name := range []string{"c1", "c2"} {
		r = s.sluice(t, "delete", name)
		if r.code != 1 || !strings.HasPrefix(r.stderr, "error: DeleteRestrictedToClearedStorage: ") {
			t.Errorf("delete %s before clear: %d %q", name, r.code, r.stderr)
		}
		s.sluiceOK(t, "clear", name, "--wait")
		s.sluiceOK(t, "delete", name)
		r = s.sluice(t, "status", name)
		if r.code != 1 || !strings.HasPrefix(r.stderr, "error: UnknownPipelineName: ") {
			t.Errorf("status of a deleted pipeline: %d %q", r.code, r.stderr)
		}
	}
	r = s.sluice(t, "--api-key", "apikey:wrong", "pipelines")
	if r.code != 1 || !strings.HasPrefix(r.stderr, "error: AuthenticationFailed: ") {
		t.Errorf("a wrong key: %d %q", r.code, r.stderr)
	}
}

// shutdown starts one more pipeline (so a runtime process runs), sends
// SIGTERM and checks that no process of the stack is left: DynamoDB Local's
// JVM, the Node Step Functions service, the runtime.
func shutdown(t *testing.T, s *stack) {
	s.must(t, "POST", "/v0/pipelines", map[string]any{"name": "left-running", "runtime_config": runtimeConfig}, 201)
	s.must(t, "POST", "/v0/pipelines/left-running/start", nil, 202)
	s.poll(t, "left-running", "Running", is("Running", "Running"))
	procs := proctree.Descendants(s.cmd.Process.Pid)
	var kinds []string
	for _, p := range procs {
		switch {
		case strings.Contains(p.Cmd, "DynamoDBLocal.jar"):
			kinds = append(kinds, "dynamodb-local")
		case strings.Contains(p.Cmd, "server.js"):
			kinds = append(kinds, "stepfunctions")
		case strings.Contains(p.Cmd, "sample-runtime"):
			kinds = append(kinds, "runtime")
		}
	}
	slices.Sort(kinds)
	if strings.Join(kinds, ",") != "dynamodb-local,runtime,stepfunctions" {
		t.Errorf("the stack's processes: %+v", procs)
	}
	if err := s.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case <-s.done:
	case <-time.After(90 * time.Second):
		t.Fatalf("the stack did not exit within 90 s of SIGTERM")
	}
	if code := s.cmd.ProcessState.ExitCode(); code != 0 {
		t.Errorf("exit code %d", code)
	}
	if left := proctree.WaitGone(procs, s.data, 5*time.Second); len(left) > 0 {
		t.Fatalf("left behind after SIGTERM:\n%s", strings.Join(left, "\n"))
	}
	if out := s.out.String(); !strings.Contains(out, "Stopped. Pipelines, executions and checkpoints are kept in") {
		t.Errorf("shutdown output:\n%s", out)
	}
}
