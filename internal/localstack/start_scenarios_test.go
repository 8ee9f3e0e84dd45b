package localstack

import (
	"slices"
	"strconv"
	"strings"
	"testing"

	sfntypes "github.com/aws/aws-sdk-go-v2/service/sfn/types"

	"github.com/sluicehq/sluice/internal/domain"
	"github.com/sluicehq/sluice/internal/workflow"
)

// Issue 5, start: the happy path to Running, and initial=paused to Paused.
func TestStartHappyPath(t *testing.T) {
	t.Parallel()
	e := sharedEnv(t, stackDefault)
	running, paused := e.name("s-running"), e.name("s-paused")
	p := e.startRunning(running)
	if p.DeploymentInitial == nil || *p.DeploymentInitial != domain.InitialRunning || p.DeploymentLocation == nil {
		t.Fatalf("record %+v", p)
	}
	if got := e.waitExecution(p.Workflow.ExecutionName); got != "SUCCEEDED" {
		t.Fatalf("start execution %s", got)
	}
	if n := len(e.driver.deploymentsOf(running)); n != 1 {
		t.Fatalf("%d deployments", n)
	}

	e.create(paused, map[string]any{})
	e.must("POST", "/v0/pipelines/"+paused+"/start?initial=paused", nil, 202)
	p = e.waitSettled(paused, "Paused", status(domain.CombinedPaused, domain.CombinedDesiredPaused))
	if p.DeploymentInitial == nil || *p.DeploymentInitial != domain.InitialPaused {
		t.Fatalf("record %+v", p)
	}
	if got := e.waitExecution(p.Workflow.ExecutionName); got != "SUCCEEDED" {
		t.Fatalf("start execution %s", got)
	}
}

// Issue 5, start: the runtime never becomes ready within the provisioning
// timeout: forced stop with deployment_error ProvisioningTimeout, the
// deployment deprovisioned, Stopped. On the bounded stack the readiness loop
// also continues in fresh executions every 3 checks, which must not reset
// the timeout.
func TestStartProvisioningTimeout(t *testing.T) {
	t.Parallel()
	e := sharedEnv(t, stackBounded)
	name := e.name("s-timeout")
	e.driver.setInitial(name, "Initializing")
	e.create(name, map[string]any{})
	e.must("POST", "/v0/pipelines/"+name+"/start", nil, 202)
	p := e.waitFor(name, "Stopped", stopped)
	de := p.DeploymentError
	if de == nil || de.ErrorCode != "ProvisioningTimeout" {
		t.Fatalf("deployment_error %+v", de)
	}
	deps := e.driver.deploymentsOf(name)
	if len(deps) != 1 {
		t.Fatalf("deployments %v, want one (continuations provision the same deployment)", deps)
	}
	if n := e.driver.deprovisionCount(deps[0]); n != 1 {
		t.Fatalf("%d deprovisions", n)
	}
	// The execution that timed out (a continuation, unless the first
	// execution was slow enough to see the deadline itself).
	last := e.lastExecutionOf(name, "RecordError")
	if got := e.waitExecution(last); got != "SUCCEEDED" {
		t.Fatalf("execution %s: %s", last, got)
	}
	if !strings.Contains(last, "-start") {
		t.Fatalf("RecordError by %s", last)
	}
	states := statesEntered(e.execHistory(domain.WorkflowStart, last))
	if !slices.Contains(states, "RecordError") || states[len(states)-1] != "Stopped" {
		t.Fatalf("last start execution states %v", states)
	}
	t.Logf("%d executions; history: %v", workflow.AttemptOf(last)+1, e.historyActions(name))
}

