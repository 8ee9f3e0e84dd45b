package domain

import (
	"encoding/json"
	"fmt"
	"slices"
	"time"
)

// resourcesEdges are the legal moves of the resources layer (SPEC §2.1).
var resourcesEdges = map[ResourcesStatus][]ResourcesStatus{
	ResourcesStopped:      {ResourcesProvisioning},
	ResourcesProvisioning: {ResourcesProvisioned, ResourcesStopping},
	ResourcesProvisioned:  {ResourcesStopping},
	ResourcesStopping:     {ResourcesStopped},
}

// runtimeEdges are the legal moves of the runtime layer (SPEC §2.2). Suspending
// only ends in Suspended (or in the pipeline being stopped); a Suspended runtime
// is never resumed.
var runtimeEdges = map[RuntimeStatus][]RuntimeStatus{
	RuntimeInitializing: {RuntimeRunning, RuntimePaused, RuntimeUnavailable, RuntimeSuspending},
	RuntimeRunning:      {RuntimePaused, RuntimeUnavailable, RuntimeSuspending},
	RuntimePaused:       {RuntimeRunning, RuntimeUnavailable, RuntimeSuspending},
	RuntimeUnavailable:  {RuntimeInitializing, RuntimeRunning, RuntimePaused, RuntimeSuspending},
	RuntimeSuspending:   {RuntimeSuspended},
	RuntimeSuspended:    {},
}

// storageEdges are the legal moves of the storage status.
var storageEdges = map[StorageStatus][]StorageStatus{
	StorageCleared:  {StorageInUse},
	StorageInUse:    {StorageClearing},
	StorageClearing: {StorageCleared},
}

// ValidResourcesMove reports whether the resources layer may go from → to.
func ValidResourcesMove(from, to ResourcesStatus) bool {
	return from == to || slices.Contains(resourcesEdges[from], to)
}

// ValidRuntimeMove reports whether the runtime layer may go from → to, within
// one provisioning (nil, "no runtime", is handled by ValidateTransition).
func ValidRuntimeMove(from, to RuntimeStatus) bool {
	return from == to || slices.Contains(runtimeEdges[from], to)
}

// ValidStorageMove reports whether the storage status may go from → to.
func ValidStorageMove(from, to StorageStatus) bool {
	return from == to || slices.Contains(storageEdges[from], to)
}

// IllegalTransitionError is a write that the status model forbids. It is a
// programming error in a workflow or an action, never the user's.
type IllegalTransitionError struct {
	Reason string
}

func (e *IllegalTransitionError) Error() string { return "illegal transition: " + e.Reason }

func illegal(format string, args ...any) error {
	return &IllegalTransitionError{Reason: fmt.Sprintf(format, args...)}
}

// ValidateTransition is the one check every write of a pipeline record goes
// through (user actions and workflow steps alike): both status layers and the
// storage status move only along their edges, the invariants of SPEC §2 hold
// afterwards, and the generation rule of DESIGN.md holds.
func ValidateTransition(before, after Pipeline) error {
	if before.Name != after.Name || before.ID != after.ID {
		return illegal("name or id changed")
	}
	if !ValidResourcesMove(before.ResourcesStatus, after.ResourcesStatus) {
		return illegal("resources status %s → %s", before.ResourcesStatus, after.ResourcesStatus)
	}
	if !ValidStorageMove(before.StorageStatus, after.StorageStatus) {
		return illegal("storage status %s → %s", before.StorageStatus, after.StorageStatus)
	}
	if err := validateRuntimeMove(before, after); err != nil {
		return err
	}
	if err := validateInvariants(after); err != nil {
		return err
	}
	return validateGeneration(before, after)
}

func validateRuntimeMove(before, after Pipeline) error {
	from, to := before.RuntimeStatus, after.RuntimeStatus
	switch {
	case equalPtr(from, to):
		return nil
	case from == nil:
		// A runtime appears only when the resources become Provisioned.
		if before.ResourcesStatus != ResourcesProvisioning || after.ResourcesStatus != ResourcesProvisioned {
			return illegal("runtime status appears (%s) outside of Provisioning → Provisioned", *to)
		}
		if *to == RuntimeSuspending || *to == RuntimeSuspended {
			return illegal("a new runtime cannot start %s", *to)
		}
		return nil
	case to == nil:
		if after.ResourcesStatus != ResourcesStopped {
			return illegal("runtime status cleared while resources are %s", after.ResourcesStatus)
		}
		return nil
	}
	if before.ResourcesStatus != ResourcesProvisioned {
		return illegal("runtime status changes (%s → %s) while resources are %s", *from, *to, before.ResourcesStatus)
	}
	if !ValidRuntimeMove(*from, *to) {
		return illegal("runtime status %s → %s", *from, *to)
	}
	return nil
}

