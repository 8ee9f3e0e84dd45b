// Package steps holds the Go side of the lifecycle workflows: one handler per
// Task state of statemachine/*.asl.json, dispatched by the step name that the
// state passes in its Parameters. Every step is idempotent (Step Functions and
// Lambda deliver at least once) and fenced by the generation its execution was
// started for: it reads the record first and ends the execution as superseded
// when a newer intent exists, and every status write goes through
// store.Transition, conditional on that generation.
package steps

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"time"

	"github.com/google/uuid"

	"github.com/sluicehq/sluice/internal/compute"
	"github.com/sluicehq/sluice/internal/domain"
	"github.com/sluicehq/sluice/internal/metrics"
	"github.com/sluicehq/sluice/internal/obs"
	"github.com/sluicehq/sluice/internal/runtimeclient"
	"github.com/sluicehq/sluice/internal/store"
)

// Payload is the workflow's data (not a status): the execution input, carried and extended
// from step to step (each Task's result replaces it).
type Payload struct {
	Pipeline string `json:"pipeline"`
	// PipelineID fences against a deleted and re-created pipeline of the same name.
	PipelineID string              `json:"pipeline_id"`
	Generation int64               `json:"generation"`
	Kind       domain.WorkflowKind `json:"kind"`
	// Continuation counts the executions this generation's workflow has
	// continued into (bounded history, see ContinueAsNew).
	Continuation int `json:"continuation"`

	DeploymentID string    `json:"deployment_id,omitempty"`
	Location     string    `json:"location,omitempty"`
	Deadline     time.Time `json:"deadline,omitzero"`
	// Observed is the runtime status seen by CheckReadiness.
	Observed domain.RuntimeStatus `json:"observed,omitempty"`
	// StorageDetails is the runtime's checkpoint list seen by CheckSuspend.
	StorageDetails json.RawMessage `json:"storage_details,omitempty"`

	// Loop control: Done ends a wait loop, Attempt counts its iterations in
	// this execution, WaitSeconds is the next backoff, Continue asks for a
	// fresh execution (the loop reached its bound).
	Done        bool `json:"done"`
	Attempt     int  `json:"attempt"`
	WaitSeconds int  `json:"wait_seconds"`
	Continue    bool `json:"continue"`
	// AlreadyStopped: the forced stop found nothing left to do. Never
	// omitted: the IsAlreadyStopped Choice state reads it, and a Choice on a
	// path that is absent fails the execution (States.Runtime).
	AlreadyStopped bool `json:"already_stopped"`

	// Error is set by a Catch (ResultPath $.error) before RecordError.
	Error *CaughtError `json:"error,omitempty"`
}

// CaughtError is what a Catch puts at ResultPath: {Error, Cause}.
type CaughtError struct {
	Error string `json:"Error"`
	Cause string `json:"Cause"`
}

// Request is the payload of every step invocation.
type Request struct {
	Step      string  `json:"step"`
	Execution string  `json:"execution"`
	State     Payload `json:"state"`
}

// Runtime is the part of the runtime protocol (SPEC §7) the steps use.
type Runtime interface {
	Status(ctx context.Context) (runtimeclient.StatusReport, error)
	Suspend(ctx context.Context) error
}

// Continuer starts the next execution of a workflow whose wait loop reached
// its bound, so no execution approaches Step Functions' 25,000-event limit.
type Continuer interface {
	Continue(ctx context.Context, p domain.Pipeline, kind domain.WorkflowKind, continuation int) (domain.WorkflowRef, error)
}

// Config tunes the loops. Zero values take the defaults.
type Config struct {
	// ProvisioningTimeout bounds the start workflow's wait for a ready runtime.
	ProvisioningTimeout time.Duration
	// SuspendBackoff is the capped exponential backoff of the suspend wait loop.
	SuspendBackoffBase, SuspendBackoffCap time.Duration
	// ReadinessBackoff is the same for the start workflow's readiness loop.
	ReadinessBackoffBase, ReadinessBackoffCap time.Duration
	// MaxIterations bounds a wait loop within one execution; then the workflow
	// continues in a fresh execution.
	MaxIterations int
}

