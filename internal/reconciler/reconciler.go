// Package reconciler is the safety net of the level-triggered design: run on a
// schedule (every minute on AWS), it (a) observes every provisioned pipeline —
// the runtime's GET /status and the compute driver's check — recording runtime
// status changes and force-stopping, with deployment_error set, a pipeline
// whose process vanished or whose runtime reports a fatal error; and (b)
// starts the pending workflow of every pipeline that has not converged to its
// desired state and has no live workflow. Losing any one message or execution
// therefore delays convergence, never breaks it.
package reconciler

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"log/slog"
	"strconv"
	"sync"
	"time"

	"github.com/sluicehq/sluice/internal/compute"
	"github.com/sluicehq/sluice/internal/domain"
	"github.com/sluicehq/sluice/internal/metrics"
	"github.com/sluicehq/sluice/internal/runtimeclient"
	"github.com/sluicehq/sluice/internal/steps"
	"github.com/sluicehq/sluice/internal/store"
	"github.com/sluicehq/sluice/internal/workflow"
)

// Workflows is what the reconciler needs of the workflow service.
type Workflows interface {
	// StartAttempt starts attempt n of the workflow of p's generation (attempt
	// 0 has the name the API uses, so starting it again is idempotent).
	StartAttempt(ctx context.Context, p domain.Pipeline, kind domain.WorkflowKind, attempt int) (domain.WorkflowRef, error)
	// IsRunning reports whether the execution is still running.
	IsRunning(ctx context.Context, ref domain.WorkflowRef) (bool, error)
	// Status is the execution's status as DescribeExecution reports it
	// (RUNNING, SUCCEEDED, …); "" when it does not exist.
	Status(ctx context.Context, ref domain.WorkflowRef) (string, error)
	// Stop stops an execution, best effort.
	Stop(ctx context.Context, ref domain.WorkflowRef, cause string) error
}

// Reconciler runs one pass at a time.
type Reconciler struct {
	Store      store.Store
	Workflows  Workflows
	Driver     compute.Driver
	RuntimeFor func(location string) (steps.Runtime, error)
	Logger     *slog.Logger
	// PageSize of the List scan.
	PageSize int
	// Metrics receives StuckPipelines on every pass and ForcedStopWithError
	// (EMF). Nil: none.
	Metrics *metrics.Emitter
	// StuckThreshold: a pipeline Stopping or Suspending for longer is stuck
	// (metrics.DefaultStuckThreshold when zero).
	StuckThreshold time.Duration
	// Now is the clock (time.Now when nil).
	Now func() time.Time
	// Workers bounds the pipelines a pass reconciles at once (DefaultWorkers
	// when zero; 1 makes the pass serial).
	Workers int
	// StopMargin: a pass whose context has a deadline takes no new pipeline
	// once less than this remains (DefaultStopMargin when zero).
	StopMargin time.Duration
	// PendingGrace: a workflow ref still PENDING (recorded by the API's
	// write before StartExecution) whose execution does not exist is taken
	// for a start that never happened once it is this old, and started
	// under its recorded name (DefaultPendingGrace when zero).
	PendingGrace time.Duration
	// Shards > 1 splits the pass: this one reconciles only the pipelines
	// whose ShardOf(name, Shards) is Shard (0 ≤ Shard < Shards), so Shards
	// concurrent passes cover every pipeline once. It still lists them all.
	// Each shard keeps its own resume point (resume.go).
	Shards, Shard int

	// cut, when set, replaces the deadline check (nearDeadline) before each
	// pipeline is taken, given the number this pass took so far: tests cut
	// a pass after N pipelines without a clock. Nil in production.
	cut func(ctx context.Context, taken int) bool
}

