package localsfn_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"github.com/sluicehq/sluice/internal/testkit"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sfn"
	"github.com/aws/aws-sdk-go-v2/service/sfn/types"
	"github.com/google/uuid"

	"github.com/sluicehq/sluice/internal/lambdalocal"
	"github.com/sluicehq/sluice/internal/localsfn"
)

// --- the Lambda handlers behind the test workflow ---------------------------

// TemporaryError and PermanentError are named like the step Lambdas' errors:
// the Go type name is the Step Functions error name.
type TemporaryError struct{ Reason string }

func (e TemporaryError) Error() string { return "temporarily unable: " + e.Reason }

type PermanentError struct{ Reason string }

func (e *PermanentError) Error() string { return "permanent: " + e.Reason }

type stepIn struct {
	ID        string `json:"id"`
	Mode      string `json:"mode"`
	FailTimes int    `json:"failTimes"`
}

type stepOut struct {
	Attempts int `json:"attempts"`
}

type finishIn struct {
	ID        string `json:"id"`
	Attempts  int    `json:"attempts"`
	Greeting  string `json:"greeting"`
	Execution string `json:"execution"`
}

type finishOut struct {
	ID        string `json:"id"`
	Attempts  int    `json:"attempts"`
	Greeting  string `json:"greeting"`
	Execution string `json:"execution"`
	Finished  bool   `json:"finished"`
}

type recoverIn struct {
	ID    string `json:"id"`
	Error struct {
		Error string `json:"Error"`
		Cause string `json:"Cause"`
	} `json:"error"`
}

type recoverOut struct {
	ID           string `json:"id"`
	Recovered    bool   `json:"recovered"`
	Error        string `json:"error"`
	Cause        string `json:"cause"`
	ErrorType    string `json:"errorType,omitempty"`
	ErrorMessage string `json:"errorMessage,omitempty"`
}

var stepCalls sync.Map // id -> *atomic.Int32

func callsFor(id string) *atomic.Int32 {
	c, _ := stepCalls.LoadOrStore(id, new(atomic.Int32))
	return c.(*atomic.Int32)
}

func step(ctx context.Context, in stepIn) (stepOut, error) {
	n := int(callsFor(in.ID).Add(1))
	switch in.Mode {
	case "temp":
		if n <= in.FailTimes {
			return stepOut{}, TemporaryError{Reason: fmt.Sprintf("attempt %d", n)}
		}
	case "perm":
		return stepOut{}, &PermanentError{Reason: "image missing"}
	case "slow":
		select {
		case <-ctx.Done():
			return stepOut{}, ctx.Err()
		case <-time.After(4 * time.Second):
		}
	}
	return stepOut{Attempts: n}, nil
}

func finish(_ context.Context, in finishIn) (finishOut, error) {
	return finishOut{ID: in.ID, Attempts: in.Attempts, Greeting: in.Greeting, Execution: in.Execution, Finished: true}, nil
}

func recoverStep(_ context.Context, in recoverIn) (recoverOut, error) {
	out := recoverOut{ID: in.ID, Recovered: true, Error: in.Error.Error, Cause: in.Error.Cause}
	var doc struct {
		ErrorType    string `json:"errorType"`
		ErrorMessage string `json:"errorMessage"`
	}
	if json.Unmarshal([]byte(in.Error.Cause), &doc) == nil {
		out.ErrorType, out.ErrorMessage = doc.ErrorType, doc.ErrorMessage
	}
	return out, nil
}

// --- fixture -----------------------------------------------------------------

var (
	moduleRoot string
	lambdaURL  string
	lambdaKeys aws.Credentials
	shared     *localsfn.Service
	client     *sfn.Client
	sharedLog  testkit.SyncBuffer
)

func testMachine(name string) localsfn.StateMachine {
	return localsfn.StateMachine{
		Name:           name,
		DefinitionFile: "internal/localsfn/testdata/test.asl.json",
		Substitutions: map[string]string{
			"StepFunction":    "step",
			"FinishFunction":  "finish",
			"RecoverFunction": "recover",
		},
	}
}

// slowRetryMachine is the test workflow with its Step retries pausing 60 s
// (a per-machine override over the global 0).
func slowRetryMachine() localsfn.StateMachine {
	m := testMachine("slowretry")
	m.Overrides = &localsfn.Overrides{RetryIntervalOverrides: map[string]int{"Step": 60000}}
	return m
}

func testConfig() localsfn.Config {
	return localsfn.Config{
		ModuleRoot:        moduleRoot,
		LambdaEndpoint:    lambdaURL,
		LambdaCredentials: lambdaKeys,
		StateMachines: []localsfn.StateMachine{
			testMachine("workflow"),
			testMachine("listing"),
			slowRetryMachine(),
			{Name: "hold", DefinitionFile: "internal/localsfn/testdata/hold.asl.json"},
			{Name: "paging", Definition: json.RawMessage(`{"StartAt":"Done","States":{"Done":{"Type":"Succeed"}}}`)},
			{
				Name:           "fanout",
				DefinitionFile: "internal/localsfn/testdata/fanout.asl.json",
				Substitutions:  map[string]string{"StepFunction": "step", "FinishFunction": "finish"},
			},
		},
		// ShortWait (3600 s) and the Step retries (5 s, ×2) take no time;
		// LongWait keeps its hour, for StopExecution.
		Overrides: localsfn.Overrides{
			WaitTimeOverrides:      map[string]int{"ShortWait": 0},
			RetryIntervalOverrides: map[string]int{"Step": 0},
		},
	}
}

func TestMain(m *testing.M) {
	os.Exit(runMain(m))
}

