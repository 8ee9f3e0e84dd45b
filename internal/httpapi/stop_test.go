package httpapi

import (
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"

	"github.com/sluicehq/sluice/internal/domain"
	"github.com/sluicehq/sluice/internal/workflow"
)

// TestStopTable sends POST /stop through HTTP for every row of SPEC §3's stop
// table, both values of force, and asserts the status, the whole body, the
// desired state recorded in DynamoDB, and the workflow started (kind and
// execution name) and stopped.
func TestStopTable(t *testing.T) {
	e := newEnv(t)
	type want struct {
		status       int
		accepted     string // the 202 body (a JSON string); %s is the pipeline name
		resDesired   domain.ResourcesDesiredStatus
		rtDesired    domain.RuntimeDesiredStatus // "" = null
		workflow     domain.WorkflowKind         // "" = none started
		write        bool                        // a new generation was written
		supersedes   domain.WorkflowKind         // the execution stopped, "" = none
		illegalState string                      // for the 400: the status in the message
	}
	rows := []struct {
		state string
		force bool
		want  want
	}{
		// Stopped / Stopped: nothing to do, either way.
		{"Stopped/Stopped", false, want{status: 202, accepted: "Pipeline '%s' is already stopped.", resDesired: "Stopped"}},
		{"Stopped/Stopped", true, want{status: 202, accepted: "Pipeline '%s' is already stopped.", resDesired: "Stopped"}},
		{"Stopped/Stopped InUse", false, want{status: 202, accepted: "Pipeline '%s' is already stopped.", resDesired: "Stopped"}},
		// Stopped or Provisioning / Provisioned: both act as a forced stop.
		{"Stopped/Provisioned", false, want{status: 202, accepted: "Pipeline '%s': the pending start is cancelled; nothing to deprovision.", resDesired: "Stopped", write: true, supersedes: "start"}},
		{"Stopped/Provisioned", true, want{status: 202, accepted: "Pipeline '%s': the pending start is cancelled; nothing to deprovision.", resDesired: "Stopped", write: true, supersedes: "start"}},
		{"Provisioning/Provisioned", false, want{status: 202, accepted: "Pipeline '%s' is being stopped (forced): provisioning is cancelled.", resDesired: "Stopped", rtDesired: "Running", workflow: "stop", write: true, supersedes: "start"}},
		{"Provisioning/Provisioned", true, want{status: 202, accepted: "Pipeline '%s' is being stopped (forced): provisioning is cancelled.", resDesired: "Stopped", rtDesired: "Running", workflow: "stop", write: true, supersedes: "start"}},
		// Initializing, Running, Paused or Unavailable / Running or Paused.
		{"Initializing/Running", false, want{status: 202, accepted: "Pipeline '%s' is being stopped: it checkpoints, then its compute is deprovisioned.", resDesired: "Provisioned", rtDesired: "Suspended", workflow: "suspend", write: true}},
		{"Initializing/Running", true, want{status: 202, accepted: "Pipeline '%s' is being stopped (forced): compute is deprovisioned without a checkpoint.", resDesired: "Stopped", rtDesired: "Running", workflow: "stop", write: true}},
		{"Running/Running", false, want{status: 202, accepted: "Pipeline '%s' is being stopped: it checkpoints, then its compute is deprovisioned.", resDesired: "Provisioned", rtDesired: "Suspended", workflow: "suspend", write: true}},
		{"Running/Running", true, want{status: 202, accepted: "Pipeline '%s' is being stopped (forced): compute is deprovisioned without a checkpoint.", resDesired: "Stopped", rtDesired: "Running", workflow: "stop", write: true}},
		{"Paused/Paused", false, want{status: 202, accepted: "Pipeline '%s' is being stopped: it checkpoints, then its compute is deprovisioned.", resDesired: "Provisioned", rtDesired: "Suspended", workflow: "suspend", write: true}},
		{"Paused/Paused", true, want{status: 202, accepted: "Pipeline '%s' is being stopped (forced): compute is deprovisioned without a checkpoint.", resDesired: "Stopped", rtDesired: "Paused", workflow: "stop", write: true}},
		{"Unavailable/Running", false, want{status: 202, accepted: "Pipeline '%s' is being stopped: it checkpoints, then its compute is deprovisioned.", resDesired: "Provisioned", rtDesired: "Suspended", workflow: "suspend", write: true}},
		{"Unavailable/Running", true, want{status: 202, accepted: "Pipeline '%s' is being stopped (forced): compute is deprovisioned without a checkpoint.", resDesired: "Stopped", rtDesired: "Running", workflow: "stop", write: true}},
		// Suspending or Suspended / Suspended: a repeat, or force=true cancels the suspend.
		{"Running/Suspended", false, want{status: 202, accepted: "Pipeline '%s' is already being stopped (suspending).", resDesired: "Provisioned", rtDesired: "Suspended"}},
		{"Suspending/Suspended", false, want{status: 202, accepted: "Pipeline '%s' is already being stopped (suspending).", resDesired: "Provisioned", rtDesired: "Suspended"}},
		{"Suspending/Suspended", true, want{status: 202, accepted: "Pipeline '%s': the suspend is cancelled; it is being stopped (forced).", resDesired: "Stopped", rtDesired: "Suspended", workflow: "stop", write: true, supersedes: "suspend"}},
		{"Running/Suspended", true, want{status: 202, accepted: "Pipeline '%s': the suspend is cancelled; it is being stopped (forced).", resDesired: "Stopped", rtDesired: "Suspended", workflow: "stop", write: true, supersedes: "suspend"}},
		// Any not-Stopped status / Stopped: only a forced stop, an idempotent repeat.
		{"Running/Stopped", false, want{status: 400, illegalState: "Provisioned", resDesired: "Stopped", rtDesired: "Running"}},
		{"Running/Stopped", true, want{status: 202, accepted: "Pipeline '%s' is already being stopped (forced).", resDesired: "Stopped", rtDesired: "Running"}},
		{"Provisioning/Stopped", false, want{status: 400, illegalState: "Provisioning", resDesired: "Stopped", rtDesired: "Running"}},
		{"Provisioning/Stopped", true, want{status: 202, accepted: "Pipeline '%s' is already being stopped (forced).", resDesired: "Stopped", rtDesired: "Running"}},
		{"Stopping/Stopped", false, want{status: 400, illegalState: "Stopping", resDesired: "Stopped", rtDesired: "Running"}},
		{"Stopping/Stopped", true, want{status: 202, accepted: "Pipeline '%s' is already being stopped (forced).", resDesired: "Stopped", rtDesired: "Running"}},
		{"Suspending→forced/Stopped", false, want{status: 400, illegalState: "Provisioned", resDesired: "Stopped", rtDesired: "Suspended"}},
		{"Suspending→forced/Stopped", true, want{status: 202, accepted: "Pipeline '%s' is already being stopped (forced).", resDesired: "Stopped", rtDesired: "Suspended"}},
		// The suspend succeeded (runtime Suspended, resources Stopping): only its deprovisioning is left.
		{"Suspended→Stopping/Stopped", false, want{status: 400, illegalState: "Stopping", resDesired: "Stopped", rtDesired: "Suspended"}},
		{"Suspended→Stopping/Stopped", true, want{status: 202, accepted: "Pipeline '%s' is already being stopped (forced).", resDesired: "Stopped", rtDesired: "Suspended"}},
		// Storage being cleared while stopped: nothing to stop.
		{"Stopped/Stopped Clearing", true, want{status: 202, accepted: "Pipeline '%s' is already stopped.", resDesired: "Stopped"}},
	}
	for i, row := range rows {
		t.Run(fmt.Sprintf("%s/force=%v", row.state, row.force), func(t *testing.T) {
			name := fmt.Sprintf("stop-%02d", i)
			before := e.pipelineIn(name, row.state, "")
			r := e.do(http.MethodPost, fmt.Sprintf("/v0/pipelines/%s/stop?force=%v", name, row.force), nil)
			w := row.want
			if r.status != w.status {
				t.Fatalf("status %d, want %d: %s", r.status, w.status, r.body)
			}
			if w.status == 202 {
				if got, wantBody := r.str(t), fmt.Sprintf(w.accepted, name); got != wantBody {
					t.Fatalf("body %q, want %q", got, wantBody)
				}
			} else {
				hint := "The pipeline is already being stopped: only a forced stop (force=true) is possible until it is Stopped."
				wantError(t, r, 400, domain.CodeIllegalPipelineAction, map[string]any{
					"status": w.illegalState, "current_desired_status": "Stopped", "new_desired_status": "Suspended", "hint": hint})
				if msg := r.json(t).(map[string]any)["message"]; msg != fmt.Sprintf("Deployment resources status (current: '%s', desired: 'Stopped') cannot have desired changed to 'Suspended'. %s", w.illegalState, hint) {
					t.Fatalf("message %q", msg)
				}
			}
			after := e.get(name)
			if after.ResourcesDesiredStatus != w.resDesired {
				t.Errorf("resources desired %s, want %s", after.ResourcesDesiredStatus, w.resDesired)
			}
			gotRt := ""
			if after.RuntimeDesiredStatus != nil {
				gotRt = string(*after.RuntimeDesiredStatus)
			}
			if gotRt != string(w.rtDesired) {
				t.Errorf("runtime desired %q, want %q", gotRt, w.rtDesired)
			}
			wantGen := before.Generation
			if w.write {
				wantGen++
			}
			if after.Generation != wantGen {
				t.Errorf("generation %d, want %d", after.Generation, wantGen)
			}
			if !w.write && after.RefreshVersion != before.RefreshVersion {
				t.Errorf("a no-op wrote the record: refresh version %d → %d", before.RefreshVersion, after.RefreshVersion)
			}
			if after.ResourcesStatus != before.ResourcesStatus || after.DeploymentStatus() != before.DeploymentStatus() {
				t.Errorf("a user action changed a current status")
			}
			starts := e.startsOf(name)
			if w.workflow == "" {
				if len(starts) != 0 {
					t.Fatalf("workflows started: %+v", starts)
				}
			} else {
				wantExec := execName(before, wantGen, w.workflow)
				if len(starts) != 1 || starts[0].Kind != w.workflow || starts[0].ExecutionName != wantExec || starts[0].Generation != wantGen {
					t.Fatalf("workflows started %+v, want one %s named %s", starts, w.workflow, wantExec)
				}
				if !strings.HasSuffix(wantExec, fmt.Sprintf("-g%d-%s", wantGen, w.workflow)) || !strings.HasPrefix(wantExec, name) {
					t.Fatalf("execution name %q", wantExec)
				}
				if after.Workflow == nil || after.Workflow.ExecutionName != wantExec || after.Workflow.Generation != wantGen ||
					after.Workflow.Kind != w.workflow || after.Workflow.ExecutionArn == "" || after.Workflow.Status != domain.WorkflowPending ||
					after.RefreshVersion != before.RefreshVersion+1 {
					// Issue 15: recorded PENDING in the action's own write, no
					// second write (RUNNING is the workflow's first step's).
					t.Fatalf("recorded workflow %+v, want %s", after.Workflow, wantExec)
				}
			}
			stops := e.stopsOf(name)
			if w.supersedes == "" {
				if len(stops) != 0 {
					t.Fatalf("executions stopped: %+v", stops)
				}
			} else if len(stops) != 1 || stops[0].Ref.Kind != w.supersedes || stops[0].Ref.ExecutionName != before.Workflow.ExecutionName {
				t.Fatalf("executions stopped %+v, want the %s execution %s", stops, w.supersedes, before.Workflow.ExecutionName)
			}
		})
	}
}

