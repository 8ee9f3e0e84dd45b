package reconciler

import (
	"context"
	"encoding/json"
	"testing"

	"github.com/sluicehq/sluice/internal/compute"
	"github.com/sluicehq/sluice/internal/domain"
	"github.com/sluicehq/sluice/internal/runtimeclient"
	"github.com/sluicehq/sluice/internal/steps"
	"github.com/sluicehq/sluice/internal/store/storetest"
)

// deprovisioningDriver: a deployment's compute is gone once deprovisioned.
type deprovisioningDriver struct{ stubDriver }

func (d *deprovisioningDriver) Deprovision(context.Context, string, string) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.check = compute.CheckResult{State: compute.StateGone, Reason: "task stopped"}
	return nil
}

// Issue 13 with the real suspend workflow steps: the steps and the
// reconciler share a store whose listing lags (StaleList frozen while the
// pipeline is Suspending). The suspend checkpoints, marks Suspended and
// deprovisions; a reconciler pass in between must not call the vanished
// compute a failure, and the graceful stop ends Stopped without an error.
func TestSuspendWorkflowWithALaggingListing(t *testing.T) {
	f := newFixture(t)
	f.running("p")
	p := f.act("p", stopDecision(false))
	ref := f.started(p, domain.WorkflowSuspend, 0)
	stale, err := storetest.New(f.ctx, f.store)
	if err != nil {
		t.Fatal(err)
	}
	drv := &deprovisioningDriver{stubDriver{check: compute.CheckResult{State: compute.StateRunning, Location: "http://rt"}}}
	wf := &steps.Steps{Store: stale, Driver: drv, Continuer: f.wf, Logger: f.rec.Logger,
		RuntimeFor: func(string) (steps.Runtime, error) { return f.rt, nil }}
	f.rec.Store, f.rec.Driver = stale, drv
	st := steps.Payload{Pipeline: "p", PipelineID: p.ID, Generation: p.Generation, Kind: domain.WorkflowSuspend}
	run := func(step string) {
		t.Helper()
		var err error
		if st, err = wf.Handle(f.ctx, steps.Request{Step: step, Execution: ref.ExecutionName, State: st}); err != nil {
			t.Fatalf("%s: %v", step, err)
		}
	}

	run(steps.StepMarkSuspending)
	run(steps.StepRequestSuspend)
	stale.Freeze() // the index shows Suspending from here on
	f.rt.mu.Lock()
	f.rt.report = runtimeclient.StatusReport{RuntimeStatus: domain.RuntimeSuspended, StorageStatusDetails: json.RawMessage(`{"checkpoints":[{"uuid":"c1"}]}`)}
	f.rt.mu.Unlock()
	run(steps.StepCheckSuspend)
	if !st.Done {
		t.Fatalf("CheckSuspend: %+v", st)
	}
	run(steps.StepMarkSuspended)
	run(steps.StepDeprovision)

	rep := f.run()
	if rep.ForcedStops != 0 || stale.Lists() == 0 {
		t.Fatalf("report %+v (%d lists)", rep, stale.Lists())
	}
	run(steps.StepMarkStopped)
	got := f.get("p")
	if !got.FullyStopped() || got.DeploymentError != nil {
		t.Fatalf("after the graceful stop: %s/%s, error %+v", got.ResourcesStatus, got.ResourcesDesiredStatus, got.DeploymentError)
	}
}
