package reconciler

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/sluicehq/sluice/internal/compute"
	"github.com/sluicehq/sluice/internal/domain"
	"github.com/sluicehq/sluice/internal/dynamolocal"
	"github.com/sluicehq/sluice/internal/runtimeclient"
	"github.com/sluicehq/sluice/internal/steps"
	"github.com/sluicehq/sluice/internal/store"
	"github.com/sluicehq/sluice/internal/workflow"
	"github.com/sluicehq/sluice/internal/workflow/workflowtest"
)

func TestMain(m *testing.M) { dynamolocal.RunTests(m) }

type stubDriver struct {
	mu    sync.Mutex
	check compute.CheckResult
}

func (d *stubDriver) Provision(context.Context, compute.ProvisionRequest) (compute.Deployment, error) {
	return compute.Deployment{}, nil
}
func (d *stubDriver) Deprovision(context.Context, string, string) error { return nil }
func (d *stubDriver) Check(context.Context, string, string) (compute.CheckResult, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.check, nil
}
func (d *stubDriver) ClearStorage(context.Context, string, string) error { return nil }

type stubRuntime struct {
	mu             sync.Mutex
	report         runtimeclient.StatusReport
	err            error
	pauses, starts int
}

func (r *stubRuntime) Pause(context.Context) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.pauses++
	return nil
}

func (r *stubRuntime) Start(context.Context) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.starts++
	return nil
}

func (r *stubRuntime) Status(context.Context) (runtimeclient.StatusReport, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.report, r.err
}
func (r *stubRuntime) Suspend(context.Context) error { return nil }

type fixture struct {
	t     *testing.T
	ctx   context.Context
	store *store.Dynamo
	wf    *workflowtest.Recorder
	drv   *stubDriver
	rt    *stubRuntime
	rec   *Reconciler
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	client, table := dynamolocal.NewPipelinesTable(t)
	f := &fixture{t: t, ctx: context.Background(), store: store.NewDynamo(client, table), wf: workflowtest.NewRecorder(),
		drv: &stubDriver{check: compute.CheckResult{State: compute.StateRunning, Location: "http://rt"}},
		rt:  &stubRuntime{report: runtimeclient.StatusReport{RuntimeStatus: domain.RuntimeRunning}}}
	f.rec = &Reconciler{Store: f.store, Workflows: f.wf, Driver: f.drv, PageSize: 2,
		RuntimeFor: func(string) (steps.Runtime, error) { return f.rt, nil },
		Logger:     slog.New(slog.NewTextHandler(io.Discard, nil))}
	return f
}

func (f *fixture) get(name string) domain.Pipeline {
	f.t.Helper()
	p, err := f.store.Get(f.ctx, name)
	if err != nil {
		f.t.Fatal(err)
	}
	return p
}

func (f *fixture) act(name string, decide func(domain.Pipeline, time.Time) (domain.Outcome, error)) domain.Pipeline {
	f.t.Helper()
	p := f.get(name)
	out, err := decide(p, time.Now().UTC())
	if err != nil {
		f.t.Fatal(err)
	}
	after, err := f.store.ApplyAction(f.ctx, p, out, store.Cause{Action: "test"})
	if err != nil {
		f.t.Fatal(err)
	}
	return after
}

func (f *fixture) transition(name string, tr domain.Transition) domain.Pipeline {
	f.t.Helper()
	p := f.get(name)
	after, err := f.store.Transition(f.ctx, name, p.Generation, tr, store.Cause{Action: "test", Actor: "workflow"})
	if err != nil {
		f.t.Fatal(err)
	}
	return after
}

// started records an execution of the kind workflow of p's generation as
// the API would (started and recorded on the pipeline).
func (f *fixture) started(p domain.Pipeline, kind domain.WorkflowKind, attempt int) domain.WorkflowRef {
	f.t.Helper()
	ref, err := f.wf.StartAttempt(f.ctx, p, kind, attempt)
	if err != nil {
		f.t.Fatal(err)
	}
	if _, err := f.store.SetWorkflow(f.ctx, p.Name, ref); err != nil {
		f.t.Fatal(err)
	}
	return ref
}

func (f *fixture) run() Report {
	f.t.Helper()
	rep, err := f.rec.Run(f.ctx)
	if err != nil {
		f.t.Fatal(err)
	}
	if rep.Errors != 0 {
		f.t.Fatalf("report %+v", rep)
	}
	return rep
}