// Defaults: a suspend of 10 minutes costs about 30 iterations with a 30 s cap.
func (c Config) withDefaults() Config {
	if c.ProvisioningTimeout == 0 {
		c.ProvisioningTimeout = 10 * time.Minute
	}
	if c.SuspendBackoffBase == 0 {
		c.SuspendBackoffBase = time.Second
	}
	if c.SuspendBackoffCap == 0 {
		c.SuspendBackoffCap = 30 * time.Second
	}
	if c.ReadinessBackoffBase == 0 {
		c.ReadinessBackoffBase = time.Second
	}
	if c.ReadinessBackoffCap == 0 {
		c.ReadinessBackoffCap = 10 * time.Second
	}
	if c.MaxIterations == 0 {
		c.MaxIterations = 1000
	}
	return c
}

// Steps runs the workflow steps.
type Steps struct {
	Store      store.Store
	Driver     compute.Driver
	RuntimeFor func(location string) (Runtime, error)
	Continuer  Continuer
	Config     Config
	Logger     *slog.Logger
	// Metrics receives StopCompleted, SuspendAttempts, ForcedStopWithError
	// and Superseded (EMF). Nil: none.
	Metrics *metrics.Emitter
	Now     func() time.Time
	// Rand returns a float in [0,1) for backoff jitter.
	Rand func() float64
}

func (s *Steps) now() time.Time {
	if s.Now != nil {
		return s.Now()
	}
	return time.Now().UTC()
}

func (s *Steps) logger() *slog.Logger {
	if s.Logger != nil {
		return s.Logger
	}
	return slog.Default()
}

// Names of the steps, as the ASL passes them.
const (
	StepMarkProvisioning   = "MarkProvisioning"
	StepProvision          = "Provision"
	StepCheckReadiness     = "CheckReadiness"
	StepMarkProvisioned    = "MarkProvisioned"
	StepMarkSuspending     = "MarkSuspending"
	StepRequestSuspend     = "RequestSuspend"
	StepCheckSuspend       = "CheckSuspend"
	StepMarkSuspended      = "MarkSuspended"
	StepMarkStopping       = "MarkStopping"
	StepRecordError        = "RecordError"
	StepDeprovision        = "Deprovision"
	StepMarkStopped        = "MarkStopped"
	StepClearStorage       = "ClearStorage"
	StepMarkStorageCleared = "MarkStorageCleared"
	StepContinueAsNew      = "ContinueAsNew"
)

// Handle dispatches one step invocation. It is the Lambda handler.
func (s *Steps) Handle(ctx context.Context, req Request) (Payload, error) {
	st := req.State
	log := s.logger().With("step", req.Step, "pipeline", st.Pipeline, "generation", st.Generation, "execution", req.Execution)
	if id := obs.LambdaRequestID(ctx); id != "" {
		log = log.With("aws_request_id", id)
	}
	handlers := map[string]func(context.Context, Request) (Payload, error){
		StepMarkProvisioning:   fenced(s, s.markProvisioning),
		StepProvision:          fenced(s, s.provision),
		StepCheckReadiness:     s.checkReadiness,
		StepMarkProvisioned:    s.markProvisioned,
		StepMarkSuspending:     fenced(s, s.markSuspending),
		StepRequestSuspend:     fenced(s, s.requestSuspend),
		StepCheckSuspend:       fenced(s, s.checkSuspend),
		StepMarkSuspended:      fenced(s, s.markSuspended),
		StepMarkStopping:       fenced(s, s.markStopping),
		StepRecordError:        fenced(s, s.recordError),
		StepDeprovision:        fenced(s, s.deprovision),
		StepMarkStopped:        fenced(s, s.markStopped),
		StepClearStorage:       fenced(s, s.clearStorage),
		StepMarkStorageCleared: s.markStorageCleared,
		StepContinueAsNew:      fenced(s, s.continueAsNew),
	}
	h, ok := handlers[req.Step]
	if !ok {
		return st, controlPlane("UnknownStep", fmt.Sprintf("unknown workflow step %q", req.Step))
	}
	if st.Pipeline == "" {
		return st, controlPlane("InvalidStepInput", "the step input names no pipeline")
	}
	out, err := h(ctx, req)
	var sup *SupersededError
	switch {
	case err == nil:
		log.Info("step done", "done", out.Done, "attempt", out.Attempt)
	case errors.As(err, &sup):
		log.Info("step superseded: a newer action owns the pipeline", "current_generation", sup.Current)
		if s.Metrics != nil {
			s.Metrics.Superseded(ctx, st.Pipeline, st.Generation, string(st.Kind))
		}
	default:
		log.Warn("step failed", "error_type", fmt.Sprintf("%T", err), "error", err.Error())
	}
	return out, err
}

