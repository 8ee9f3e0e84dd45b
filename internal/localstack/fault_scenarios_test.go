package localstack

import (
	"errors"
	"slices"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	sfntypes "github.com/aws/aws-sdk-go-v2/service/sfn/types"

	"github.com/sluicehq/sluice/internal/domain"
	"github.com/sluicehq/sluice/internal/steps"
)

// Issue 13: a fault of the control plane during a graceful stop — a step
// that panics, or returns an error with no name of the workflow's — is not
// the pipeline's failure. The suspend execution ends in WorkflowInterrupted,
// the pipeline is left Suspending with no deployment_error and its compute
// running, and the reconciler's restart of the workflow (attempt 1) then
// completes the graceful stop: checkpointed, deprovisioned once, Stopped,
// still no error.
func TestGracefulStopControlPlaneFaultIsNoForcedStop(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name  string
		step  string
		fault func() error
		// errorType is what the Lambda reports: the Go type name of the
		// panic value or of the error, as aws-lambda-go names it.
		errorType string
	}{
		{"panic", steps.StepCheckSuspend, func() error { panic("injected: assignment to entry in nil map") }, "string"},
		{"unnamed-error", steps.StepRequestSuspend, func() error { return errors.New("injected: an error of no named type") }, "errorString"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			e := sharedEnv(t, stackDefault)
			name := e.name("g-cp-" + tc.name)
			p := e.startRunning(name)
			dep := *p.DeploymentID
			var armed atomic.Bool
			var faults atomic.Int32
			armed.Store(true)
			setStepFault(t, name, func(step string) error {
				if step != tc.step || !armed.Load() {
					return nil
				}
				faults.Add(1)
				return tc.fault()
			})

			e.must("POST", "/v0/pipelines/"+name+"/stop", nil, 202)
			p = e.waitSettled(name, "Suspending", status(domain.CombinedSuspending, domain.CombinedDesiredSuspended))
			exec := p.Workflow.ExecutionName
			d := e.waitExecEnd(domain.WorkflowSuspend, exec)
			if d.Status != sfntypes.ExecutionStatusFailed || aws.ToString(d.Error) != "WorkflowInterrupted" {
				t.Fatalf("suspend execution %s error %s cause %s, want FAILED WorkflowInterrupted", d.Status, aws.ToString(d.Error), aws.ToString(d.Cause))
			}
			events := e.execHistory(domain.WorkflowSuspend, exec)
			states := statesEntered(events)
			if slices.Contains(states, "RecordError") || slices.Contains(states, "Deprovision") || states[len(states)-1] != "WorkflowInterrupted" {
				t.Fatalf("states %v: want the fault to end in WorkflowInterrupted, no RecordError, no Deprovision", states)
			}
			var failed []string
			for _, ev := range events {
				if ev.Type == sfntypes.HistoryEventTypeLambdaFunctionFailed {
					failed = append(failed, aws.ToString(ev.LambdaFunctionFailedEventDetails.Error))
				}
			}
			if !slices.Equal(failed, []string{tc.errorType}) || faults.Load() != 1 {
				t.Fatalf("failed Lambda calls %v (%d faults), want one %s (no retry)", failed, faults.Load(), tc.errorType)
			}

			// Not force-stopped: as it was, no error, compute still there.
			p = e.get(name)
			if p.DeploymentError != nil {
				t.Fatalf("deployment_error %+v: a control-plane fault force-stopped the pipeline", p.DeploymentError)
			}
			if !status(domain.CombinedSuspending, domain.CombinedDesiredSuspended)(p) {
				t.Fatalf("after the fault: %s/%s, want Suspending/Suspended", p.DeploymentStatus(), p.DeploymentDesiredStatus())
			}
			if n := e.driver.deprovisionCount(dep); n != 0 {
				t.Fatalf("%d deprovisions after the fault", n)
			}

			// The reconciler restarts the workflow; with the fault gone the
			// graceful stop completes.
			armed.Store(false)
			if _, err := e.stack.Reconciler.Reconcile(e.ctx, name); err != nil {
				t.Fatalf("reconcile: %v", err)
			}
			p = e.waitSettled(name, "Stopped", stopped)
			if p.DeploymentError != nil {
				t.Fatalf("deployment_error %+v after the restart", p.DeploymentError)
			}
			restart := e.lastExecutionOf(name, steps.StepMarkStopped)
			if restart == exec || !strings.HasSuffix(restart, "-suspend-1") || e.lastExecutionOf(name, steps.StepMarkSuspended) != restart {
				t.Fatalf("stopped by %s (MarkSuspended by %s), want the reconciler's restart %s-1", restart, e.lastExecutionOf(name, steps.StepMarkSuspended), exec)
			}
			if got := e.waitExecution(restart); got != "SUCCEEDED" {
				t.Fatalf("restarted suspend execution %s", got)
			}
			if len(p.StorageStatusDetails) == 0 {
				t.Fatal("no checkpoint recorded: the stop was not graceful")
			}
			if n := e.driver.deprovisionCount(dep); n != 1 {
				t.Fatalf("%d deprovisions, want 1", n)
			}
			t.Logf("history: %v", e.historyActions(name))
		})
	}
}
