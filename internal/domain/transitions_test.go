package domain

import (
	"encoding/json"
	"errors"
	"testing"
)

// TestResourcesMovesExhaustive checks every pair of resources statuses against SPEC §2.1.
func TestResourcesMovesExhaustive(t *testing.T) {
	legal := map[[2]ResourcesStatus]bool{
		{ResourcesStopped, ResourcesProvisioning}:     true,
		{ResourcesProvisioning, ResourcesProvisioned}: true,
		{ResourcesProvisioned, ResourcesStopping}:     true,
		{ResourcesStopping, ResourcesStopped}:         true,
		{ResourcesProvisioning, ResourcesStopping}:    true,
	}
	for _, from := range AllResourcesStatuses {
		for _, to := range AllResourcesStatuses {
			want := from == to || legal[[2]ResourcesStatus{from, to}]
			if got := ValidResourcesMove(from, to); got != want {
				t.Errorf("%s → %s: got %v, want %v", from, to, got, want)
			}
		}
	}
}

// TestRuntimeMovesExhaustive checks every pair of runtime statuses against SPEC §2.2.
func TestRuntimeMovesExhaustive(t *testing.T) {
	I, R, P, U, S, D := RuntimeInitializing, RuntimeRunning, RuntimePaused, RuntimeUnavailable, RuntimeSuspending, RuntimeSuspended
	legal := map[[2]RuntimeStatus]bool{
		{I, R}: true, {I, P}: true, {R, P}: true, {P, R}: true,
		{I, U}: true, {R, U}: true, {P, U}: true,
		{U, I}: true, {U, R}: true, {U, P}: true,
		{I, S}: true, {R, S}: true, {P, S}: true, {U, S}: true,
		{S, D}: true,
	}
	for _, from := range AllRuntimeStatuses {
		for _, to := range AllRuntimeStatuses {
			want := from == to || legal[[2]RuntimeStatus{from, to}]
			if got := ValidRuntimeMove(from, to); got != want {
				t.Errorf("%s → %s: got %v, want %v", from, to, got, want)
			}
		}
	}
}

func TestStorageMovesExhaustive(t *testing.T) {
	legal := map[[2]StorageStatus]bool{{StorageCleared, StorageInUse}: true, {StorageInUse, StorageClearing}: true, {StorageClearing, StorageCleared}: true}
	for _, from := range AllStorageStatuses {
		for _, to := range AllStorageStatuses {
			want := from == to || legal[[2]StorageStatus{from, to}]
			if got := ValidStorageMove(from, to); got != want {
				t.Errorf("%s → %s: got %v, want %v", from, to, got, want)
			}
		}
	}
}

// TestGracefulStopAsSeenByAPoller walks SPEC §2.3's example sequence through
// the workflow transitions and checks the combined view at each step.
func TestGracefulStopAsSeenByAPoller(t *testing.T) {
	p := rec(ResourcesProvisioned, ResourcesDesiredProvisioned, RuntimeRunning, RuntimeDesiredRunning)
	type pair struct {
		s CombinedStatus
		d CombinedDesiredStatus
	}
	seen := []pair{{p.DeploymentStatus(), p.DeploymentDesiredStatus()}}
	out, err := Stop(p, false, t0)
	if err != nil {
		t.Fatal(err)
	}
	p = out.Pipeline
	p.Workflow = &WorkflowRef{Kind: WorkflowSuspend, Generation: p.Generation, ExecutionName: "p1-g8-suspend", Status: "RUNNING"}
	seen = append(seen, pair{p.DeploymentStatus(), p.DeploymentDesiredStatus()})
	for _, tr := range []Transition{MarkSuspending(), MarkSuspended(json.RawMessage(`{"checkpoints":[]}`)), MarkStopped()} {
		next, err := tr(p, t0)
		if err != nil {
			t.Fatal(err)
		}
		p = next
		seen = append(seen, pair{p.DeploymentStatus(), p.DeploymentDesiredStatus()})
	}
	want := []pair{{"Running", "Running"}, {"Running", "Suspended"}, {"Suspending", "Suspended"}, {"Stopping", "Stopped"}, {"Stopped", "Stopped"}}
	if len(seen) != len(want) {
		t.Fatalf("seen %v", seen)
	}
	for i := range want {
		if seen[i] != want[i] {
			t.Errorf("step %d: seen %v, want %v", i, seen[i], want[i])
		}
	}
	if p.Workflow == nil || p.Workflow.Status != "SUCCEEDED" {
		t.Errorf("the last status write of the generation's workflow marks it SUCCEEDED: %+v", p.Workflow)
	}
	if p.StorageStatus != StorageInUse || string(p.StorageStatusDetails) != `{"checkpoints":[]}` {
		t.Errorf("a stop never touches storage and records the checkpoint list: %s %s", p.StorageStatus, p.StorageStatusDetails)
	}
}

func TestForcedStopAsSeenByAPoller(t *testing.T) {
	p := rec(ResourcesProvisioned, ResourcesDesiredProvisioned, RuntimeRunning, RuntimeDesiredRunning)
	out, err := Stop(p, true, t0)
	if err != nil {
		t.Fatal(err)
	}
	p = out.Pipeline
	if p.DeploymentStatus() != CombinedRunning || p.DeploymentDesiredStatus() != CombinedDesiredStopped {
		t.Errorf("after forced stop request: %s/%s", p.DeploymentStatus(), p.DeploymentDesiredStatus())
	}
	for _, tr := range []Transition{MarkStopping(), MarkStopped()} {
		if p, err = tr(p, t0); err != nil {
			t.Fatal(err)
		}
	}
	if p.DeploymentStatus() != CombinedStopped || p.DeploymentError != nil {
		t.Errorf("end: %s, error %v", p.DeploymentStatus(), p.DeploymentError)
	}
}