func (s *Steps) cause(req Request) store.Cause {
	return store.Cause{Action: req.Step, Actor: "workflow", Execution: req.Execution}
}

// current reads the record and fences on the generation.
func (s *Steps) current(ctx context.Context, st Payload) (domain.Pipeline, error) {
	p, err := s.Store.Get(ctx, st.Pipeline)
	if err != nil {
		return p, s.storeError("read", err)
	}
	if st.PipelineID != "" && p.ID != st.PipelineID {
		return p, &NotApplicableError{Pipeline: st.Pipeline, Reason: "the pipeline was deleted and re-created"}
	}
	if p.Generation != st.Generation {
		return p, &SupersededError{Pipeline: st.Pipeline, Generation: st.Generation, Current: p.Generation}
	}
	return p, nil
}

// fenced is a step that starts from the current record: it reads it
// (current, fenced on the generation) and hands it to step; a failed read
// ends the step with its input state and that error.
func fenced(s *Steps, step func(context.Context, Request, domain.Pipeline) (Payload, error)) func(context.Context, Request) (Payload, error) {
	return func(ctx context.Context, req Request) (Payload, error) {
		p, err := s.current(ctx, req.State)
		if err != nil {
			return req.State, err
		}
		return step(ctx, req, p)
	}
}

// transition applies a fenced status write and maps the store's outcomes to
// the step errors. A write also records that this execution runs when the
// record still calls it PENDING (domain.MarkWorkflowRunning): the API records
// the ref before StartExecution and writes nothing after it, so the
// workflow's first status write is the moment its ref becomes RUNNING.
//
// read, when set, is the record the step has just read (current): the store
// decides on it first instead of reading again (Store.TransitionFrom).
func (s *Steps) transition(ctx context.Context, req Request, read *domain.Pipeline, tr domain.Transition) (domain.Pipeline, error) {
	id, inner := req.State.PipelineID, tr
	tr = func(p domain.Pipeline, now time.Time) (domain.Pipeline, error) {
		if id != "" && p.ID != id {
			return domain.Pipeline{}, &domain.UnexpectedStatusError{Transition: req.Step + " (the pipeline was re-created)",
				Status: p.DeploymentStatus(), Desired: p.DeploymentDesiredStatus()}
		}
		next, err := inner(p, now)
		if err == nil && next.RefreshVersion != p.RefreshVersion {
			domain.MarkWorkflowRunning(&next, req.Execution)
		}
		return next, err
	}
	var (
		p   domain.Pipeline
		err error
	)
	if read != nil && read.Name == req.State.Pipeline && read.Generation == req.State.Generation {
		p, err = s.Store.TransitionFrom(ctx, *read, tr, s.cause(req))
	} else {
		p, err = s.Store.Transition(ctx, req.State.Pipeline, req.State.Generation, tr, s.cause(req))
	}
	var sup *store.SupersededError
	var conflict *store.ConflictError
	switch {
	case err == nil:
		return p, nil
	case errors.As(err, &sup):
		return sup.Current, &SupersededError{Pipeline: req.State.Pipeline, Generation: req.State.Generation, Current: sup.Current.Generation}
	case errors.As(err, &conflict):
		return conflict.Current, &NotApplicableError{Pipeline: req.State.Pipeline, Reason: conflict.Error()}
	}
	return p, s.storeError(req.Step, err)
}