func runMain(m *testing.M) int {
	ctx := context.Background()
	var err error
	if moduleRoot, err = localsfn.FindModuleRoot(""); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	start := time.Now()
	if err := localsfn.EnsureInstalled(ctx, moduleRoot); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	if d := time.Since(start); d > time.Second {
		fmt.Fprintf(os.Stderr, "localsfn: installed %s in %s\n", localsfn.ServiceDir, d.Round(time.Second))
	}

	lam := lambdalocal.NewServer()
	lambdaKeys = lam.Credentials()
	lam.Register("step", lambdalocal.Typed(step))
	lam.Register("finish", lambdalocal.Typed(finish))
	lam.Register("recover", lambdalocal.Typed(recoverStep))
	var stopLam func(context.Context) error
	if lambdaURL, stopLam, err = lam.Start("127.0.0.1:0"); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer func() { _ = stopLam(context.Background()) }()

	cfg := testConfig()
	cfg.Log = &sharedLog
	if shared, err = localsfn.Start(ctx, cfg); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer func() { _ = shared.Stop() }()
	if client, err = localsfn.NewClient(ctx, shared.Endpoint); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	code := m.Run()
	if code != 0 {
		out := sharedLog.String()
		if len(out) > 16000 {
			out = out[len(out)-16000:]
		}
		fmt.Fprintf(os.Stderr, "--- local Step Functions service log (tail) ---\n%s\n", out)
	}
	return code
}

// --- helpers -----------------------------------------------------------------

func uniq(prefix string) string { return prefix + "-" + uuid.NewString()[:8] }

