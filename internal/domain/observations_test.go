package domain

import (
	"errors"
	"testing"
)

// TestDeploymentFailedIsFencedByDeployment: a vanished compute is recorded
// (Stopping, desired Stopped, deployment_error) only on the deployment that
// was observed while it is Provisioned; in every other case, in particular a
// graceful stop that has already reached Stopping (its compute going away is
// the point), it changes nothing.
func TestDeploymentFailedIsFencedByDeployment(t *testing.T) {
	cause := &ErrorBody{ErrorCode: "ComputeVanished", Message: "gone", Details: map[string]any{}}
	suspending := rec(ResourcesProvisioned, ResourcesDesiredProvisioned, RuntimeSuspending, RuntimeDesiredSuspended)
	suspended := rec(ResourcesStopping, ResourcesDesiredStopped, RuntimeSuspended, RuntimeDesiredSuspended)
	forced := rec(ResourcesStopping, ResourcesDesiredStopped, RuntimeRunning, RuntimeDesiredRunning)
	provisioning := rec(ResourcesProvisioning, ResourcesDesiredProvisioned, "", RuntimeDesiredRunning)
	stopped := rec(ResourcesStopped, ResourcesDesiredStopped, "", "")
	for _, c := range []struct {
		name       string
		p          Pipeline
		deployment string
		applies    bool
	}{
		{"running", rec(ResourcesProvisioned, ResourcesDesiredProvisioned, RuntimeRunning, RuntimeDesiredRunning), "dep-1", true},
		{"paused", rec(ResourcesProvisioned, ResourcesDesiredProvisioned, RuntimePaused, RuntimeDesiredPaused), "dep-1", true},
		{"unavailable", rec(ResourcesProvisioned, ResourcesDesiredProvisioned, RuntimeUnavailable, RuntimeDesiredRunning), "dep-1", true},
		{"suspending", suspending, "dep-1", true},
		{"another deployment", rec(ResourcesProvisioned, ResourcesDesiredProvisioned, RuntimeRunning, RuntimeDesiredRunning), "dep-0", false},
		{"no deployment id given", suspending, "", false},
		{"suspended and stopping (graceful stop deprovisioning)", suspended, "dep-1", false},
		{"stopping (forced)", forced, "dep-1", false},
		{"provisioning", provisioning, "dep-1", false},
		{"stopped", stopped, "dep-1", false},
	} {
		t.Run(c.name, func(t *testing.T) {
			next, err := DeploymentFailed(c.deployment, cause)(c.p, t0)
			if !c.applies {
				var u *UnexpectedStatusError
				if !errors.As(err, &u) {
					t.Fatalf("got %+v, %v; want an UnexpectedStatusError", next.DeploymentStatus(), err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if next.ResourcesStatus != ResourcesStopping || next.ResourcesDesiredStatus != ResourcesDesiredStopped ||
				next.DeploymentError == nil || next.DeploymentError.ErrorCode != "ComputeVanished" || next.Generation != c.p.Generation {
				t.Fatalf("got %s/%s error %+v generation %d", next.ResourcesStatus, next.ResourcesDesiredStatus, next.DeploymentError, next.Generation)
			}
		})
	}
}

// TestObserveRuntimeOfIsFencedByDeployment: a runtime report is recorded only
// on the deployment whose runtime reported it.
func TestObserveRuntimeOfIsFencedByDeployment(t *testing.T) {
	running := rec(ResourcesProvisioned, ResourcesDesiredProvisioned, RuntimeRunning, RuntimeDesiredRunning)
	for _, c := range []struct {
		name       string
		p          Pipeline
		deployment string
		want       RuntimeStatus // "": an UnexpectedStatusError
	}{
		{"same deployment", running, "dep-1", RuntimePaused},
		{"another deployment", running, "dep-0", ""},
		{"no deployment id given", running, "", ""},
		{"same deployment, suspending kept", rec(ResourcesProvisioned, ResourcesDesiredProvisioned, RuntimeSuspending, RuntimeDesiredSuspended), "dep-1", RuntimeSuspending},
		{"stopping", rec(ResourcesStopping, ResourcesDesiredStopped, RuntimeRunning, RuntimeDesiredRunning), "dep-1", ""},
	} {
		t.Run(c.name, func(t *testing.T) {
			next, err := ObserveRuntimeOf(c.deployment, RuntimePaused, nil)(c.p, t0)
			if c.want == "" {
				var u *UnexpectedStatusError
				if !errors.As(err, &u) {
					t.Fatalf("got %s, %v; want an UnexpectedStatusError", next.DeploymentStatus(), err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if *next.RuntimeStatus != c.want {
				t.Fatalf("runtime %s, want %s", *next.RuntimeStatus, c.want)
			}
		})
	}
}
