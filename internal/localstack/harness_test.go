package localstack

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"github.com/sluicehq/sluice/internal/testkit"
	"io"
	"log/slog"
	"net/http"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sfn"
	sfntypes "github.com/aws/aws-sdk-go-v2/service/sfn/types"

	"github.com/sluicehq/sluice/internal/domain"
	"github.com/sluicehq/sluice/internal/dynamolocal"
	"github.com/sluicehq/sluice/internal/lambdalocal"
	"github.com/sluicehq/sluice/internal/localsfn"
	"github.com/sluicehq/sluice/internal/steps"
	"github.com/sluicehq/sluice/internal/store"
	"github.com/sluicehq/sluice/internal/workflow"
)

// TestMain closes the stacks shared by the tests, then the shared DynamoDB Local.
func TestMain(m *testing.M) {
	code := m.Run()
	if err := closeSharedStacks(); err != nil {
		fmt.Fprintln(os.Stderr, "closing the shared stacks:", err)
		if code == 0 {
			code = 1
		}
	}
	if err := dynamolocal.StopShared(); err != nil {
		fmt.Fprintln(os.Stderr, err)
		if code == 0 {
			code = 1
		}
	}
	os.Exit(code)
}

// env is a local stack with a fake compute driver and fake runtimes, for the
// workflow scenarios: the real ASL on the real engine, the real step handlers
// through the local Lambda endpoint, DynamoDB Local. An env belongs to one
// test; the stack under it may be shared with other tests (sharedEnv), which
// then use pipelines of their own names.
type env struct {
	t      *testing.T
	ctx    context.Context
	stack  *Stack
	driver *fakeDriver
	logs   *testkit.SyncBuffer
	client *http.Client

	mu    sync.Mutex
	names []string // the pipelines this test created (for the log excerpt on failure)
}