func startDecision(p domain.Pipeline, now time.Time) (domain.Outcome, error) {
	return domain.Start(p, domain.StartRequest{Initial: domain.InitialRunning, DismissError: true}, now)
}

func stopDecision(force bool) func(domain.Pipeline, time.Time) (domain.Outcome, error) {
	return func(p domain.Pipeline, now time.Time) (domain.Outcome, error) { return domain.Stop(p, force, now) }
}

// running makes a Running pipeline whose start execution has ended.
func (f *fixture) running(name string) domain.Pipeline {
	f.t.Helper()
	p, err := domain.Create(domain.Definition{Name: name, RuntimeConfig: []byte(`{}`)}, uuid.NewString(), time.Now().UTC())
	if err != nil {
		f.t.Fatal(err)
	}
	if err := f.store.Create(f.ctx, p, store.Cause{Action: "create"}); err != nil {
		f.t.Fatal(err)
	}
	p = f.act(name, startDecision)
	ref := f.started(p, domain.WorkflowStart, 0)
	f.transition(name, domain.MarkProvisioning("dep-"+name))
	p = f.transition(name, domain.MarkProvisioned("http://rt", domain.RuntimeRunning))
	f.wf.Finish(ref.ExecutionName)
	return p
}

// A start (or suspend) execution that failed and is force-stopping its own
// pipeline (RecordError: Stopping, same generation) is left to finish: the
// pass neither stops it nor starts a second, redundant stop workflow.
func TestConvergeLeavesAWorkflowStoppingItsPipeline(t *testing.T) {
	f := newFixture(t)
	f.running("p")
	p := f.act("p", stopDecision(false))
	ref := f.started(p, domain.WorkflowSuspend, 0)
	f.transition("p", domain.MarkSuspending())
	f.transition("p", domain.MarkFailed(&domain.ErrorBody{ErrorCode: "SuspendError", Message: "failed", Details: map[string]any{}}))

	rep := f.run()
	if rep.WorkflowsStarted != 0 || rep.WorkflowsStopped != 0 || len(f.wf.Stops()) != 0 {
		t.Fatalf("the pass interfered with the running suspend execution: %+v, stops %+v", rep, f.wf.Stops())
	}
	// Once it has ended without converging, the next pass starts the stop.
	f.wf.Finish(ref.ExecutionName)
	rep = f.run()
	if rep.WorkflowsStarted != 1 {
		t.Fatalf("report %+v", rep)
	}
	if w := f.get("p").Workflow; w == nil || w.Kind != domain.WorkflowStop || w.ExecutionName != workflow.ExecutionNameFor(p, domain.WorkflowStop, 0) {
		t.Fatalf("workflow %+v", w)
	}
}

// A suspend whose process vanishes: the pass force-stops the pipeline, stops
// the suspend execution and starts the stop workflow at once.
func TestComputeVanishedDuringSuspend(t *testing.T) {
	f := newFixture(t)
	f.running("p")
	p := f.act("p", stopDecision(false))
	ref := f.started(p, domain.WorkflowSuspend, 0)
	f.transition("p", domain.MarkSuspending())
	f.drv.check = compute.CheckResult{State: compute.StateGone, Reason: "task stopped"}

	rep := f.run()
	if rep.ForcedStops != 1 || rep.WorkflowsStopped != 1 || rep.WorkflowsStarted != 1 {
		t.Fatalf("report %+v", rep)
	}
	if stops := f.wf.Stops(); len(stops) != 1 || stops[0].Ref.ExecutionName != ref.ExecutionName {
		t.Fatalf("stops %+v", stops)
	}
	p = f.get("p")
	if p.ResourcesStatus != domain.ResourcesStopping || p.DeploymentError == nil || p.DeploymentError.ErrorCode != "ComputeVanished" {
		t.Fatalf("record %s %+v", p.ResourcesStatus, p.DeploymentError)
	}
	if p.Workflow.Kind != domain.WorkflowStop || p.Workflow.Generation != p.Generation {
		t.Fatalf("workflow %+v", p.Workflow)
	}
}

