package steps

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"regexp"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/sluicehq/sluice/internal/compute"
	"github.com/sluicehq/sluice/internal/domain"
	"github.com/sluicehq/sluice/internal/dynamolocal"
	"github.com/sluicehq/sluice/internal/runtimeclient"
	"github.com/sluicehq/sluice/internal/store"
)

func TestMain(m *testing.M) { dynamolocal.RunTests(m) }

var discard = slog.New(slog.NewTextHandler(io.Discard, nil))

// clock is a settable clock shared by the store and the steps.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(time.Millisecond)
	return c.now
}

func (c *clock) advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

// stubDriver is a compute driver answering from its fields.
type stubDriver struct {
	mu            sync.Mutex
	check         compute.CheckResult
	location      string
	provisions    int
	deprovisions  int
	clears        int
	provisionErr  error
	deprovisioned []string
}

func (d *stubDriver) Provision(context.Context, compute.ProvisionRequest) (compute.Deployment, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.provisions++
	return compute.Deployment{Location: d.location}, d.provisionErr
}

func (d *stubDriver) Deprovision(_ context.Context, _, id string) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.deprovisions++
	d.deprovisioned = append(d.deprovisioned, id)
	return nil
}

func (d *stubDriver) Check(context.Context, string, string) (compute.CheckResult, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.check, nil
}

func (d *stubDriver) ClearStorage(context.Context, string, string) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.clears++
	return nil
}

// stubRuntime answers Status and Suspend from its fields and counts calls.
type stubRuntime struct {
	mu          sync.Mutex
	report      runtimeclient.StatusReport
	statusErr   error
	suspendErr  error
	statusCalls int
	suspends    int
}

func (r *stubRuntime) Status(context.Context) (runtimeclient.StatusReport, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.statusCalls++
	return r.report, r.statusErr
}

func (r *stubRuntime) Suspend(context.Context) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.suspends++
	return r.suspendErr
}

func (r *stubRuntime) calls() (status, suspends int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.statusCalls, r.suspends
}

// fixture is a store on DynamoDB Local and steps over it.
type fixture struct {
	t     *testing.T
	ctx   context.Context
	clock *clock
	store *store.Dynamo
	drv   *stubDriver
	rt    *stubRuntime
	steps *Steps
}

func newFixture(t *testing.T, cfg Config) *fixture {
	t.Helper()
	client, table := dynamolocal.NewPipelinesTable(t)
	c := &clock{now: time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC)}
	f := &fixture{t: t, ctx: context.Background(), clock: c,
		store: store.NewDynamo(client, table, store.WithClock(c.Now)),
		drv:   &stubDriver{check: compute.CheckResult{State: compute.StateRunning, Location: "http://rt"}, location: "http://rt"},
		rt:    &stubRuntime{report: runtimeclient.StatusReport{RuntimeStatus: domain.RuntimeRunning}},
	}
	f.steps = &Steps{Store: f.store, Driver: f.drv, Config: cfg, Now: c.Now, Rand: fixedRand(0.5), Logger: discard,
		RuntimeFor: func(string) (Runtime, error) { return f.rt, nil }}
	return f
}

func (f *fixture) create(name string) domain.Pipeline {
	f.t.Helper()
	p, err := domain.Create(domain.Definition{Name: name, RuntimeConfig: []byte(`{}`)}, uuid.NewString(), f.clock.Now())
	if err != nil {
		f.t.Fatal(err)
	}
	if err := f.store.Create(f.ctx, p, store.Cause{Action: "create"}); err != nil {
		f.t.Fatal(err)
	}
	return p
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
	out, err := decide(p, f.clock.Now())
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
	after, err := f.store.Transition(f.ctx, name, p.Generation, tr, store.Cause{Action: "test"})
	if err != nil {
		f.t.Fatal(err)
	}
	return after
}

func (f *fixture) handle(step string, st Payload) (Payload, error) {
	return f.steps.Handle(f.ctx, Request{Step: step, Execution: "exec", State: st})
}