func startStack(tb testing.TB, stepsCfg steps.Config) (*Stack, *fakeDriver, *testkit.SyncBuffer, error) {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	inst := dynamolocal.Shared(tb)
	driver := newFakeDriver()
	logs := &testkit.SyncBuffer{}
	stack, err := Start(ctx, Config{
		DynamoEndpoint:    inst.Endpoint,
		Table:             dynamolocal.UniqueTableName(tb),
		Driver:            driver,
		Steps:             stepsCfg,
		Overrides:         localsfn.Overrides{WaitTimeOverrides: map[string]int{"*": 20}, RetryIntervalOverrides: map[string]int{"*": 20}},
		ReconcileInterval: -1,
		APIStarter:        func(s workflow.Starter) workflow.Starter { return faultyStarter{s} },
		Logger:            slog.New(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
	})
	if err != nil {
		driver.close()
		return nil, nil, nil, err
	}
	injectStepFaults(stack)
	return stack, driver, logs, nil
}

// stepFaults holds, per pipeline name, a fault to inject into the steps
// Lambda: called with the step's name before the real handler, it may panic
// or return an error (which the Lambda reports as its function error, named
// after the Go type, as in AWS). Tests set it with setStepFault.
var stepFaults sync.Map // pipeline name → func(step string) error

// injectStepFaults puts the fault hook in front of a stack's steps function.
func injectStepFaults(stack *Stack) {
	handle := stack.Steps.Handle
	stack.Lambda.Register(FunctionSteps, lambdalocal.FromLambda(func(ctx context.Context, req steps.Request) (steps.Payload, error) {
		if f, ok := stepFaults.Load(req.State.Pipeline); ok {
			if err := f.(func(string) error)(req.Step); err != nil {
				return req.State, err
			}
		}
		return handle(ctx, req)
	}), lambdalocal.WithTimeout(5*time.Minute))
}

// apiStartFaults holds, per pipeline name, a fault of the API's
// StartExecution: called with the workflow kind instead of the real start,
// a non-nil error is what the API sees (the start never reaches Step
// Functions: a Lambda lost between its write and StartExecution). Tests set
// it with setAPIStartFault.
var apiStartFaults sync.Map // pipeline name → func(kind domain.WorkflowKind) error

// faultyStarter is the API's starter with apiStartFaults in front of Start.
type faultyStarter struct{ workflow.Starter }

func (f faultyStarter) Start(ctx context.Context, p domain.Pipeline, kind domain.WorkflowKind) (domain.WorkflowRef, error) {
	if fault, ok := apiStartFaults.Load(p.Name); ok {
		if err := fault.(func(domain.WorkflowKind) error)(kind); err != nil {
			return domain.WorkflowRef{}, err
		}
	}
	return f.Starter.Start(ctx, p, kind)
}

// setAPIStartFault injects fault into the API's starts of pipeline name until the test ends.
func setAPIStartFault(t *testing.T, name string, fault func(kind domain.WorkflowKind) error) {
	apiStartFaults.Store(name, fault)
	t.Cleanup(func() { apiStartFaults.Delete(name) })
}

// setStepFault injects fault into the steps of pipeline name until the test ends.
func setStepFault(t *testing.T, name string, fault func(step string) error) {
	stepFaults.Store(name, fault)
	t.Cleanup(func() { stepFaults.Delete(name) })
}

// newEnv starts a stack of the test's own (closed when it ends).
func newEnv(t *testing.T, stepsCfg steps.Config) *env {
	t.Helper()
	stack, driver, logs, err := startStack(t, stepsCfg)
	if err != nil {
		t.Fatalf("starting the local stack: %v", err)
	}
	e := attach(t, stack, driver, logs)
	t.Cleanup(func() {
		if err := stack.Close(); err != nil {
			t.Errorf("closing the stack: %v", err)
		}
		driver.close()
	})
	return e
}

// Shared stacks: one per configuration name, started by the first test that
// asks for it and closed by TestMain, so the scenarios of one configuration
// pay for one Step Functions service and one table.
const (
	stackDefault = "default"
	// stackBounded: a short provisioning timeout and MaxIterations 3, so
	// wait loops continue in fresh executions after 3 checks.
	stackBounded = "bounded"
	// stackReconciler: its tests run full reconciler passes, so they run one
	// after the other and no other test uses it.
	stackReconciler = "reconciler"
)

var sharedConfigs = map[string]steps.Config{
	stackDefault:    {},
	stackBounded:    {ProvisioningTimeout: 2 * time.Second, MaxIterations: 3},
	stackReconciler: {},
}

type sharedStack struct {
	once   sync.Once
	stack  *Stack
	driver *fakeDriver
	logs   *testkit.SyncBuffer
	err    error
}

var shared = struct {
	mu     sync.Mutex
	stacks map[string]*sharedStack
}{stacks: map[string]*sharedStack{}}

func sharedEnv(t *testing.T, name string) *env {
	t.Helper()
	cfg, ok := sharedConfigs[name]
	if !ok {
		t.Fatalf("no shared stack %q", name)
	}
	shared.mu.Lock()
	s := shared.stacks[name]
	if s == nil {
		s = &sharedStack{}
		shared.stacks[name] = s
	}
	shared.mu.Unlock()
	s.once.Do(func() { s.stack, s.driver, s.logs, s.err = startStack(t, cfg) })
	if s.err != nil {
		t.Fatalf("starting the shared stack %q: %v", name, s.err)
	}
	return attach(t, s.stack, s.driver, s.logs)
}

func closeSharedStacks() error {
	shared.mu.Lock()
	defer shared.mu.Unlock()
	var errs []string
	for name, s := range shared.stacks {
		if s.stack != nil {
			if err := s.stack.Close(); err != nil {
				errs = append(errs, name+": "+err.Error())
			}
			s.driver.close()
		}
	}
	if len(errs) > 0 {
		return fmt.Errorf("%s", strings.Join(errs, "; "))
	}
	return nil
}

func attach(t *testing.T, stack *Stack, driver *fakeDriver, logs *testkit.SyncBuffer) *env {
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	t.Cleanup(cancel)
	e := &env{t: t, ctx: ctx, stack: stack, driver: driver, logs: logs, client: &http.Client{Timeout: 30 * time.Second}}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("stack logs of this test's pipelines (tail):\n%s", e.logExcerpt(300))
		}
	})
	return e
}

