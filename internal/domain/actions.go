package domain

import (
	"errors"
	"fmt"
	"time"
)

// Outcome is what an accepted user action decided.
type Outcome struct {
	// Pipeline is the record to write; it equals the input when Write is false.
	Pipeline Pipeline
	// Write: the record changed and must be written (conditionally on the
	// refresh version that was read).
	Write bool
	// Workflow is the workflow to start for Pipeline.Generation ("" for none).
	Workflow WorkflowKind
	// Supersedes is the workflow the new intent replaces: its execution may be
	// stopped, best effort (its fenced writes already fail).
	Supersedes *WorkflowRef
	// Accepted describes what was accepted (the body of a 202).
	Accepted string
	// Forward is the runtime call that carries the new runtime desired status
	// to a provisioned runtime ("" for none): /start on a Paused pipeline
	// resumes it as /resume does.
	Forward RuntimeCall
}

// RuntimeCall names an action forwarded to a pipeline's runtime.
type RuntimeCall string

const (
	ForwardStart RuntimeCall = "start" // the runtime's GET /start: run
	ForwardPause RuntimeCall = "pause" // the runtime's GET /pause
)

// ConvergeRuntime is the call that moves a runtime observed in status
// observed to p's desired Running or Paused ("" when none is needed, or while
// a stop is in progress): what the reconciler and the start workflow tell a
// runtime that missed a forwarded pause or resume.
func ConvergeRuntime(p Pipeline, observed RuntimeStatus) RuntimeCall {
	if p.StopInProgress() || p.ResourcesDesiredStatus != ResourcesDesiredProvisioned || p.RuntimeDesiredStatus == nil {
		return ""
	}
	switch {
	case *p.RuntimeDesiredStatus == RuntimeDesiredPaused && observed == RuntimeRunning:
		return ForwardPause
	case *p.RuntimeDesiredStatus == RuntimeDesiredRunning && observed == RuntimePaused:
		return ForwardStart
	}
	return ""
}

// Status is the runtime status the call leads to.
func (c RuntimeCall) Status() RuntimeStatus {
	if c == ForwardPause {
		return RuntimePaused
	}
	return RuntimeRunning
}

// ErrInconsistentRecord reports a record that breaks the status invariants;
// it is never the caller's fault (answered as an internal error).
var ErrInconsistentRecord = errors.New("inconsistent pipeline record")

func unchanged(p Pipeline, accepted string) (Outcome, error) {
	return Outcome{Pipeline: p, Accepted: accepted}, nil
}

// accept finishes an accepted action: a change of a desired status or a new
// workflow increments the generation (DESIGN.md, correctness core), every
// changed *_since is stamped, and the outcome names the workflow to start.
func accept(prev, next Pipeline, now time.Time, wf WorkflowKind, accepted string) (Outcome, error) {
	if intentChanged(prev, next) || wf != "" {
		next.Generation = prev.Generation + 1
		supersedeWorkflow(&next)
	}
	stamp(&prev, &next, now)
	if err := ValidateTransition(prev, next); err != nil {
		return Outcome{}, err
	}
	out := Outcome{Pipeline: next, Write: true, Workflow: wf, Accepted: accepted}
	if next.Generation > prev.Generation && prev.Workflow != nil && !prev.Converged() {
		// A workflow of an older generation may still be working: its fenced
		// writes will fail from now on, and its execution can be stopped.
		out.Supersedes = prev.Workflow
	}
	return out, nil
}

func desiredChanged(prev, next Pipeline) bool {
	return prev.ResourcesDesiredStatus != next.ResourcesDesiredStatus ||
		!equalPtr(prev.RuntimeDesiredStatus, next.RuntimeDesiredStatus)
}

// intentChanged: a desired status changed in a way a workflow acts on. A
// swap of the runtime desired status between Running and Paused (pause,
// resume, a start of a Paused pipeline) is not: no workflow starts or stops
// for it, the runtime is told directly (and the start workflow provisions
// the runtime desired status of the moment), so it keeps the generation and
// never supersedes a workflow in flight, e.g. the start that Feldera 0.148's
// SDK sends as /pause then /start.
func intentChanged(prev, next Pipeline) bool { return IntentChanged(prev, next) }

// IntentChanged is the rule of intentChanged, for checks outside the domain
// (the store's concurrency test): true when a user write must take a new
// generation because of its desired statuses.
func IntentChanged(prev, next Pipeline) bool {
	return desiredChanged(prev, next) && !runningPausedSwap(prev, next)
}