// Issue 5, bounded history: with MaxIterations 3 and a runtime that stays
// Suspending for 10 checks, the suspend workflow continues in fresh
// executions (…-suspend-1, -2, …), each with a small history; the record's
// workflow follows the newest execution; the pipeline ends Stopped.
func TestSuspendContinuesAsNew(t *testing.T) {
	t.Parallel()
	e := sharedEnv(t, stackBounded)
	name := e.name("b-continue")
	p := e.startRunning(name)
	dep := *p.DeploymentID
	e.runtime(name).set(func(f *fakeRuntime) { f.pendingChecks = 10 })
	e.must("POST", "/v0/pipelines/"+name+"/stop", nil, 202)

	// The record's workflow only moves forward, through the continuations.
	seen := map[string]bool{}
	lastAttempt := -1
	e.eventually("Stopped", func() bool {
		p = e.get(name)
		if w := p.Workflow; w != nil && w.Kind == domain.WorkflowSuspend {
			a := workflow.AttemptOf(w.ExecutionName)
			if a < lastAttempt {
				t.Fatalf("the record's workflow went back from attempt %d to %s", lastAttempt, w.ExecutionName)
			}
			lastAttempt = a
			seen[w.ExecutionName] = true
		}
		return stopped(p)
	})
	if p.DeploymentError != nil {
		t.Fatalf("deployment_error %+v", p.DeploymentError)
	}
	// The newest execution finished the suspend; the record's workflow
	// follows it (its predecessor records it, possibly after it ended).
	last := e.lastExecutionOf(name, "MarkStopped")
	e.waitFor(name, "workflow "+last, func(p domain.Pipeline) bool { return p.Workflow.ExecutionName == last })
	n := workflow.AttemptOf(last)
	if n < 3 {
		t.Fatalf("the suspend continued into %d fresh executions, want ≥ 3 (10 checks, 3 per execution)", n)
	}
	base := strings.TrimSuffix(last, "-"+itoa(n))
	for i := 0; i <= n; i++ {
		exec := base
		if i > 0 {
			exec += "-" + itoa(i)
		}
		d := e.waitExecEnd(domain.WorkflowSuspend, exec)
		if d.Status != sfntypes.ExecutionStatusSucceeded {
			t.Fatalf("%s: %s", exec, d.Status)
		}
		h := e.execHistory(domain.WorkflowSuspend, exec)
		states := statesEntered(h)
		checks := 0
		for _, s := range states {
			if s == "WaitUntilSuspended" {
				checks++
			}
		}
		if checks > 3 || len(h) > 80 {
			t.Fatalf("%s: %d checks, %d history events: the history is not bounded", exec, checks, len(h))
		}
		want := "Continued"
		if i == n {
			want = "Stopped"
		}
		if states[len(states)-1] != want {
			t.Fatalf("%s ends in %s, want %s (%v)", exec, states[len(states)-1], want, states)
		}
		t.Logf("%s: %d events, %d checks", exec, len(h), checks)
	}
	// Each continuation was recorded on the pipeline (a SetWorkflow event each).
	recorded := 0
	for _, ev := range e.pipelineHistory(name) {
		if ev.Cause.Action == "SetWorkflow" && strings.HasPrefix(ev.Cause.Execution, base+"-") {
			recorded++
		}
	}
	if recorded != n {
		t.Fatalf("%d continuations recorded, want %d: %v", recorded, n, e.historyActions(name))
	}
	if c := e.driver.deprovisionCount(dep); c != 1 {
		t.Fatalf("%d deprovisions", c)
	}
}

// Issue 5, clear storage: Stopped with storage InUse → POST /clear → Cleared,
// the driver's ClearStorage called once.
func TestClearStorage(t *testing.T) {
	t.Parallel()
	e := sharedEnv(t, stackDefault)
	name := e.name("c-clear")
	e.startRunning(name)
	e.must("POST", "/v0/pipelines/"+name+"/stop?force=true", nil, 202)
	p := e.waitFor(name, "Stopped", stopped)
	if p.StorageStatus != domain.StorageInUse {
		t.Fatalf("storage %s", p.StorageStatus)
	}
	e.must("POST", "/v0/pipelines/"+name+"/clear", nil, 202)
	p = e.waitSettled(name, "storage Cleared", func(p domain.Pipeline) bool { return p.StorageStatus == domain.StorageCleared })
	if p.Workflow == nil || p.Workflow.Kind != domain.WorkflowClear {
		t.Fatalf("workflow %+v", p.Workflow)
	}
	if got := e.waitExecution(p.Workflow.ExecutionName); got != "SUCCEEDED" {
		t.Fatalf("clear execution %s", got)
	}
	if n := e.driver.clearCount(name); n != 1 {
		t.Fatalf("ClearStorage called %d times", n)
	}
	if !stopped(p) || p.StorageStatusDetails != nil {
		t.Fatalf("record %+v", p)
	}
	// Now it can be deleted.
	e.must("DELETE", "/v0/pipelines/"+name, nil, 200)
}

func itoa(n int) string { return strconv.Itoa(n) }

// Issue 12: Feldera 0.148's SDK starts a pipeline with /pause (which starts
// a stopped pipeline paused) and then /start while it is still starting:
// the pipeline must end Running/Running with one start workflow, without
// waiting for the reconciler (none runs here).
func TestStartAsFeldera0148Does(t *testing.T) {
	t.Parallel()
	e := sharedEnv(t, stackDefault)
	name := e.name("s-0148")
	e.create(name, map[string]any{})
	e.must("POST", "/v0/pipelines/"+name+"/pause", nil, 202)
	e.must("POST", "/v0/pipelines/"+name+"/start", nil, 202)
	p := e.waitSettled(name, "Running", status(domain.CombinedRunning, domain.CombinedDesiredRunning))
	if got := e.waitExecution(p.Workflow.ExecutionName); got != "SUCCEEDED" {
		t.Fatalf("start execution %s", got)
	}
	if n := len(e.driver.deploymentsOf(name)); n != 1 {
		t.Fatalf("%d deployments, want 1", n)
	}
}