// logExcerpt returns the last n log lines that name one of the test's pipelines.
func (e *env) logExcerpt(n int) string {
	e.mu.Lock()
	names := append([]string(nil), e.names...)
	e.mu.Unlock()
	var keep []string
	sc := bufio.NewScanner(strings.NewReader(e.logs.String()))
	sc.Buffer(make([]byte, 1<<20), 16<<20)
	for sc.Scan() {
		line := sc.Text()
		for _, name := range names {
			if strings.Contains(line, `"`+name+`"`) || strings.Contains(line, name+"-") {
				keep = append(keep, line)
				break
			}
		}
	}
	if len(keep) > n {
		keep = keep[len(keep)-n:]
	}
	return strings.Join(keep, "\n")
}

// waitDeadline bounds every wait for a state: generous, the suite never
// asserts on timing ($SLUICE_TEST_WAIT shortens it while debugging).
var waitDeadline = func() time.Duration {
	if d, err := time.ParseDuration(os.Getenv("SLUICE_TEST_WAIT")); err == nil && d > 0 {
		return d
	}
	return 90 * time.Second
}()

type response struct {
	status int
	body   []byte
}

func (e *env) do(method, path string, body any) response {
	e.t.Helper()
	var rd io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	}
	req, _ := http.NewRequestWithContext(e.ctx, method, e.stack.APIURL+path, rd)
	req.Header.Set("Authorization", "Bearer "+e.stack.APIKey)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	res, err := e.client.Do(req)
	if err != nil {
		e.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return response{status: res.StatusCode, body: b}
}

func (e *env) must(method, path string, body any, want int) response {
	e.t.Helper()
	r := e.do(method, path, body)
	if r.status != want {
		e.t.Fatalf("%s %s: %d %s, want %d", method, path, r.status, r.body, want)
	}
	return r
}

// pipelineNames counts the uses of each pipeline name in this test binary:
// the stacks are shared, so with -count=N every run needs names of its own.
var pipelineNames = struct {
	mu   sync.Mutex
	uses map[string]int
}{uses: map[string]int{}}

// name returns base the first time, then base-2, base-3…
func (e *env) name(base string) string {
	pipelineNames.mu.Lock()
	defer pipelineNames.mu.Unlock()
	pipelineNames.uses[base]++
	if n := pipelineNames.uses[base]; n > 1 {
		return fmt.Sprintf("%s-%d", base, n)
	}
	return base
}

func (e *env) create(name string, runtimeConfig map[string]any) {
	e.t.Helper()
	e.mu.Lock()
	e.names = append(e.names, name)
	e.mu.Unlock()
	e.must("POST", "/v0/pipelines", map[string]any{"name": name, "description": "test", "runtime_config": runtimeConfig}, 201)
}

func (e *env) get(name string) domain.Pipeline {
	e.t.Helper()
	p, err := e.stack.Store.Get(e.ctx, name)
	if err != nil {
		e.t.Fatalf("get %s: %v", name, err)
	}
	return p
}

// waitFor polls the record until cond holds (generous deadline: the suite
// never asserts on timing, only on eventually reaching a state).
func (e *env) waitFor(name, what string, cond func(p domain.Pipeline) bool) domain.Pipeline {
	e.t.Helper()
	deadline := time.Now().Add(waitDeadline)
	var p domain.Pipeline
	for time.Now().Before(deadline) {
		p = e.get(name)
		if cond(p) {
			return p
		}
		time.Sleep(25 * time.Millisecond)
	}
	e.t.Fatalf("%s: never reached %s; last %s/%s, workflow %s\nhistory %v", name, what, p.DeploymentStatus(), p.DeploymentDesiredStatus(),
		e.workflowSummary(p.Workflow), e.historyActions(name))
	return p
}