// Restarts number their attempts after the recorded execution, continuation
// numbers included; a live execution is left alone.
func TestRestartAttemptNumbering(t *testing.T) {
	f := newFixture(t)
	f.running("p")
	p := f.act("p", stopDecision(false))
	ref := f.started(p, domain.WorkflowSuspend, 3) // a continued execution
	f.transition("p", domain.MarkSuspending())
	f.rt.report.RuntimeStatus = domain.RuntimeSuspending

	if rep := f.run(); rep.WorkflowsStarted != 0 {
		t.Fatalf("a live execution was restarted: %+v", rep)
	}
	f.wf.Finish(ref.ExecutionName)
	if rep := f.run(); rep.WorkflowsStarted != 1 {
		t.Fatalf("report %+v", rep)
	}
	want := workflow.ExecutionNameFor(p, domain.WorkflowSuspend, 4)
	if w := f.get("p").Workflow; w.ExecutionName != want {
		t.Fatalf("restarted %s, want %s", w.ExecutionName, want)
	}
	if ex := f.wf.Executions(); ex[len(ex)-1].Input.Continuation != 4 {
		t.Fatalf("input %+v", ex[len(ex)-1].Input)
	}
}

// Observation: 503 → Unavailable and back; while suspending, an unreachable
// or fatal runtime leaves the record to the suspend workflow.
func TestObserveRuntime(t *testing.T) {
	f := newFixture(t)
	f.running("p")
	f.rt.err = &runtimeclient.TemporaryError{Op: "status", StatusCode: 503}
	if rep := f.run(); rep.RuntimeChanges != 1 {
		t.Fatalf("report %+v", rep)
	}
	if s := f.get("p").DeploymentStatus(); s != domain.CombinedUnavailable {
		t.Fatalf("%s", s)
	}
	f.rt.err = nil
	f.rt.report = runtimeclient.StatusReport{RuntimeStatus: domain.RuntimePaused, StorageStatusDetails: json.RawMessage(`{"checkpoints":[]}`)}
	if rep := f.run(); rep.RuntimeChanges != 1 {
		t.Fatalf("report %+v", rep)
	}
	if s := f.get("p").DeploymentStatus(); s != domain.CombinedPaused {
		t.Fatalf("%s", s)
	}

	p := f.act("p", stopDecision(false))
	f.started(p, domain.WorkflowSuspend, 0)
	f.transition("p", domain.MarkSuspending())
	for _, err := range []error{
		&runtimeclient.TemporaryError{Op: "status"},
		&runtimeclient.FatalError{Op: "status", StatusCode: 500, Body: runtimeclient.ErrorBody{Message: "suspend failed", ErrorCode: "SuspendError"}},
	} {
		f.rt.err = err
		rep := f.run()
		if rep.ForcedStops != 0 || rep.WorkflowsStarted != 0 {
			t.Fatalf("%v: report %+v", err, rep)
		}
		if s := f.get("p").DeploymentStatus(); s != domain.CombinedSuspending {
			t.Fatalf("%v: %s, want Suspending", err, s)
		}
	}
}

// A pause or resume whose forwarding was lost is sent again by the next pass:
// the runtime converges on its desired Running or Paused.
func TestRuntimeConvergesOnDesiredPausedOrRunning(t *testing.T) {
	f := newFixture(t)
	f.running("p")
	f.rt.report = runtimeclient.StatusReport{RuntimeStatus: domain.RuntimePaused}
	if rep := f.run(); rep.RuntimeActions != 1 || f.rt.starts != 1 || f.rt.pauses != 0 {
		t.Fatalf("desired Running, observed Paused: report %+v, starts %d, pauses %d", rep, f.rt.starts, f.rt.pauses)
	}
	f.act("p", func(p domain.Pipeline, now time.Time) (domain.Outcome, error) { return domain.Pause(p, now) })
	f.rt.report = runtimeclient.StatusReport{RuntimeStatus: domain.RuntimeRunning}
	if rep := f.run(); rep.RuntimeActions != 1 || f.rt.pauses != 1 {
		t.Fatalf("desired Paused, observed Running: report %+v, pauses %d", rep, f.rt.pauses)
	}
	f.rt.report = runtimeclient.StatusReport{RuntimeStatus: domain.RuntimePaused}
	if rep := f.run(); rep.RuntimeActions != 0 {
		t.Fatalf("converged: report %+v", rep)
	}
	f.act("p", stopDecision(false))
	f.rt.report = runtimeclient.StatusReport{RuntimeStatus: domain.RuntimeRunning}
	if rep := f.run(); rep.RuntimeActions != 0 {
		t.Fatalf("a stop in progress is left to its workflow: report %+v", rep)
	}
}
