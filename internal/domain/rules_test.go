package domain

import (
	"errors"
	"strings"
	"testing"
)

func codeOf(err error) ErrorCode {
	var de *Error
	if errors.As(err, &de) {
		return de.Code
	}
	return ""
}

// TestOtherLifecycleRules has one row per rule of SPEC §4 besides start.
func TestOtherLifecycleRules(t *testing.T) {
	const (
		RS = ResourcesDesiredStopped
		RP = ResourcesDesiredProvisioned
	)
	stopped := rec(ResourcesStopped, RS, "", "")
	running := rec(ResourcesProvisioned, RP, RuntimeRunning, RuntimeDesiredRunning)
	paused := rec(ResourcesProvisioned, RP, RuntimePaused, RuntimeDesiredPaused)
	suspending := rec(ResourcesProvisioned, RP, RuntimeSuspending, RuntimeDesiredSuspended)
	stopping := rec(ResourcesStopping, RS, RuntimeRunning, RuntimeDesiredRunning)
	provisioning := rec(ResourcesProvisioning, RP, "", RuntimeDesiredRunning)
	startPending := rec(ResourcesStopped, RP, "", RuntimeDesiredRunning)
	def := Definition{Name: "ignored", Description: "new", RuntimeConfig: []byte(`{"storage":true}`)}

	type action func(Pipeline) (Outcome, error)
	pause := func(p Pipeline) (Outcome, error) { return Pause(p, t0) }
	resume := func(p Pipeline) (Outcome, error) { return Resume(p, t0) }
	checkpoint := func(p Pipeline) (Outcome, error) { return Outcome{Pipeline: p}, CheckCheckpoint(p) }
	readFwd := func(p Pipeline) (Outcome, error) { return Outcome{Pipeline: p}, CheckReadInteraction(p) }
	clear := func(p Pipeline) (Outcome, error) { return Clear(p, t0) }
	dismiss := func(p Pipeline) (Outcome, error) { return DismissError(p, t0) }
	del := func(p Pipeline) (Outcome, error) { return Outcome{Pipeline: p}, CheckDelete(p) }
	replace := func(p Pipeline) (Outcome, error) { return Replace(p, def, t0) }

	rows := []struct {
		rule     string
		p        Pipeline
		act      action
		code     ErrorCode // "" = accepted
		write    bool
		workflow WorkflowKind
	}{
		{"PUT edits while Stopped/Stopped", stopped, replace, "", true, ""},
		{"PUT while running", running, replace, CodeUpdateRestrictedToStopped, false, ""},
		{"PUT while start pending", startPending, replace, CodeUpdateRestrictedToStopped, false, ""},
		{"DELETE while Stopped/Stopped, storage Cleared", stopped, del, "", false, ""},
		{"DELETE while running", running, del, CodeDeleteRestrictedToFullyStopped, false, ""},
		{"DELETE while stopping", stopping, del, CodeDeleteRestrictedToFullyStopped, false, ""},
		{"DELETE with storage InUse", withStorageStatus(stopped, StorageInUse), del, CodeDeleteRestrictedToClearedStorage, false, ""},
		{"pause while running", running, pause, "", true, ""},
		{"pause while paused (repeat)", paused, pause, "", false, ""},
		{"resume while paused", paused, resume, "", true, ""},
		{"pause while Stopped/Stopped starts it paused (Feldera 0.148)", stopped, pause, "", true, WorkflowStart},
		{"pause while start pending", startPending, pause, "", true, ""},
		{"pause while provisioning", provisioning, pause, "", true, ""},
		{"pause while a forced stop of a provisioning pipeline runs", rec(ResourcesProvisioning, RS, "", RuntimeDesiredRunning), pause, CodeIllegalPipelineAction, false, ""},
		{"resume while provisioning", provisioning, resume, CodePipelineInteractionNotDeployed, false, ""},
		{"pause while suspending", suspending, pause, CodeIllegalPipelineAction, false, ""},
		{"resume while stopping", stopping, resume, CodeIllegalPipelineAction, false, ""},
		{"checkpoint while running", running, checkpoint, "", false, ""},
		{"checkpoint not provisioned", stopped, checkpoint, CodePipelineInteractionNotDeployed, false, ""},
		{"checkpoint while stopping", stopping, checkpoint, CodeIllegalPipelineAction, false, ""},
		{"checkpoint while suspending", suspending, checkpoint, CodeIllegalPipelineAction, false, ""},
		{"checkpoint with storage disabled", withStorage(running, false), checkpoint, CodeFeatureNotAvailable, false, ""},
		{"stats while running", running, readFwd, "", false, ""},
		{"stats while suspending", suspending, readFwd, "", false, ""},
		{"stats not provisioned", provisioning, readFwd, CodePipelineInteractionNotDeployed, false, ""},
		{"clear while Stopped/Stopped, InUse", withStorageStatus(stopped, StorageInUse), clear, "", true, WorkflowClear},
		{"clear while Cleared: no-op", stopped, clear, "", false, ""},
		{"clear while Clearing: no-op", withStorageStatus(stopped, StorageClearing), clear, "", false, ""},
		{"clear while running", running, clear, CodeStorageStatusImmutableUnlessStopped, false, ""},
		{"clear while start pending", startPending, clear, CodeStorageStatusImmutableUnlessStopped, false, ""},
		{"dismiss_error while Stopped/Stopped with error", withError(stopped), dismiss, "", true, ""},
		{"dismiss_error without error: no-op", stopped, dismiss, "", false, ""},
		{"dismiss_error without error while running: no-op", running, dismiss, "", false, ""},
		{"dismiss_error without error while suspending: no-op", suspending, dismiss, "", false, ""},
		{"dismiss_error while stopping", withError(stopping), dismiss, CodeDismissErrorRestrictedToFullyStopped, false, ""},
	}
	for _, r := range rows {
		t.Run(r.rule, func(t *testing.T) {
			out, err := r.act(r.p)
			if codeOf(err) != r.code {
				t.Fatalf("got %v, want code %q", err, r.code)
			}
			if r.code != "" {
				var de *Error
				errors.As(err, &de)
				if de.Message == "" || de.Details == nil {
					t.Errorf("error without message or details: %+v", de)
				}
				return
			}
			if out.Write != r.write || out.Workflow != r.workflow {
				t.Errorf("write=%v workflow=%q, want %v %q", out.Write, out.Workflow, r.write, r.workflow)
			}
			if out.Write {
				if err := ValidateTransition(r.p, out.Pipeline); err != nil {
					t.Errorf("outcome fails validation: %v", err)
				}
			}
		})
	}
}