func TestWorkflowTransitionsRejectUnexpectedStatus(t *testing.T) {
	stopped := rec(ResourcesStopped, ResourcesDesiredStopped, "", "")
	running := rec(ResourcesProvisioned, ResourcesDesiredProvisioned, RuntimeRunning, RuntimeDesiredRunning)
	cases := []struct {
		name string
		tr   Transition
		p    Pipeline
	}{
		{"MarkProvisioning while desired Stopped", MarkProvisioning("d"), stopped},
		{"MarkProvisioned while Stopped", MarkProvisioned("http://x", RuntimeRunning), stopped},
		{"MarkSuspending without a suspend request", MarkSuspending(), running},
		{"MarkSuspended while Running", MarkSuspended(nil), running},
		{"MarkStopping without cause or stop request", MarkStopping(), running},
		{"MarkStopped while Provisioned", MarkStopped(), running},
		{"MarkStorageCleared while InUse", MarkStorageCleared(), withStorageStatus(stopped, StorageInUse)},
		{"ObserveRuntime while Stopped", ObserveRuntime(RuntimeRunning, nil), stopped},
	}
	for _, c := range cases {
		_, err := c.tr(c.p, t0)
		var ue *UnexpectedStatusError
		if !errors.As(err, &ue) {
			t.Errorf("%s: got %v, want UnexpectedStatusError", c.name, err)
		}
	}
}

func TestWorkflowTransitionsAreIdempotent(t *testing.T) {
	start := rec(ResourcesStopped, ResourcesDesiredProvisioned, "", RuntimeDesiredRunning)
	steps := []Transition{MarkProvisioning("dep-2"), MarkProvisioned("http://127.0.0.1:1", RuntimeRunning)}
	p := start
	for _, tr := range steps {
		next, err := tr(p, t0)
		if err != nil {
			t.Fatal(err)
		}
		again, err := tr(next, t0)
		if err != nil || again.RefreshVersion != next.RefreshVersion {
			t.Fatalf("repeat changed the record: %v", err)
		}
		p = next
	}
}

func TestObserveRuntimeKeepsSuspending(t *testing.T) {
	p := rec(ResourcesProvisioned, ResourcesDesiredProvisioned, RuntimeSuspending, RuntimeDesiredSuspended)
	next, err := ObserveRuntime(RuntimeUnavailable, nil)(p, t0)
	if err != nil || *next.RuntimeStatus != RuntimeSuspending {
		t.Errorf("Suspending must survive a brief unavailability: %v %v", err, next.RuntimeStatus)
	}
	r := rec(ResourcesProvisioned, ResourcesDesiredProvisioned, RuntimeRunning, RuntimeDesiredRunning)
	next, err = ObserveRuntime(RuntimeUnavailable, nil)(r, t0)
	if err != nil || *next.RuntimeStatus != RuntimeUnavailable || next.DeploymentStatus() != CombinedUnavailable {
		t.Errorf("a 503 marks it Unavailable: %v %v", err, next.RuntimeStatus)
	}
}

func TestFailedSuspendStopsWithError(t *testing.T) {
	p := rec(ResourcesProvisioned, ResourcesDesiredProvisioned, RuntimeSuspending, RuntimeDesiredSuspended)
	cause := &ErrorBody{Message: "disk full", ErrorCode: "SuspendError", Details: map[string]any{}}
	p, err := MarkFailed(cause)(p, t0)
	if err != nil {
		t.Fatal(err)
	}
	if p.ResourcesDesiredStatus != ResourcesDesiredStopped || p.DeploymentError == nil || p.DeploymentError.Message != "disk full" {
		t.Errorf("forced stop with error: %+v", p)
	}
	if p, err = MarkStopped()(p, t0); err != nil || p.DeploymentError == nil {
		t.Errorf("the error is kept until dismissed: %v", err)
	}
}

func TestValidateTransitionRejects(t *testing.T) {
	running := rec(ResourcesProvisioned, ResourcesDesiredProvisioned, RuntimeRunning, RuntimeDesiredRunning)
	cases := map[string]func(p *Pipeline){
		"resources skip":              func(p *Pipeline) { p.ResourcesStatus = ResourcesStopped; p.RuntimeStatus = nil },
		"Stopping with desired Prov.": func(p *Pipeline) { p.ResourcesStatus = ResourcesStopping },
		"runtime Running → Suspended": func(p *Pipeline) { p.RuntimeStatus = ptr(RuntimeSuspended) },
		"desired change, same gen":    func(p *Pipeline) { p.RuntimeDesiredStatus = ptr(RuntimeDesiredSuspended) },
		"user action moves status":    func(p *Pipeline) { p.Generation++; p.RuntimeStatus = ptr(RuntimePaused) },
		"generation jumps":            func(p *Pipeline) { p.Generation += 2 },
		"generation goes back":        func(p *Pipeline) { p.Generation-- },
		"storage Clearing while up":   func(p *Pipeline) { p.StorageStatus = StorageClearing },
		"name changes":                func(p *Pipeline) { p.Name = "x" },
	}
	for name, mutate := range cases {
		next := running.clone()
		mutate(&next)
		var ie *IllegalTransitionError
		if err := ValidateTransition(running, next); !errors.As(err, &ie) {
			t.Errorf("%s: got %v, want IllegalTransitionError", name, err)
		}
	}
}