func runningPausedSwap(prev, next Pipeline) bool {
	interactive := func(d *RuntimeDesiredStatus) bool {
		return d != nil && (*d == RuntimeDesiredRunning || *d == RuntimeDesiredPaused)
	}
	return prev.ResourcesDesiredStatus == next.ResourcesDesiredStatus && next.ResourcesDesiredStatus == ResourcesDesiredProvisioned &&
		interactive(prev.RuntimeDesiredStatus) && interactive(next.RuntimeDesiredStatus)
}

// Definition is what a user writes with create or replace (Feldera's
// PostPutPipeline).
type Definition struct {
	Name          string
	Description   string
	RuntimeConfig []byte
	Tags          []string
	ProgramCode   string
	UdfRust       string
	UdfToml       string
	ProgramConfig []byte
}

// DefinitionOf is p's current definition (the base a PATCH edits).
func DefinitionOf(p Pipeline) Definition {
	return Definition{
		Name: p.Name, Description: p.Description, RuntimeConfig: cloneBytes(p.RuntimeConfig),
		Tags: append([]string{}, p.Tags...), ProgramCode: p.ProgramCode, UdfRust: p.UdfRust, UdfToml: p.UdfToml,
		ProgramConfig: cloneBytes(p.ProgramConfig),
	}
}

func (d Definition) validate() (Definition, error) {
	if err := ValidateName(d.Name); err != nil {
		return d, err
	}
	if err := ValidateDescription(d.Description); err != nil {
		return d, err
	}
	cfg, err := ValidateRuntimeConfig(d.RuntimeConfig)
	if err != nil {
		return d, err
	}
	d.RuntimeConfig = cfg
	return validateProgram(d)
}

// Create builds the record of a new pipeline: Stopped/Stopped, storage Cleared.
// The store rejects a taken name with DuplicateName.
func Create(def Definition, id string, now time.Time) (Pipeline, error) {
	def, err := def.validate()
	if err != nil {
		return Pipeline{}, err
	}
	p := Pipeline{
		Name: def.Name, ID: id, Description: def.Description, RuntimeConfig: def.RuntimeConfig, CreatedAt: now,
		Version: 1, RefreshVersion: 1, Generation: 0,
		ResourcesStatus: ResourcesStopped, ResourcesStatusSince: now,
		ResourcesDesiredStatus: ResourcesDesiredStopped, ResourcesDesiredStatusSince: now,
		DeploymentStatusSince: now, DeploymentDesiredStatusSince: now,
		StorageStatus: StorageCleared, StorageStatusSince: now,
	}
	setProgram(&p, def, true, now)
	return p, nil
}

// Replace edits the definition of an existing pipeline (PUT): only while it is
// fully stopped. The name and id stay; the version is bumped.
func Replace(p Pipeline, def Definition, now time.Time) (Outcome, error) {
	def.Name = p.Name
	def, err := def.validate()
	if err != nil {
		return Outcome{}, err
	}
	if !p.FullyStopped() {
		return Outcome{}, UpdateRestrictedToStopped(p)
	}
	next := p.clone()
	next.Description = def.Description
	next.RuntimeConfig = def.RuntimeConfig
	setProgram(&next, def, programChanged(p, def), now)
	next.Version = p.Version + 1
	return accept(p, next, now, "", fmt.Sprintf("Pipeline '%s' updated to version %d.", p.Name, next.Version))
}

// CheckDelete allows a delete only when fully stopped with storage cleared.
func CheckDelete(p Pipeline) error {
	if !p.FullyStopped() {
		return DeleteRestrictedToFullyStopped(p)
	}
	if p.StorageStatus != StorageCleared {
		return DeleteRestrictedToClearedStorage(p)
	}
	return nil
}

