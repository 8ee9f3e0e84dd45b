package domain

import (
	"encoding/json"
	"time"
)

// WorkflowKind names a lifecycle workflow.
type WorkflowKind string

const (
	WorkflowStart   WorkflowKind = "start"
	WorkflowSuspend WorkflowKind = "suspend" // graceful stop: checkpoint, then deprovision
	WorkflowStop    WorkflowKind = "stop"    // forced stop: deprovision now
	WorkflowClear   WorkflowKind = "clear"   // clear storage
)

// AllWorkflowKinds lists every workflow kind.
var workflowKindEnum, AllWorkflowKinds = newEnum("workflow kind", WorkflowStart, WorkflowSuspend, WorkflowStop, WorkflowClear)

func (k WorkflowKind) MarshalText() ([]byte, error)  { return workflowKindEnum.marshal(k) }
func (k *WorkflowKind) UnmarshalText(b []byte) error { return workflowKindEnum.unmarshal(b, k) }

// WorkflowRef is the current or last lifecycle workflow of a pipeline (a
// Sluice addition: lets an operator jump to the execution in the AWS console).
type WorkflowRef struct {
	Kind          WorkflowKind `json:"kind"`
	Generation    int64        `json:"generation"`
	ExecutionName string       `json:"execution_name"`
	ExecutionArn  string       `json:"execution_arn,omitempty"`
	StartedAt     time.Time    `json:"started_at"`
	// Status is the execution's status as last recorded: RUNNING, SUCCEEDED,
	// FAILED, ABORTED, PENDING while StartExecution has not been confirmed,
	// or SUPERSEDED (WorkflowSuperseded).
	Status string `json:"status"`
}

// Pipeline is the control plane's record of a pipeline (SPEC §1). Statuses that
// only exist while provisioned are pointers: nil is JSON null.
type Pipeline struct {
	Name          string          `json:"name"`
	ID            string          `json:"id"`
	Description   string          `json:"description"`
	RuntimeConfig json.RawMessage `json:"runtime_config"`
	CreatedAt     time.Time       `json:"created_at"`
	// Tags are Feldera's client metadata tags (free-form labels).
	Tags []string `json:"tags"`

	// The program, stored and returned exactly as given (program.go says
	// what program_status means in Sluice, which compiles nothing).
	ProgramCode        string          `json:"program_code"`
	UdfRust            string          `json:"udf_rust"`
	UdfToml            string          `json:"udf_toml"`
	ProgramConfig      json.RawMessage `json:"program_config"`
	ProgramVersion     int64           `json:"program_version"`
	ProgramStatus      ProgramStatus   `json:"program_status"`
	ProgramStatusSince time.Time       `json:"program_status_since"`
	ProgramError       ProgramError    `json:"program_error"`
	// ProgramInfo is Feldera's compiler output (schema, connectors): always
	// null, since nothing compiles here.
	ProgramInfo json.RawMessage `json:"program_info"`
	// PlatformVersion is the Sluice version that accepted the program.
	PlatformVersion string `json:"platform_version"`

	// Version is bumped on every user edit of the definition.
	Version int64 `json:"version"`
	// RefreshVersion is bumped on every write of the record.
	RefreshVersion int64 `json:"refresh_version"`
	// Generation is bumped by every accepted user action that changes a desired
	// status; workflows are started for one generation and fenced by it.
	Generation int64 `json:"generation"`

	ResourcesStatus             ResourcesStatus        `json:"deployment_resources_status"`
	ResourcesStatusSince        time.Time              `json:"deployment_resources_status_since"`
	ResourcesDesiredStatus      ResourcesDesiredStatus `json:"deployment_resources_desired_status"`
	ResourcesDesiredStatusSince time.Time              `json:"deployment_resources_desired_status_since"`

	RuntimeStatus             *RuntimeStatus        `json:"deployment_runtime_status"`
	RuntimeStatusSince        *time.Time            `json:"deployment_runtime_status_since"`
	RuntimeDesiredStatus      *RuntimeDesiredStatus `json:"deployment_runtime_desired_status"`
	RuntimeDesiredStatusSince *time.Time            `json:"deployment_runtime_desired_status_since"`

	DeploymentStatusSince        time.Time `json:"deployment_status_since"`
	DeploymentDesiredStatusSince time.Time `json:"deployment_desired_status_since"`

	DeploymentError    *ErrorBody    `json:"deployment_error"`
	DeploymentID       *string       `json:"deployment_id"`
	DeploymentLocation *string       `json:"deployment_location"`
	DeploymentInitial  *InitialState `json:"deployment_initial"`

	StorageStatus        StorageStatus   `json:"storage_status"`
	StorageStatusSince   time.Time       `json:"storage_status_since"`
	StorageStatusDetails json.RawMessage `json:"storage_status_details"`

	Workflow *WorkflowRef `json:"workflow"`
}