func jsonString(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func start(t *testing.T, c *sfn.Client, svc *localsfn.Service, machine, name string, input any) string {
	t.Helper()
	out, err := c.StartExecution(context.Background(), &sfn.StartExecutionInput{
		StateMachineArn: aws.String(svc.StateMachineArn(machine)),
		Name:            aws.String(name),
		Input:           aws.String(jsonString(t, input)),
	})
	if err != nil {
		t.Fatalf("StartExecution %s: %v", name, err)
	}
	return aws.ToString(out.ExecutionArn)
}

// waitDone polls DescribeExecution until the execution is no longer RUNNING.
func waitDone(t *testing.T, c *sfn.Client, arn string) *sfn.DescribeExecutionOutput {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		out, err := c.DescribeExecution(context.Background(), &sfn.DescribeExecutionInput{ExecutionArn: aws.String(arn)})
		if err != nil {
			t.Fatalf("DescribeExecution: %v", err)
		}
		if out.Status != types.ExecutionStatusRunning {
			return out
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s still RUNNING", arn)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func history(t *testing.T, c *sfn.Client, arn string, pageSize int32) []types.HistoryEvent {
	t.Helper()
	var events []types.HistoryEvent
	p := sfn.NewGetExecutionHistoryPaginator(c, &sfn.GetExecutionHistoryInput{ExecutionArn: aws.String(arn), MaxResults: pageSize})
	for p.HasMorePages() {
		page, err := p.NextPage(context.Background())
		if err != nil {
			t.Fatalf("GetExecutionHistory: %v", err)
		}
		events = append(events, page.Events...)
	}
	return events
}

func eventTypes(events []types.HistoryEvent) []string {
	out := make([]string, len(events))
	for i, e := range events {
		out[i] = string(e.Type)
	}
	return out
}

// waitForEvent waits until the execution's history has an event of type typ.
func waitForEvent(t *testing.T, c *sfn.Client, arn, typ string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		for _, e := range history(t, c, arn, 0) {
			if string(e.Type) == typ {
				return
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("%s: no %s event", arn, typ)
}

func decodeOutput(t *testing.T, out *sfn.DescribeExecutionOutput, v any) {
	t.Helper()
	if err := json.Unmarshal([]byte(aws.ToString(out.Output)), v); err != nil {
		t.Fatalf("output %q: %v", aws.ToString(out.Output), err)
	}
}

// --- tests -------------------------------------------------------------------

func TestSucceedsThroughBothLambdaForms(t *testing.T) {
	t.Parallel()
	id := uniq("ok")
	arn := start(t, client, shared, "workflow", id, stepIn{ID: id, Mode: "ok"})
	if want := shared.ExecutionArn("workflow", id); arn != want {
		t.Fatalf("execution ARN %s, want %s", arn, want)
	}
	out := waitDone(t, client, arn)
	if out.Status != types.ExecutionStatusSucceeded {
		t.Fatalf("status %s error %s cause %s", out.Status, aws.ToString(out.Error), aws.ToString(out.Cause))
	}
	var got finishOut
	decodeOutput(t, out, &got)
	want := finishOut{ID: id, Attempts: 1, Greeting: "hello " + id, Execution: id, Finished: true}
	if got != want {
		t.Fatalf("output %+v, want %+v", got, want)
	}
	if out.StopDate == nil || out.StartDate == nil || out.StopDate.Before(*out.StartDate) {
		t.Fatalf("dates %v %v", out.StartDate, out.StopDate)
	}

	// The history, in Step Functions' shape.
	events := history(t, client, arn, 3) // small pages exercise nextToken
	wantTypes := []string{
		"ExecutionStarted",
		"ChoiceStateEntered", "ChoiceStateExited",
		"TaskStateEntered", "LambdaFunctionScheduled", "LambdaFunctionStarted", "LambdaFunctionSucceeded", "TaskStateExited",
		"WaitStateEntered", "WaitStateExited",
		"TaskStateEntered", "TaskScheduled", "TaskStarted", "TaskSucceeded", "TaskStateExited",
		"ExecutionSucceeded",
	}
	if got := eventTypes(events); !reflect.DeepEqual(got, wantTypes) {
		t.Fatalf("history\n got %v\nwant %v", got, wantTypes)
	}
	for i, e := range events {
		if e.Id != int64(i+1) || e.PreviousEventId != int64(i) || e.Timestamp == nil {
			t.Fatalf("event %d: id %d prev %d ts %v", i, e.Id, e.PreviousEventId, e.Timestamp)
		}
	}
	if d := events[0].ExecutionStartedEventDetails; d == nil || aws.ToString(d.Input) != jsonString(t, stepIn{ID: id, Mode: "ok"}) || d.RoleArn == nil {
		t.Fatalf("ExecutionStarted details %+v", d)
	}
	if d := events[4].LambdaFunctionScheduledEventDetails; d == nil ||
		aws.ToString(d.Resource) != "arn:aws:lambda:us-east-1:123456789012:function:step" || aws.ToInt64(d.TimeoutInSeconds) != 2 {
		t.Fatalf("LambdaFunctionScheduled details %+v", d)
	}
	if d := events[6].LambdaFunctionSucceededEventDetails; d == nil || aws.ToString(d.Output) != `{"attempts":1}` {
		t.Fatalf("LambdaFunctionSucceeded details %+v", d)
	}
	if d := events[11].TaskScheduledEventDetails; d == nil || aws.ToString(d.ResourceType) != "lambda" || aws.ToString(d.Resource) != "invoke" ||
		!strings.Contains(aws.ToString(d.Parameters), `"FunctionName":"arn:aws:lambda:us-east-1:123456789012:function:finish"`) {
		t.Fatalf("TaskScheduled details %+v", d)
	}
	if d := events[13].TaskSucceededEventDetails; d == nil || !strings.Contains(aws.ToString(d.Output), `"StatusCode":200`) {
		t.Fatalf("TaskSucceeded details %+v", d)
	}
	if d := events[15].ExecutionSucceededEventDetails; d == nil || aws.ToString(d.Output) != aws.ToString(out.Output) {
		t.Fatalf("ExecutionSucceeded details %+v", d)
	}

	// reverseOrder and includeExecutionData=false.
	rev, err := client.GetExecutionHistory(context.Background(), &sfn.GetExecutionHistoryInput{
		ExecutionArn: aws.String(arn), ReverseOrder: true, IncludeExecutionData: aws.Bool(false),
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(rev.Events) != len(events) || rev.Events[0].Type != "ExecutionSucceeded" || rev.Events[len(rev.Events)-1].Type != "ExecutionStarted" {
		t.Fatalf("reverse history %v", eventTypes(rev.Events))
	}
	if d := rev.Events[0].ExecutionSucceededEventDetails; d == nil || d.Output != nil {
		t.Fatalf("includeExecutionData=false kept the output: %+v", d)
	}
}

func TestRetryOnNamedError(t *testing.T) {
	t.Parallel()
	id := uniq("retry")
	// IntervalSeconds 5 with BackoffRate 2; the override (0) skips the pauses.
	arn := start(t, client, shared, "workflow", id, stepIn{ID: id, Mode: "temp", FailTimes: 2})
	out := waitDone(t, client, arn)
	if out.Status != types.ExecutionStatusSucceeded {
		t.Fatalf("status %s error %s cause %s", out.Status, aws.ToString(out.Error), aws.ToString(out.Cause))
	}
	if n := callsFor(id).Load(); n != 3 {
		t.Fatalf("step invoked %d times, want 3 (2 TemporaryError + 1 success)", n)
	}
	var got finishOut
	decodeOutput(t, out, &got)
	if got.Attempts != 3 {
		t.Fatalf("output %+v", got)
	}
	var failed, scheduled int
	for _, e := range history(t, client, arn, 0) {
		switch e.Type {
		case types.HistoryEventTypeLambdaFunctionFailed:
			failed++
			d := e.LambdaFunctionFailedEventDetails
			if aws.ToString(d.Error) != "TemporaryError" || !strings.Contains(aws.ToString(d.Cause), `"errorType":"TemporaryError"`) {
				t.Fatalf("LambdaFunctionFailed details %+v", d)
			}
		case types.HistoryEventTypeLambdaFunctionScheduled:
			scheduled++
		}
	}
	if failed != 2 || scheduled != 3 {
		t.Fatalf("history: %d failed, %d scheduled", failed, scheduled)
	}
}

func TestRetriesExhaustedFailsExecution(t *testing.T) {
	t.Parallel()
	id := uniq("exhaust")
	arn := start(t, client, shared, "workflow", id, stepIn{ID: id, Mode: "temp", FailTimes: 100})
	out := waitDone(t, client, arn)
	if out.Status != types.ExecutionStatusFailed || aws.ToString(out.Error) != "TemporaryError" {
		t.Fatalf("status %s error %s", out.Status, aws.ToString(out.Error))
	}
	// As in AWS, the Cause of a Lambda function error is its error document.
	var doc struct{ ErrorType, ErrorMessage string }
	if err := json.Unmarshal([]byte(aws.ToString(out.Cause)), &doc); err != nil || doc.ErrorType != "TemporaryError" || doc.ErrorMessage != "temporarily unable: attempt 4" {
		t.Fatalf("cause %q (%v)", aws.ToString(out.Cause), err)
	}
	if n := callsFor(id).Load(); n != 4 {
		t.Fatalf("step invoked %d times, want 1 + MaxAttempts 3", n)
	}
	events := history(t, client, arn, 0)
	last := events[len(events)-1]
	if last.Type != types.HistoryEventTypeExecutionFailed || aws.ToString(last.ExecutionFailedEventDetails.Error) != "TemporaryError" {
		t.Fatalf("last event %s %+v", last.Type, last.ExecutionFailedEventDetails)
	}
}

func TestCatchRoutesToRecovery(t *testing.T) {
	t.Parallel()
	id := uniq("catch")
	arn := start(t, client, shared, "workflow", id, stepIn{ID: id, Mode: "perm"})
	out := waitDone(t, client, arn)
	if out.Status != types.ExecutionStatusSucceeded {
		t.Fatalf("status %s error %s cause %s", out.Status, aws.ToString(out.Error), aws.ToString(out.Cause))
	}
	var got recoverOut
	decodeOutput(t, out, &got)
	if !got.Recovered || got.ID != id || got.Error != "PermanentError" || got.ErrorType != "PermanentError" || got.ErrorMessage != "permanent: image missing" {
		t.Fatalf("output %+v", got)
	}
	if n := callsFor(id).Load(); n != 1 {
		t.Fatalf("PermanentError was retried: %d calls", n)
	}
	types_ := eventTypes(history(t, client, arn, 0))
	want := []string{
		"ExecutionStarted", "ChoiceStateEntered", "ChoiceStateExited",
		"TaskStateEntered", "LambdaFunctionScheduled", "LambdaFunctionStarted", "LambdaFunctionFailed", "TaskStateExited",
		"TaskStateEntered", "TaskScheduled", "TaskStarted", "TaskSucceeded", "TaskStateExited",
		"ExecutionSucceeded",
	}
	if !reflect.DeepEqual(types_, want) {
		t.Fatalf("history\n got %v\nwant %v", types_, want)
	}
}

func TestTaskTimeoutSeconds(t *testing.T) {
	t.Parallel()
	id := uniq("slow")
	// The step answers after 4 s; TimeoutSeconds is 2: the Task times out
	// (States.Timeout, caught into StepTimedOut) before the function returns.
	arn := start(t, client, shared, "workflow", id, stepIn{ID: id, Mode: "slow"})
	out := waitDone(t, client, arn)
	if out.Status != types.ExecutionStatusFailed || aws.ToString(out.Error) != "StepTimedOut" {
		t.Fatalf("status %s error %s cause %s", out.Status, aws.ToString(out.Error), aws.ToString(out.Cause))
	}
	if n := callsFor(id).Load(); n != 1 {
		t.Fatalf("step invoked %d times, want 1 (a timeout is not retried here)", n)
	}
	events := history(t, client, arn, 0)
	for _, e := range events {
		if e.Type == types.HistoryEventTypeLambdaFunctionTimedOut && aws.ToString(e.LambdaFunctionTimedOutEventDetails.Error) != "States.Timeout" {
			t.Fatalf("LambdaFunctionTimedOut error %q, want States.Timeout", aws.ToString(e.LambdaFunctionTimedOutEventDetails.Error))
		}
	}
	got := eventTypes(events)
	want := []string{
		"ExecutionStarted", "ChoiceStateEntered", "ChoiceStateExited",
		"TaskStateEntered", "LambdaFunctionScheduled", "LambdaFunctionStarted", "LambdaFunctionTimedOut", "TaskStateExited",
		"FailStateEntered", "ExecutionFailed",
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("history\n got %v\nwant %v", got, want)
	}
}

func TestStartExecutionNameRules(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	name := uniq("dup")
	input := stepIn{ID: name, Mode: "long"}
	arn := start(t, client, shared, "workflow", name, input)
	first, err := client.DescribeExecution(ctx, &sfn.DescribeExecutionInput{ExecutionArn: aws.String(arn)})
	if err != nil || first.Status != types.ExecutionStatusRunning {
		t.Fatalf("describe: %v %v", first, err)
	}

	// Same name and input while RUNNING: idempotent, the same execution.
	again, err := client.StartExecution(ctx, &sfn.StartExecutionInput{
		StateMachineArn: aws.String(shared.StateMachineArn("workflow")), Name: aws.String(name), Input: aws.String(jsonString(t, input)),
	})
	if err != nil {
		t.Fatalf("idempotent StartExecution: %v", err)
	}
	if aws.ToString(again.ExecutionArn) != arn || !again.StartDate.Equal(*first.StartDate) {
		t.Fatalf("idempotent start returned %s %v, want %s %v", aws.ToString(again.ExecutionArn), again.StartDate, arn, first.StartDate)
	}
	// Different input: ExecutionAlreadyExists.
	_, err = client.StartExecution(ctx, &sfn.StartExecutionInput{
		StateMachineArn: aws.String(shared.StateMachineArn("workflow")), Name: aws.String(name), Input: aws.String(`{"other":true}`),
	})
	var exists *types.ExecutionAlreadyExists
	if !errors.As(err, &exists) {
		t.Fatalf("different input: %v, want ExecutionAlreadyExists", err)
	}

	// StopExecution of the long Wait: ABORTED with the given error and cause.
	waitForEvent(t, client, arn, "WaitStateEntered")
	stop, err := client.StopExecution(ctx, &sfn.StopExecutionInput{ExecutionArn: aws.String(arn), Error: aws.String("Superseded"), Cause: aws.String("generation 4 replaced it")})
	if err != nil || stop.StopDate == nil {
		t.Fatalf("StopExecution: %v %v", stop, err)
	}
	out, err := client.DescribeExecution(ctx, &sfn.DescribeExecutionInput{ExecutionArn: aws.String(arn)})
	if err != nil {
		t.Fatal(err)
	}
	if out.Status != types.ExecutionStatusAborted || aws.ToString(out.Error) != "Superseded" || aws.ToString(out.Cause) != "generation 4 replaced it" || out.StopDate == nil {
		t.Fatalf("after stop: %s %s %s", out.Status, aws.ToString(out.Error), aws.ToString(out.Cause))
	}
	events := history(t, client, arn, 0)
	last := events[len(events)-1]
	if last.Type != types.HistoryEventTypeExecutionAborted || aws.ToString(last.ExecutionAbortedEventDetails.Error) != "Superseded" {
		t.Fatalf("history %v", eventTypes(events))
	}
	if n := callsFor(name).Load(); n != 0 {
		t.Fatalf("the aborted execution ran its step %d times", n)
	}
	// Stopping again is harmless.
	if _, err := client.StopExecution(ctx, &sfn.StopExecutionInput{ExecutionArn: aws.String(arn)}); err != nil {
		t.Fatalf("second StopExecution: %v", err)
	}

	// Closed: the name is taken, whatever the input.
	_, err = client.StartExecution(ctx, &sfn.StartExecutionInput{
		StateMachineArn: aws.String(shared.StateMachineArn("workflow")), Name: aws.String(name), Input: aws.String(jsonString(t, input)),
	})
	if !errors.As(err, &exists) {
		t.Fatalf("closed execution, same input: %v, want ExecutionAlreadyExists", err)
	}

	// No name: a UUID.
	anon, err := client.StartExecution(ctx, &sfn.StartExecutionInput{StateMachineArn: aws.String(shared.StateMachineArn("workflow")), Input: aws.String(`{"mode":"ok","id":"anon"}`)})
	if err != nil {
		t.Fatal(err)
	}
	if n := aws.ToString(anon.ExecutionArn); len(n[strings.LastIndex(n, ":")+1:]) != 36 {
		t.Fatalf("generated name in %s", n)
	}
	waitDone(t, client, aws.ToString(anon.ExecutionArn))
}

func TestAPIErrors(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	sm := aws.String(shared.StateMachineArn("workflow"))

	_, err := client.StartExecution(ctx, &sfn.StartExecutionInput{StateMachineArn: aws.String(shared.StateMachineArn("nope")), Input: aws.String("{}")})
	var smMissing *types.StateMachineDoesNotExist
	if !errors.As(err, &smMissing) {
		t.Fatalf("unknown state machine: %v", err)
	}
	_, err = client.ListExecutions(ctx, &sfn.ListExecutionsInput{StateMachineArn: aws.String(shared.StateMachineArn("nope"))})
	if !errors.As(err, &smMissing) {
		t.Fatalf("ListExecutions unknown state machine: %v", err)
	}
	_, err = client.DescribeExecution(ctx, &sfn.DescribeExecutionInput{ExecutionArn: aws.String(shared.ExecutionArn("workflow", "never-started"))})
	var exMissing *types.ExecutionDoesNotExist
	if !errors.As(err, &exMissing) {
		t.Fatalf("unknown execution: %v", err)
	}
	_, err = client.StopExecution(ctx, &sfn.StopExecutionInput{ExecutionArn: aws.String(shared.ExecutionArn("workflow", "never-started"))})
	if !errors.As(err, &exMissing) {
		t.Fatalf("stop unknown execution: %v", err)
	}
	for _, bad := range []string{"has space", "a/b", "x:y", "star*", strings.Repeat("n", 81), "tab\tname", "brace{"} {
		_, err = client.StartExecution(ctx, &sfn.StartExecutionInput{StateMachineArn: sm, Name: aws.String(bad), Input: aws.String("{}")})
		var invalid *types.InvalidName
		if !errors.As(err, &invalid) {
			t.Fatalf("name %q: %v, want InvalidName", bad, err)
		}
	}
	_, err = client.StartExecution(ctx, &sfn.StartExecutionInput{StateMachineArn: sm, Name: aws.String(uniq("badinput")), Input: aws.String("{not json")})
	var badInput *types.InvalidExecutionInput
	if !errors.As(err, &badInput) {
		t.Fatalf("bad input: %v", err)
	}
	_, err = client.DescribeExecution(ctx, &sfn.DescribeExecutionInput{ExecutionArn: aws.String("not-an-arn")})
	var badArn *types.InvalidArn
	if !errors.As(err, &badArn) {
		t.Fatalf("bad ARN: %v", err)
	}
}

func TestListExecutions(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	var ok []string
	for i := range 5 {
		id := uniq(fmt.Sprintf("list%d", i))
		ok = append(ok, start(t, client, shared, "listing", id, stepIn{ID: id, Mode: "ok"}))
	}
	longName := uniq("list-long")
	long := start(t, client, shared, "listing", longName, stepIn{ID: longName, Mode: "long"})
	defer func() {
		_, _ = client.StopExecution(ctx, &sfn.StopExecutionInput{ExecutionArn: aws.String(long)})
	}()
	for _, arn := range ok {
		if out := waitDone(t, client, arn); out.Status != types.ExecutionStatusSucceeded {
			t.Fatalf("%s: %s", arn, out.Status)
		}
	}

	list := func(status types.ExecutionStatus, page int32) []types.ExecutionListItem {
		var items []types.ExecutionListItem
		p := sfn.NewListExecutionsPaginator(client, &sfn.ListExecutionsInput{
			StateMachineArn: aws.String(shared.StateMachineArn("listing")), StatusFilter: status, MaxResults: page,
		})
		pages := 0
		for p.HasMorePages() {
			out, err := p.NextPage(ctx)
			if err != nil {
				t.Fatalf("ListExecutions: %v", err)
			}
			pages++
			items = append(items, out.Executions...)
		}
		if page > 0 && pages < len(items)/int(page) {
			t.Fatalf("%d items in %d pages of %d", len(items), pages, page)
		}
		return items
	}

	// The "listing" machine holds only this test's executions (but earlier
	// ones too under -count=N: count ours).
	succeeded := list(types.ExecutionStatusSucceeded, 2)
	seen := map[string]bool{}
	for i, e := range succeeded {
		if e.Status != types.ExecutionStatusSucceeded || seen[aws.ToString(e.ExecutionArn)] || e.StopDate == nil {
			t.Fatalf("item %+v", e)
		}
		seen[aws.ToString(e.ExecutionArn)] = true
		if i > 0 && e.StartDate.After(*succeeded[i-1].StartDate) {
			t.Fatalf("not newest first")
		}
	}
	for _, arn := range ok {
		if !seen[arn] {
			t.Fatalf("%s missing", arn)
		}
	}
	running := list(types.ExecutionStatusRunning, 0)
	if len(running) != 1 || aws.ToString(running[0].ExecutionArn) != long || running[0].StopDate != nil {
		t.Fatalf("RUNNING: %+v", running)
	}
	ours := map[string]bool{long: true}
	for _, arn := range ok {
		ours[arn] = true
	}
	mine := 0
	for _, e := range list("", 4) {
		if ours[aws.ToString(e.ExecutionArn)] {
			mine++
		}
	}
	if mine != 6 {
		t.Fatalf("%d of this test's executions in the unfiltered list, want 6", mine)
	}
	if failed := list(types.ExecutionStatusFailed, 0); len(failed) != 0 {
		t.Fatalf("FAILED: %+v", failed)
	}
}

func TestStateMachines(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	ls, err := client.ListStateMachines(ctx, &sfn.ListStateMachinesInput{})
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, m := range ls.StateMachines {
		names = append(names, aws.ToString(m.Name))
	}
	if !reflect.DeepEqual(names, []string{"fanout", "hold", "listing", "paging", "slowretry", "workflow"}) {
		t.Fatalf("state machines %+v", ls.StateMachines)
	}
	d, err := client.DescribeStateMachine(ctx, &sfn.DescribeStateMachineInput{StateMachineArn: aws.String(shared.StateMachineArn("workflow"))})
	if err != nil {
		t.Fatal(err)
	}
	def := aws.ToString(d.Definition)
	if d.Type != types.StateMachineTypeStandard || d.Status != types.StateMachineStatusActive ||
		!strings.Contains(def, "function:step") || strings.Contains(def, "${") || !json.Valid([]byte(def)) {
		t.Fatalf("describe %+v", d)
	}
}

// TestRestartKeepsExecutions kills the service mid-execution and restarts it
// on the same state file: finished executions keep their result, the running
// one comes back ABORTED, and the service accepts new work.
func TestRestartKeepsExecutions(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	var log testkit.SyncBuffer
	cfg := testConfig()
	cfg.StateFile = filepath.Join(t.TempDir(), "executions.json")
	cfg.Log = &log
	svc, err := localsfn.Start(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		if t.Failed() {
			t.Logf("service log:\n%s", log.String())
		}
		_ = svc.Stop()
	}()
	c, err := localsfn.NewClient(ctx, svc.Endpoint)
	if err != nil {
		t.Fatal(err)
	}
	doneID := uniq("kept")
	done := start(t, c, svc, "workflow", doneID, stepIn{ID: doneID, Mode: "ok"})
	doneOut := waitDone(t, c, done)
	runningID := uniq("cut")
	runningInput := stepIn{ID: runningID, Mode: "long"}
	running := start(t, c, svc, "workflow", runningID, runningInput)
	waitForEvent(t, c, running, "WaitStateEntered")

	endpoint := svc.Endpoint
	if err := svc.Kill(); err != nil {
		t.Fatal(err)
	}
	if svc.Running() {
		t.Fatal("still running after Kill")
	}
	if _, err := c.DescribeExecution(ctx, &sfn.DescribeExecutionInput{ExecutionArn: aws.String(done)}); err == nil {
		t.Fatal("killed service still answers")
	}
	if err := svc.Kill(); err != nil { // idempotent
		t.Fatal(err)
	}
	if err := svc.Restart(ctx); err != nil {
		t.Fatal(err)
	}
	if svc.Endpoint != endpoint {
		t.Fatalf("endpoint changed: %s → %s", endpoint, svc.Endpoint)
	}

	got, err := c.DescribeExecution(ctx, &sfn.DescribeExecutionInput{ExecutionArn: aws.String(done)})
	if err != nil {
		t.Fatal(err)
	}
	if got.Status != types.ExecutionStatusSucceeded || aws.ToString(got.Output) != aws.ToString(doneOut.Output) || !got.StartDate.Equal(*doneOut.StartDate) {
		t.Fatalf("finished execution after restart: %s %s", got.Status, aws.ToString(got.Output))
	}
	cut, err := c.DescribeExecution(ctx, &sfn.DescribeExecutionInput{ExecutionArn: aws.String(running)})
	if err != nil {
		t.Fatal(err)
	}
	if cut.Status != types.ExecutionStatusAborted || aws.ToString(cut.Error) != "Local.ServiceRestarted" || cut.StopDate == nil {
		t.Fatalf("running execution after restart: %s %s", cut.Status, aws.ToString(cut.Error))
	}
	ev := history(t, c, running, 0)
	if ev[len(ev)-1].Type != types.HistoryEventTypeExecutionAborted || len(history(t, c, done, 0)) != 16 {
		t.Fatalf("histories after restart: %v", eventTypes(ev))
	}
	// The name stays taken (a reconciler must pick a new one, or describe first).
	_, err = c.StartExecution(ctx, &sfn.StartExecutionInput{
		StateMachineArn: aws.String(svc.StateMachineArn("workflow")), Name: aws.String(runningID), Input: aws.String(jsonString(t, runningInput)),
	})
	var exists *types.ExecutionAlreadyExists
	if !errors.As(err, &exists) {
		t.Fatalf("restart freed the name: %v", err)
	}
	againID := uniq("again")
	if out := waitDone(t, c, start(t, c, svc, "workflow", againID, stepIn{ID: againID, Mode: "ok"})); out.Status != types.ExecutionStatusSucceeded {
		t.Fatalf("after restart: %s", out.Status)
	}

	// A graceful stop and start keeps everything too.
	if err := svc.Stop(); err != nil {
		t.Fatal(err)
	}
	if err := svc.Stop(); err != nil { // idempotent
		t.Fatal(err)
	}
	if err := svc.Restart(ctx); err != nil {
		t.Fatal(err)
	}
	if err := svc.Healthy(ctx); err != nil {
		t.Fatal(err)
	}
	ls, err := c.ListExecutions(ctx, &sfn.ListExecutionsInput{StateMachineArn: aws.String(svc.StateMachineArn("workflow"))})
	if err != nil {
		t.Fatal(err)
	}
	if len(ls.Executions) != 3 {
		t.Fatalf("%d executions after the second restart, want 3", len(ls.Executions))
	}
}

// TestEngineLambdaClient runs the workflow with aws-local-stepfunctions' own
// AWS SDK Lambda client (AWS_ENDPOINT_URL_LAMBDA) instead of the adapter's:
// the local Invoke endpoint serves both Resource forms as that client sends
// them.
func TestEngineLambdaClient(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	var log testkit.SyncBuffer
	cfg := testConfig()
	cfg.TaskInvoker = "engine"
	cfg.StateMachines = cfg.StateMachines[:1]
	cfg.Log = &log
	svc, err := localsfn.Start(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		if t.Failed() {
			t.Logf("service log:\n%s", log.String())
		}
		_ = svc.Stop()
	}()
	c, err := localsfn.NewClient(ctx, svc.Endpoint)
	if err != nil {
		t.Fatal(err)
	}
	id := uniq("engine")
	out := waitDone(t, c, start(t, c, svc, "workflow", id, stepIn{ID: id, Mode: "temp", FailTimes: 1}))
	if out.Status != types.ExecutionStatusSucceeded {
		t.Fatalf("status %s %s %s", out.Status, aws.ToString(out.Error), aws.ToString(out.Cause))
	}
	var got finishOut
	decodeOutput(t, out, &got)
	if want := (finishOut{ID: id, Attempts: 2, Greeting: "hello " + id, Execution: id, Finished: true}); got != want {
		t.Fatalf("output %+v, want %+v", got, want)
	}
	id = uniq("engine-catch")
	out = waitDone(t, c, start(t, c, svc, "workflow", id, stepIn{ID: id, Mode: "perm"}))
	var rec recoverOut
	decodeOutput(t, out, &rec)
	// The engine's client reports the Cause as "errorType: errorMessage".
	if out.Status != types.ExecutionStatusSucceeded || rec.Error != "PermanentError" || rec.Cause != "PermanentError: permanent: image missing" {
		t.Fatalf("catch via engine client: %s %+v", out.Status, rec)
	}
}

// TestStopDuringRetry stops an execution while its Task waits to be retried:
// the Lambda must not be invoked again (the engine alone would skip the pause
// and retry at once after an abort).
func TestStopDuringRetry(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	id := uniq("stopretry")
	arn := start(t, client, shared, "slowretry", id, stepIn{ID: id, Mode: "temp", FailTimes: 100})
	waitForEvent(t, client, arn, "LambdaFunctionFailed")
	if _, err := client.StopExecution(ctx, &sfn.StopExecutionInput{ExecutionArn: aws.String(arn)}); err != nil {
		t.Fatal(err)
	}
	time.Sleep(300 * time.Millisecond)
	if n := callsFor(id).Load(); n != 1 {
		t.Fatalf("step invoked %d times; after StopExecution it must not be retried", n)
	}
	out := waitDone(t, client, arn)
	if out.Status != types.ExecutionStatusAborted || out.Error != nil || out.Cause != nil {
		t.Fatalf("status %s error %v cause %v", out.Status, out.Error, out.Cause)
	}
	events := history(t, client, arn, 0)
	if last := events[len(events)-1]; last.Type != types.HistoryEventTypeExecutionAborted {
		t.Fatalf("history %v", eventTypes(events))
	}
}

func TestMapAndParallel(t *testing.T) {
	t.Parallel()
	a, b := uniq("item"), uniq("item")
	arn := start(t, client, shared, "fanout", uniq("fan"), map[string]any{"items": []stepIn{{ID: a, Mode: "ok"}, {ID: b, Mode: "temp", FailTimes: 0}}})
	out := waitDone(t, client, arn)
	if out.Status != types.ExecutionStatusSucceeded {
		t.Fatalf("status %s %s %s", out.Status, aws.ToString(out.Error), aws.ToString(out.Cause))
	}
	var got []finishOut
	decodeOutput(t, out, &got)
	want := []finishOut{{ID: "left", Attempts: 1, Finished: true}, {ID: "right", Attempts: 1, Finished: true}}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("output %+v", got)
	}
	if callsFor(a).Load() != 1 || callsFor(b).Load() != 1 {
		t.Fatalf("map items invoked %d and %d times", callsFor(a).Load(), callsFor(b).Load())
	}
	count := map[string]int{}
	for _, e := range history(t, client, arn, 0) {
		count[string(e.Type)]++
	}
	if count["MapIterationStarted"] != 2 || count["MapIterationSucceeded"] != 2 || count["LambdaFunctionScheduled"] != 2 ||
		count["LambdaFunctionSucceeded"] != 2 || count["TaskScheduled"] != 2 || count["TaskSucceeded"] != 2 ||
		count["MapStateEntered"] != 1 || count["ParallelStateExited"] != 1 || count["ExecutionSucceeded"] != 1 {
		t.Fatalf("history counts %v", count)
	}
}

func TestUnsupportedDefinitionFailsStart(t *testing.T) {
	t.Parallel()
	cfg := testConfig()
	cfg.StateMachines = []localsfn.StateMachine{{
		Name:       "jsonata",
		Definition: json.RawMessage(`{"QueryLanguage":"JSONata","StartAt":"P","States":{"P":{"Type":"Pass","Output":"{% 1 %}","End":true}}}`),
	}}
	_, err := localsfn.Start(context.Background(), cfg)
	if err == nil || !strings.Contains(err.Error(), "QueryLanguage JSONata") {
		t.Fatalf("err %v", err)
	}
	cfg.StateMachines = []localsfn.StateMachine{testMachine("nosubst")}
	cfg.StateMachines[0].Substitutions = nil
	_, err = localsfn.Start(context.Background(), cfg)
	if err == nil || !strings.Contains(err.Error(), "no substitution for ${StepFunction}") {
		t.Fatalf("err %v", err)
	}
}

// TestRetainFinished: only the newest RetainFinished finished executions of a
// state machine are kept, in memory and across a restart, so a long-lived
// local stack stays bounded; running executions are never dropped.
func TestRetainFinished(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	cfg := testConfig()
	cfg.StateFile = filepath.Join(t.TempDir(), "executions.json")
	cfg.RetainFinished = 2
	svc, err := localsfn.Start(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = svc.Stop() }()
	c, err := localsfn.NewClient(ctx, svc.Endpoint)
	if err != nil {
		t.Fatal(err)
	}
	longID := uniq("long")
	long := start(t, c, svc, "workflow", longID, stepIn{ID: longID, Mode: "long"})
	var finished []string
	for i := 0; i < 4; i++ {
		id := uniq("done")
		arn := start(t, c, svc, "workflow", id, stepIn{ID: id, Mode: "ok"})
		waitDone(t, c, arn)
		finished = append(finished, arn)
	}
	check := func(when string) {
		t.Helper()
		ls, err := c.ListExecutions(ctx, &sfn.ListExecutionsInput{StateMachineArn: aws.String(svc.StateMachineArn("workflow"))})
		if err != nil {
			t.Fatal(err)
		}
		var arns []string
		for _, e := range ls.Executions {
			arns = append(arns, aws.ToString(e.ExecutionArn))
		}
		if len(arns) != 3 || !slices.Contains(arns, long) || !slices.Contains(arns, finished[2]) || !slices.Contains(arns, finished[3]) {
			t.Fatalf("%s: executions %v, want the running one and the newest two finished", when, arns)
		}
		var missing *types.ExecutionDoesNotExist
		if _, err := c.DescribeExecution(ctx, &sfn.DescribeExecutionInput{ExecutionArn: aws.String(finished[0])}); !errors.As(err, &missing) {
			t.Fatalf("%s: the oldest finished execution is still there: %v", when, err)
		}
	}
	check("running")
	// A dropped execution's name stays taken (AWS keeps names 90 days).
	takenAgain := func(when string) {
		t.Helper()
		name := finished[0][strings.LastIndex(finished[0], ":")+1:]
		_, err := c.StartExecution(ctx, &sfn.StartExecutionInput{StateMachineArn: aws.String(svc.StateMachineArn("workflow")),
			Name: aws.String(name), Input: aws.String(jsonString(t, stepIn{ID: name, Mode: "ok"}))})
		var exists *types.ExecutionAlreadyExists
		if !errors.As(err, &exists) {
			t.Fatalf("%s: restarting the dropped execution %s: %v, want ExecutionAlreadyExists", when, name, err)
		}
	}
	takenAgain("running")
	if err := svc.Stop(); err != nil {
		t.Fatal(err)
	}
	if err := svc.Restart(ctx); err != nil {
		t.Fatal(err)
	}
	// The running one came back ABORTED: finished now, and the oldest, so it
	// is dropped and the newest two finished remain.
	ls, err := c.ListExecutions(ctx, &sfn.ListExecutionsInput{StateMachineArn: aws.String(svc.StateMachineArn("workflow"))})
	if err != nil {
		t.Fatal(err)
	}
	if len(ls.Executions) != 2 {
		t.Fatalf("after restart: %d executions, want 2", len(ls.Executions))
	}
	takenAgain("after restart")
	// After a crash the journal's replay drops the same ones.
	if err := svc.Kill(); err != nil {
		t.Fatal(err)
	}
	if err := svc.Restart(ctx); err != nil {
		t.Fatal(err)
	}
	if ls, err = c.ListExecutions(ctx, &sfn.ListExecutionsInput{StateMachineArn: aws.String(svc.StateMachineArn("workflow"))}); err != nil {
		t.Fatal(err)
	}
	if len(ls.Executions) != 2 {
		t.Fatalf("after kill and restart: %d executions, want 2", len(ls.Executions))
	}
	takenAgain("after kill and restart")
}

// TestLambdaCallsAreSigned: the service signs its Invoke requests with
// Config.LambdaCredentials (SigV4); the local Lambda endpoint refuses a
// service holding other credentials, for the adapter and the engine's own
// client alike, and the function never runs.
func TestLambdaCallsAreSigned(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	for _, invoker := range []string{"adapter", "engine"} {
		var log testkit.SyncBuffer
		cfg := testConfig()
		cfg.TaskInvoker = invoker
		cfg.StateMachines = cfg.StateMachines[:1]
		cfg.LambdaCredentials = lambdalocal.NewCredentials()
		cfg.Log = &log
		svc, err := localsfn.Start(ctx, cfg)
		if err != nil {
			t.Fatal(err)
		}
		c, err := localsfn.NewClient(ctx, svc.Endpoint)
		if err != nil {
			t.Fatal(err)
		}
		id := uniq("unsigned-" + invoker)
		out := waitDone(t, c, start(t, c, svc, "workflow", id, stepIn{ID: id, Mode: "ok"}))
		_ = svc.Stop()
		if out.Status == types.ExecutionStatusSucceeded || !strings.Contains(aws.ToString(out.Error)+aws.ToString(out.Cause), "UnrecognizedClient") {
			t.Errorf("%s with foreign credentials: %s %s %s\n%s", invoker, out.Status, aws.ToString(out.Error), aws.ToString(out.Cause), log.String())
		}
		if n := callsFor(id).Load(); n != 0 {
			t.Errorf("%s with foreign credentials: the step ran %d times", invoker, n)
		}
	}
}