func (s *Steps) storeError(op string, err error) error {
	var de *domain.Error
	if errors.As(err, &de) && de.Code == domain.CodeUnknownPipelineName {
		// The pipeline was deleted: nothing left to drive.
		return &NotApplicableError{Reason: "the pipeline no longer exists"}
	}
	return &TemporaryError{Step: op, Cause: err.Error()}
}

func (s *Steps) runtime(location string) (Runtime, error) {
	if location == "" {
		return nil, controlPlane("NoDeploymentLocation", "the pipeline has no deployment location")
	}
	rt, err := s.RuntimeFor(location)
	if err != nil {
		return nil, controlPlane("InvalidDeploymentLocation", err.Error())
	}
	return rt, nil
}

// statusOf asks the runtime at location for its status. temporary: it is
// unreachable or answered 503 (not an error: the loop tries again); any
// other failure of the runtime is runtimeFailure(failure, …).
func (s *Steps) statusOf(ctx context.Context, location, failure string) (rt Runtime, report runtimeclient.StatusReport, temporary bool, err error) {
	if rt, err = s.runtime(location); err != nil {
		return nil, report, false, err
	}
	report, err = rt.Status(ctx)
	switch {
	case runtimeclient.IsTemporary(err):
		return rt, report, true, nil
	case err != nil:
		return rt, report, false, runtimeFailure(failure, err)
	}
	return rt, report, false, nil
}

// backoff is capped exponential backoff with equal jitter: half the delay is
// fixed, so a loop never spins, and half is random, so a fleet of pipelines
// stopped together does not poll in lockstep.
func (s *Steps) backoff(attempt int, base, limit time.Duration) int {
	d := base
	for i := 0; i < attempt && d < limit; i++ {
		d *= 2
	}
	d = min(d, limit)
	r := rand.Float64
	if s.Rand != nil {
		r = s.Rand
	}
	secs := d.Seconds()/2 + r()*d.Seconds()/2
	return max(1, int(secs+0.5))
}

// deploymentIDFor is deterministic per pipeline id and generation, so a
// repeated MarkProvisioning step provisions the same deployment.
func deploymentIDFor(p domain.Pipeline) string {
	return uuid.NewSHA1(uuid.NameSpaceOID, fmt.Appendf(nil, "sluice/%s/%d", p.ID, p.Generation)).String()
}

func (s *Steps) markProvisioning(ctx context.Context, req Request, p domain.Pipeline) (Payload, error) {
	st := req.State
	id := deploymentIDFor(p)
	p, err := s.transition(ctx, req, &p, domain.MarkProvisioning(id))
	if err != nil {
		return st, err
	}
	st.DeploymentID = id
	// The provisioning timeout counts from when the pipeline entered
	// Provisioning, as the record says, not from this execution's start: an
	// execution that continues the readiness loop, or that the reconciler
	// restarted, starts here again and must keep the original deadline (and
	// a repeated step computes the same one).
	entered := p.ResourcesStatusSince
	if p.ResourcesStatus != domain.ResourcesProvisioning || entered.IsZero() {
		entered = s.now()
	}
	st.Deadline = entered.Add(s.Config.withDefaults().ProvisioningTimeout)
	st.Attempt, st.Done = 0, false
	return st, nil
}