// DeploymentStatus is the combined view of SPEC §2.3: the resources status
// unless Provisioned, then the runtime status (Unavailable if unknown).
func (p Pipeline) DeploymentStatus() CombinedStatus {
	if p.ResourcesStatus != ResourcesProvisioned {
		return CombinedStatus(p.ResourcesStatus)
	}
	if p.RuntimeStatus == nil {
		return CombinedUnavailable
	}
	return CombinedStatus(*p.RuntimeStatus)
}

// DeploymentDesiredStatus is the combined desired view of SPEC §2.3: Stopped
// when the resources desired status is Stopped, else the runtime desired status.
func (p Pipeline) DeploymentDesiredStatus() CombinedDesiredStatus {
	if p.ResourcesDesiredStatus == ResourcesDesiredStopped || p.RuntimeDesiredStatus == nil {
		return CombinedDesiredStopped
	}
	return CombinedDesiredStatus(*p.RuntimeDesiredStatus)
}

// FullyStopped: status and desired status both Stopped.
func (p Pipeline) FullyStopped() bool {
	return p.ResourcesStatus == ResourcesStopped && p.ResourcesDesiredStatus == ResourcesDesiredStopped
}

// StopInProgress: a stop of either kind was accepted and the pipeline has not
// reached Stopped yet (SPEC §3).
func (p Pipeline) StopInProgress() bool {
	if p.ResourcesStatus == ResourcesStopped {
		return false
	}
	return p.ResourcesDesiredStatus == ResourcesDesiredStopped || p.suspendRequested()
}

func (p Pipeline) suspendRequested() bool {
	return p.RuntimeDesiredStatus != nil && *p.RuntimeDesiredStatus == RuntimeDesiredSuspended
}

// StorageEnabled reads runtime_config.storage (default true).
func (p Pipeline) StorageEnabled() bool {
	var cfg struct {
		Storage *bool `json:"storage"`
	}
	if len(p.RuntimeConfig) == 0 || json.Unmarshal(p.RuntimeConfig, &cfg) != nil || cfg.Storage == nil {
		return true
	}
	return *cfg.Storage
}

// Converged: the current statuses are what the desired statuses ask for, so no
// workflow needs to run. The reconciler starts one for every other pipeline
// that has no live workflow for its generation.
func (p Pipeline) Converged() bool {
	if p.StorageStatus == StorageClearing {
		return false
	}
	switch p.ResourcesDesiredStatus {
	case ResourcesDesiredStopped:
		return p.ResourcesStatus == ResourcesStopped
	default:
		if p.ResourcesStatus != ResourcesProvisioned {
			return false
		}
		return !p.suspendRequested()
	}
}

// PendingWorkflow is the workflow kind that drives p towards its desired state
// ("" when converged). The API starts it after an action; the reconciler
// restarts it when an execution was lost.
func (p Pipeline) PendingWorkflow() WorkflowKind {
	switch {
	case p.StorageStatus == StorageClearing && p.FullyStopped():
		return WorkflowClear
	case p.ResourcesDesiredStatus == ResourcesDesiredStopped && p.ResourcesStatus != ResourcesStopped:
		if p.suspendRequested() && p.RuntimeStatus != nil && *p.RuntimeStatus == RuntimeSuspended {
			// The suspend succeeded; only its deprovisioning is left.
			return WorkflowSuspend
		}
		return WorkflowStop
	case p.ResourcesDesiredStatus == ResourcesDesiredProvisioned && p.suspendRequested():
		return WorkflowSuspend
	case p.ResourcesDesiredStatus == ResourcesDesiredProvisioned && p.ResourcesStatus != ResourcesProvisioned:
		return WorkflowStart
	}
	return ""
}