// TestStopStorageDisabled: a graceful stop that would suspend a pipeline
// without storage is 501 FeatureNotAvailable and changes nothing; a forced
// stop goes through.
func TestStopStorageDisabled(t *testing.T) {
	e := newEnv(t)
	e.create("nostore", `{"storage":false}`)
	for _, s := range states["Running/Running"] {
		s(e, "nostore")
	}
	before := e.snapshot()
	r := e.do(http.MethodPost, "/v0/pipelines/nostore/stop", nil)
	wantError(t, r, 501, domain.CodeFeatureNotAvailable, map[string]any{"feature": "stop?force=false",
		"reason": "runtime_config disables storage, so no checkpoint can be written; stop with force=true"})
	if e.snapshot() != before {
		t.Fatal("the table changed")
	}
	if n := len(e.startsOf("nostore")); n != 0 {
		t.Fatalf("%d workflows started", n)
	}
	r = e.do(http.MethodPost, "/v0/pipelines/nostore/stop?force=true", nil)
	if r.status != 202 || len(e.startsOf("nostore")) != 1 {
		t.Fatalf("forced stop: %d %s", r.status, r.body)
	}
}

func TestStopUnknownPipeline(t *testing.T) {
	e := newEnv(t)
	r := e.do(http.MethodPost, "/v0/pipelines/nope/stop?force=true", nil)
	wantDomainError(t, r, domain.UnknownPipelineName("nope"))
}

