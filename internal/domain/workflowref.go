package domain

import (
	"fmt"
	"time"
)

// Statuses of a recorded workflow (WorkflowRef.Status) that this package
// writes or reads. The others are Step Functions' execution statuses as
// described (SUCCEEDED, FAILED, TIMED_OUT, ABORTED, …).
const (
	// WorkflowPending: recorded by the user action's own conditional write,
	// before StartExecution (RecordWorkflow); the execution may not exist
	// yet, or ever (a lost API Lambda: DecideWorkflowRepair).
	WorkflowPending = "PENDING"
	// WorkflowRunning: the execution is known to have started: its first
	// status write said so (MarkWorkflowRunning), or a start's answer or a
	// DescribeExecution did (the reconciler records it).
	WorkflowRunning = "RUNNING"
	// WorkflowSuperseded: a later user action moved the pipeline to a new
	// generation while this workflow was recorded as live. Its fenced writes
	// fail from then on and the API stops its execution (best effort: then
	// ABORTED in Step Functions, unless it had ended on its own), so the
	// record stops claiming it is RUNNING and no longer tracks it.
	WorkflowSuperseded = "SUPERSEDED"
)

// WorkflowLive reports whether a recorded status claims the execution is (or
// is about to be) running.
func WorkflowLive(status string) bool {
	return status == WorkflowRunning || status == WorkflowPending
}

// supersedeWorkflow marks, in the write of an action that moves the pipeline
// to a new generation, a recorded workflow of an older generation that is
// still recorded as live: it is superseded. The record must never claim a
// state its execution is not in, and when the action starts no workflow of
// its own (a stop of a pending start) nothing else would ever update the
// ref. When the action does start one, the same write replaces the ref with
// the new workflow's PENDING one (RecordWorkflow).
func supersedeWorkflow(next *Pipeline) {
	if w := next.Workflow; w != nil && w.Generation < next.Generation && WorkflowLive(w.Status) {
		c := *w
		c.Status = WorkflowSuperseded
		next.Workflow = &c
	}
}

// UpdateWorkflowRef decides what SetWorkflow records when cur is recorded and
// ref is reported (both of the record's generation; older ones are fenced
// off by the store). A report that an execution is live never overwrites a
// recorded end of that same execution (a late RUNNING from the API after the
// workflow recorded SUCCEEDED, or after an action recorded SUPERSEDED): it
// returns cur and false (nothing to write). Otherwise it returns ref and
// whether it differs from cur.
func UpdateWorkflowRef(cur *WorkflowRef, ref WorkflowRef) (WorkflowRef, bool) {
	if cur == nil {
		return ref, true
	}
	if cur.ExecutionName == ref.ExecutionName && cur.Generation == ref.Generation &&
		!WorkflowLive(cur.Status) && WorkflowLive(ref.Status) {
		return *cur, false
	}
	same := cur.Kind == ref.Kind && cur.Generation == ref.Generation && cur.ExecutionName == ref.ExecutionName &&
		cur.ExecutionArn == ref.ExecutionArn && cur.StartedAt.Equal(ref.StartedAt) && cur.Status == ref.Status
	return ref, !same
}

// WorkflowRefError: a workflow ref that does not belong in the write it was
// given to (a programming error, never the caller's).
type WorkflowRefError struct {
	Ref    WorkflowRef
	Reason string
}

func (e *WorkflowRefError) Error() string {
	return fmt.Sprintf("workflow ref %s (kind %q, generation %d, status %q): %s",
		e.Ref.ExecutionName, e.Ref.Kind, e.Ref.Generation, e.Ref.Status, e.Reason)
}

// RecordWorkflow puts the reference of the workflow an accepted action starts
// into the action's own write: the execution name is deterministic, so the
// record names it before StartExecution is called, and no second write is
// needed once it is. The ref must be PENDING, of the outcome's workflow kind
// and of the generation the outcome writes; anything else is a
// *WorkflowRefError and out is returned unchanged. An outcome that starts no
// workflow is returned as it is.
func RecordWorkflow(out Outcome, ref WorkflowRef) (Outcome, error) {
	if !out.Write || out.Workflow == "" {
		return out, nil
	}
	switch {
	case ref.Kind != out.Workflow:
		return out, &WorkflowRefError{Ref: ref, Reason: fmt.Sprintf("the action starts a %s workflow", out.Workflow)}
	case ref.Generation != out.Pipeline.Generation:
		return out, &WorkflowRefError{Ref: ref, Reason: fmt.Sprintf("the action writes generation %d", out.Pipeline.Generation)}
	case ref.Status != WorkflowPending:
		return out, &WorkflowRefError{Ref: ref, Reason: "a ref recorded before StartExecution is " + WorkflowPending}
	case ref.ExecutionName == "":
		return out, &WorkflowRefError{Ref: ref, Reason: "no execution name"}
	}
	out.Pipeline = out.Pipeline.clone()
	out.Pipeline.Workflow = &ref
	return out, nil
}

