package domain

import (
	"testing"
	"time"
)

// Issue 13: a stop that cancels a pending start needs no workflow; the start
// execution it supersedes is stopped by the API. The same write must stop
// the record claiming that execution is RUNNING (nothing else would ever
// update the ref).
func TestActionSupersedingALiveWorkflowMarksIt(t *testing.T) {
	pending := rec(ResourcesStopped, ResourcesDesiredProvisioned, "", RuntimeDesiredRunning)
	pending.StorageStatus = StorageCleared
	pending.Workflow = &WorkflowRef{Kind: WorkflowStart, Generation: pending.Generation, ExecutionName: "p1-g7-start", StartedAt: t0, Status: WorkflowRunning}
	out, err := Stop(pending, true, t0)
	if err != nil {
		t.Fatal(err)
	}
	if out.Workflow != "" || out.Supersedes == nil {
		t.Fatalf("setup: workflow %q supersedes %+v", out.Workflow, out.Supersedes)
	}
	if w := out.Pipeline.Workflow; w == nil || w.Status != WorkflowSuperseded || w.ExecutionName != "p1-g7-start" {
		t.Fatalf("recorded workflow %+v, want the start marked %s", w, WorkflowSuperseded)
	}
	if out.Supersedes.Status != WorkflowRunning || pending.Workflow.Status != WorkflowRunning {
		t.Fatal("the input record (or the ref to stop) was modified")
	}

	for _, c := range []struct {
		name   string
		status string
		want   string
	}{
		{"pending", WorkflowPending, WorkflowSuperseded},
		{"ended", "SUCCEEDED", "SUCCEEDED"},
		{"failed", "FAILED", "FAILED"},
	} {
		running := rec(ResourcesProvisioned, ResourcesDesiredProvisioned, RuntimeRunning, RuntimeDesiredRunning)
		running.Workflow.Status = c.status
		out, err := Stop(running, true, t0)
		if err != nil {
			t.Fatal(err)
		}
		if got := out.Pipeline.Workflow.Status; got != c.want {
			t.Errorf("%s: recorded %s, want %s", c.name, got, c.want)
		}
	}
	// An action that keeps the generation leaves the ref alone.
	paused := rec(ResourcesProvisioned, ResourcesDesiredProvisioned, RuntimePaused, RuntimeDesiredPaused)
	out, err = Pause(paused, t0)
	if err != nil || out.Write || out.Pipeline.Workflow.Status != WorkflowRunning {
		t.Fatalf("repeat: %v %v %+v", err, out.Write, out.Pipeline.Workflow)
	}
}

func TestUpdateWorkflowRef(t *testing.T) {
	ref := func(name, status string) WorkflowRef {
		return WorkflowRef{Kind: WorkflowStart, Generation: 7, ExecutionName: name, StartedAt: t0, Status: status}
	}
	later := ref("p1-g7-start", WorkflowRunning)
	later.StartedAt = t0.In(time.FixedZone("x", 3600)) // the same instant
	for _, c := range []struct {
		name    string
		cur     *WorkflowRef
		ref     WorkflowRef
		want    string
		changed bool
	}{
		{"first", nil, ref("p1-g7-start", WorkflowRunning), WorkflowRunning, true},
		{"same", ptr(ref("p1-g7-start", WorkflowRunning)), later, WorkflowRunning, false},
		{"ended", ptr(ref("p1-g7-start", WorkflowRunning)), ref("p1-g7-start", "SUCCEEDED"), "SUCCEEDED", true},
		{"late RUNNING after SUCCEEDED", ptr(ref("p1-g7-start", "SUCCEEDED")), ref("p1-g7-start", WorkflowRunning), "SUCCEEDED", false},
		{"late PENDING after SUPERSEDED", ptr(ref("p1-g7-start", WorkflowSuperseded)), ref("p1-g7-start", WorkflowPending), WorkflowSuperseded, false},
		{"a new attempt after an ended one", ptr(ref("p1-g7-start", "FAILED")), ref("p1-g7-start-a1", WorkflowRunning), WorkflowRunning, true},
	} {
		got, changed := UpdateWorkflowRef(c.cur, c.ref)
		if got.Status != c.want || changed != c.changed {
			t.Errorf("%s: got %s changed %v, want %s %v", c.name, got.Status, changed, c.want, c.changed)
		}
	}
}