// Report counts what one pass did.
type Report struct {
	Pipelines        int `json:"pipelines"`
	Observed         int `json:"observed"`
	RuntimeChanges   int `json:"runtime_changes"`
	ForcedStops      int `json:"forced_stops"`
	WorkflowsStarted int `json:"workflows_started"`
	WorkflowsStopped int `json:"workflows_stopped"`
	Errors           int `json:"errors"`
	Stuck            int `json:"stuck"`
	RuntimeActions   int `json:"runtime_actions"`
	// WorkflowsRepaired counts records whose workflow ref claimed an
	// execution that had ended was running, corrected.
	WorkflowsRepaired int `json:"workflows_repaired"`
	// Left counts the listed pipelines the pass did not take because its
	// deadline was near; Unfinished says it stopped early (the pages after
	// the one it stopped in were not listed). The next pass takes them.
	Left       int  `json:"left"`
	Unfinished bool `json:"unfinished"`
	// ResumedFrom is the name this pass started from, the resume point an
	// unfinished pass recorded before it; "" when it started at the first
	// name. A pass that resumes lists from there to the last name, then from
	// the first name up to it: every pipeline once (a ring).
	ResumedFrom string `json:"resumed_from,omitempty"`
	// NextFrom is where the next pass starts, as this unfinished pass
	// recorded it: the first pipeline it did not take. "" when the pass
	// finished its ring (its resume point is then cleared) or could not
	// record one (CursorError; the next pass then starts where this one did).
	NextFrom string `json:"next_from,omitempty"`
	// CursorError says why the resume point could not be read, used,
	// recorded or cleared. The cursor is only a hint: the pass went on (from
	// the first name when it could not use one).
	CursorError string `json:"cursor_error,omitempty"`
	// Workers is the pass's concurrency bound.
	Workers int `json:"workers"`
}

func (r *Reconciler) isStuck(p domain.Pipeline) bool {
	threshold := r.StuckThreshold
	if threshold <= 0 {
		threshold = metrics.DefaultStuckThreshold
	}
	return metrics.IsStuck(string(p.DeploymentStatus()), p.DeploymentStatusSince, r.now(), threshold)
}

func (r *Reconciler) logger() *slog.Logger {
	if r.Logger != nil {
		return r.Logger
	}
	return slog.Default()
}

// DefaultWorkers is the number of pipelines a pass reconciles at once when
// Reconciler.Workers is zero.
const DefaultWorkers = 32

// DefaultStopMargin is how long before its context's deadline a pass stops
// taking new pipelines when Reconciler.StopMargin is zero: enough for the
// pipelines in flight to finish their calls (a runtime status call times out
// after 5 s, runtimeclient.DefaultTimeouts) before the Lambda times out.
const DefaultStopMargin = 10 * time.Second