// TestStopIdempotentConcurrent: the same stop sent twice at once starts ONE
// workflow execution and both callers get 202.
func TestStopIdempotentConcurrent(t *testing.T) {
	e := newEnv(t)
	for i := range 3 {
		name := fmt.Sprintf("twice-%d", i)
		before := e.pipelineIn(name, "Running/Running", "")
		const callers = 4
		var wg sync.WaitGroup
		results := make([]response, callers)
		for c := range callers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				results[c] = e.do(http.MethodPost, "/v0/pipelines/"+name+"/stop?force=false", nil)
			}()
		}
		wg.Wait()
		for _, r := range results {
			if r.status != 202 {
				t.Fatalf("a caller got %d: %s", r.status, r.body)
			}
		}
		starts := e.startsOf(name)
		wantExec := execName(before, before.Generation+1, domain.WorkflowSuspend)
		if len(starts) != 1 || starts[0].ExecutionName != wantExec {
			t.Fatalf("executions %+v, want exactly %s", starts, wantExec)
		}
		after := e.get(name)
		if after.Generation != before.Generation+1 {
			t.Fatalf("generation %d → %d: want exactly one accepted write", before.Generation, after.Generation)
		}
		if after.Workflow == nil || after.Workflow.ExecutionName != wantExec {
			t.Fatalf("recorded workflow %+v", after.Workflow)
		}
	}
}