func (s *Steps) provision(ctx context.Context, req Request, p domain.Pipeline) (Payload, error) {
	st := req.State
	// The runtime starts in the runtime desired status of the moment: a
	// pause or start accepted while the pipeline was starting changed it.
	initial := domain.InitialRunning
	if p.DeploymentInitial != nil {
		initial = *p.DeploymentInitial
	}
	if p.RuntimeDesiredStatus != nil && *p.RuntimeDesiredStatus == domain.RuntimeDesiredPaused {
		initial = domain.InitialPaused
	} else if p.RuntimeDesiredStatus != nil && *p.RuntimeDesiredStatus == domain.RuntimeDesiredRunning {
		initial = domain.InitialRunning
	}
	dep, err := s.Driver.Provision(ctx, compute.ProvisionRequest{
		Pipeline: p.Name, PipelineID: p.ID, DeploymentID: st.DeploymentID, RuntimeConfig: p.RuntimeConfig, Initial: string(initial),
		Program: compute.Program{Version: p.ProgramVersion, Code: p.ProgramCode, UdfRust: p.UdfRust, UdfToml: p.UdfToml, Config: p.ProgramConfig},
	})
	if err != nil {
		return st, s.provisionError(err)
	}
	// Fence again: a forced stop that arrived while provisioning deprovisions
	// by the deployment id recorded before; if it already ran, clean up here.
	if _, err := s.current(ctx, st); err != nil {
		var sup *SupersededError
		if errors.As(err, &sup) {
			if derr := s.Driver.Deprovision(ctx, p.Name, st.DeploymentID); derr != nil {
				return st, s.computeError("deprovision superseded deployment", derr)
			}
		}
		return st, err
	}
	st.Location = dep.Location
	return st, nil
}

// computeError maps a failed compute driver call other than Provision: a
// temporary failure is retried; a permanent one is the control plane's (the
// driver cannot check, deprovision or clear what it provisioned), never a
// reason to force-stop the pipeline.
func (s *Steps) computeError(op string, err error) error {
	if temporaryCompute(err) {
		return &TemporaryError{Step: op, Cause: err.Error()}
	}
	return controlPlane("ComputeError", fmt.Sprintf("%s failed: %v", op, err))
}

// provisionError maps a failed Provision: a driver that refuses a deployment
// permanently means the pipeline's compute can never be provisioned (SPEC:
// a provisioning failure force-stops the pipeline with the error recorded).
func (s *Steps) provisionError(err error) error {
	if temporaryCompute(err) {
		return &TemporaryError{Step: "provision", Cause: err.Error()}
	}
	return computeFailed("ComputeError", fmt.Sprintf("provision failed: %v", err), nil)
}

// temporaryCompute: the driver says retrying may help, or the call ran out of
// time or was cancelled (the step's own deadline, not the pipeline's fault).
func temporaryCompute(err error) bool {
	return errors.Is(err, compute.ErrTemporary) || errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled)
}

func (s *Steps) checkReadiness(ctx context.Context, req Request) (Payload, error) {
	st := req.State
	cfg := s.Config.withDefaults()
	if _, err := s.current(ctx, st); err != nil {
		return st, err
	}
	if !st.Deadline.IsZero() && s.now().After(st.Deadline) {
		return st, computeFailed("ProvisioningTimeout",
			fmt.Sprintf("the runtime did not become ready within %s of provisioning", cfg.ProvisioningTimeout), nil)
	}
	st.Attempt++
	st.WaitSeconds = s.backoff(st.Attempt-1, cfg.ReadinessBackoffBase, cfg.ReadinessBackoffCap)
	// notYet ends an iteration that found the runtime not ready, whatever
	// the reason: the loop's bound applies to every such iteration.
	notYet := func() (Payload, error) {
		if st.Attempt >= cfg.MaxIterations {
			st.Continue = true
		}
		return st, nil
	}
	check, err := s.Driver.Check(ctx, st.Pipeline, st.DeploymentID)
	if err != nil {
		return st, s.computeError("check", err)
	}
	if check.State == compute.StateGone {
		return st, computeFailed("ComputeVanished", "the pipeline's compute exited while starting: "+check.Reason, nil)
	}
	if st.Location == "" {
		st.Location = check.Location
	}
	if st.Location == "" || check.State == compute.StateStarting && check.Location == "" {
		return notYet()
	}
	_, report, temporary, err := s.statusOf(ctx, st.Location, "the runtime failed while starting")
	switch {
	case err != nil:
		return st, err
	case temporary:
		return notYet()
	}
	switch report.RuntimeStatus {
	case domain.RuntimeRunning, domain.RuntimePaused:
		st.Done, st.Observed = true, report.RuntimeStatus
		return st, nil
	case domain.RuntimeSuspending, domain.RuntimeSuspended:
		return st, runtimeFailed("UnexpectedRuntimeStatus", fmt.Sprintf("a new runtime reported %s", report.RuntimeStatus), nil)
	}
	return notYet()
}

