package domain

import (
	"encoding/json"
	"errors"
	"math/rand/v2"
	"testing"
	"time"
)

type step struct {
	name string
	user bool
	run  func(p Pipeline, now time.Time) (Outcome, error)
}

func userStep(name string, f func(Pipeline, time.Time) (Outcome, error)) step {
	return step{name: name, user: true, run: f}
}

func workflowStep(name string, tr Transition) step {
	return step{name: name, run: func(p Pipeline, now time.Time) (Outcome, error) {
		next, err := tr(p, now)
		return Outcome{Pipeline: next, Write: err == nil && next.RefreshVersion != p.RefreshVersion}, err
	}}
}

func randomSteps(r *rand.Rand) []step {
	runtimeStatuses := []RuntimeStatus{RuntimeInitializing, RuntimeRunning, RuntimePaused, RuntimeUnavailable}
	observed := runtimeStatuses[r.IntN(len(runtimeStatuses))]
	cause := &ErrorBody{Message: "fault", ErrorCode: "RuntimeError", Details: map[string]any{}}
	return []step{
		userStep("stop", func(p Pipeline, now time.Time) (Outcome, error) { return Stop(p, false, now) }),
		userStep("stop?force", func(p Pipeline, now time.Time) (Outcome, error) { return Stop(p, true, now) }),
		userStep("start", func(p Pipeline, now time.Time) (Outcome, error) {
			return Start(p, StartRequest{Initial: InitialRunning, DismissError: r.IntN(2) == 0}, now)
		}),
		userStep("start paused", func(p Pipeline, now time.Time) (Outcome, error) {
			return Start(p, StartRequest{Initial: InitialPaused, DismissError: true}, now)
		}),
		userStep("pause", Pause),
		userStep("resume", Resume),
		userStep("clear", Clear),
		userStep("dismiss_error", DismissError),
		workflowStep("MarkProvisioning", MarkProvisioning("dep")),
		workflowStep("MarkProvisioned", MarkProvisioned("http://127.0.0.1:1", []RuntimeStatus{RuntimeInitializing, RuntimeRunning, RuntimePaused}[r.IntN(3)])),
		workflowStep("ObserveRuntime", ObserveRuntime(observed, json.RawMessage(`{"checkpoints":[]}`))),
		workflowStep("MarkSuspending", MarkSuspending()),
		workflowStep("MarkSuspended", MarkSuspended(json.RawMessage(`{"checkpoints":[{"uuid":"c"}]}`))),
		workflowStep("MarkStopping", MarkStopping()),
		workflowStep("MarkFailed", MarkFailed(cause)),
		workflowStep("MarkStopped", MarkStopped()),
		workflowStep("MarkStorageCleared", MarkStorageCleared()),
	}
}

// TestPropertyRandomLifecycles applies random sequences of user actions and
// workflow transitions and checks the invariants after every step.
func TestPropertyRandomLifecycles(t *testing.T) {
	const runs, length = 400, 120
	for seed := uint64(0); seed < runs; seed++ {
		r := rand.New(rand.NewPCG(seed, 99))
		p, err := Create(Definition{Name: "prop"}, "id", t0)
		if err != nil {
			t.Fatal(err)
		}
		now := t0
		for i := 0; i < length; i++ {
			now = now.Add(time.Second)
			checkStopInProgressRules(t, p, now)
			steps := randomSteps(r)
			s := steps[r.IntN(len(steps))]
			out, err := s.run(p, now)
			if err != nil {
				var de *Error
				var ue *UnexpectedStatusError
				switch {
				case errors.As(err, &de), errors.As(err, &ue):
					continue // rejected: nothing changes
				default:
					t.Fatalf("seed %d step %d %s on %s/%s: unexpected error %v", seed, i, s.name, p.DeploymentStatus(), p.DeploymentDesiredStatus(), err)
				}
			}
			next := out.Pipeline
			if !out.Write {
				if next.RefreshVersion != p.RefreshVersion {
					t.Fatalf("seed %d step %d %s: unchanged outcome changed the record", seed, i, s.name)
				}
				continue
			}
			if err := ValidateTransition(p, next); err != nil {
				t.Fatalf("seed %d step %d %s accepted an illegal transition: %v", seed, i, s.name, err)
			}
			wantGen := p.Generation
			if s.user && (intentChanged(p, next) || out.Workflow != "") {
				wantGen++
			}
			if next.Generation != wantGen {
				t.Fatalf("seed %d step %d %s: generation %d → %d, want %d", seed, i, s.name, p.Generation, next.Generation, wantGen)
			}
			if !s.user && desiredChanged(p, next) && next.ResourcesStatus != ResourcesStopping && next.ResourcesStatus != ResourcesStopped {
				t.Fatalf("seed %d step %d %s: a workflow changed a desired status outside of stopping", seed, i, s.name)
			}
			if (next.DeploymentStatus() != p.DeploymentStatus()) != !next.DeploymentStatusSince.Equal(p.DeploymentStatusSince) {
				t.Fatalf("seed %d step %d %s: deployment_status_since must change exactly when the status changes", seed, i, s.name)
			}
			checkCombinedView(t, next)
			p = next
		}
	}
}

// checkStopInProgressRules: while desired is Stopped and status is not
// Stopped, start and graceful stop are rejected and a forced stop is accepted.
func checkStopInProgressRules(t *testing.T, p Pipeline, now time.Time) {
	t.Helper()
	if p.ResourcesDesiredStatus != ResourcesDesiredStopped || p.ResourcesStatus == ResourcesStopped {
		return
	}
	if _, err := Start(p, StartRequest{Initial: InitialRunning, DismissError: true}, now); codeOf(err) != CodeIllegalPipelineAction {
		t.Fatalf("start during a stop: %v", err)
	}
	if _, err := Stop(p, false, now); codeOf(err) != CodeIllegalPipelineAction {
		t.Fatalf("graceful stop during a stop: %v", err)
	}
	if out, err := Stop(p, true, now); err != nil || out.Write {
		t.Fatalf("forced stop during a stop must be an accepted no-op: %v", err)
	}
}

func checkCombinedView(t *testing.T, p Pipeline) {
	t.Helper()
	var want CombinedStatus
	switch {
	case p.ResourcesStatus != ResourcesProvisioned:
		want = CombinedStatus(p.ResourcesStatus)
	case p.RuntimeStatus == nil:
		want = CombinedUnavailable
	default:
		want = CombinedStatus(*p.RuntimeStatus)
	}
	if p.DeploymentStatus() != want {
		t.Fatalf("deployment_status %s, want %s", p.DeploymentStatus(), want)
	}
	wantD := CombinedDesiredStopped
	if p.ResourcesDesiredStatus == ResourcesDesiredProvisioned {
		wantD = CombinedDesiredStatus(*p.RuntimeDesiredStatus)
	}
	if p.DeploymentDesiredStatus() != wantD {
		t.Fatalf("deployment_desired_status %s, want %s", p.DeploymentDesiredStatus(), wantD)
	}
}
