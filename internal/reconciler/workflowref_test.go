package reconciler

import (
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/sluicehq/sluice/internal/domain"
	"github.com/sluicehq/sluice/internal/store"
)

// Issue 13: the API's SetWorkflow(RUNNING) landed after the start
// workflow's last write, so the converged record claims a RUNNING execution
// that has ended. The pass records the execution's real status.
func TestRepairsAWorkflowRecordedRunningAfterItEnded(t *testing.T) {
	f := newFixture(t)
	p, err := domain.Create(domain.Definition{Name: "p", RuntimeConfig: []byte(`{}`)}, uuid.NewString(), time.Now().UTC())
	if err != nil {
		t.Fatal(err)
	}
	if err := f.store.Create(f.ctx, p, store.Cause{Action: "create"}); err != nil {
		t.Fatal(err)
	}
	p = f.act("p", startDecision)
	ref, err := f.wf.StartAttempt(f.ctx, p, domain.WorkflowStart, 0)
	if err != nil {
		t.Fatal(err)
	}
	f.transition("p", domain.MarkProvisioning("dep-p"))
	f.transition("p", domain.MarkProvisioned("http://rt", domain.RuntimeRunning))
	f.wf.Finish(ref.ExecutionName)
	if _, err := f.store.SetWorkflow(f.ctx, "p", ref); err != nil { // the API's late record
		t.Fatal(err)
	}
	if w := f.get("p").Workflow; w.Status != domain.WorkflowRunning {
		t.Fatalf("setup: %+v", w)
	}
	rep := f.run()
	if w := f.get("p").Workflow; w.Status != "SUCCEEDED" || w.ExecutionName != ref.ExecutionName || rep.WorkflowsRepaired != 1 {
		t.Fatalf("workflow %+v, report %+v", w, rep)
	}
	if rep := f.run(); rep.WorkflowsRepaired != 0 {
		t.Fatalf("repaired twice: %+v", rep)
	}
}