// Run makes one pass over every pipeline (of its shard, see Shards), at most
// Workers at a time; each is re-read strongly consistently and its
// observations fenced exactly as when a pass was serial (reconcileListed).
// Errors on one pipeline are logged and counted; the pass goes on with the
// others. When ctx has a deadline, the pass takes no new pipeline once less
// than StopMargin remains: it waits for the ones in flight and reports the
// listed pipelines it left (Report.Left, Report.Unfinished) to the next pass,
// and records the first one it did not take as the shard's resume point.
// A pass that finds a resume point starts there and wraps around (ring);
// one that completes its ring clears the point (resume.go).
func (r *Reconciler) Run(ctx context.Context) (rep Report, err error) {
	stuck := map[string]int{string(domain.CombinedStopping): 0, string(domain.CombinedSuspending): 0}
	defer func() {
		rep.Stuck = stuck[string(domain.CombinedStopping)] + stuck[string(domain.CombinedSuspending)]
		if r.Metrics != nil && ctx.Err() == nil {
			r.Metrics.StuckPipelines(ctx, stuck)
		}
	}()
	workers := r.Workers
	if workers <= 0 {
		workers = DefaultWorkers
	}
	var (
		mu   sync.Mutex // guards done (the workers' counts)
		done Report
		wg   sync.WaitGroup
		sem  = make(chan struct{}, workers)
	)
	defer func() {
		wg.Wait()
		own := rep
		rep = done
		rep.Pipelines, rep.Left, rep.Unfinished, rep.Workers = own.Pipelines, own.Left, own.Unfinished, workers
		rep.ResumedFrom, rep.NextFrom, rep.CursorError = own.ResumedFrom, own.NextFrom, own.CursorError
	}()
	size := r.PageSize
	if size <= 0 {
		size = 100
	}
	key := r.cursorKey()
	start, corrupt := r.resumePoint(ctx, key, &rep)
	ring := ringOf(start)
	for seg, part := range ring {
		token := ""
		for {
			page, next, err := r.listPage(ctx, part, token, size)
			if err != nil {
				return rep, fmt.Errorf("list pipelines: %w", err)
			}
			if r.Shards > 1 {
				page = r.ofShard(page)
			}
			for i, p := range page {
				select {
				case sem <- struct{}{}: // a worker is free
				case <-ctx.Done():
					return rep, ctx.Err()
				}
				if ctx.Err() != nil {
					<-sem
					return rep, ctx.Err()
				}
				if r.stopNow(ctx, rep.Pipelines) {
					<-sem
					rep.Left, rep.Unfinished = len(page)-i, true
					r.recordResume(ctx, key, start, p.Name, &rep)
					r.logger().Warn("reconciler pass stopped before its deadline; the next pass takes the rest",
						"pipelines", rep.Pipelines, "left_listed", rep.Left, "more_pages", next != "" || seg < len(ring)-1,
						"shard", key.String(), "resumed_from", start, "next_from", rep.NextFrom)
					return rep, nil
				}
				rep.Pipelines++
				if r.isStuck(p) {
					stuck[string(p.DeploymentStatus())]++
					r.logger().Warn("pipeline stuck", "pipeline", p.Name, "generation", p.Generation,
						"status", p.DeploymentStatus(), "since", p.DeploymentStatusSince)
				}
				wg.Add(1)
				go func() {
					defer func() { <-sem; wg.Done() }()
					var one Report
					err := r.reconcileListed(ctx, p, &one)
					if err != nil {
						one.Errors++
						r.logger().Error("reconcile failed", "pipeline", p.Name, "generation", p.Generation, "error", err.Error())
					}
					mu.Lock()
					done.add(one)
					mu.Unlock()
				}()
			}
			if next == "" {
				break
			}
			token = next
		}
	}
	r.ringDone(ctx, key, start, corrupt, &rep)
	return rep, nil
}

// add adds the counts of what was done to pipelines (not Pipelines, Stuck,
// Left, Unfinished, the resume point's fields, Workers: the pass's own).
func (rep *Report) add(o Report) {
	rep.Observed += o.Observed
	rep.RuntimeChanges += o.RuntimeChanges
	rep.ForcedStops += o.ForcedStops
	rep.WorkflowsStarted += o.WorkflowsStarted
	rep.WorkflowsStopped += o.WorkflowsStopped
	rep.Errors += o.Errors
	rep.RuntimeActions += o.RuntimeActions
	rep.WorkflowsRepaired += o.WorkflowsRepaired
}

// nearDeadline: ctx ends in less than the stop margin.
func (r *Reconciler) nearDeadline(ctx context.Context) bool {
	deadline, ok := ctx.Deadline()
	if !ok {
		return false
	}
	margin := r.StopMargin
	if margin <= 0 {
		margin = DefaultStopMargin
	}
	return time.Until(deadline) < margin
}

// ShardOf is the shard of a pipeline among n (FNV-1a of its name, mod n):
// stable, so a pipeline is always observed by the same shard.
func ShardOf(name string, n int) int {
	if n <= 1 {
		return 0
	}
	h := fnv.New32a()
	_, _ = h.Write([]byte(name))
	return int(h.Sum32() % uint32(n))
}