// clone returns a deep copy, so that actions never alias the caller's record.
func (p Pipeline) clone() Pipeline {
	c := p
	c.RuntimeConfig = cloneBytes(p.RuntimeConfig)
	c.ProgramConfig = cloneBytes(p.ProgramConfig)
	c.ProgramInfo = cloneBytes(p.ProgramInfo)
	c.ProgramError.SystemError = clonePtr(p.ProgramError.SystemError)
	if p.Tags != nil {
		c.Tags = append([]string{}, p.Tags...)
	}
	c.StorageStatusDetails = cloneBytes(p.StorageStatusDetails)
	c.RuntimeStatus = clonePtr(p.RuntimeStatus)
	c.RuntimeStatusSince = clonePtr(p.RuntimeStatusSince)
	c.RuntimeDesiredStatus = clonePtr(p.RuntimeDesiredStatus)
	c.RuntimeDesiredStatusSince = clonePtr(p.RuntimeDesiredStatusSince)
	c.DeploymentID = clonePtr(p.DeploymentID)
	c.DeploymentLocation = clonePtr(p.DeploymentLocation)
	c.DeploymentInitial = clonePtr(p.DeploymentInitial)
	c.Workflow = clonePtr(p.Workflow)
	if p.DeploymentError != nil {
		e := *p.DeploymentError
		c.DeploymentError = &e
	}
	return c
}

func clonePtr[T any](v *T) *T {
	if v == nil {
		return nil
	}
	c := *v
	return &c
}

func cloneBytes(b json.RawMessage) json.RawMessage {
	if b == nil {
		return nil
	}
	return append(json.RawMessage(nil), b...)
}

func ptr[T any](v T) *T { return &v }

// stamp updates every *_since field whose value changed between prev and next,
// and bumps the refresh version. Every write of the record goes through it.
func stamp(prev, next *Pipeline, now time.Time) {
	next.RefreshVersion = prev.RefreshVersion + 1
	if next.ResourcesStatus != prev.ResourcesStatus {
		next.ResourcesStatusSince = now
	}
	if next.ResourcesDesiredStatus != prev.ResourcesDesiredStatus {
		next.ResourcesDesiredStatusSince = now
	}
	if !equalPtr(next.RuntimeStatus, prev.RuntimeStatus) {
		next.RuntimeStatusSince = sinceOf(next.RuntimeStatus != nil, now)
	}
	if !equalPtr(next.RuntimeDesiredStatus, prev.RuntimeDesiredStatus) {
		next.RuntimeDesiredStatusSince = sinceOf(next.RuntimeDesiredStatus != nil, now)
	}
	if next.DeploymentStatus() != prev.DeploymentStatus() {
		next.DeploymentStatusSince = now
	}
	if next.DeploymentDesiredStatus() != prev.DeploymentDesiredStatus() {
		next.DeploymentDesiredStatusSince = now
	}
	if next.StorageStatus != prev.StorageStatus {
		next.StorageStatusSince = now
	}
}

func sinceOf(set bool, now time.Time) *time.Time {
	if !set {
		return nil
	}
	return &now
}

func equalPtr[T comparable](a, b *T) bool {
	if a == nil || b == nil {
		return a == b
	}
	return *a == *b
}

// View is the record as the API sends it: the stored fields plus the combined
// view, which is derived and never stored.
type View struct {
	Pipeline
	DeploymentStatus        CombinedStatus        `json:"deployment_status"`
	DeploymentDesiredStatus CombinedDesiredStatus `json:"deployment_desired_status"`
	// WorkflowConsoleURL is where the workflow's execution is shown (the AWS
	// console on AWS, the local console under make run); set by the API.
	WorkflowConsoleURL string `json:"workflow_console_url,omitempty"`
}

// ViewOf builds the API view of a record.
func ViewOf(p Pipeline) View {
	return View{Pipeline: p, DeploymentStatus: p.DeploymentStatus(), DeploymentDesiredStatus: p.DeploymentDesiredStatus()}
}