// Stop decides POST /stop?force=<force>. It is SPEC §3's stop table, one case
// per row, in the table's order.
func Stop(p Pipeline, force bool, now time.Time) (Outcome, error) {
	rs, rd := p.ResourcesStatus, p.ResourcesDesiredStatus
	switch {
	// Stopped / Stopped: nothing to do, either way.
	case p.FullyStopped():
		return unchanged(p, fmt.Sprintf("Pipeline '%s' is already stopped.", p.Name))

	// Stopped or Provisioning / Provisioned (a start is pending or provisioning):
	// both variants act as a forced stop; nothing has run, nothing to checkpoint.
	case (rs == ResourcesStopped || rs == ResourcesProvisioning) && rd == ResourcesDesiredProvisioned:
		next := p.clone()
		next.ResourcesDesiredStatus = ResourcesDesiredStopped
		if rs == ResourcesStopped {
			// Nothing is provisioned yet and the start workflow's first fenced
			// write will fail: no workflow to run.
			next.RuntimeDesiredStatus = nil
			return accept(p, next, now, "", fmt.Sprintf("Pipeline '%s': the pending start is cancelled; nothing to deprovision.", p.Name))
		}
		return accept(p, next, now, WorkflowStop, fmt.Sprintf("Pipeline '%s' is being stopped (forced): provisioning is cancelled.", p.Name))

	// Initializing, Running, Paused or Unavailable / Running or Paused.
	case rs == ResourcesProvisioned && rd == ResourcesDesiredProvisioned && !p.suspendRequested():
		if p.RuntimeDesiredStatus == nil {
			return Outcome{}, fmt.Errorf("%w: provisioned without a runtime desired status", ErrInconsistentRecord)
		}
		next := p.clone()
		if force {
			next.ResourcesDesiredStatus = ResourcesDesiredStopped
			return accept(p, next, now, WorkflowStop, fmt.Sprintf("Pipeline '%s' is being stopped (forced): compute is deprovisioned without a checkpoint.", p.Name))
		}
		if !p.StorageEnabled() {
			return Outcome{}, FeatureNotAvailable("stop?force=false", "runtime_config disables storage, so no checkpoint can be written; stop with force=true")
		}
		next.RuntimeDesiredStatus = ptr(RuntimeDesiredSuspended)
		return accept(p, next, now, WorkflowSuspend, fmt.Sprintf("Pipeline '%s' is being stopped: it checkpoints, then its compute is deprovisioned.", p.Name))

	// Suspending or Suspended / Suspended (the suspend workflow runs).
	case rs == ResourcesProvisioned && rd == ResourcesDesiredProvisioned && p.suspendRequested():
		if !force {
			return unchanged(p, fmt.Sprintf("Pipeline '%s' is already being stopped (suspending).", p.Name))
		}
		next := p.clone()
		next.ResourcesDesiredStatus = ResourcesDesiredStopped
		return accept(p, next, now, WorkflowStop, fmt.Sprintf("Pipeline '%s': the suspend is cancelled; it is being stopped (forced).", p.Name))

	// Any not-Stopped status / Stopped (a stop is in progress).
	case rs != ResourcesStopped && rd == ResourcesDesiredStopped:
		if !force {
			return Outcome{}, IllegalPipelineAction(LayerResources, string(rs), string(rd), string(RuntimeDesiredSuspended),
				"The pipeline is already being stopped: only a forced stop (force=true) is possible until it is Stopped.")
		}
		return unchanged(p, fmt.Sprintf("Pipeline '%s' is already being stopped (forced).", p.Name))
	}
	return Outcome{}, fmt.Errorf("%w: status %s / desired %s", ErrInconsistentRecord, rs, rd)
}

// StartRequest is POST /start's parameters.
type StartRequest struct {
	Initial      InitialState
	DismissError bool
}