func validateInvariants(p Pipeline) error {
	if p.ResourcesStatus == ResourcesStopping && p.ResourcesDesiredStatus != ResourcesDesiredStopped {
		return illegal("Stopping with desired %s", p.ResourcesDesiredStatus)
	}
	if p.RuntimeStatus != nil && p.ResourcesStatus != ResourcesProvisioned && p.ResourcesStatus != ResourcesStopping {
		return illegal("runtime status %s while resources are %s", *p.RuntimeStatus, p.ResourcesStatus)
	}
	if p.StorageStatus == StorageClearing && !p.FullyStopped() {
		return illegal("storage Clearing while not fully stopped")
	}
	if p.ResourcesDesiredStatus == ResourcesDesiredProvisioned && p.RuntimeDesiredStatus == nil {
		return illegal("desired Provisioned without a runtime desired status")
	}
	return nil
}

// validateGeneration enforces the generation rule: a user action that changes
// a desired status increments the generation by one and changes no current
// status (only the workflows move those), except that clear marks storage
// Clearing. A workflow write keeps the generation; the only desired changes it
// may make are the one SPEC §2.1 ties to a move to Stopping (desired Stopped in
// the same write) and clearing the runtime desired status on reaching Stopped.
func validateGeneration(before, after Pipeline) error {
	switch after.Generation {
	case before.Generation:
		if !desiredChanged(before, after) {
			return nil
		}
		if before.ResourcesDesiredStatus != after.ResourcesDesiredStatus {
			enteringStopping := before.ResourcesStatus != ResourcesStopping && after.ResourcesStatus == ResourcesStopping
			if !enteringStopping || after.ResourcesDesiredStatus != ResourcesDesiredStopped {
				return illegal("resources desired status changed without a new generation")
			}
		}
		if !equalPtr(before.RuntimeDesiredStatus, after.RuntimeDesiredStatus) && !runningPausedSwap(before, after) {
			// Only reaching Stopped clears it (a Running↔Paused swap is
			// no workflow's intent: see intentChanged).
			if after.RuntimeDesiredStatus != nil || after.ResourcesStatus != ResourcesStopped {
				return illegal("runtime desired status changed without a new generation")
			}
		}
		return nil
	case before.Generation + 1:
		if before.ResourcesStatus != after.ResourcesStatus || !equalPtr(before.RuntimeStatus, after.RuntimeStatus) {
			return illegal("a user action changed a current status")
		}
		return nil
	}
	return illegal("generation %d → %d", before.Generation, after.Generation)
}

// UnexpectedStatusError: a workflow step found the pipeline in a status its
// transition does not start from. The store reports it as a Conflict carrying
// the current record; the step decides whether that means its work is done.
type UnexpectedStatusError struct {
	Transition string
	Status     CombinedStatus
	Desired    CombinedDesiredStatus
}

func (e *UnexpectedStatusError) Error() string {
	return fmt.Sprintf("%s: unexpected status %s (desired %s)", e.Transition, e.Status, e.Desired)
}

func unexpected(transition string, p Pipeline) error {
	return &UnexpectedStatusError{Transition: transition, Status: p.DeploymentStatus(), Desired: p.DeploymentDesiredStatus()}
}

// Transition is a workflow-side change of a record: a pure function from the
// current record to the next one, or an *UnexpectedStatusError. The store
// applies it conditionally on the generation and refresh version it read.
type Transition func(p Pipeline, now time.Time) (Pipeline, error)

// finish stamps and validates a workflow write.
func finish(prev, next Pipeline, now time.Time) (Pipeline, error) {
	stamp(&prev, &next, now)
	if err := ValidateTransition(prev, next); err != nil {
		return Pipeline{}, err
	}
	return next, nil
}