func TestCreate(t *testing.T) {
	p, err := Create(Definition{Name: "my_pipe-1", Description: strings.Repeat("é", MaxDescriptionLength)}, "id", t0)
	if err != nil {
		t.Fatal(err)
	}
	if !p.FullyStopped() || p.StorageStatus != StorageCleared || p.Generation != 0 || p.Version != 1 || string(p.RuntimeConfig) != "{}" {
		t.Errorf("unexpected new record %+v", p)
	}
	if p.DeploymentStatus() != CombinedStopped || p.DeploymentDesiredStatus() != CombinedDesiredStopped {
		t.Error("a new pipeline is Stopped/Stopped")
	}
	bad := []struct {
		def  Definition
		code ErrorCode
	}{
		{Definition{Name: ""}, CodeEmptyName},
		{Definition{Name: strings.Repeat("a", 64)}, CodeTooLongName},
		{Definition{Name: "a/b"}, CodeNameDoesNotMatchPattern},
		{Definition{Name: "ok", Description: strings.Repeat("x", 301)}, CodeInvalidRequestBody},
		{Definition{Name: "ok", RuntimeConfig: []byte(`[1]`)}, CodeInvalidRequestBody},
		{Definition{Name: "ok", RuntimeConfig: []byte(`{"storage":"yes"}`)}, CodeInvalidRequestBody},
		{Definition{Name: "ok", RuntimeConfig: []byte(`{"a":"` + strings.Repeat("x", MaxRuntimeConfigBytes) + `"}`)}, CodeInvalidRequestBody},
	}
	for _, b := range bad {
		if _, err := Create(b.def, "id", t0); codeOf(err) != b.code {
			t.Errorf("%.40q: got %v, want %s", b.def.Name, err, b.code)
		}
	}
}

func TestReplaceKeepsIdentityAndBumpsVersion(t *testing.T) {
	p := rec(ResourcesStopped, ResourcesDesiredStopped, "", "")
	out, err := Replace(p, Definition{Name: "other", Description: "x", RuntimeConfig: []byte(`{ "storage" : false }`)}, t0)
	if err != nil {
		t.Fatal(err)
	}
	n := out.Pipeline
	if n.Name != p.Name || n.ID != p.ID || n.Version != p.Version+1 || n.Generation != p.Generation || string(n.RuntimeConfig) != `{"storage":false}` {
		t.Errorf("unexpected replace result %+v", n)
	}
}

func TestConvergeRuntime(t *testing.T) {
	const RP, RS = ResourcesDesiredProvisioned, ResourcesDesiredStopped
	rows := []struct {
		name     string
		p        Pipeline
		observed RuntimeStatus
		want     RuntimeCall
	}{
		{"desired Paused, running", rec(ResourcesProvisioned, RP, RuntimeRunning, RuntimeDesiredPaused), RuntimeRunning, ForwardPause},
		{"desired Running, paused", rec(ResourcesProvisioned, RP, RuntimePaused, RuntimeDesiredRunning), RuntimePaused, ForwardStart},
		{"as desired", rec(ResourcesProvisioned, RP, RuntimeRunning, RuntimeDesiredRunning), RuntimeRunning, ""},
		{"initializing", rec(ResourcesProvisioned, RP, RuntimeInitializing, RuntimeDesiredPaused), RuntimeInitializing, ""},
		{"suspending", rec(ResourcesProvisioned, RP, RuntimeRunning, RuntimeDesiredSuspended), RuntimeRunning, ""},
		{"being stopped", rec(ResourcesProvisioned, RS, RuntimePaused, RuntimeDesiredRunning), RuntimePaused, ""},
	}
	for _, r := range rows {
		if got := ConvergeRuntime(r.p, r.observed); got != r.want {
			t.Errorf("%s: %q, want %q", r.name, got, r.want)
		}
	}
	if ForwardPause.Status() != RuntimePaused || ForwardStart.Status() != RuntimeRunning {
		t.Error("RuntimeCall.Status")
	}
}
