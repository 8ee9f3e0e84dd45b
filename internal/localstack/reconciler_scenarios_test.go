package localstack

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sfn"
	sfntypes "github.com/aws/aws-sdk-go-v2/service/sfn/types"

	"github.com/sluicehq/sluice/internal/domain"
	"github.com/sluicehq/sluice/internal/reconciler"
	"github.com/sluicehq/sluice/internal/steps"
	"github.com/sluicehq/sluice/internal/workflow"
)

// Issue 5, the reconciler: full passes (stack.Reconcile) on a stack of its
// own, one scenario after the other (a pass visits every pipeline).
func TestReconciler(t *testing.T) {
	t.Parallel()
	for _, sc := range []struct {
		name string
		run  func(e *env)
	}{
		{"RestartsAbortedSuspend", reconcileRestartsAbortedSuspend},
		{"StartsWorkflowOfAcceptedStop", reconcileStartsWorkflowOfAcceptedStop},
		{"StartsPendingWorkflowTheAPILost", reconcileStartsPendingWorkflowTheAPILost},
		{"FinishesSuspendedPipeline", reconcileFinishesSuspendedPipeline},
		{"ComputeVanished", reconcileComputeVanished},
		{"UnavailableAndBack", reconcileUnavailableAndBack},
		{"RuntimeFatalStatus", reconcileRuntimeFatalStatus},
		{"ShardedThroughTheInvokeAPI", reconcileShardedThroughTheInvokeAPI},
	} {
		if !t.Run(sc.name, func(t *testing.T) { sc.run(sharedEnv(t, stackReconciler)) }) {
			return
		}
	}
}

func (e *env) reconcile() reconciler.Report {
	e.t.Helper()
	rep, err := e.stack.Reconcile(e.ctx)
	if err != nil {
		e.t.Fatalf("reconcile: %v", err)
	}
	if rep.Errors != 0 {
		e.t.Fatalf("reconcile pass with errors: %+v", rep)
	}
	return rep
}

// The suspend execution vanishes (StopExecution behind the API's back): the
// next pass starts attempt 1 of the same generation's suspend workflow, which
// converges.
func reconcileRestartsAbortedSuspend(e *env) {
	t := e.t
	name := e.name("r-aborted")
	e.startRunning(name)
	rt := e.runtime(name)
	rt.set(func(f *fakeRuntime) { f.pendingChecks = 1 << 30 })
	e.must("POST", "/v0/pipelines/"+name+"/stop", nil, 202)
	p := e.waitSettled(name, "Suspending", status(domain.CombinedSuspending, domain.CombinedDesiredSuspended))
	first := *p.Workflow
	if _, err := e.stack.SFN.StopExecution(e.ctx, &sfn.StopExecutionInput{ExecutionArn: aws.String(e.execArn(first.Kind, first.ExecutionName)),
		Error: aws.String("Test.Vanished")}); err != nil {
		t.Fatal(err)
	}
	if d := e.waitExecEnd(first.Kind, first.ExecutionName); d.Status != sfntypes.ExecutionStatusAborted {
		t.Fatalf("%s: %s", first.ExecutionName, d.Status)
	}

	rep := e.reconcile()
	if rep.WorkflowsStarted != 1 {
		t.Fatalf("report %+v", rep)
	}
	p = e.get(name)
	want := first.ExecutionName + "-1"
	if p.Workflow == nil || p.Workflow.ExecutionName != want || p.Workflow.Generation != first.Generation {
		t.Fatalf("workflow %+v, want %s", p.Workflow, want)
	}
	if d := e.describeExec(domain.WorkflowSuspend, want); d == nil || d.Status != sfntypes.ExecutionStatusRunning {
		t.Fatalf("%s: %+v", want, d)
	}
	// A second pass leaves the live execution alone.
	if rep := e.reconcile(); rep.WorkflowsStarted != 0 {
		t.Fatalf("second pass %+v", rep)
	}
	rt.set(func(f *fakeRuntime) { f.pendingChecks = 0 })
	p = e.waitFor(name, "Stopped", stopped)
	if p.DeploymentError != nil {
		t.Fatalf("deployment_error %+v", p.DeploymentError)
	}
	if got := e.waitExecution(want); got != "SUCCEEDED" {
		t.Fatalf("%s: %s", want, got)
	}
}

