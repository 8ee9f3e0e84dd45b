package localstack

import (
	"slices"
	"testing"

	sfntypes "github.com/aws/aws-sdk-go-v2/service/sfn/types"

	"github.com/sluicehq/sluice/internal/domain"
)

// Issue 5, graceful stop: the runtime answers 503 to status and suspend for a
// while. The suspend workflow keeps trying; the pipeline stays Suspending
// (never Unavailable, even when the reconciler observes it meanwhile) and
// ends Stopped without an error once the runtime answers again.
func TestGracefulStopRuntimeUnavailable(t *testing.T) {
	t.Parallel()
	e := sharedEnv(t, stackDefault)
	name := e.name("g-unavailable")
	e.startRunning(name)
	rt := e.runtime(name)
	rt.set(func(f *fakeRuntime) { f.unavailable = 1 << 30 })
	e.must("POST", "/v0/pipelines/"+name+"/stop", nil, 202)
	p := e.waitSettled(name, "Suspending", status(domain.CombinedSuspending, domain.CombinedDesiredSuspended))
	suspendExec := p.Workflow.ExecutionName

	// It keeps trying: many 503 answers, the execution still running.
	e.eventually("at least 8 answers 503", func() bool {
		var n int
		rt.set(func(f *fakeRuntime) { n = f.unavailableAnswers })
		return n >= 8
	})
	// The reconciler observing the unreachable runtime keeps Suspending.
	if _, err := e.stack.Reconciler.Reconcile(e.ctx, name); err != nil {
		t.Fatalf("reconcile: %v", err)
	}
	if p := e.get(name); p.DeploymentStatus() != domain.CombinedSuspending {
		t.Fatalf("while the runtime is unavailable: %s, want Suspending", p.DeploymentStatus())
	}
	if d := e.describeExec(domain.WorkflowSuspend, suspendExec); d == nil || d.Status != sfntypes.ExecutionStatusRunning {
		t.Fatalf("the suspend execution gave up: %+v", d)
	}

	rt.set(func(f *fakeRuntime) { f.unavailable = 0 })
	p = e.waitFor(name, "Stopped", stopped)
	if p.DeploymentError != nil {
		t.Fatalf("deployment_error %+v", p.DeploymentError)
	}
	if got := e.waitExecution(suspendExec); got != "SUCCEEDED" {
		t.Fatalf("suspend execution %s", got)
	}
	for _, ev := range e.pipelineHistory(name) {
		if ev.DeploymentStatus == domain.CombinedUnavailable {
			t.Fatalf("the pipeline was Unavailable during the suspend: %v", e.historyActions(name))
		}
	}
	suspends, _ := rt.counts()
	if suspends < 2 {
		t.Fatalf("the suspend request was not repeated after the 503 (%d calls)", suspends)
	}
	t.Logf("history: %v", e.historyActions(name))
}

// Issue 5, graceful stop: the runtime accepts the suspend but then fails it
// (its /status answers 500): forced stop with the runtime's error recorded.
func TestGracefulStopSuspendFails(t *testing.T) {
	t.Parallel()
	e := sharedEnv(t, stackDefault)
	name := e.name("g-suspend-fails")
	p := e.startRunning(name)
	dep := *p.DeploymentID
	const msg = "checkpoint failed: no space left on device"
	e.runtime(name).set(func(f *fakeRuntime) { f.suspendFails = msg })
	e.must("POST", "/v0/pipelines/"+name+"/stop", nil, 202)
	p = e.waitSettled(name, "Stopped", stopped)
	de := p.DeploymentError
	if de == nil || de.Message != msg || de.ErrorCode != "SuspendError" {
		t.Fatalf("deployment_error %+v, want the runtime's %q / SuspendError", de, msg)
	}
	if de.Details["http_status"] != float64(500) {
		t.Fatalf("details %v", de.Details)
	}
	if n := e.driver.deprovisionCount(dep); n != 1 {
		t.Fatalf("%d deprovisions", n)
	}
	if p.StorageStatus != domain.StorageInUse {
		t.Fatalf("storage %s", p.StorageStatus)
	}
	if got := e.waitExecution(p.Workflow.ExecutionName); got != "SUCCEEDED" {
		t.Fatalf("suspend execution %s", got)
	}
	states := statesEntered(e.execHistory(domain.WorkflowSuspend, p.Workflow.ExecutionName))
	if !slices.Contains(states, "RecordError") || slices.Contains(states, "MarkSuspended") {
		t.Fatalf("states %v", states)
	}
	t.Logf("history: %v", e.historyActions(name))
}