// MarkProvisioning: Stopped → Provisioning for a new deployment; storage
// becomes InUse (the runtime will write checkpoints to it).
func MarkProvisioning(deploymentID string) Transition {
	return func(p Pipeline, now time.Time) (Pipeline, error) {
		if p.ResourcesStatus == ResourcesProvisioning && p.DeploymentID != nil && *p.DeploymentID == deploymentID {
			return p, nil // a repeated step: already done
		}
		if p.ResourcesStatus != ResourcesStopped || p.ResourcesDesiredStatus != ResourcesDesiredProvisioned {
			return Pipeline{}, unexpected("MarkProvisioning", p)
		}
		next := p.clone()
		next.ResourcesStatus = ResourcesProvisioning
		next.DeploymentID = ptr(deploymentID)
		next.DeploymentLocation = nil
		next.StorageStatus = StorageInUse
		return finish(p, next, now)
	}
}

// MarkProvisioned: Provisioning → Provisioned once the runtime answers at
// location with the observed status.
func MarkProvisioned(location string, observed RuntimeStatus) Transition {
	return func(p Pipeline, now time.Time) (Pipeline, error) {
		if p.ResourcesStatus == ResourcesProvisioned && p.DeploymentLocation != nil && *p.DeploymentLocation == location {
			return p, nil
		}
		if p.ResourcesStatus != ResourcesProvisioning || p.ResourcesDesiredStatus != ResourcesDesiredProvisioned {
			return Pipeline{}, unexpected("MarkProvisioned", p)
		}
		if observed == RuntimeSuspending || observed == RuntimeSuspended {
			return Pipeline{}, illegal("a new runtime reported %s", observed)
		}
		next := p.clone()
		next.ResourcesStatus = ResourcesProvisioned
		next.DeploymentLocation = ptr(location)
		next.RuntimeStatus = ptr(observed)
		workflowDone(&next)
		return finish(p, next, now)
	}
}

// ObserveRuntime records what the runtime reported (or Unavailable when it did
// not answer) on a provisioned pipeline. Suspending is kept while the runtime is
// briefly unreachable, and only the suspend workflow records Suspending and
// Suspended. It returns the record unchanged when nothing is new.
func ObserveRuntime(observed RuntimeStatus, storageDetails json.RawMessage) Transition {
	return func(p Pipeline, now time.Time) (Pipeline, error) {
		if p.ResourcesStatus != ResourcesProvisioned || p.RuntimeStatus == nil {
			return Pipeline{}, unexpected("ObserveRuntime", p)
		}
		cur := *p.RuntimeStatus
		if cur == RuntimeSuspending || cur == RuntimeSuspended || observed == RuntimeSuspending || observed == RuntimeSuspended {
			return p, nil
		}
		if !ValidRuntimeMove(cur, observed) {
			// e.g. Running → Initializing: the model has no such edge; the
			// report is not recorded (the next observation will be).
			observed = cur
		}
		next := p.clone()
		next.RuntimeStatus = ptr(observed)
		if len(storageDetails) > 0 && len(storageDetails) <= MaxStorageDetailsBytes {
			next.StorageStatusDetails = cloneBytes(storageDetails)
		}
		if cur == observed && string(next.StorageStatusDetails) == string(p.StorageStatusDetails) {
			return p, nil
		}
		return finish(p, next, now)
	}
}

// MarkSuspending: the suspend workflow asked the runtime to suspend.
func MarkSuspending() Transition {
	return func(p Pipeline, now time.Time) (Pipeline, error) {
		if p.RuntimeStatus != nil && *p.RuntimeStatus == RuntimeSuspending {
			return p, nil
		}
		if p.ResourcesStatus != ResourcesProvisioned || p.ResourcesDesiredStatus != ResourcesDesiredProvisioned || !p.suspendRequested() || p.RuntimeStatus == nil {
			return Pipeline{}, unexpected("MarkSuspending", p)
		}
		next := p.clone()
		next.RuntimeStatus = ptr(RuntimeSuspending)
		return finish(p, next, now)
	}
}

