package domain

// Statuses of a recorded workflow (WorkflowRef.Status) that this package
// writes or reads. The others are Step Functions' execution statuses as
// described (SUCCEEDED, FAILED, TIMED_OUT, ABORTED, …).
const (
	WorkflowPending = "PENDING"
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
// ref. When the action does start one, SetWorkflow replaces the ref.
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