func (r *Reconciler) ofShard(page []domain.Pipeline) []domain.Pipeline {
	mine := page[:0:0]
	for _, p := range page {
		if ShardOf(p.Name, r.Shards) == r.Shard {
			mine = append(mine, p)
		}
	}
	return mine
}

// Reconcile makes one pass over a single pipeline (also used after a
// forwarded action, to observe the runtime at once).
func (r *Reconciler) Reconcile(ctx context.Context, name string) (Report, error) {
	var rep Report
	p, err := r.Store.Get(ctx, name)
	if err != nil {
		return rep, err
	}
	rep.Pipelines = 1
	return rep, r.reconcile(ctx, p, &rep)
}

// reconcileListed reconciles a pipeline as List returned it. List reads an
// eventually consistent index, so the listed record may lag the table (a
// graceful stop listed Suspending may already be Stopping, its compute
// deprovisioned on purpose): the pass acts only on a strongly consistent
// re-read, and its observations are fenced by the deployment they observed
// (domain.DeploymentFailed, domain.ObserveRuntimeOf). A listed pipeline that
// is fully stopped and converged, with no workflow recorded as live, needs
// nothing and is not re-read.
func (r *Reconciler) reconcileListed(ctx context.Context, listed domain.Pipeline, rep *Report) error {
	if listed.FullyStopped() && listed.Converged() && (listed.Workflow == nil || !domain.WorkflowLive(listed.Workflow.Status)) {
		return nil
	}
	p, err := r.Store.Get(ctx, listed.Name)
	var de *domain.Error
	if errors.As(err, &de) && de.Code == domain.CodeUnknownPipelineName {
		return nil // deleted since it was listed
	}
	if err != nil {
		return fmt.Errorf("re-read: %w", err)
	}
	return r.reconcile(ctx, p, rep)
}

func (r *Reconciler) reconcile(ctx context.Context, p domain.Pipeline, rep *Report) error {
	forced := false
	if p.ResourcesStatus == domain.ResourcesProvisioned && p.DeploymentID != nil {
		before := rep.ForcedStops
		next, err := r.observe(ctx, p, rep)
		if err != nil {
			return err
		}
		p, forced = next, rep.ForcedStops > before
	}
	return r.converge(ctx, p, forced, rep)
}

func (r *Reconciler) cause(action string) store.Cause {
	return store.Cause{Action: action, Actor: "reconciler"}
}

// observe checks the compute and the runtime of a provisioned pipeline.
func (r *Reconciler) observe(ctx context.Context, p domain.Pipeline, rep *Report) (domain.Pipeline, error) {
	rep.Observed++
	check, err := r.Driver.Check(ctx, p.Name, *p.DeploymentID)
	if err != nil {
		return p, fmt.Errorf("compute check: %w", err)
	}
	if check.State == compute.StateGone {
		return r.forceStop(ctx, p, *p.DeploymentID, &domain.ErrorBody{ErrorCode: "ComputeVanished",
			Message: "The pipeline's compute is gone: " + check.Reason, Details: map[string]any{"reason": check.Reason}}, rep)
	}
	if p.DeploymentLocation == nil {
		return p, nil
	}
	rt, err := r.RuntimeFor(*p.DeploymentLocation)
	if err != nil {
		return p, err
	}
	report, err := rt.Status(ctx)
	var fatal *runtimeclient.FatalError
	switch {
	case runtimeclient.IsTemporary(err):
		return r.record(ctx, p, domain.ObserveRuntimeOf(*p.DeploymentID, domain.RuntimeUnavailable, nil), rep)
	case errors.As(err, &fatal):
		if p.StopInProgress() {
			// The stop's own workflow reports the runtime's failure.
			return p, nil
		}
		code := fatal.Body.ErrorCode
		if code == "" {
			code = "RuntimeError"
		}
		return r.forceStop(ctx, p, *p.DeploymentID, &domain.ErrorBody{ErrorCode: code,
			Message: "The pipeline's runtime reported a fatal error: " + fatal.Body.Message, Details: map[string]any{"http_status": fatal.StatusCode}}, rep)
	case err != nil:
		return p, fmt.Errorf("runtime status: %w", err)
	}
	next, err := r.record(ctx, p, domain.ObserveRuntimeOf(*p.DeploymentID, report.RuntimeStatus, report.StorageStatusDetails), rep)
	if err != nil {
		return next, err
	}
	r.forwardDesired(ctx, next, report.RuntimeStatus, rt, rep)
	return next, nil
}