// MarkWorkflowRunning records, in a status write that the execution named
// execution makes, that this execution runs: a PENDING ref of the record's
// generation naming it becomes RUNNING. It changes nothing else (any other
// ref, status or execution is left alone), so it can ride along with every
// step's write; the workflow's first write takes the PENDING → RUNNING
// moment off the API's critical path.
func MarkWorkflowRunning(p *Pipeline, execution string) {
	w := p.Workflow
	if w == nil || execution == "" || w.ExecutionName != execution || w.Generation != p.Generation || w.Status != WorkflowPending {
		return
	}
	c := *w
	c.Status = WorkflowRunning
	p.Workflow = &c
}

// WorkflowRepair is what the reconciler does about a PENDING workflow ref of
// the pipeline's current generation (DecideWorkflowRepair).
type WorkflowRepair string

const (
	// RepairNone: the rule does not apply (no PENDING ref of this
	// generation, or the pipeline now needs another kind of workflow): the
	// reconciler's other rules decide.
	RepairNone WorkflowRepair = "None"
	// RepairWait: the execution is not there yet, but the ref is younger
	// than the grace period: the API may be calling StartExecution right now
	// (or DescribeExecution lags). Nothing to do this pass.
	RepairWait WorkflowRepair = "Wait"
	// RepairStart: the execution does not exist and the ref is older than
	// the grace period: the start never happened (the API Lambda was lost
	// between its write and StartExecution, or StartExecution failed).
	// StartExecution under the recorded name; the same name is what makes a
	// start that did happen after all (a lagging describe) not a second one.
	RepairStart WorkflowRepair = "Start"
	// RepairConfirm: the execution runs; record RUNNING.
	RepairConfirm WorkflowRepair = "Confirm"
	// RepairEnded: the execution ended without its steps recording it (they
	// wrote nothing, or failed): the reconciler's other rules decide (record
	// the end on a converged pipeline, the next attempt otherwise).
	RepairEnded WorkflowRepair = "Ended"
)

// AllWorkflowRepairs lists every WorkflowRepair.
var workflowRepairEnum, AllWorkflowRepairs = newEnum("workflow repair", RepairNone, RepairWait, RepairStart, RepairConfirm, RepairEnded)

func (r WorkflowRepair) MarshalText() ([]byte, error)  { return workflowRepairEnum.marshal(r) }
func (r *WorkflowRepair) UnmarshalText(b []byte) error { return workflowRepairEnum.unmarshal(b, r) }

// PendingRepairApplies reports whether DecideWorkflowRepair has anything to
// decide for p (otherwise it is RepairNone whatever the execution's status),
// so the execution need not be described: p's ref is PENDING for p's
// generation and of the kind p still needs, or p has converged.
func PendingRepairApplies(p Pipeline) bool {
	w := p.Workflow
	if w == nil || w.Generation != p.Generation || w.Status != WorkflowPending {
		return false
	}
	kind := p.PendingWorkflow()
	return kind == "" || kind == w.Kind
}

// DecideWorkflowRepair decides what to do about p's workflow ref when it is
// PENDING for p's generation and of the kind p still needs (or p has
// converged: the workflow the action asked for still has to run, e.g. a stop
// of a pending start whose deprovisioning finds nothing). described is the
// execution's status as DescribeExecution reports it, "" when it does not
// exist (ExecutionDoesNotExist). A ref is younger than grace while
// now − StartedAt < grace (a zero StartedAt is old).
func DecideWorkflowRepair(p Pipeline, described string, now time.Time, grace time.Duration) WorkflowRepair {
	if !PendingRepairApplies(p) {
		return RepairNone
	}
	w := p.Workflow
	switch {
	case described == "":
		if !w.StartedAt.IsZero() && now.Sub(w.StartedAt) < grace {
			return RepairWait
		}
		return RepairStart
	case WorkflowLive(described):
		return RepairConfirm
	}
	return RepairEnded
}