// TestStopStartExecutionFails: a StartExecution failure after the desired
// state was written still answers 202 (logged at ERROR); the retried stop is
// an accepted repeat that starts the pending workflow.
func TestStopStartExecutionFails(t *testing.T) {
	e := newEnv(t)
	before := e.pipelineIn("flaky", "Running/Running", "")
	e.rec.FailStarts(1, fmt.Errorf("boom: %w", workflow.ErrUnavailable))
	r := e.do(http.MethodPost, "/v0/pipelines/flaky/stop", nil)
	if r.status != 202 {
		t.Fatalf("status %d: %s", r.status, r.body)
	}
	mid := e.get("flaky")
	if mid.Generation != before.Generation+1 || mid.RuntimeDesiredStatus == nil || *mid.RuntimeDesiredStatus != domain.RuntimeDesiredSuspended {
		t.Fatalf("desired state not written: %+v", mid)
	}
	// The action's write named the workflow (PENDING) before
	// StartExecution failed: the record says so, nothing more.
	if len(e.startsOf("flaky")) != 0 || mid.Workflow.Generation != mid.Generation || mid.Workflow.Status != domain.WorkflowPending ||
		mid.RefreshVersion != before.RefreshVersion+1 {
		t.Fatalf("after the failed start: workflow %+v, refresh version %d → %d", mid.Workflow, before.RefreshVersion, mid.RefreshVersion)
	}
	if !strings.Contains(e.logs.String(), `"level":"ERROR","msg":"StartExecution failed`) {
		t.Fatalf("the failure was not logged at ERROR:\n%s", e.logs.String())
	}

	r = e.do(http.MethodPost, "/v0/pipelines/flaky/stop", nil)
	if r.status != 202 || r.str(t) != "Pipeline 'flaky' is already being stopped (suspending)." {
		t.Fatalf("retry: %d %s", r.status, r.body)
	}
	wantExec := execName(mid, mid.Generation, domain.WorkflowSuspend)
	starts := e.startsOf("flaky")
	if len(starts) != 1 || starts[0].ExecutionName != wantExec {
		t.Fatalf("retry started %+v, want %s", starts, wantExec)
	}
	after := e.get("flaky")
	if after.Generation != mid.Generation || after.Workflow == nil || after.Workflow.ExecutionName != wantExec {
		t.Fatalf("after the retry: generation %d, workflow %+v", after.Generation, after.Workflow)
	}
	if after.RefreshVersion != mid.RefreshVersion || after.Workflow.Status != domain.WorkflowPending {
		t.Fatalf("the retry wrote the record: %+v", after.Workflow)
	}
	// A third call, while the record still says PENDING (no step has run
	// here), asks for the same execution again: Step Functions starts a name
	// once, so nothing new starts, and nothing is written.
	r = e.do(http.MethodPost, "/v0/pipelines/flaky/stop", nil)
	if r.status != 202 || len(e.rec.Calls()) != 3 || len(e.rec.Executions()) != 1 || e.get("flaky").RefreshVersion != mid.RefreshVersion {
		t.Fatalf("third call: %d, %d start calls, %d executions", r.status, len(e.rec.Calls()), len(e.rec.Executions()))
	}
	// Once the workflow's first step has recorded RUNNING, a repeat starts nothing.
	if _, err := e.store.SetWorkflow(e.ctx, "flaky", domain.WorkflowRef{Kind: after.Workflow.Kind, Generation: after.Generation,
		ExecutionName: wantExec, ExecutionArn: after.Workflow.ExecutionArn, StartedAt: after.Workflow.StartedAt, Status: domain.WorkflowRunning}); err != nil {
		t.Fatal(err)
	}
	r = e.do(http.MethodPost, "/v0/pipelines/flaky/stop", nil)
	if r.status != 202 || len(e.rec.Calls()) != 3 {
		t.Fatalf("fourth call: %d, %d start calls", r.status, len(e.rec.Calls()))
	}
}