// pauser is the part of the runtime protocol that moves a runtime between
// Running and Paused (runtimeclient.Client has it).
type pauser interface {
	Pause(ctx context.Context) error
	Start(ctx context.Context) error
}

// forwardDesired converges the runtime on its desired Running or Paused: a
// pause or resume whose forwarding failed after the desired status was
// written (or two forwarded in the opposite order) is sent again, so the
// runtime layer is level-triggered too.
func (r *Reconciler) forwardDesired(ctx context.Context, p domain.Pipeline, observed domain.RuntimeStatus, rt steps.Runtime, rep *Report) {
	call := domain.ConvergeRuntime(p, observed)
	if call == "" {
		return
	}
	pr, ok := rt.(pauser)
	if !ok {
		return
	}
	var err error
	if call == domain.ForwardPause {
		err = pr.Pause(ctx)
	} else {
		err = pr.Start(ctx)
	}
	rep.RuntimeActions++
	if err != nil {
		r.logger().Warn("could not move the runtime to its desired status; next pass", "pipeline", p.Name, "generation", p.Generation,
			"desired", *p.RuntimeDesiredStatus, "observed", observed, "error", err.Error())
		return
	}
	r.logger().Info("runtime moved to its desired status", "pipeline", p.Name, "generation", p.Generation, "desired", *p.RuntimeDesiredStatus)
}

func (r *Reconciler) record(ctx context.Context, p domain.Pipeline, tr domain.Transition, rep *Report) (domain.Pipeline, error) {
	// p is the pass's strongly consistent re-read: decided on, not read
	// again (a write since loses the condition and is decided again).
	next, err := r.Store.TransitionFrom(ctx, p, tr, r.cause("ObserveRuntime"))
	if err != nil {
		if cur, ok := movedOn(err); ok {
			return cur, nil // a user action or a workflow moved first; next pass
		}
		return p, err
	}
	if !equalRuntime(p, next) {
		rep.RuntimeChanges++
		r.logger().Info("runtime status observed", "pipeline", p.Name, "generation", p.Generation, "runtime_status", next.DeploymentStatus())
	}
	return next, nil
}

func equalRuntime(a, b domain.Pipeline) bool {
	return a.DeploymentStatus() == b.DeploymentStatus()
}

// movedOn reports an observation that no longer applies: the generation
// moved on, or the record is no longer in a status (or deployment) the
// observation is about. It returns the current record the store read.
func movedOn(err error) (domain.Pipeline, bool) {
	var sup *store.SupersededError
	var conflict *store.ConflictError
	switch {
	case errors.As(err, &sup):
		return sup.Current, true
	case errors.As(err, &conflict):
		return conflict.Current, true
	}
	return domain.Pipeline{}, false
}

// forceStop records the error of the observed deployment and moves the
// pipeline to Stopping (domain.DeploymentFailed: only if that deployment is
// still current and Provisioned); converge then starts the forced-stop
// workflow that deprovisions it.
func (r *Reconciler) forceStop(ctx context.Context, p domain.Pipeline, deploymentID string, cause *domain.ErrorBody, rep *Report) (domain.Pipeline, error) {
	next, err := r.Store.TransitionFrom(ctx, p, domain.DeploymentFailed(deploymentID, cause), r.cause("MarkStopping"))
	if err != nil {
		if cur, ok := movedOn(err); ok {
			return cur, nil // e.g. a graceful stop reached Stopping and deprovisioned: no failure
		}
		return p, err
	}
	rep.ForcedStops++
	if r.Metrics != nil {
		r.Metrics.ForcedStopWithError(ctx, p.Name, p.Generation, cause.ErrorCode)
	}
	r.logger().Warn("pipeline force-stopped", "pipeline", p.Name, "generation", p.Generation, "error_code", cause.ErrorCode, "reason", cause.Message)
	return next, nil
}