// Issue 5, graceful stop: the runtime refuses /suspend with 400: forced stop
// with that error.
func TestGracefulStopSuspendRefused(t *testing.T) {
	t.Parallel()
	e := sharedEnv(t, stackDefault)
	name := e.name("g-suspend-refused")
	p := e.startRunning(name)
	dep := *p.DeploymentID
	e.runtime(name).set(func(f *fakeRuntime) { f.refuseSuspend = true })
	e.must("POST", "/v0/pipelines/"+name+"/stop", nil, 202)
	p = e.waitFor(name, "Stopped", stopped)
	de := p.DeploymentError
	if de == nil || de.ErrorCode != "SuspendNotPossible" || de.Message != "suspend is not possible: input connector does not support it" {
		t.Fatalf("deployment_error %+v", de)
	}
	if de.Details["http_status"] != float64(400) || de.Details["runtime_call"] != "suspend" {
		t.Fatalf("details %v", de.Details)
	}
	if rd, _ := de.Details["runtime_details"].(map[string]any); rd["connector"] != "kafka" {
		t.Fatalf("the runtime's details are lost: %v", de.Details)
	}
	if n := e.driver.deprovisionCount(dep); n != 1 {
		t.Fatalf("%d deprovisions", n)
	}
}

// Issue 5, force=true while suspending (through the API, which also stops
// the suspend execution, best effort): the suspend execution ends without
// writing, the forced stop deprovisions exactly once, the pipeline is Stopped.
func TestForceStopWhileSuspending(t *testing.T) {
	t.Parallel()
	e := sharedEnv(t, stackDefault)
	name := e.name("f-while-suspending")
	forceWhileSuspending(e, name, func() {
		e.must("POST", "/v0/pipelines/"+name+"/stop?force=true", nil, 202)
	})
}

// The same when the best-effort StopExecution of the superseded suspend
// execution never happens (the force stop is accepted through the store and
// only the stop workflow is started): the generation fence alone ends the
// suspend execution as Superseded.
func TestForceStopWhileSuspendingFencedOnly(t *testing.T) {
	t.Parallel()
	e := sharedEnv(t, stackDefault)
	name := e.name("f-while-suspending-fenced")
	forceWhileSuspending(e, name, func() {
		p := e.accept(name, "stop?force=true", stopDecision(true))
		ref, err := e.stack.Workflows.Start(e.ctx, p, domain.WorkflowStop)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := e.stack.Store.SetWorkflow(e.ctx, name, ref); err != nil {
			t.Fatal(err)
		}
	})
	// Nobody stopped the suspend execution: it ended through its fence.
	var suspendExec string
	for _, ev := range e.pipelineHistory(name) {
		if ev.Cause.Action == "MarkSuspending" {
			suspendExec = ev.Cause.Execution
		}
	}
	d := e.describeExec(domain.WorkflowSuspend, suspendExec)
	states := statesEntered(e.execHistory(domain.WorkflowSuspend, suspendExec))
	if d.Status != sfntypes.ExecutionStatusSucceeded || states[len(states)-1] != "Superseded" {
		t.Fatalf("suspend execution %s, states %v; want SUCCEEDED through Superseded", d.Status, states)
	}
}

func forceWhileSuspending(e *env, name string, forceStop func()) {
	t := e.t
	t.Helper()
	p := e.startRunning(name)
	dep := *p.DeploymentID
	rt := e.runtime(name)
	rt.set(func(f *fakeRuntime) { f.pendingChecks = 1 << 30 })
	e.must("POST", "/v0/pipelines/"+name+"/stop", nil, 202)
	p = e.waitSettled(name, "Suspending", status(domain.CombinedSuspending, domain.CombinedDesiredSuspended))
	suspendExec := p.Workflow.ExecutionName
	_, before := rt.counts()
	e.eventually("the suspend workflow polls the runtime", func() bool {
		_, n := rt.counts()
		return n >= before+3
	})

	forceStop()
	p = e.waitSettled(name, "Stopped", stopped)
	forcedGen := p.Generation
	if p.Workflow == nil || p.Workflow.Kind != domain.WorkflowStop || p.Workflow.Generation != forcedGen {
		t.Fatalf("workflow %+v, want the forced stop of generation %d", p.Workflow, forcedGen)
	}
	if got := e.waitExecution(p.Workflow.ExecutionName); got != "SUCCEEDED" {
		t.Fatalf("forced-stop execution %s", got)
	}
	d := e.waitExecEnd(domain.WorkflowSuspend, suspendExec)
	states := statesEntered(e.execHistory(domain.WorkflowSuspend, suspendExec))
	for _, s := range []string{"MarkSuspended", "RecordError", "Deprovision", "MarkStopped"} {
		if slices.Contains(states, s) {
			t.Fatalf("the superseded suspend execution entered %s: %v", s, states)
		}
	}
	switch {
	case d.Status == sfntypes.ExecutionStatusAborted:
	case d.Status == sfntypes.ExecutionStatusSucceeded && states[len(states)-1] == "Superseded":
	default:
		t.Fatalf("suspend execution %s (states %v): want superseded", d.Status, states)
	}

	// No write of the suspend execution after the forced stop was accepted.
	forced := false
	for _, ev := range e.pipelineHistory(name) {
		if ev.Generation >= forcedGen && ev.Cause.Action == "stop?force=true" {
			forced = true
		}
		if forced && ev.Cause.Execution == suspendExec {
			t.Fatalf("the suspend execution wrote after the forced stop: %+v\n%v", ev, e.historyActions(name))
		}
	}
	if !forced {
		t.Fatalf("no forced stop in the history: %v", e.historyActions(name))
	}
	// Exactly one deprovision of the deployment, by the forced stop.
	if n := e.driver.deprovisionCount(dep); n != 1 {
		t.Fatalf("%d deprovisions of %s, want 1", n, dep)
	}
	if p.DeploymentError != nil {
		t.Fatalf("deployment_error %+v", p.DeploymentError)
	}
	t.Logf("history: %v", e.historyActions(name))
}

