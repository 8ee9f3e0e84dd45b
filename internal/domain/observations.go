package domain

import (
	"encoding/json"
	"time"
)

// The reconciler observes a pipeline from a listing that may lag the table
// (List reads an eventually consistent index) and acts a moment later, while
// the workflows keep writing the same generation. Its transitions are
// therefore fenced by the deployment it observed, not only by the
// generation: an observation of deployment D says nothing about a record
// that has moved on to another deployment, or to a status (Stopping,
// Stopped) in which D going away is the expected end of a stop.

// deploymentIs reports whether p's current deployment is id.
func deploymentIs(p Pipeline, id string) bool {
	return id != "" && p.DeploymentID != nil && *p.DeploymentID == id
}

// DeploymentFailed records an observed failure of deployment deploymentID
// (its compute vanished, or its runtime reported a fatal error): the pipeline
// moves to Stopping with desired Stopped and cause as its deployment_error
// (it is MarkFailed(cause), fenced by the deployment). It applies only while that deployment is
// current and the resources are Provisioned, the one status in which a
// vanished compute is a failure: while Provisioning the start
// workflow owns the compute (it may not be visible yet), and from Stopping on
// the compute going away is the stop's own work. In any other case it is an
// *UnexpectedStatusError, so a stale observation changes nothing.
func DeploymentFailed(deploymentID string, cause *ErrorBody) Transition {
	return func(p Pipeline, now time.Time) (Pipeline, error) {
		if !deploymentIs(p, deploymentID) || p.ResourcesStatus != ResourcesProvisioned || cause == nil {
			return Pipeline{}, unexpected("DeploymentFailed", p)
		}
		return MarkFailed(cause)(p, now)
	}
}

// ObserveRuntimeOf is ObserveRuntime fenced by the deployment whose runtime
// was asked: a report of deployment deploymentID is recorded only while that
// deployment is current (otherwise an *UnexpectedStatusError).
func ObserveRuntimeOf(deploymentID string, observed RuntimeStatus, storageDetails json.RawMessage) Transition {
	return func(p Pipeline, now time.Time) (Pipeline, error) {
		if !deploymentIs(p, deploymentID) {
			return Pipeline{}, unexpected("ObserveRuntime", p)
		}
		return ObserveRuntime(observed, storageDetails)(p, now)
	}
}