// A stop accepted without its workflow ever starting (StartExecution lost):
// the pass starts it under the name the API would have used.
func reconcileStartsWorkflowOfAcceptedStop(e *env) {
	t := e.t
	name := e.name("r-accepted")
	e.startRunning(name)
	p := e.accept(name, "stop?force=false", stopDecision(false))
	rep := e.reconcile()
	if rep.WorkflowsStarted != 1 {
		t.Fatalf("report %+v", rep)
	}
	want := workflow.ExecutionNameFor(p, domain.WorkflowSuspend, 0)
	p = e.waitFor(name, "Stopped", stopped)
	if p.Workflow.ExecutionName != want || p.DeploymentError != nil {
		t.Fatalf("record %+v, want workflow %s", p, want)
	}
	if got := e.waitExecution(want); got != "SUCCEEDED" {
		t.Fatalf("%s: %s", want, got)
	}
}

// The suspend succeeded (MarkSuspended: Stopping, runtime Suspended) and then
// its execution vanished before deprovisioning: the pass restarts the
// suspend workflow, which must deprovision and finish, not end as "nothing
// to do" again and again.
func reconcileFinishesSuspendedPipeline(e *env) {
	t := e.t
	name := e.name("r-suspended")
	p := e.startRunning(name)
	dep := *p.DeploymentID
	p = e.accept(name, "stop?force=false", stopDecision(false))
	d := &stepDriver{e: e, name: name, exec: name + "-lost"}
	st := stateOf(p, domain.WorkflowSuspend)
	st = d.must(steps.StepMarkSuspending, st)
	st = d.must(steps.StepRequestSuspend, st)
	st = d.must(steps.StepCheckSuspend, st)
	if !st.Done {
		t.Fatalf("CheckSuspend %+v", st)
	}
	d.must(steps.StepMarkSuspended, st)
	p = e.get(name)
	if p.ResourcesStatus != domain.ResourcesStopping || p.RuntimeStatus == nil || *p.RuntimeStatus != domain.RuntimeSuspended {
		t.Fatalf("after MarkSuspended: %+v", p)
	}
	details := string(p.StorageStatusDetails)

	if rep := e.reconcile(); rep.WorkflowsStarted != 1 {
		t.Fatalf("report %+v", rep)
	}
	p = e.waitFor(name, "Stopped", stopped)
	if p.DeploymentError != nil || string(p.StorageStatusDetails) != details {
		t.Fatalf("record %+v", p)
	}
	if got := e.waitExecution(p.Workflow.ExecutionName); got != "SUCCEEDED" {
		t.Fatalf("%s: %s", p.Workflow.ExecutionName, got)
	}
	if n := e.driver.deprovisionCount(dep); n != 1 {
		t.Fatalf("%d deprovisions", n)
	}
}

// The process of a Running pipeline died: the pass force-stops it with
// ComputeVanished recorded, and the stop workflow it starts deprovisions.
func reconcileComputeVanished(e *env) {
	t := e.t
	name := e.name("r-vanished")
	p := e.startRunning(name)
	dep := *p.DeploymentID
	e.driver.kill(dep, "OOMKilled")
	rep := e.reconcile()
	if rep.ForcedStops != 1 || rep.WorkflowsStarted != 1 {
		t.Fatalf("report %+v", rep)
	}
	p = e.waitFor(name, "Stopped", stopped)
	if p.DeploymentError == nil || p.DeploymentError.ErrorCode != "ComputeVanished" || !strings.Contains(p.DeploymentError.Message, "OOMKilled") {
		t.Fatalf("deployment_error %+v", p.DeploymentError)
	}
	if p.Workflow.Kind != domain.WorkflowStop {
		t.Fatalf("workflow %+v", p.Workflow)
	}
	if got := e.waitExecution(p.Workflow.ExecutionName); got != "SUCCEEDED" {
		t.Fatalf("%s: %s", p.Workflow.ExecutionName, got)
	}
	if n := e.driver.deprovisionCount(dep); n != 1 {
		t.Fatalf("%d deprovisions", n)
	}
	// A start is refused until the error is dismissed.
	if r := e.do("POST", "/v0/pipelines/"+name+"/start?dismiss_error=false", nil); r.status != 400 || !strings.Contains(string(r.body), "CannotStartWithUndismissedError") {
		t.Fatalf("start with the error: %d %s", r.status, r.body)
	}
}