// runtimeFailure keeps the runtime's own error body as the deployment error.
// The step's own deadline or cancellation (the Lambda running out of time) is
// no failure of the runtime: it is retried.
func runtimeFailure(what string, err error) error {
	if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled) {
		return &TemporaryError{Step: what, Cause: err.Error()}
	}
	var fatal *runtimeclient.FatalError
	if errors.As(err, &fatal) {
		details := map[string]any{"http_status": fatal.StatusCode, "runtime_call": fatal.Op}
		if len(fatal.Body.Details) > 0 {
			var d any
			if json.Unmarshal(fatal.Body.Details, &d) == nil {
				details["runtime_details"] = d
			}
		}
		code := fatal.Body.ErrorCode
		if code == "" {
			code = "RuntimeError"
		}
		msg := fatal.Body.Message
		if msg == "" {
			msg = what
		}
		return runtimeFailed(code, msg, details)
	}
	return runtimeFailed("RuntimeError", fmt.Sprintf("%s: %v", what, err), nil)
}

func (s *Steps) markProvisioned(ctx context.Context, req Request) (Payload, error) {
	st := req.State
	p, err := s.transition(ctx, req, nil, domain.MarkProvisioned(st.Location, st.Observed))
	if err != nil {
		return st, err
	}
	s.tellRuntimeDesired(ctx, p, req)
	return st, nil
}

// tellRuntimeDesired forwards a pause or start that was accepted after the
// runtime was launched (the runtime came up in the status asked for at
// provisioning). Best effort: the reconciler converges the runtime too.
func (s *Steps) tellRuntimeDesired(ctx context.Context, p domain.Pipeline, req Request) {
	st := req.State
	if p.RuntimeStatus == nil {
		return
	}
	call := domain.ConvergeRuntime(p, *p.RuntimeStatus)
	if call == "" {
		return
	}
	rt, err := s.runtime(st.Location)
	if err != nil {
		return
	}
	pr, ok := rt.(interface {
		Pause(ctx context.Context) error
		Start(ctx context.Context) error
	})
	if !ok {
		return
	}
	if call == domain.ForwardPause {
		err = pr.Pause(ctx)
	} else {
		err = pr.Start(ctx)
	}
	if err != nil {
		s.logger().Warn("could not tell the new runtime its desired status; the reconciler converges it",
			"pipeline", p.Name, "call", string(call), "error", err.Error())
		return
	}
	// Record the runtime's new status at once (pollers wait for it), as the
	// API does after a forwarded pause or resume; bounded, then the
	// reconciler's next pass.
	target := call.Status()
	rep, err := runtimeclient.AwaitStatus(ctx, rt.Status, target)
	if err != nil {
		return
	}
	_, _ = s.Store.Transition(ctx, p.Name, p.Generation, domain.ObserveRuntime(rep.RuntimeStatus, rep.StorageStatusDetails),
		store.Cause{Action: "ObserveRuntime", Actor: "workflow", Execution: req.Execution})
}

// suspended: the suspend already succeeded (MarkSuspended was written; the
// resources are Stopping and only the deprovisioning is left). An execution
// restarted or continued after that point finds it so, and must go on to
// Deprovision rather than ask the runtime again or end as not applicable.
func suspended(p domain.Pipeline) bool {
	return p.RuntimeStatus != nil && *p.RuntimeStatus == domain.RuntimeSuspended
}