// Start decides POST /start, rule by rule as in SPEC §4's start row.
func Start(p Pipeline, req StartRequest, now time.Time) (Outcome, error) {
	switch {
	// Storage Clearing.
	case p.StorageStatus == StorageClearing:
		return Outcome{}, CannotStartWhileClearingStorage(p)

	// While a stop is in progress (the seed's example).
	case p.ResourcesDesiredStatus == ResourcesDesiredStopped && p.ResourcesStatus != ResourcesStopped:
		return Outcome{}, IllegalPipelineAction(LayerResources, string(p.ResourcesStatus), string(p.ResourcesDesiredStatus), string(ResourcesDesiredProvisioned),
			"Cannot restart the pipeline while it is stopping. Wait for it to stop before starting a new instance of the pipeline.")

	// While suspending.
	case p.suspendRequested():
		return Outcome{}, IllegalPipelineAction(LayerRuntime, runtimeStatusName(p), string(RuntimeDesiredSuspended), string(req.Initial.DesiredRuntime()),
			"Cannot start the pipeline while it is suspending. Wait for it to stop, or cancel the suspend with stop?force=true.")

	// From Stopped/Stopped: deployment_error set and dismiss_error=false.
	case p.FullyStopped() && p.DeploymentError != nil && !req.DismissError:
		return Outcome{}, CannotStartWithUndismissedError(p)

	// From Stopped/Stopped with a program that cannot be deployed: as in
	// Feldera, the start fails at once and the pipeline stays Stopped with
	// the error recorded (dismissed by the next start).
	case p.FullyStopped() && p.ProgramStatus != ProgramSuccess:
		next := p.clone()
		next.DeploymentError = StartFailedDueToFailedCompilation(p)
		return accept(p, next, now, "", fmt.Sprintf("Pipeline '%s' cannot be started: its program cannot be deployed (see program_error).", p.Name))

	// From Stopped/Stopped: desired Provisioned, start workflow.
	case p.FullyStopped():
		next := p.clone()
		next.ResourcesDesiredStatus = ResourcesDesiredProvisioned
		next.RuntimeDesiredStatus = ptr(req.Initial.DesiredRuntime())
		next.DeploymentInitial = ptr(req.Initial)
		next.DeploymentError = nil
		return accept(p, next, now, WorkflowStart, fmt.Sprintf("Pipeline '%s' is being started (initial %s).", p.Name, req.Initial))

	// A provisioned pipeline whose runtime is desired Paused: /start (initial
	// running) resumes it, like /resume (Feldera 0.148's /start).
	case req.Initial == InitialRunning && p.ResourcesStatus == ResourcesProvisioned &&
		p.RuntimeDesiredStatus != nil && *p.RuntimeDesiredStatus == RuntimeDesiredPaused:
		out, err := setRuntimeDesired(p, RuntimeDesiredRunning, "resume", now)
		out.Forward = ForwardStart
		return out, err

	// A start of a pipeline that is not provisioned yet and was started
	// paused (Feldera 0.148's SDK starts with /pause, then /start): the
	// runtime desired status becomes Running; the start workflow provisions
	// it so, or tells the runtime once it answers.
	case req.Initial == InitialRunning && p.ResourcesStatus != ResourcesProvisioned &&
		p.RuntimeDesiredStatus != nil && *p.RuntimeDesiredStatus == RuntimeDesiredPaused:
		next := p.clone()
		next.RuntimeDesiredStatus = ptr(RuntimeDesiredRunning)
		return accept(p, next, now, "", fmt.Sprintf("Pipeline '%s' is being started: it will run once provisioned.", p.Name))

	// Repeat while starting or running with the same initial, or asking a
	// provisioned pipeline for the runtime status it already wants: no-op.
	case equalPtr(p.RuntimeDesiredStatus, ptr(req.Initial.DesiredRuntime())),
		p.DeploymentInitial != nil && *p.DeploymentInitial == req.Initial && p.ResourcesStatus != ResourcesProvisioned:
		return unchanged(p, fmt.Sprintf("Pipeline '%s' is already started (initial %s).", p.Name, req.Initial))

	// A different initial while not stopped.
	case p.DeploymentInitial != nil:
		return Outcome{}, InitialImmutableUnlessStopped(*p.DeploymentInitial, req.Initial)
	}
	return Outcome{}, fmt.Errorf("%w: started without deployment_initial", ErrInconsistentRecord)
}

func runtimeStatusName(p Pipeline) string {
	if p.RuntimeStatus == nil {
		return string(p.DeploymentStatus())
	}
	return string(*p.RuntimeStatus)
}

// rejectDuringStop is the IllegalPipelineAction of an action that is not
// allowed while a stop (forced or graceful) is in progress.
func rejectDuringStop(p Pipeline, wants RuntimeDesiredStatus, hint string) error {
	if p.ResourcesDesiredStatus == ResourcesDesiredStopped {
		return IllegalPipelineAction(LayerResources, string(p.ResourcesStatus), string(p.ResourcesDesiredStatus), string(ResourcesDesiredProvisioned), hint)
	}
	return IllegalPipelineAction(LayerRuntime, runtimeStatusName(p), string(RuntimeDesiredSuspended), string(wants), hint)
}

// checkInteractive allows a forwarded action only on a provisioned pipeline
// that is not being stopped.
func checkInteractive(p Pipeline, wants RuntimeDesiredStatus, verb string) error {
	if p.StopInProgress() {
		return rejectDuringStop(p, wants, fmt.Sprintf("Cannot %s the pipeline while it is being stopped.", verb))
	}
	if p.ResourcesStatus != ResourcesProvisioned || p.DeploymentLocation == nil {
		return PipelineInteractionNotDeployed(p)
	}
	return nil
}

