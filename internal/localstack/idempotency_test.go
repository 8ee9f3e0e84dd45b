package localstack

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/sluicehq/sluice/internal/domain"
	"github.com/sluicehq/sluice/internal/steps"
	"github.com/sluicehq/sluice/internal/workflow"
)

// stepDriver invokes the steps Lambda directly (through the local Lambda
// endpoint's Invoke, as Step Functions does), for one pipeline, with no
// execution around it.
type stepDriver struct {
	e    *env
	name string
	exec string
}

// invoke runs one step and returns its output state, or the error type and
// message of a function error.
func (d *stepDriver) invoke(step string, st steps.Payload) (steps.Payload, string, string) {
	d.e.t.Helper()
	payload, err := json.Marshal(steps.Request{Step: step, Execution: d.exec, State: st})
	if err != nil {
		d.e.t.Fatal(err)
	}
	res, err := d.e.stack.Lambda.Invoke(FunctionSteps, payload)
	if err != nil {
		d.e.t.Fatalf("invoke %s: %v", step, err)
	}
	if res.FunctionError != "" {
		var doc struct {
			ErrorMessage string `json:"errorMessage"`
		}
		_ = json.Unmarshal(res.Payload, &doc)
		return st, res.ErrorType, doc.ErrorMessage
	}
	var out steps.Payload
	if err := json.Unmarshal(res.Payload, &out); err != nil {
		d.e.t.Fatalf("%s returned %s: %v", step, res.Payload, err)
	}
	return out, "", ""
}

// must runs a step that must succeed.
func (d *stepDriver) must(step string, st steps.Payload) steps.Payload {
	d.e.t.Helper()
	out, typ, msg := d.invoke(step, st)
	if typ != "" {
		d.e.t.Fatalf("%s: %s: %s\nhistory %v", step, typ, msg, d.e.historyActions(d.name))
	}
	return out
}

// twice runs a step twice with the same request and checks that the second
// invocation changed nothing: same output, same record (refresh version),
// same history.
func (d *stepDriver) twice(step string, st steps.Payload) steps.Payload {
	d.e.t.Helper()
	out1 := d.must(step, st)
	rec1, hist1 := d.e.get(d.name), d.e.pipelineHistory(d.name)
	out2 := d.must(step, st)
	rec2, hist2 := d.e.get(d.name), d.e.pipelineHistory(d.name)
	if !reflect.DeepEqual(out1, out2) {
		d.e.t.Fatalf("%s twice: outputs differ:\n%+v\n%+v", step, out1, out2)
	}
	if rec1.RefreshVersion != rec2.RefreshVersion || !reflect.DeepEqual(rec1, rec2) {
		d.e.t.Fatalf("%s twice: the second invocation wrote the record (refresh version %d → %d)", step, rec1.RefreshVersion, rec2.RefreshVersion)
	}
	if len(hist1) != len(hist2) {
		d.e.t.Fatalf("%s twice: the second invocation added history: %v", step, d.e.historyActions(d.name))
	}
	return out1
}

// stateOf is the input of a workflow execution of p's generation.
func stateOf(p domain.Pipeline, kind domain.WorkflowKind) steps.Payload {
	in := workflow.InputOf(p, kind)
	return steps.Payload{Pipeline: in.Pipeline, PipelineID: in.PipelineID, Generation: in.Generation, Kind: kind, DeploymentID: in.DeploymentID}
}