func (s *Steps) markSuspending(ctx context.Context, req Request, p domain.Pipeline) (Payload, error) {
	st := req.State
	if !suspended(p) {
		next, err := s.transition(ctx, req, &p, domain.MarkSuspending())
		if err != nil {
			return st, err
		}
		p = next
	}
	if p.DeploymentID != nil {
		st.DeploymentID = *p.DeploymentID
	}
	if p.DeploymentLocation != nil {
		st.Location = *p.DeploymentLocation
	}
	st.Attempt, st.Done = 0, false
	return st, nil
}

func (s *Steps) requestSuspend(ctx context.Context, req Request, p domain.Pipeline) (Payload, error) {
	st := req.State
	if suspended(p) {
		return st, nil
	}
	rt, err := s.runtime(st.Location)
	if err != nil {
		return st, err
	}
	// A temporarily unable runtime is not an error here: the wait loop keeps
	// asking until it accepts.
	if err := rt.Suspend(ctx); err != nil && !runtimeclient.IsTemporary(err) {
		return st, runtimeFailure("the runtime refused to suspend", err)
	}
	return st, nil
}

func (s *Steps) checkSuspend(ctx context.Context, req Request, p domain.Pipeline) (Payload, error) {
	st := req.State
	cfg := s.Config.withDefaults()
	if suspended(p) {
		// Recorded before (the checkpoint list with it): nothing to ask.
		st.Done = true
		return st, nil
	}
	if p.ResourcesDesiredStatus == domain.ResourcesDesiredStopped {
		return st, &NotApplicableError{Pipeline: p.Name, Reason: "the pipeline is being force-stopped"}
	}
	st.Attempt++
	st.WaitSeconds = s.backoff(st.Attempt-1, cfg.SuspendBackoffBase, cfg.SuspendBackoffCap)
	rt, report, temporary, err := s.statusOf(ctx, st.Location, "the suspend failed")
	switch {
	case err != nil:
		return st, err
	case temporary:
		// Unreachable or 503: keep trying.
	case report.RuntimeStatus == domain.RuntimeSuspended:
		st.Done = true
		st.StorageDetails = report.StorageStatusDetails
		return st, nil
	case report.RuntimeStatus != domain.RuntimeSuspending:
		// The runtime never registered the request (it was unavailable, or
		// restarted): ask again; the request is idempotent.
		if err := rt.Suspend(ctx); err != nil && !runtimeclient.IsTemporary(err) {
			return st, runtimeFailure("the runtime refused to suspend", err)
		}
	}
	if st.Attempt >= cfg.MaxIterations {
		st.Continue = true
	}
	return st, nil
}

func (s *Steps) markSuspended(ctx context.Context, req Request, before domain.Pipeline) (Payload, error) {
	st := req.State
	details := st.StorageDetails
	if len(details) > domain.MaxStorageDetailsBytes {
		details = nil
	}
	p, err := s.transition(ctx, req, &before, domain.MarkSuspended(details))
	if err == nil && p.DeploymentID != nil {
		st.DeploymentID = *p.DeploymentID
	}
	if err == nil && p.RefreshVersion != before.RefreshVersion && s.Metrics != nil {
		s.Metrics.SuspendAttempts(ctx, p.Name, p.Generation, st.Attempt)
	}
	return st, err
}

func (s *Steps) markStopping(ctx context.Context, req Request, p domain.Pipeline) (Payload, error) {
	st, _, err := s.toStopping(ctx, req, p, nil)
	return st, err
}

func (s *Steps) recordError(ctx context.Context, req Request, p domain.Pipeline) (Payload, error) {
	cause := causeFromCatch(req.State.Error)
	st, hadError, err := s.toStopping(ctx, req, p, cause)
	if err == nil && !st.AlreadyStopped && !hadError && s.Metrics != nil {
		s.Metrics.ForcedStopWithError(ctx, st.Pipeline, st.Generation, cause.ErrorCode)
	}
	return st, err
}