// MarkSuspended: the runtime checkpointed and stopped. In one write the
// runtime becomes Suspended, the checkpoint list is recorded, and the
// resources move to Stopping with desired Stopped (SPEC §3, step 3).
func MarkSuspended(storageDetails json.RawMessage) Transition {
	return func(p Pipeline, now time.Time) (Pipeline, error) {
		if p.ResourcesStatus == ResourcesStopping && p.RuntimeStatus != nil && *p.RuntimeStatus == RuntimeSuspended {
			return p, nil
		}
		if p.ResourcesStatus != ResourcesProvisioned || p.RuntimeStatus == nil || *p.RuntimeStatus != RuntimeSuspending {
			return Pipeline{}, unexpected("MarkSuspended", p)
		}
		next := p.clone()
		next.RuntimeStatus = ptr(RuntimeSuspended)
		next.ResourcesStatus = ResourcesStopping
		next.ResourcesDesiredStatus = ResourcesDesiredStopped
		if len(storageDetails) > 0 && len(storageDetails) <= MaxStorageDetailsBytes {
			next.StorageStatusDetails = cloneBytes(storageDetails)
		}
		return finish(p, next, now)
	}
}

// MarkStopping: the user's stop: Provisioning or Provisioned → Stopping,
// only when desired Stopped was already written by the action.
func MarkStopping() Transition { return toStopping("MarkStopping", nil) }

// MarkFailed: the system stops the pipeline because it failed (a failed
// suspend, a vanished process, a provisioning timeout): Provisioning or
// Provisioned → Stopping with desired Stopped in the same write and cause
// recorded as deployment_error (also on a pipeline already Stopping
// without one).
func MarkFailed(cause *ErrorBody) Transition {
	if cause == nil {
		return func(p Pipeline, _ time.Time) (Pipeline, error) {
			return Pipeline{}, illegal("MarkFailed without a cause")
		}
	}
	return toStopping("MarkFailed", cause)
}

// toStopping is MarkStopping (cause nil) and MarkFailed.
func toStopping(name string, cause *ErrorBody) Transition {
	return func(p Pipeline, now time.Time) (Pipeline, error) {
		if p.ResourcesStatus == ResourcesStopping {
			if cause == nil || p.DeploymentError != nil {
				return p, nil
			}
			next := p.clone()
			next.DeploymentError = cause
			return finish(p, next, now)
		}
		if p.ResourcesStatus != ResourcesProvisioning && p.ResourcesStatus != ResourcesProvisioned {
			return Pipeline{}, unexpected(name, p)
		}
		if cause == nil && p.ResourcesDesiredStatus != ResourcesDesiredStopped {
			// Without an error only a user's stop moves a pipeline to Stopping.
			return Pipeline{}, unexpected(name, p)
		}
		next := p.clone()
		next.ResourcesStatus = ResourcesStopping
		next.ResourcesDesiredStatus = ResourcesDesiredStopped
		if cause != nil {
			next.DeploymentError = cause
		}
		return finish(p, next, now)
	}
}

// MarkStopped: Stopping → Stopped once compute is deprovisioned. The runtime
// layer and the location are cleared; storage is untouched.
func MarkStopped() Transition {
	return func(p Pipeline, now time.Time) (Pipeline, error) {
		if p.ResourcesStatus == ResourcesStopped {
			return p, nil
		}
		if p.ResourcesStatus != ResourcesStopping {
			return Pipeline{}, unexpected("MarkStopped", p)
		}
		next := p.clone()
		next.ResourcesStatus = ResourcesStopped
		next.RuntimeStatus = nil
		next.RuntimeDesiredStatus = nil
		next.DeploymentLocation = nil
		next.DeploymentID = nil
		workflowDone(&next)
		return finish(p, next, now)
	}
}

// MarkStorageCleared: Clearing → Cleared once the storage is deleted.
func MarkStorageCleared() Transition {
	return func(p Pipeline, now time.Time) (Pipeline, error) {
		if p.StorageStatus == StorageCleared {
			return p, nil
		}
		if p.StorageStatus != StorageClearing {
			return Pipeline{}, unexpected("MarkStorageCleared", p)
		}
		next := p.clone()
		next.StorageStatus = StorageCleared
		next.StorageStatusDetails = nil
		workflowDone(&next)
		return finish(p, next, now)
	}
}

// workflowDone records, with a workflow's last status write, that the
// workflow of the current generation reached its goal, so the record does not
// show RUNNING for an execution that is about to succeed.
func workflowDone(p *Pipeline) {
	if p.Workflow != nil && p.Workflow.Generation == p.Generation {
		p.Workflow.Status = "SUCCEEDED"
	}
}