func (f *fixture) must(step string, st Payload) Payload {
	f.t.Helper()
	out, err := f.handle(step, st)
	if err != nil {
		f.t.Fatalf("%s: %T %v", step, err, err)
	}
	return out
}

func startState(p domain.Pipeline, kind domain.WorkflowKind) Payload {
	st := Payload{Pipeline: p.Name, PipelineID: p.ID, Generation: p.Generation, Kind: kind}
	if p.DeploymentID != nil {
		st.DeploymentID = *p.DeploymentID
	}
	return st
}

func startDecision(p domain.Pipeline, now time.Time) (domain.Outcome, error) {
	return domain.Start(p, domain.StartRequest{Initial: domain.InitialRunning, DismissError: true}, now)
}

// The provisioning deadline counts from the record's entry into Provisioning:
// a repeated MarkProvisioning, or the first step of an execution that
// continues the readiness loop (its input carries no deadline), computes the
// same deadline, so continuing never postpones the timeout.
func TestProvisioningDeadlineSurvivesContinuation(t *testing.T) {
	f := newFixture(t, Config{ProvisioningTimeout: time.Minute, MaxIterations: 2})
	f.create("p")
	p := f.act("p", startDecision)
	st := f.must(StepMarkProvisioning, startState(p, domain.WorkflowStart))
	entered := f.get("p").ResourcesStatusSince
	if want := entered.Add(time.Minute); !st.Deadline.Equal(want) {
		t.Fatalf("deadline %s, want %s", st.Deadline, want)
	}
	f.clock.advance(50 * time.Second)
	again := f.must(StepMarkProvisioning, startState(p, domain.WorkflowStart))
	if !again.Deadline.Equal(st.Deadline) {
		t.Fatalf("a later execution moved the deadline: %s → %s", st.Deadline, again.Deadline)
	}
	f.rt.report.RuntimeStatus = domain.RuntimeInitializing
	st = f.must(StepProvision, again)
	st = f.must(StepCheckReadiness, st)
	if st.Done || st.Continue {
		t.Fatalf("first check %+v", st)
	}
	f.clock.advance(11 * time.Second)
	_, err := f.handle(StepCheckReadiness, st)
	var perm *PipelineComputeError
	if !errors.As(err, &perm) || perm.Body.ErrorCode != "ProvisioningTimeout" {
		t.Fatalf("after the deadline: %T %v", err, err)
	}
}

// The readiness loop's bound applies while the runtime is unreachable or has
// no location yet, not only when it answers.
func TestReadinessLoopBoundedWhileUnreachable(t *testing.T) {
	for _, tc := range []struct {
		name  string
		setup func(f *fixture)
	}{
		{"runtime answers 503", func(f *fixture) {
			f.rt.statusErr = &runtimeclient.TemporaryError{Op: "status", StatusCode: 503}
		}},
		{"no location yet", func(f *fixture) {
			f.drv.check = compute.CheckResult{State: compute.StateStarting}
			f.drv.location = ""
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t, Config{MaxIterations: 2})
			tc.setup(f)
			f.create("p")
			p := f.act("p", startDecision)
			st := f.must(StepMarkProvisioning, startState(p, domain.WorkflowStart))
			st = f.must(StepProvision, st)
			st = f.must(StepCheckReadiness, st)
			if st.Done || st.Continue || st.Attempt != 1 {
				t.Fatalf("check 1: %+v", st)
			}
			st = f.must(StepCheckReadiness, st)
			if st.Done || !st.Continue || st.Attempt != 2 {
				t.Fatalf("check 2 reached the bound: %+v, want continue", st)
			}
		})
	}
}

