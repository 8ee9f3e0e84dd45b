// Package compute provisions and deprovisions the compute that runs a
// pipeline's runtime. Implementations: localproc (processes on this machine,
// used by the local stack and tests) and ecsfargate (ECS on Fargate, on AWS).
package compute

import (
	"context"
	"encoding/json"
	"errors"
)

// ProvisionRequest names what to run.
type ProvisionRequest struct {
	// Pipeline is the pipeline name; it keys the storage, which outlives every deployment.
	Pipeline string
	// PipelineID is the pipeline's UUID (storage is keyed by name and id so a re-created
	// pipeline of the same name never sees the old one's checkpoints).
	PipelineID string
	// DeploymentID is new for every provisioning; it identifies this deployment's compute.
	DeploymentID string
	// RuntimeConfig is the pipeline's runtime_config, passed to the runtime as is.
	RuntimeConfig json.RawMessage
	// Initial is the state the runtime starts in: "Running" or "Paused".
	Initial string
	// Program is what the runtime runs, as the user wrote it (Feldera's
	// program fields); the driver hands it over (a file, an object).
	Program Program
}

// Program is a pipeline's program at one program_version, in the JSON form
// the runtime reads (SLUICE_PROGRAM_DIR's program.json, or the object at
// SLUICE_PROGRAM_URI).
type Program struct {
	Version int64           `json:"program_version"`
	Code    string          `json:"program_code"`
	UdfRust string          `json:"udf_rust"`
	UdfToml string          `json:"udf_toml"`
	Config  json.RawMessage `json:"program_config"`
}

// ProgramJSON is the program as the runtime reads it ({} program_config when none).
func (p Program) ProgramJSON() ([]byte, error) {
	if len(p.Config) == 0 {
		p.Config = json.RawMessage(`{}`)
	}
	return json.Marshal(p)
}

// Deployment is what Provision started.
type Deployment struct {
	// Location is the base URL where the runtime answers (SPEC §7), e.g. http://10.0.1.5:8080.
	// It may be empty when the compute has no address yet (a Fargate task still
	// attaching its network interface); Check reports it once known.
	Location string
	// Handle identifies the compute to the driver (a pid, a task ARN).
	Handle string
}

// State is what Check observed.
type State string

const (
	// StateRunning: the compute exists and is not known to have exited.
	StateRunning State = "Running"
	// StateStarting: the compute is being started (e.g. a Fargate task still PENDING).
	StateStarting State = "Starting"
	// StateGone: the compute exited, was stopped or never existed.
	StateGone State = "Gone"
)

// CheckResult is what the driver knows about a deployment.
type CheckResult struct {
	State State
	// Reason says why the compute is gone (exit code, stop reason), empty otherwise.
	Reason string
	// Location is the runtime's base URL when known.
	Location string
}

// ErrTemporary marks a driver failure that is worth retrying (throttling, capacity).
var ErrTemporary = errors.New("temporary compute failure")

// Driver provisions, observes and removes a pipeline's compute.
// Every method is idempotent: Step Functions and Lambda deliver at least once.
type Driver interface {
	// Provision starts the runtime for a deployment. Calling it again with the same
	// DeploymentID returns the same deployment instead of starting a second one.
	Provision(ctx context.Context, req ProvisionRequest) (Deployment, error)
	// Deprovision stops the deployment's compute. Missing or already stopped compute is
	// success. It never deletes storage.
	Deprovision(ctx context.Context, pipeline, deploymentID string) error
	// Check reports whether the deployment's compute is still there.
	Check(ctx context.Context, pipeline, deploymentID string) (CheckResult, error)
	// ClearStorage deletes the pipeline's storage (checkpoints). Only called while stopped.
	ClearStorage(ctx context.Context, pipeline, pipelineID string) error
}