// workflowSummary describes an execution for a failure message.
func (e *env) workflowSummary(w *domain.WorkflowRef) string {
	if w == nil {
		return "none"
	}
	out, err := e.stack.SFN.DescribeExecution(e.ctx, describe(e.execArn(w.Kind, w.ExecutionName)))
	if err != nil {
		return fmt.Sprintf("%s (%v)", w.ExecutionName, err)
	}
	return fmt.Sprintf("%s %s error=%s cause=%s states=%v", w.ExecutionName, out.Status, aws.ToString(out.Error), aws.ToString(out.Cause),
		statesEntered(e.execHistory(w.Kind, w.ExecutionName)))
}

// waitSettled is waitFor until cond holds and the workflow of the current
// generation is recorded on the record too (the API records it after
// StartExecution, which a fast workflow can overtake).
func (e *env) waitSettled(name, what string, cond func(p domain.Pipeline) bool) domain.Pipeline {
	e.t.Helper()
	return e.waitFor(name, what+" (workflow recorded)", func(p domain.Pipeline) bool {
		return cond(p) && p.Workflow != nil && p.Workflow.Generation == p.Generation
	})
}

// lastExecutionOf is the execution that made the newest write with the given
// cause action (e.g. the execution that reached MarkStopped).
func (e *env) lastExecutionOf(name, action string) string {
	e.t.Helper()
	evs := e.pipelineHistory(name)
	for i := len(evs) - 1; i >= 0; i-- {
		if evs[i].Cause.Action == action {
			return evs[i].Cause.Execution
		}
	}
	e.t.Fatalf("%s: no %s in the history %v", name, action, e.historyActions(name))
	return ""
}

// eventually polls cond (generous deadline) and fails the test with what.
func (e *env) eventually(what string, cond func() bool) {
	e.t.Helper()
	deadline := time.Now().Add(waitDeadline)
	for time.Now().Before(deadline) {
		if cond() {
			return
		}
		time.Sleep(25 * time.Millisecond)
	}
	e.t.Fatalf("never: %s", what)
}

func status(s domain.CombinedStatus, d domain.CombinedDesiredStatus) func(domain.Pipeline) bool {
	return func(p domain.Pipeline) bool { return p.DeploymentStatus() == s && p.DeploymentDesiredStatus() == d }
}

var stopped = status(domain.CombinedStopped, domain.CombinedDesiredStopped)

// startRunning creates a pipeline and starts it until Running.
func (e *env) startRunning(name string) domain.Pipeline {
	e.t.Helper()
	e.create(name, map[string]any{"checkpoint_interval_secs": 1})
	e.must("POST", "/v0/pipelines/"+name+"/start", nil, 202)
	return e.waitSettled(name, "Running", status(domain.CombinedRunning, domain.CombinedDesiredRunning))
}

// runtime is the fake runtime of a pipeline's current deployment.
func (e *env) runtime(name string) *fakeRuntime {
	e.t.Helper()
	rt := e.driver.runtime(name)
	if rt == nil {
		e.t.Fatalf("%s has no runtime", name)
	}
	return rt
}

// execArn is the ARN of an execution of the kind workflow.
func (e *env) execArn(kind domain.WorkflowKind, name string) string {
	e.t.Helper()
	arn, err := workflow.ExecutionARN(e.stack.Machines[kind], name)
	if err != nil {
		e.t.Fatal(err)
	}
	return arn
}

// describeExec describes an execution (nil when it does not exist).
func (e *env) describeExec(kind domain.WorkflowKind, name string) *sfn.DescribeExecutionOutput {
	e.t.Helper()
	out, err := e.stack.SFN.DescribeExecution(e.ctx, describe(e.execArn(kind, name)))
	if err != nil {
		var missing *sfntypes.ExecutionDoesNotExist
		if errors.As(err, &missing) {
			return nil
		}
		e.t.Fatalf("describe %s: %v", name, err)
	}
	return out
}