// Issue 5: every step invoked twice with the same request leaves the record
// and its history as after one invocation; a step of a stale generation is
// SupersededError and writes nothing. Start, graceful stop, clear.
func TestStepsIdempotentStartSuspendClear(t *testing.T) {
	t.Parallel()
	e := sharedEnv(t, stackDefault)
	name := e.name("i-steps")
	d := &stepDriver{e: e, name: name, exec: name + "-manual"}
	e.create(name, map[string]any{})

	// Start.
	p := e.accept(name, "start?initial=running", func(p domain.Pipeline, now time.Time) (domain.Outcome, error) {
		return domain.Start(p, domain.StartRequest{Initial: domain.InitialRunning, DismissError: true}, now)
	})
	st := stateOf(p, domain.WorkflowStart)
	st = d.twice(steps.StepMarkProvisioning, st)
	if st.Deadline.IsZero() {
		t.Fatalf("no provisioning deadline: %+v", st)
	}
	st = d.twice(steps.StepProvision, st)
	if deps := e.driver.deploymentsOf(name); len(deps) != 1 || deps[0] != st.DeploymentID {
		t.Fatalf("Provision twice: deployments %v, want one (%s)", deps, st.DeploymentID)
	}
	st = d.twice(steps.StepCheckReadiness, st)
	if !st.Done || st.Observed != domain.RuntimeRunning {
		t.Fatalf("readiness %+v", st)
	}
	d.twice(steps.StepMarkProvisioned, st)
	if p := e.get(name); p.DeploymentStatus() != domain.CombinedRunning {
		t.Fatalf("after the start steps: %s", p.DeploymentStatus())
	}

	// Graceful stop.
	p = e.accept(name, "stop?force=false", stopDecision(false))
	st = stateOf(p, domain.WorkflowSuspend)
	stale := st
	st = d.twice(steps.StepMarkSuspending, st)
	st = d.twice(steps.StepRequestSuspend, st)
	st = d.twice(steps.StepCheckSuspend, st)
	if !st.Done {
		t.Fatalf("CheckSuspend %+v", st)
	}
	st = d.twice(steps.StepMarkSuspended, st)
	dep := st.DeploymentID
	st = d.twice(steps.StepDeprovision, st)
	if n := e.driver.deprovisionCount(dep); n != 2 {
		t.Fatalf("%d deprovisions (the driver is idempotent; each invocation calls it)", n)
	}
	d.twice(steps.StepMarkStopped, st)
	p = e.get(name)
	if !stopped(p) || p.DeploymentError != nil || len(p.StorageStatusDetails) == 0 {
		t.Fatalf("after the suspend steps: %+v", p)
	}

	// Stale generation: the record moved on (clear is accepted); an old step
	// is SupersededError and writes nothing.
	p = e.accept(name, "clear", domain.Clear)
	before := e.pipelineHistory(name)
	for _, step := range []string{steps.StepMarkSuspending, steps.StepMarkSuspended, steps.StepMarkStopped, steps.StepRecordError} {
		stale.Error = &steps.CaughtError{Error: "PipelineRuntimeError", Cause: `{"message":"x","error_code":"X"}`}
		if _, typ, msg := d.invoke(step, stale); typ != "SupersededError" {
			t.Fatalf("%s with generation %d (record at %d): %q %s, want SupersededError", step, stale.Generation, p.Generation, typ, msg)
		}
	}
	if after := e.pipelineHistory(name); len(after) != len(before) || e.get(name).RefreshVersion != p.RefreshVersion {
		t.Fatalf("a superseded step wrote: %v", e.historyActions(name))
	}

	// Clear.
	st = stateOf(p, domain.WorkflowClear)
	st = d.twice(steps.StepClearStorage, st)
	d.twice(steps.StepMarkStorageCleared, st)
	if p := e.get(name); p.StorageStatus != domain.StorageCleared {
		t.Fatalf("storage %s", p.StorageStatus)
	}
	if n := e.driver.clearCount(name); n != 2 {
		t.Fatalf("%d ClearStorage calls", n)
	}
}

