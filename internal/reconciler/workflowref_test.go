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

// Issue 15: the API recorded the start workflow PENDING in its action's
// write and was lost before StartExecution. A pass within the grace period
// leaves it (the API may be starting it); a later pass starts it under the
// recorded name, once, and records it RUNNING; a further pass does nothing.
func TestStartsAPendingWorkflowThatNeverStarted(t *testing.T) {
	f := newFixture(t)
	p, err := domain.Create(domain.Definition{Name: "p", RuntimeConfig: []byte(`{}`)}, uuid.NewString(), time.Now().UTC())
	if err != nil {
		t.Fatal(err)
	}
	if err := f.store.Create(f.ctx, p, store.Cause{Action: "create"}); err != nil {
		t.Fatal(err)
	}
	written := time.Now()
	p = f.act("p", func(p domain.Pipeline, now time.Time) (domain.Outcome, error) {
		out, err := startDecision(p, now)
		if err != nil {
			return out, err
		}
		ref, err := f.wf.PendingRef(out.Pipeline, out.Workflow)
		if err != nil {
			return out, err
		}
		return domain.RecordWorkflow(out, ref) // as the API does; StartExecution is never called
	})
	pending := *p.Workflow
	if pending.Status != domain.WorkflowPending || len(f.wf.Calls()) != 0 {
		t.Fatalf("setup: %+v", pending)
	}

	f.rec.Now = func() time.Time { return written.Add(DefaultPendingGrace / 2) }
	if rep := f.run(); rep.WorkflowsStarted != 0 || len(f.wf.Calls()) != 0 {
		t.Fatalf("within the grace period: %+v, %d starts", rep, len(f.wf.Calls()))
	}
	f.rec.Now = func() time.Time { return written.Add(DefaultPendingGrace + time.Second) }
	rep := f.run()
	calls := f.wf.Calls()
	if rep.WorkflowsStarted != 1 || len(calls) != 1 || calls[0].ExecutionName != pending.ExecutionName {
		t.Fatalf("after the grace period: %+v, starts %+v, want %s", rep, calls, pending.ExecutionName)
	}
	if w := f.get("p").Workflow; w.ExecutionName != pending.ExecutionName || w.Status != domain.WorkflowRunning {
		t.Fatalf("recorded %+v", w)
	}
	if rep := f.run(); rep.WorkflowsStarted != 0 || len(f.wf.Executions()) != 1 {
		t.Fatalf("third pass: %+v, %d executions", rep, len(f.wf.Executions()))
	}
}

// Issue 15: a PENDING ref whose execution runs (the first step has not
// written yet, or its write was lost) is recorded RUNNING by the pass.
func TestConfirmsAPendingWorkflowThatRuns(t *testing.T) {
	f := newFixture(t)
	p, err := domain.Create(domain.Definition{Name: "p", RuntimeConfig: []byte(`{}`)}, uuid.NewString(), time.Now().UTC())
	if err != nil {
		t.Fatal(err)
	}
	if err := f.store.Create(f.ctx, p, store.Cause{Action: "create"}); err != nil {
		t.Fatal(err)
	}
	p = f.act("p", func(p domain.Pipeline, now time.Time) (domain.Outcome, error) {
		out, err := startDecision(p, now)
		if err != nil {
			return out, err
		}
		ref, err := f.wf.PendingRef(out.Pipeline, out.Workflow)
		if err != nil {
			return out, err
		}
		return domain.RecordWorkflow(out, ref)
	})
	if _, err := f.wf.Start(f.ctx, p, domain.WorkflowStart); err != nil {
		t.Fatal(err)
	}
	rep := f.run()
	if w := f.get("p").Workflow; w.Status != domain.WorkflowRunning || rep.WorkflowsRepaired != 1 || rep.WorkflowsStarted != 0 {
		t.Fatalf("workflow %+v, report %+v", w, rep)
	}
	if len(f.wf.Calls()) != 1 {
		t.Fatalf("%d starts", len(f.wf.Calls()))
	}
}