// DefaultPendingGrace is Reconciler.PendingGrace's default: well above the
// API's bound on its StartExecution after the write
// (httpapi.DefaultSideEffectTimeout, 10 s), so a pass does not start what an
// API call in flight is starting. Starting it anyway would be harmless (the
// same name: Step Functions starts it once), only wasted.
const DefaultPendingGrace = 30 * time.Second

func (r *Reconciler) pendingGrace() time.Duration {
	if r.PendingGrace > 0 {
		return r.PendingGrace
	}
	return DefaultPendingGrace
}

// converge starts the pending workflow when none is live for this generation.
// forced: this pass has just force-stopped p.
func (r *Reconciler) converge(ctx context.Context, p domain.Pipeline, forced bool, rep *Report) error {
	if done, err := r.repairPending(ctx, p, rep); done || err != nil {
		return err
	}
	kind := p.PendingWorkflow()
	if kind == "" {
		return r.repairWorkflowRef(ctx, p, rep)
	}
	attempt := 0
	if w := p.Workflow; w != nil && w.Generation == p.Generation && w.Kind == kind {
		running, err := r.Workflows.IsRunning(ctx, *w)
		if err != nil {
			return fmt.Errorf("describe %s: %w", w.ExecutionName, err)
		}
		if running {
			return nil
		}
		attempt = workflow.AttemptOf(w.ExecutionName) + 1
	} else if w != nil && w.Generation == p.Generation {
		// Another kind of workflow of this generation is recorded.
		running, err := r.Workflows.IsRunning(ctx, *w)
		if err != nil {
			return fmt.Errorf("describe %s: %w", w.ExecutionName, err)
		}
		if running {
			if !forced {
				// It is driving this generation's stop itself (a start or
				// suspend that failed goes through RecordError, Deprovision
				// and MarkStopped), or it will find its work not applicable
				// and end, after which a later pass starts the stop. Stopping
				// it here would abort it midway and deprovision twice.
				return nil
			}
			// This pass force-stopped the pipeline under it (a suspend whose
			// process vanished): it must not write again.
			if err := r.Workflows.Stop(ctx, *w, "superseded by the reconciler's "+string(kind)+" workflow"); err == nil {
				rep.WorkflowsStopped++
			}
		}
	}
	ref, err := r.Workflows.StartAttempt(ctx, p, kind, attempt)
	if err != nil {
		return fmt.Errorf("start %s workflow: %w", kind, err)
	}
	rep.WorkflowsStarted++
	r.logger().Info("workflow started by the reconciler", "pipeline", p.Name, "generation", p.Generation, "kind", kind, "execution", ref.ExecutionName)
	if _, err := r.Store.SetWorkflow(ctx, p.Name, ref); err != nil {
		var sup *store.SupersededError
		if errors.As(err, &sup) {
			return nil
		}
		return fmt.Errorf("record workflow: %w", err)
	}
	return nil
}

