package store

import (
	"errors"
	"testing"

	"github.com/sluicehq/sluice/internal/domain"
)

// Issue 13: `start & sleep 0.05; stop?force=true`. The start's workflow is
// recorded RUNNING; the stop cancels the pending start and needs no
// workflow; the API stops the start execution (ABORTED). The record must not
// keep claiming {generation N-1, start, RUNNING}, and a late SetWorkflow of
// the old generation must not bring RUNNING back.
func TestStopOfAPendingStartMarksItsWorkflowSuperseded(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.create("sup")
	started := e.act("sup", start)
	ref := domain.WorkflowRef{Kind: domain.WorkflowStart, Generation: started.Generation, ExecutionName: "sup-g1-start",
		StartedAt: e.clock.Now(), Status: domain.WorkflowRunning}
	if _, err := e.store.SetWorkflow(e.ctx, "sup", ref); err != nil {
		t.Fatal(err)
	}
	stopped := e.act("sup", stop(true))
	if stopped.Generation != started.Generation+1 || !stopped.FullyStopped() {
		t.Fatalf("setup: %s generation %d", statusesOf(stopped), stopped.Generation)
	}
	w := e.get("sup").Workflow
	if w == nil || w.ExecutionName != ref.ExecutionName || w.Status != domain.WorkflowSuperseded {
		t.Fatalf("workflow %+v: the record claims a superseded execution is %v", w, w.Status)
	}
	var sup *SupersededError
	if _, err := e.store.SetWorkflow(e.ctx, "sup", ref); !errors.As(err, &sup) {
		t.Fatalf("late SetWorkflow of generation %d: %v", ref.Generation, err)
	}
	if got := e.get("sup").Workflow; got.Status != domain.WorkflowSuperseded {
		t.Fatalf("resurrected: %+v", got)
	}
}

// The API's SetWorkflow(RUNNING) can land after the workflow's own last
// write recorded the execution SUCCEEDED (MarkProvisioned): it must not
// bring RUNNING back.
func TestLateRunningDoesNotOverwriteAnEndedExecution(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.create("late")
	started := e.act("late", start)
	ref := domain.WorkflowRef{Kind: domain.WorkflowStart, Generation: started.Generation, ExecutionName: "late-g1-start",
		StartedAt: e.clock.Now(), Status: domain.WorkflowRunning}
	if _, err := e.store.SetWorkflow(e.ctx, "late", ref); err != nil {
		t.Fatal(err)
	}
	e.transition("late", domain.MarkProvisioning("dep-1"))
	done := e.transition("late", domain.MarkProvisioned("http://rt", domain.RuntimeRunning))
	if done.Workflow.Status != "SUCCEEDED" {
		t.Fatalf("setup: %+v", done.Workflow)
	}
	got, err := e.store.SetWorkflow(e.ctx, "late", ref) // the API's late (or repeated) record
	if err != nil {
		t.Fatal(err)
	}
	if got.Workflow.Status != "SUCCEEDED" || got.RefreshVersion != done.RefreshVersion {
		t.Fatalf("after a late RUNNING: %+v at refresh version %d (was %d)", got.Workflow, got.RefreshVersion, done.RefreshVersion)
	}
}