// A runtime answering 503 is marked Unavailable, and Running again once it
// answers.
func reconcileUnavailableAndBack(e *env) {
	t := e.t
	name := e.name("r-unavailable")
	e.startRunning(name)
	rt := e.runtime(name)
	rt.set(func(f *fakeRuntime) { f.unavailable = 1 << 30 })
	if rep := e.reconcile(); rep.RuntimeChanges != 1 {
		t.Fatalf("report %+v", rep)
	}
	if p := e.get(name); p.DeploymentStatus() != domain.CombinedUnavailable || p.DeploymentDesiredStatus() != domain.CombinedDesiredRunning {
		t.Fatalf("%s/%s, want Unavailable/Running", p.DeploymentStatus(), p.DeploymentDesiredStatus())
	}
	rt.set(func(f *fakeRuntime) { f.unavailable = 0 })
	if rep := e.reconcile(); rep.RuntimeChanges != 1 {
		t.Fatalf("report %+v", rep)
	}
	if p := e.get(name); p.DeploymentStatus() != domain.CombinedRunning || p.DeploymentError != nil {
		t.Fatalf("%s, want Running", p.DeploymentStatus())
	}
	e.must("POST", "/v0/pipelines/"+name+"/stop?force=true", nil, 202)
	e.waitFor(name, "Stopped", stopped)
}

// A runtime answering 500 on /status while Running: forced stop with the
// runtime's error.
func reconcileRuntimeFatalStatus(e *env) {
	t := e.t
	name := e.name("r-fatal")
	p := e.startRunning(name)
	dep := *p.DeploymentID
	e.runtime(name).set(func(f *fakeRuntime) { f.statusFails = "worker 3 panicked: index out of range" })
	if rep := e.reconcile(); rep.ForcedStops != 1 {
		t.Fatalf("report %+v", rep)
	}
	p = e.waitFor(name, "Stopped", stopped)
	de := p.DeploymentError
	if de == nil || de.ErrorCode != "RuntimeCrashed" || !strings.Contains(de.Message, "worker 3 panicked: index out of range") {
		t.Fatalf("deployment_error %+v", de)
	}
	if n := e.driver.deprovisionCount(dep); n != 1 {
		t.Fatalf("%d deprovisions", n)
	}
}