// repairPending handles a workflow ref that the API recorded PENDING in its
// action's write for p's generation (domain.DecideWorkflowRepair): a start
// that never happened (the API Lambda lost between its write and
// StartExecution, or StartExecution failed) is started under the recorded
// name once the ref is older than PendingGrace; an execution that runs is
// recorded RUNNING. done: nothing is left for converge's other rules.
func (r *Reconciler) repairPending(ctx context.Context, p domain.Pipeline, rep *Report) (done bool, err error) {
	w := p.Workflow
	if !domain.PendingRepairApplies(p) {
		return false, nil // not a PENDING ref this rule is about: no describe
	}
	status, err := r.Workflows.Status(ctx, *w)
	if err != nil {
		return true, fmt.Errorf("describe %s: %w", w.ExecutionName, err)
	}
	var ref domain.WorkflowRef
	switch domain.DecideWorkflowRepair(p, status, r.now(), r.pendingGrace()) {
	case domain.RepairWait:
		return true, nil
	case domain.RepairStart:
		// The recorded name (attempt 0 for the API's): if the start did
		// happen after all, Step Functions answers with that execution (the
		// same name and input) or ExecutionAlreadyExists, which
		// StartAttempt counts as success; never a second execution
		// (https://docs.aws.amazon.com/step-functions/latest/apireference/API_StartExecution.html:
		// StartExecution is idempotent for Standard workflows; the local
		// double's rule 40, README).
		ref, err = r.Workflows.StartAttempt(ctx, p, w.Kind, workflow.AttemptOf(w.ExecutionName))
		if err != nil {
			return true, fmt.Errorf("start %s workflow: %w", w.Kind, err)
		}
		rep.WorkflowsStarted++
		r.logger().Info("workflow whose start never happened started by the reconciler", "pipeline", p.Name, "generation", p.Generation,
			"kind", w.Kind, "execution", ref.ExecutionName, "recorded_at", w.StartedAt)
	case domain.RepairConfirm:
		ref = *w
		ref.Status = domain.WorkflowRunning
		rep.WorkflowsRepaired++
	default:
		return false, nil // ended: the other rules
	}
	if _, err := r.Store.SetWorkflow(ctx, p.Name, ref); err != nil {
		if _, ok := movedOn(err); ok {
			return true, nil
		}
		return true, fmt.Errorf("record workflow: %w", err)
	}
	return true, nil
}

func (r *Reconciler) now() time.Time {
	if r.Now != nil {
		return r.Now()
	}
	return time.Now()
}

// repairWorkflowRef corrects the workflow ref of a converged pipeline that
// still claims its execution is live (RUNNING, PENDING) after the execution
// has ended, e.g. when the API's SetWorkflow landed after the workflow's
// last write: the record must not claim a state its execution is not in.
func (r *Reconciler) repairWorkflowRef(ctx context.Context, p domain.Pipeline, rep *Report) error {
	w := p.Workflow
	if w == nil || w.Generation != p.Generation || !domain.WorkflowLive(w.Status) {
		return nil
	}
	status, err := r.Workflows.Status(ctx, *w)
	if err != nil {
		return fmt.Errorf("describe %s: %w", w.ExecutionName, err)
	}
	if status == "" || domain.WorkflowLive(status) {
		return nil
	}
	ref := *w
	ref.Status = status
	if _, err := r.Store.SetWorkflow(ctx, p.Name, ref); err != nil {
		if _, ok := movedOn(err); ok {
			return nil
		}
		return fmt.Errorf("record workflow status: %w", err)
	}
	rep.WorkflowsRepaired++
	r.logger().Info("workflow status repaired", "pipeline", p.Name, "generation", p.Generation, "execution", w.ExecutionName, "status", status)
	return nil
}

// EnvWorkers names the environment variable of the reconciler Lambda that
// sets Reconciler.Workers (a positive integer; unset: DefaultWorkers).
const EnvWorkers = "SLUICE_RECONCILER_WORKERS"

// WorkersFromEnv reads EnvWorkers through getenv (0 when unset: the default).
func WorkersFromEnv(getenv func(string) string) (int, error) {
	return intFromEnv(getenv, EnvWorkers, 1, 1024, 0)
}

// intFromEnv reads the integer variable name through getenv: unset is
// unset, anything else must be an integer in [lo, hi].
func intFromEnv(getenv func(string) string, name string, lo, hi, unset int) (int, error) {
	v := getenv(name)
	if v == "" {
		return unset, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < lo || n > hi {
		return 0, fmt.Errorf("%s=%q: want an integer in [%d, %d]", name, v, lo, hi)
	}
	return n, nil
}
