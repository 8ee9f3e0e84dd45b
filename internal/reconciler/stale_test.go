package reconciler

import (
	"context"
	"encoding/json"
	"sync"
	"testing"

	"github.com/sluicehq/sluice/internal/compute"
	"github.com/sluicehq/sluice/internal/domain"
	"github.com/sluicehq/sluice/internal/store"
	"github.com/sluicehq/sluice/internal/store/storetest"
)

// hookDriver is a compute driver whose Check runs a hook first (the test's
// interleaving: what the workflows do while the reconciler checks).
type hookDriver struct {
	stubDriver
	mu      sync.Mutex
	onCheck func()
}

func (d *hookDriver) Check(ctx context.Context, name, deploymentID string) (compute.CheckResult, error) {
	d.mu.Lock()
	hook := d.onCheck
	d.onCheck = nil
	d.mu.Unlock()
	if hook != nil {
		hook()
	}
	return d.stubDriver.Check(ctx, name, deploymentID)
}

// suspending makes p Suspending: a graceful stop accepted, its suspend
// workflow started and recorded (still running), the runtime suspending.
func (f *fixture) suspending(name string) {
	f.t.Helper()
	f.running(name)
	p := f.act(name, stopDecision(false))
	f.started(p, domain.WorkflowSuspend, 0)
	f.transition(name, domain.MarkSuspending())
}

func (f *fixture) workflowStep(s store.Store, name string, tr domain.Transition) {
	f.t.Helper()
	p := f.get(name)
	if _, err := s.Transition(f.ctx, name, p.Generation, tr, store.Cause{Action: "test", Actor: "workflow"}); err != nil {
		f.t.Fatal(err)
	}
}

func (f *fixture) assertCleanStop(name string, rep Report) {
	f.t.Helper()
	if rep.ForcedStops != 0 {
		f.t.Fatalf("a graceful stop was force-stopped: %+v", rep)
	}
	p := f.get(name)
	if p.DeploymentError != nil {
		f.t.Fatalf("a clean graceful stop got deployment_error %+v", p.DeploymentError)
	}
	// The suspend workflow finishes: Stopped without an error.
	f.workflowStep(f.store, name, domain.MarkStopped())
	if p := f.get(name); p.ResourcesStatus != domain.ResourcesStopped || p.DeploymentError != nil {
		f.t.Fatalf("%s, error %+v", p.ResourcesStatus, p.DeploymentError)
	}
}

// Issue 13: the reconciler lists a graceful stop as Suspending from the
// lagging index, while the suspend workflow has already marked it Suspended
// (Stopping, same generation) and deprovisioned its compute. The compute
// check finds the task gone; that is the stop's own work, not a failure.
func TestStaleListingOfASuspendDoesNotForceStop(t *testing.T) {
	f := newFixture(t)
	f.suspending("p")
	stale, err := storetest.New(f.ctx, f.store)
	if err != nil {
		t.Fatal(err)
	}
	stale.Freeze() // the index still shows Suspending
	f.workflowStep(stale, "p", domain.MarkSuspended(json.RawMessage(`{"checkpoints":[]}`)))
	f.drv.check = compute.CheckResult{State: compute.StateGone, Reason: "task stopped"}
	if got := f.get("p"); got.ResourcesStatus != domain.ResourcesStopping {
		t.Fatalf("setup: %s", got.ResourcesStatus)
	}
	if page, _, _ := stale.List(f.ctx, "", 10); len(page) != 1 || page[0].DeploymentStatus() != domain.CombinedSuspending {
		t.Fatalf("setup: the listing is not stale: %+v", page)
	}

	f.rec.Store = stale
	rep := f.run()
	if stale.Lists() == 0 {
		t.Fatal("the pass did not list through the stale wrapper")
	}
	f.assertCleanStop("p", rep)
}

// The same race without a stale listing: the reconciler reads the pipeline
// Suspending, and while it checks the compute the suspend workflow marks it
// Suspended and deprovisions. The forced stop is fenced by the deployment
// and its status (domain.DeploymentFailed), not only by the generation.
func TestSuspendCompletingDuringTheComputeCheckDoesNotForceStop(t *testing.T) {
	f := newFixture(t)
	f.suspending("p")
	drv := &hookDriver{stubDriver: stubDriver{check: compute.CheckResult{State: compute.StateGone, Reason: "task stopped"}}}
	drv.onCheck = func() {
		f.workflowStep(f.store, "p", domain.MarkSuspended(json.RawMessage(`{"checkpoints":[]}`)))
	}
	f.rec.Driver = drv
	rep := f.run()
	if rep.Observed != 1 {
		t.Fatalf("the compute was not checked: %+v", rep)
	}
	f.assertCleanStop("p", rep)
}

// A listing that lags by a write or two still leads to the right forced
// stop when the compute really vanished (the re-read record is Suspending).
func TestStaleListingStillStopsAVanishedSuspend(t *testing.T) {
	f := newFixture(t)
	f.running("p")
	stale, err := storetest.New(f.ctx, f.store)
	if err != nil {
		t.Fatal(err)
	}
	stale.SetLag(2) // the index still shows Running
	p := f.get("p")
	out, err := domain.Stop(p, false, p.ResourcesStatusSince)
	if err != nil {
		t.Fatal(err)
	}
	p, err = stale.ApplyAction(f.ctx, p, out, store.Cause{Action: "stop"})
	if err != nil {
		t.Fatal(err)
	}
	f.started(p, domain.WorkflowSuspend, 0)
	f.workflowStep(stale, "p", domain.MarkSuspending())
	f.drv.check = compute.CheckResult{State: compute.StateGone, Reason: "task stopped"}

	f.rec.Store = stale
	rep := f.run()
	if rep.ForcedStops != 1 {
		t.Fatalf("report %+v", rep)
	}
	if got := f.get("p"); got.ResourcesStatus != domain.ResourcesStopping || got.DeploymentError == nil || got.DeploymentError.ErrorCode != "ComputeVanished" {
		t.Fatalf("%s %+v", got.ResourcesStatus, got.DeploymentError)
	}
}