// Issue 15: the API records the workflow (PENDING, its deterministic name)
// in the action's write, then its StartExecution is lost (a fault drops it:
// as a Lambda that crashed or timed out between the two). The answer is
// still 202; no execution exists. A pass within the grace period leaves it;
// a pass after it starts the workflow under the recorded name (never a
// second execution: no "-1"); the pipeline reaches Stopped and the ref ends
// SUCCEEDED.
func reconcileStartsPendingWorkflowTheAPILost(e *env) {
	t := e.t
	name := e.name("r-lost-start")
	e.startRunning(name)
	var dropped atomic.Int32
	setAPIStartFault(t, name, func(domain.WorkflowKind) error {
		dropped.Add(1)
		return errors.New("injected: the API Lambda was lost before StartExecution")
	})
	e.must("POST", "/v0/pipelines/"+name+"/stop?force=true", nil, 202)
	if dropped.Load() != 1 {
		t.Fatalf("%d starts dropped, want 1", dropped.Load())
	}
	p := e.get(name)
	w := p.Workflow
	if w == nil || w.Status != domain.WorkflowPending || w.Generation != p.Generation || w.Kind != domain.WorkflowStop ||
		w.ExecutionName != workflow.ExecutionNameFor(p, domain.WorkflowStop, 0) || w.ExecutionArn != e.execArn(domain.WorkflowStop, w.ExecutionName) {
		t.Fatalf("recorded workflow %+v, want the stop PENDING under its deterministic name and ARN", w)
	}
	if d := e.describeExec(domain.WorkflowStop, w.ExecutionName); d != nil {
		t.Fatalf("the dropped start exists: %+v", d)
	}

	rec := e.stack.Reconciler
	defer func() { rec.Now = nil }()
	rec.Now = func() time.Time { return w.StartedAt.Add(reconciler.DefaultPendingGrace / 2) }
	if rep := e.reconcile(); rep.WorkflowsStarted != 0 {
		t.Fatalf("within the grace period: %+v", rep)
	}
	rec.Now = func() time.Time { return time.Now().Add(reconciler.DefaultPendingGrace) }
	if rep := e.reconcile(); rep.WorkflowsStarted != 1 {
		t.Fatalf("after the grace period: %+v", rep)
	}
	p = e.waitFor(name, "Stopped", stopped)
	if p.DeploymentError != nil || p.Workflow.ExecutionName != w.ExecutionName || p.Workflow.Status != "SUCCEEDED" {
		t.Fatalf("record %+v, workflow %+v", p, p.Workflow)
	}
	if got := e.waitExecution(w.ExecutionName); got != "SUCCEEDED" {
		t.Fatalf("%s: %s", w.ExecutionName, got)
	}
	if d := e.describeExec(domain.WorkflowStop, w.ExecutionName+"-1"); d != nil {
		t.Fatalf("a second execution was started: %+v", d)
	}
	if rep := e.reconcile(); rep.WorkflowsStarted != 0 {
		t.Fatalf("pass after convergence: %+v", rep)
	}
}

// Sharded as on AWS: the schedule's invocation of the reconciler function is
// a coordinator that invokes the function once per shard through the Invoke
// API (InvocationType Event, SigV4-signed); the shards' passes together
// force-stop every pipeline whose compute vanished, each exactly once.
func reconcileShardedThroughTheInvokeAPI(e *env) {
	t := e.t
	fn := e.stack.ReconcilerFunction
	fn.Shards = 3
	t.Cleanup(func() { fn.Shards = 0 })
	var names, deps []string
	shardsHit := map[int]bool{}
	for i := 0; len(names) < 6 || len(shardsHit) < 3; i++ {
		name := e.name(fmt.Sprintf("r-shard-%d", i))
		p := e.startRunning(name)
		names, deps = append(names, name), append(deps, *p.DeploymentID)
		shardsHit[reconciler.ShardOf(name, 3)] = true
	}
	for _, dep := range deps {
		e.driver.kill(dep, "OOMKilled")
	}
	out, err := e.stack.InvokeReconciler(e.ctx)
	if err != nil {
		t.Fatal(err)
	}
	var rep reconciler.FanOutReport
	if err := json.Unmarshal(out, &rep); err != nil || rep != (reconciler.FanOutReport{Shards: 3, Invoked: 3}) {
		t.Fatalf("coordinator answered %s (%v)", out, err)
	}
	for i, name := range names {
		p := e.waitFor(name, "Stopped", stopped)
		if p.DeploymentError == nil || p.DeploymentError.ErrorCode != "ComputeVanished" {
			t.Fatalf("%s: deployment_error %+v", name, p.DeploymentError)
		}
		if n := e.driver.deprovisionCount(deps[i]); n != 1 {
			t.Fatalf("%s: %d deprovisions", name, n)
		}
	}
	// The shards' passes end (they are asynchronous invocations).
	if err := e.stack.Lambda.WaitAsync(e.ctx); err != nil {
		t.Fatal(err)
	}
	// Each shard's pass logged its shard.
	for shard := range 3 {
		want := fmt.Sprintf(`"shard":%d,"shards":3`, shard)
		if !strings.Contains(e.logs.String(), want) {
			t.Fatalf("no log line of shard %d's pass (%s)", shard, want)
		}
	}
}