// Issue 5: forced stop from Running.
func TestForceStopFromRunning(t *testing.T) {
	t.Parallel()
	e := sharedEnv(t, stackDefault)
	name := e.name("f-running")
	p := e.startRunning(name)
	dep := *p.DeploymentID
	e.must("POST", "/v0/pipelines/"+name+"/stop?force=true", nil, 202)
	p = e.waitSettled(name, "Stopped", stopped)
	if p.DeploymentError != nil || p.StorageStatus != domain.StorageInUse {
		t.Fatalf("record %+v", p)
	}
	if got := e.waitExecution(p.Workflow.ExecutionName); got != "SUCCEEDED" {
		t.Fatalf("stop execution %s", got)
	}
	if n := e.driver.deprovisionCount(dep); n != 1 {
		t.Fatalf("%d deprovisions", n)
	}
	if suspends, _ := e.runtime(name).counts(); suspends != 0 {
		t.Fatalf("a forced stop asked the runtime to suspend (%d)", suspends)
	}
	// The writes after the stop: the action, the workflow's two status
	// writes (and the API's SetWorkflow, in whatever order it lands).
	var actions []string
	for _, ev := range e.pipelineHistory(name) {
		if ev.Cause.Action == "stop?force=true" {
			actions = nil
		}
		if ev.Cause.Action != "SetWorkflow" {
			actions = append(actions, ev.Cause.Action)
		}
	}
	if !slices.Equal(actions, []string{"stop?force=true", "MarkStopping", "MarkStopped"}) {
		t.Fatalf("history %v", e.historyActions(name))
	}
}

// Issue 5: forced stop while provisioning (the runtime stays Initializing,
// so the start workflow waits in its readiness loop): the start execution
// ends superseded and no deployment is left behind.
func TestForceStopWhileProvisioning(t *testing.T) {
	t.Parallel()
	e := sharedEnv(t, stackDefault)
	name := e.name("f-provisioning")
	e.driver.setInitial(name, "Initializing")
	e.create(name, map[string]any{})
	e.must("POST", "/v0/pipelines/"+name+"/start", nil, 202)
	p := e.waitSettled(name, "Provisioning", status(domain.CombinedProvisioning, domain.CombinedDesiredRunning))
	startExec := p.Workflow.ExecutionName
	e.eventually("the readiness loop polls the runtime", func() bool {
		rt := e.driver.runtime(name)
		if rt == nil {
			return false
		}
		_, n := rt.counts()
		return n >= 3
	})
	e.must("POST", "/v0/pipelines/"+name+"/stop?force=true", nil, 202)
	p = e.waitFor(name, "Stopped", stopped)
	if p.DeploymentError != nil {
		t.Fatalf("deployment_error %+v", p.DeploymentError)
	}
	d := e.waitExecEnd(domain.WorkflowStart, startExec)
	states := statesEntered(e.execHistory(domain.WorkflowStart, startExec))
	if slices.Contains(states, "MarkProvisioned") || slices.Contains(states, "RecordError") {
		t.Fatalf("start execution states %v", states)
	}
	if d.Status != sfntypes.ExecutionStatusAborted && states[len(states)-1] != "Superseded" {
		t.Fatalf("start execution %s, states %v: want superseded", d.Status, states)
	}
	// No orphan: every deployment provisioned for it is deprovisioned.
	deps := e.driver.deploymentsOf(name)
	if len(deps) == 0 {
		t.Fatal("nothing was provisioned")
	}
	for _, dep := range deps {
		if n := e.driver.deprovisionCount(dep); n < 1 {
			t.Fatalf("deployment %s is orphaned", dep)
		}
	}
	t.Logf("history: %v", e.historyActions(name))
}