// Pause decides POST /pause: the runtime desired status becomes Paused and the
// action is forwarded to the runtime.
//
// A fully stopped pipeline is started paused (Feldera 0.148: "a stopped
// pipeline can be started through calling either /start or /pause"); one
// that is starting gets the runtime desired status Paused.
func Pause(p Pipeline, now time.Time) (Outcome, error) {
	switch {
	case p.FullyStopped():
		return Start(p, StartRequest{Initial: InitialPaused, DismissError: true}, now)
	case !p.StopInProgress() && p.ResourcesDesiredStatus == ResourcesDesiredProvisioned && p.ResourcesStatus != ResourcesProvisioned &&
		p.RuntimeDesiredStatus != nil && *p.RuntimeDesiredStatus == RuntimeDesiredRunning:
		next := p.clone()
		next.RuntimeDesiredStatus = ptr(RuntimeDesiredPaused)
		return accept(p, next, now, "", fmt.Sprintf("Pipeline '%s' is being started: it will be paused once provisioned.", p.Name))
	}
	out, err := setRuntimeDesired(p, RuntimeDesiredPaused, "pause", now)
	out.Forward = ForwardPause
	return out, err
}

// Resume decides POST /resume: the runtime desired status becomes Running and
// the action is forwarded to the runtime.
//
// A pipeline that is starting paused and not provisioned yet gets the
// runtime desired status Running, as /start does.
func Resume(p Pipeline, now time.Time) (Outcome, error) {
	if !p.StopInProgress() && p.ResourcesDesiredStatus == ResourcesDesiredProvisioned && p.ResourcesStatus != ResourcesProvisioned &&
		p.RuntimeDesiredStatus != nil && *p.RuntimeDesiredStatus == RuntimeDesiredPaused {
		return Start(p, StartRequest{Initial: InitialRunning, DismissError: true}, now)
	}
	out, err := setRuntimeDesired(p, RuntimeDesiredRunning, "resume", now)
	out.Forward = ForwardStart
	return out, err
}

func setRuntimeDesired(p Pipeline, want RuntimeDesiredStatus, verb string, now time.Time) (Outcome, error) {
	if err := checkInteractive(p, want, verb); err != nil {
		return Outcome{}, err
	}
	if equalPtr(p.RuntimeDesiredStatus, &want) {
		return unchanged(p, fmt.Sprintf("Pipeline '%s': %s forwarded.", p.Name, verb))
	}
	next := p.clone()
	next.RuntimeDesiredStatus = ptr(want)
	return accept(p, next, now, "", fmt.Sprintf("Pipeline '%s': %s forwarded.", p.Name, verb))
}

// CheckCheckpoint allows POST /checkpoint (forwarded, changes no status).
func CheckCheckpoint(p Pipeline) error {
	if err := checkInteractive(p, RuntimeDesiredRunning, "checkpoint"); err != nil {
		return err
	}
	if !p.StorageEnabled() {
		return FeatureNotAvailable("checkpoint", "runtime_config disables storage")
	}
	return nil
}

// CheckReadInteraction allows a forwarded read (stats, checkpoint_status):
// allowed whenever a runtime is provisioned, even while it is being stopped.
func CheckReadInteraction(p Pipeline) error {
	if p.DeploymentLocation == nil || (p.ResourcesStatus != ResourcesProvisioned && p.ResourcesStatus != ResourcesStopping) {
		return PipelineInteractionNotDeployed(p)
	}
	return nil
}

// Clear decides POST /clear: only while fully stopped; starts the clear workflow.
func Clear(p Pipeline, now time.Time) (Outcome, error) {
	if !p.FullyStopped() {
		return Outcome{}, StorageStatusImmutableUnlessStopped(p)
	}
	switch p.StorageStatus {
	case StorageCleared:
		return unchanged(p, fmt.Sprintf("Pipeline '%s': storage is already cleared.", p.Name))
	case StorageClearing:
		return unchanged(p, fmt.Sprintf("Pipeline '%s': storage is already being cleared.", p.Name))
	}
	next := p.clone()
	next.StorageStatus = StorageClearing
	return accept(p, next, now, WorkflowClear, fmt.Sprintf("Pipeline '%s': storage is being cleared.", p.Name))
}

// DismissError decides POST /dismiss_error (Feldera's rule): with no error
// set it is a no-op in any status; an error set can only be dismissed while
// fully stopped.
func DismissError(p Pipeline, now time.Time) (Outcome, error) {
	if p.DeploymentError == nil {
		return unchanged(p, fmt.Sprintf("Pipeline '%s' has no deployment error to dismiss.", p.Name))
	}
	if !p.FullyStopped() {
		return Outcome{}, DismissErrorRestrictedToFullyStopped(p)
	}
	next := p.clone()
	next.DeploymentError = nil
	return accept(p, next, now, "", fmt.Sprintf("Pipeline '%s': deployment error dismissed.", p.Name))
}