// A suspend workflow (re)started after MarkSuspended — its earlier execution
// vanished before deprovisioning — goes on to Deprovision: MarkSuspending
// writes nothing, the runtime is not asked again, CheckSuspend is done.
func TestSuspendStepsAfterSuspended(t *testing.T) {
	f := newFixture(t, Config{})
	f.create("p")
	f.act("p", startDecision)
	f.transition("p", domain.MarkProvisioning("dep-1"))
	f.transition("p", domain.MarkProvisioned("http://rt", domain.RuntimeRunning))
	p := f.act("p", func(p domain.Pipeline, now time.Time) (domain.Outcome, error) { return domain.Stop(p, false, now) })
	f.transition("p", domain.MarkSuspending())
	f.transition("p", domain.MarkSuspended(json.RawMessage(`{"checkpoints":[{"uuid":"c1"}]}`)))
	before := f.get("p")
	if before.ResourcesStatus != domain.ResourcesStopping || before.PendingWorkflow() != domain.WorkflowSuspend {
		t.Fatalf("setup: %s, pending %s", before.ResourcesStatus, before.PendingWorkflow())
	}

	st := f.must(StepMarkSuspending, startState(p, domain.WorkflowSuspend))
	if st.DeploymentID != "dep-1" || st.Location != "http://rt" {
		t.Fatalf("MarkSuspending %+v", st)
	}
	st = f.must(StepRequestSuspend, st)
	st = f.must(StepCheckSuspend, st)
	if !st.Done {
		t.Fatalf("CheckSuspend %+v", st)
	}
	if status, suspends := f.rt.calls(); status != 0 || suspends != 0 {
		t.Fatalf("the runtime was asked again: %d status, %d suspend", status, suspends)
	}
	st = f.must(StepMarkSuspended, st)
	st = f.must(StepDeprovision, st)
	f.must(StepMarkStopped, st)
	after := f.get("p")
	if !after.FullyStopped() || string(after.StorageStatusDetails) != string(before.StorageStatusDetails) {
		t.Fatalf("after: %+v", after)
	}
	if f.drv.deprovisions != 1 || f.drv.deprovisioned[0] != "dep-1" {
		t.Fatalf("deprovisions %v", f.drv.deprovisioned)
	}
}

// A forced stop (here the reconciler's, at the same generation) while the
// suspend waits: CheckSuspend ends the suspend execution as not applicable.
func TestCheckSuspendDuringForcedStop(t *testing.T) {
	f := newFixture(t, Config{})
	f.create("p")
	f.act("p", startDecision)
	f.transition("p", domain.MarkProvisioning("dep-1"))
	f.transition("p", domain.MarkProvisioned("http://rt", domain.RuntimeRunning))
	p := f.act("p", func(p domain.Pipeline, now time.Time) (domain.Outcome, error) { return domain.Stop(p, false, now) })
	st := f.must(StepMarkSuspending, startState(p, domain.WorkflowSuspend))
	f.transition("p", domain.MarkFailed(&domain.ErrorBody{ErrorCode: "ComputeVanished", Message: "gone", Details: map[string]any{}}))
	_, err := f.handle(StepCheckSuspend, st)
	var na *NotApplicableError
	if !errors.As(err, &na) {
		t.Fatalf("%T %v, want NotApplicableError", err, err)
	}
}

// Every field a Choice or Wait state of statemachine/*.asl.json reads is in
// the JSON of every Payload, whatever its value: a Choice on an absent path
// fails the execution with States.Runtime.
func TestStateCarriesEveryPathTheASLReads(t *testing.T) {
	files, err := filepath.Glob(filepath.Join("..", "..", "statemachine", "*.asl.json"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no state machines: %v", err)
	}
	path := regexp.MustCompile(`"(?:Variable|SecondsPath|TimestampPath)"\s*:\s*"\$\.([a-z_]+)"`)
	b, err := json.Marshal(Payload{Kind: domain.WorkflowStop})
	if err != nil {
		t.Fatal(err)
	}
	var zero map[string]any
	if err := json.Unmarshal(b, &zero); err != nil {
		t.Fatal(err)
	}
	seen := 0
	for _, file := range files {
		src, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range path.FindAllSubmatch(src, -1) {
			seen++
			if _, ok := zero[string(m[1])]; !ok {
				t.Errorf("%s reads $.%s, which the zero Payload omits: %s", filepath.Base(file), m[1], b)
			}
		}
	}
	if seen == 0 {
		t.Fatal("no paths found: the pattern is stale")
	}
}