// Forced stop and the error path, every step twice.
func TestStepsIdempotentForcedStopAndError(t *testing.T) {
	t.Parallel()
	e := sharedEnv(t, stackDefault)

	name := e.name("i-forced")
	d := &stepDriver{e: e, name: name, exec: name + "-manual"}
	p := e.startRunning(name)
	dep := *p.DeploymentID
	p = e.accept(name, "stop?force=true", stopDecision(true))
	st := stateOf(p, domain.WorkflowStop)
	st = d.twice(steps.StepMarkStopping, st)
	if st.AlreadyStopped || st.DeploymentID != dep {
		t.Fatalf("MarkStopping %+v", st)
	}
	st = d.twice(steps.StepDeprovision, st)
	d.twice(steps.StepMarkStopped, st)
	if p := e.get(name); !stopped(p) {
		t.Fatalf("after the stop steps: %s", p.DeploymentStatus())
	}
	// A repeat after the end: nothing left to do.
	if out := d.must(steps.StepMarkStopping, st); !out.AlreadyStopped {
		t.Fatalf("MarkStopping on a stopped pipeline: %+v", out)
	}

	// The error path: RecordError twice records the error once.
	name2 := e.name("i-error")
	d2 := &stepDriver{e: e, name: name2, exec: name2 + "-manual"}
	p = e.startRunning(name2)
	p = e.accept(name2, "stop?force=false", stopDecision(false))
	st = stateOf(p, domain.WorkflowSuspend)
	st = d2.twice(steps.StepMarkSuspending, st)
	st.Error = &steps.CaughtError{Error: "PipelineRuntimeError",
		Cause: `{"errorMessage":"{\"message\":\"disk full\",\"error_code\":\"SuspendError\",\"details\":{}}","errorType":"PipelineRuntimeError"}`}
	st = d2.twice(steps.StepRecordError, st)
	p = e.get(name2)
	if p.ResourcesStatus != domain.ResourcesStopping || p.DeploymentError == nil || p.DeploymentError.ErrorCode != "SuspendError" || p.DeploymentError.Message != "disk full" {
		t.Fatalf("after RecordError: %s %+v", p.ResourcesStatus, p.DeploymentError)
	}
	st = d2.twice(steps.StepDeprovision, st)
	d2.twice(steps.StepMarkStopped, st)
	if p := e.get(name2); !stopped(p) || p.DeploymentError == nil {
		t.Fatalf("after the error path: %+v", p)
	}
}

// ContinueAsNew twice starts one next execution and records it once.
func TestStepsIdempotentContinueAsNew(t *testing.T) {
	t.Parallel()
	e := sharedEnv(t, stackDefault)
	name := e.name("i-continue")
	d := &stepDriver{e: e, name: name, exec: name + "-manual"}
	e.startRunning(name)
	rt := e.runtime(name)
	rt.set(func(f *fakeRuntime) { f.pendingChecks = 1 << 30 })
	p := e.accept(name, "stop?force=false", stopDecision(false))
	st := stateOf(p, domain.WorkflowSuspend)
	st = d.twice(steps.StepMarkSuspending, st)
	st = d.twice(steps.StepRequestSuspend, st)
	st = d.twice(steps.StepCheckSuspend, st)
	if st.Done {
		t.Fatalf("CheckSuspend %+v", st)
	}
	st.Continue = true
	st = d.twice(steps.StepContinueAsNew, st)
	if st.Continuation != 1 {
		t.Fatalf("continuation %d", st.Continuation)
	}
	p = e.get(name)
	next := workflow.ExecutionNameFor(p, domain.WorkflowSuspend, 1)
	if p.Workflow == nil || p.Workflow.ExecutionName != next {
		t.Fatalf("workflow %+v, want %s", p.Workflow, next)
	}
	recorded := 0
	for _, ev := range e.pipelineHistory(name) {
		if ev.Cause.Action == "SetWorkflow" && ev.Cause.Execution == next {
			recorded++
		}
	}
	if recorded != 1 {
		t.Fatalf("the continuation was recorded %d times", recorded)
	}
	// The continued execution finishes the suspend.
	rt.set(func(f *fakeRuntime) { f.pendingChecks = 0 })
	p = e.waitFor(name, "Stopped", stopped)
	if p.Workflow.ExecutionName != next || p.DeploymentError != nil {
		t.Fatalf("record %+v", p)
	}
	if got := e.waitExecution(next); got != "SUCCEEDED" {
		t.Fatalf("%s: %s", next, got)
	}
	if !strings.HasSuffix(next, "-suspend-1") {
		t.Fatalf("name %s", next)
	}
}