// waitExecEnd waits until an execution has ended and describes it.
func (e *env) waitExecEnd(kind domain.WorkflowKind, name string) *sfn.DescribeExecutionOutput {
	e.t.Helper()
	var out *sfn.DescribeExecutionOutput
	e.eventually("execution "+name+" ends", func() bool {
		out = e.describeExec(kind, name)
		return out != nil && out.Status != sfntypes.ExecutionStatusRunning
	})
	return out
}

// waitExecution waits until an execution (of any kind) ends and returns its status.
func (e *env) waitExecution(name string) string {
	e.t.Helper()
	var st string
	e.eventually("execution "+name+" ends", func() bool {
		for _, kind := range domain.AllWorkflowKinds {
			if out := e.describeExec(kind, name); out != nil && out.Status != sfntypes.ExecutionStatusRunning {
				st = string(out.Status)
				return true
			}
		}
		return false
	})
	return st
}

// execHistory returns an execution's whole history, oldest first.
func (e *env) execHistory(kind domain.WorkflowKind, name string) []sfntypes.HistoryEvent {
	e.t.Helper()
	var out []sfntypes.HistoryEvent
	pages := sfn.NewGetExecutionHistoryPaginator(e.stack.SFN, &sfn.GetExecutionHistoryInput{ExecutionArn: aws.String(e.execArn(kind, name))})
	for pages.HasMorePages() {
		page, err := pages.NextPage(e.ctx)
		if err != nil {
			e.t.Fatalf("history of %s: %v", name, err)
		}
		out = append(out, page.Events...)
	}
	return out
}

// statesEntered lists the names of the states an execution entered, in order.
func statesEntered(events []sfntypes.HistoryEvent) []string {
	var out []string
	for _, ev := range events {
		if strings.HasSuffix(string(ev.Type), "StateEntered") && ev.StateEnteredEventDetails != nil {
			out = append(out, aws.ToString(ev.StateEnteredEventDetails.Name))
		}
	}
	return out
}

// pipelineHistory returns a pipeline's status history, oldest first.
func (e *env) pipelineHistory(name string) []store.Event {
	e.t.Helper()
	var all []store.Event
	token := ""
	for {
		evs, next, err := e.stack.Store.History(e.ctx, name, token, 1000)
		if err != nil {
			e.t.Fatal(err)
		}
		all = append(all, evs...)
		if next == "" {
			break
		}
		token = next
	}
	for i, j := 0, len(all)-1; i < j; i, j = i+1, j-1 {
		all[i], all[j] = all[j], all[i]
	}
	return all
}

// historyActions lists the cause actions of a pipeline's history, oldest first.
func (e *env) historyActions(name string) []string {
	e.t.Helper()
	evs := e.pipelineHistory(name)
	out := make([]string, 0, len(evs))
	for _, ev := range evs {
		out = append(out, fmt.Sprintf("%s:%s", ev.Cause.Action, ev.DeploymentStatus))
	}
	return out
}

// accept applies a user action through the store only: the desired state
// and generation change, but no workflow is started (as when the API's
// StartExecution was lost).
func (e *env) accept(name, action string, decide func(p domain.Pipeline, now time.Time) (domain.Outcome, error)) domain.Pipeline {
	e.t.Helper()
	for range 10 {
		p := e.get(name)
		out, err := decide(p, time.Now().UTC())
		if err != nil {
			e.t.Fatalf("%s %s: %v", action, name, err)
		}
		if !out.Write {
			e.t.Fatalf("%s %s: nothing to write", action, name)
		}
		after, err := e.stack.Store.ApplyAction(e.ctx, p, out, store.Cause{Action: action, Actor: "test"})
		if err == nil {
			return after
		}
		e.t.Logf("%s %s: %v (retrying)", action, name, err)
	}
	e.t.Fatalf("%s %s: could not write", action, name)
	return domain.Pipeline{}
}

func stopDecision(force bool) func(domain.Pipeline, time.Time) (domain.Outcome, error) {
	return func(p domain.Pipeline, now time.Time) (domain.Outcome, error) { return domain.Stop(p, force, now) }
}
