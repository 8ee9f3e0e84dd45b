package domain

import (
	"errors"
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

// Issue 15: the accepted action's own write records the workflow it starts,
// PENDING, under the deterministic name; any other ref is refused.
func TestRecordWorkflow(t *testing.T) {
	running := rec(ResourcesProvisioned, ResourcesDesiredProvisioned, RuntimeRunning, RuntimeDesiredRunning)
	out, err := Stop(running, true, t0)
	if err != nil || out.Workflow != WorkflowStop {
		t.Fatalf("setup: %v %+v", err, out)
	}
	good := WorkflowRef{Kind: WorkflowStop, Generation: out.Pipeline.Generation, ExecutionName: "p1-g8-stop", StartedAt: t0, Status: WorkflowPending}
	for _, c := range []struct {
		name   string
		mutate func(*WorkflowRef)
		ok     bool
	}{
		{"pending ref of the outcome", func(*WorkflowRef) {}, true},
		{"another kind", func(r *WorkflowRef) { r.Kind = WorkflowSuspend }, false},
		{"another generation", func(r *WorkflowRef) { r.Generation-- }, false},
		{"already RUNNING", func(r *WorkflowRef) { r.Status = WorkflowRunning }, false},
		{"no name", func(r *WorkflowRef) { r.ExecutionName = "" }, false},
	} {
		ref := good
		c.mutate(&ref)
		got, err := RecordWorkflow(out, ref)
		var refErr *WorkflowRefError
		switch {
		case c.ok && err != nil:
			t.Errorf("%s: %v", c.name, err)
		case c.ok && (got.Pipeline.Workflow == nil || *got.Pipeline.Workflow != ref):
			t.Errorf("%s: recorded %+v", c.name, got.Pipeline.Workflow)
		case !c.ok && !errors.As(err, &refErr):
			t.Errorf("%s: error %v, want a *WorkflowRefError", c.name, err)
		case !c.ok && got.Pipeline.Workflow != out.Pipeline.Workflow:
			t.Errorf("%s: the outcome was changed", c.name)
		}
	}
	if out.Pipeline.Workflow.Status == WorkflowPending {
		t.Fatal("RecordWorkflow modified its input's record")
	}
	// An outcome that starts no workflow (a repeat) is left alone.
	stopped := rec(ResourcesStopped, ResourcesDesiredStopped, "", "")
	repeat, err := Stop(stopped, true, t0)
	if err != nil {
		t.Fatal(err)
	}
	if got, err := RecordWorkflow(repeat, good); err != nil || got.Pipeline.Workflow != repeat.Pipeline.Workflow {
		t.Fatalf("repeat: %v %+v", err, got.Pipeline.Workflow)
	}
}

func TestMarkWorkflowRunning(t *testing.T) {
	pending := func(gen int64, name, status string) Pipeline {
		p := rec(ResourcesProvisioned, ResourcesDesiredStopped, RuntimeRunning, RuntimeDesiredRunning)
		p.Generation = 8
		p.Workflow = &WorkflowRef{Kind: WorkflowStop, Generation: gen, ExecutionName: name, StartedAt: t0, Status: status}
		return p
	}
	for _, c := range []struct {
		name      string
		p         Pipeline
		execution string
		want      string
	}{
		{"its own PENDING ref", pending(8, "p1-g8-stop", WorkflowPending), "p1-g8-stop", WorkflowRunning},
		{"another execution's", pending(8, "p1-g8-stop", WorkflowPending), "p1-g8-stop-1", WorkflowPending},
		{"already RUNNING", pending(8, "p1-g8-stop", WorkflowRunning), "p1-g8-stop", WorkflowRunning},
		{"SUPERSEDED stays", pending(8, "p1-g8-stop", WorkflowSuperseded), "p1-g8-stop", WorkflowSuperseded},
		{"an older generation's", pending(7, "p1-g8-stop", WorkflowPending), "p1-g8-stop", WorkflowPending},
		{"no execution named", pending(8, "p1-g8-stop", WorkflowPending), "", WorkflowPending},
	} {
		before := *c.p.Workflow
		MarkWorkflowRunning(&c.p, c.execution)
		if c.p.Workflow.Status != c.want {
			t.Errorf("%s: %s, want %s", c.name, c.p.Workflow.Status, c.want)
		}
		if before.Status != WorkflowPending && *c.p.Workflow != before {
			t.Errorf("%s: changed %+v", c.name, c.p.Workflow)
		}
	}
	// The input's ref is not aliased.
	p := pending(8, "p1-g8-stop", WorkflowPending)
	shared := p.Workflow
	MarkWorkflowRunning(&p, "p1-g8-stop")
	if shared.Status != WorkflowPending {
		t.Fatal("the ref was modified in place")
	}
	var none Pipeline
	MarkWorkflowRunning(&none, "x") // no ref: nothing to do, no panic
}

// Issue 15: the reconciler's rule for a PENDING ref (a start that may never
// have happened).
func TestDecideWorkflowRepair(t *testing.T) {
	const grace = 30 * time.Second
	stopping := func(status string, started time.Time) Pipeline {
		p := rec(ResourcesProvisioned, ResourcesDesiredStopped, RuntimeRunning, RuntimeDesiredRunning)
		p.Generation = 8
		p.Workflow = &WorkflowRef{Kind: WorkflowStop, Generation: 8, ExecutionName: "p1-g8-stop", StartedAt: started, Status: status}
		return p
	}
	converged := rec(ResourcesStopped, ResourcesDesiredStopped, "", "")
	converged.Generation = 8
	converged.Workflow = &WorkflowRef{Kind: WorkflowStop, Generation: 8, ExecutionName: "p1-g8-stop", StartedAt: t0, Status: WorkflowPending}
	otherKind := stopping(WorkflowPending, t0)
	otherKind.Workflow.Kind = WorkflowStart
	older := stopping(WorkflowPending, t0)
	older.Workflow.Generation = 7
	noRef := stopping(WorkflowPending, t0)
	noRef.Workflow = nil
	for _, c := range []struct {
		name      string
		p         Pipeline
		described string
		now       time.Time
		want      WorkflowRepair
	}{
		{"missing, young", stopping(WorkflowPending, t0), "", t0.Add(grace - time.Second), RepairWait},
		{"missing, at the grace", stopping(WorkflowPending, t0), "", t0.Add(grace), RepairStart},
		{"missing, old", stopping(WorkflowPending, t0), "", t0.Add(time.Hour), RepairStart},
		{"missing, no start time", stopping(WorkflowPending, time.Time{}), "", t0, RepairStart},
		{"missing, converged pipeline", converged, "", t0.Add(time.Hour), RepairStart},
		{"running", stopping(WorkflowPending, t0), "RUNNING", t0, RepairConfirm},
		{"ended", stopping(WorkflowPending, t0), "SUCCEEDED", t0.Add(time.Hour), RepairEnded},
		{"failed", stopping(WorkflowPending, t0), "FAILED", t0, RepairEnded},
		{"aborted", stopping(WorkflowPending, t0), "ABORTED", t0, RepairEnded},
		{"already RUNNING", stopping(WorkflowRunning, t0), "", t0.Add(time.Hour), RepairNone},
		{"ended ref", stopping("SUCCEEDED", t0), "", t0.Add(time.Hour), RepairNone},
		{"superseded ref", stopping(WorkflowSuperseded, t0), "", t0.Add(time.Hour), RepairNone},
		{"an older generation's", older, "", t0.Add(time.Hour), RepairNone},
		{"another kind is needed now", otherKind, "", t0.Add(time.Hour), RepairNone},
		{"no ref", noRef, "", t0.Add(time.Hour), RepairNone},
	} {
		if got := DecideWorkflowRepair(c.p, c.described, c.now, grace); got != c.want {
			t.Errorf("%s: %s, want %s", c.name, got, c.want)
		}
	}
	for _, r := range AllWorkflowRepairs {
		b, err := r.MarshalText()
		var back WorkflowRepair
		if err != nil || back.UnmarshalText(b) != nil || back != r {
			t.Errorf("%s: %v", r, err)
		}
	}
	if _, err := WorkflowRepair("Maybe").MarshalText(); err == nil {
		t.Error("an unknown repair marshalled")
	}
}