// toStopping moves the pipeline p (the current record) to Stopping,
// recording cause as its deployment_error when set, unless it is Stopped
// already (AlreadyStopped: the workflow has nothing left to do). hadError
// tells whether an error was recorded before, so a repeated step is not
// counted twice.
func (s *Steps) toStopping(ctx context.Context, req Request, p domain.Pipeline, cause *domain.ErrorBody) (st Payload, hadError bool, err error) {
	st = req.State
	if p.ResourcesStatus == domain.ResourcesStopped {
		st.AlreadyStopped = true
		return st, p.DeploymentError != nil, nil
	}
	hadError = p.DeploymentError != nil
	tr := domain.MarkStopping()
	if cause != nil {
		tr = domain.MarkFailed(cause)
	}
	if p, err = s.transition(ctx, req, &p, tr); err != nil {
		return st, hadError, err
	}
	if p.DeploymentID != nil {
		st.DeploymentID = *p.DeploymentID
	}
	return st, hadError, nil
}

func (s *Steps) deprovision(ctx context.Context, req Request, p domain.Pipeline) (Payload, error) {
	st := req.State
	id := st.DeploymentID
	if id == "" && p.DeploymentID != nil {
		id = *p.DeploymentID
	}
	if id == "" {
		return st, nil // never provisioned
	}
	if err := s.Driver.Deprovision(ctx, p.Name, id); err != nil {
		return st, s.computeError("deprovision", err)
	}
	return st, nil
}

func (s *Steps) markStopped(ctx context.Context, req Request, before domain.Pipeline) (Payload, error) {
	after, err := s.transition(ctx, req, &before, domain.MarkStopped())
	if err == nil && before.ResourcesStatus != domain.ResourcesStopped && s.Metrics != nil {
		graceful, since := stopRequestedAt(before)
		s.Metrics.StopCompleted(ctx, after.Name, after.Generation, !graceful, after.ResourcesStatusSince.Sub(since))
	}
	return req.State, err
}

// stopRequestedAt tells how a pipeline that is Stopping was stopped, and
// since when: a graceful stop since its runtime desired status became
// Suspended, a forced one since its resources desired status became Stopped.
func stopRequestedAt(p domain.Pipeline) (graceful bool, since time.Time) {
	if p.RuntimeStatus != nil && *p.RuntimeStatus == domain.RuntimeSuspended && p.RuntimeDesiredStatusSince != nil {
		return true, *p.RuntimeDesiredStatusSince
	}
	return false, p.ResourcesDesiredStatusSince
}

func (s *Steps) clearStorage(ctx context.Context, req Request, p domain.Pipeline) (Payload, error) {
	st := req.State
	if p.StorageStatus != domain.StorageClearing {
		return st, &NotApplicableError{Pipeline: p.Name, Reason: "storage is not being cleared"}
	}
	if err := s.Driver.ClearStorage(ctx, p.Name, p.ID); err != nil {
		return st, s.computeError("clear storage", err)
	}
	return st, nil
}

func (s *Steps) markStorageCleared(ctx context.Context, req Request) (Payload, error) {
	_, err := s.transition(ctx, req, nil, domain.MarkStorageCleared())
	return req.State, err
}

// continueAsNew starts the next execution of this generation's workflow and
// records it; this execution then ends. The new execution starts its loop
// again (a suspend request is idempotent, a readiness check is a read).
func (s *Steps) continueAsNew(ctx context.Context, req Request, p domain.Pipeline) (Payload, error) {
	st := req.State
	ref, err := s.Continuer.Continue(ctx, p, st.Kind, st.Continuation+1)
	if err != nil {
		return st, &TemporaryError{Step: StepContinueAsNew, Cause: err.Error()}
	}
	if _, err := s.Store.SetWorkflow(ctx, p.Name, ref); err != nil {
		var sup *store.SupersededError
		if errors.As(err, &sup) {
			return st, &SupersededError{Pipeline: p.Name, Generation: st.Generation, Current: sup.Current.Generation}
		}
		return st, s.storeError(StepContinueAsNew, err)
	}
	st.Continuation++
	return st, nil
}
