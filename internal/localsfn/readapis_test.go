package localsfn_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/service/sfn"
	"github.com/aws/aws-sdk-go-v2/service/sfn/types"
	"github.com/aws/smithy-go"
	"github.com/aws/smithy-go/middleware"

	"github.com/sluicehq/sluice/internal/domain"
	"github.com/sluicehq/sluice/internal/localsfn"
	"github.com/sluicehq/sluice/internal/workflow"
)

// The rules of DescribeExecution, StopExecution, ListExecutions and
// GetExecutionHistory as the Step Functions API reference states them
// (https://docs.aws.amazon.com/step-functions/latest/apireference/API_<Op>.html;
// infra/local-sfn/rules.js and service.js cite each beside its check), checked with the
// production client. Each error is a 400 that aws-sdk-go-v2 decodes into its
// type (apiError).

// validationError asserts err is a ValidationException answered with HTTP
// 400. Not every operation's model lists it (DescribeExecution's and
// GetExecutionHistory's do not: it is one of the errors common to all
// actions), so the SDK decodes it by code, into its own type where modelled.
func validationError(t *testing.T, what string, err error) {
	t.Helper()
	var api smithy.APIError
	if !errors.As(err, &api) || api.ErrorCode() != "ValidationException" {
		t.Fatalf("%s: %v, want ValidationException", what, err)
	}
	var re *awshttp.ResponseError
	if !errors.As(err, &re) || re.HTTPStatusCode() != http.StatusBadRequest {
		t.Fatalf("%s: %v, want HTTP 400", what, err)
	}
}

// unvalidated removes the client's own check of required members, so that
// the request reaches the service as a hand-written one would.
func unvalidated(o *sfn.Options) {
	o.APIOptions = append(o.APIOptions, func(st *middleware.Stack) error {
		_, err := st.Initialize.Remove("OperationInputValidation")
		return err
	})
}

// startHold starts an execution of the "hold" machine (a one-hour Wait).
func startHold(t *testing.T) string {
	t.Helper()
	out, err := client.StartExecution(context.Background(), &sfn.StartExecutionInput{
		StateMachineArn: aws.String(shared.StateMachineArn("hold")), Name: aws.String(uniq("hold")),
	})
	if err != nil {
		t.Fatal(err)
	}
	return aws.ToString(out.ExecutionArn)
}

// Required ARNs ("Required: Yes"): absent → ValidationException.
// ListExecutions: "You can specify either a mapRunArn or a stateMachineArn,
// but not both": neither or both → ValidationException; no Map Runs are
// served, so a mapRunArn → ResourceNotFound.
func TestReadAPIsRequireTheirArn(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	_, err := client.DescribeExecution(ctx, &sfn.DescribeExecutionInput{}, unvalidated)
	validationError(t, "DescribeExecution without executionArn", err)
	_, err = client.StopExecution(ctx, &sfn.StopExecutionInput{}, unvalidated)
	validationError(t, "StopExecution without executionArn", err)
	_, err = client.GetExecutionHistory(ctx, &sfn.GetExecutionHistoryInput{}, unvalidated)
	validationError(t, "GetExecutionHistory without executionArn", err)
	_, err = client.ListExecutions(ctx, &sfn.ListExecutionsInput{})
	validationError(t, "ListExecutions without stateMachineArn or mapRunArn", err)
	mapRun := "arn:aws:states:us-east-1:123456789012:mapRun:workflow/Map:" + uniq("run")
	_, err = client.ListExecutions(ctx, &sfn.ListExecutionsInput{StateMachineArn: aws.String(shared.StateMachineArn("workflow")), MapRunArn: aws.String(mapRun)})
	validationError(t, "ListExecutions with both", err)
	_, err = client.ListExecutions(ctx, &sfn.ListExecutionsInput{MapRunArn: aws.String(mapRun)})
	apiError[*types.ResourceNotFound](t, "ListExecutions of an unknown Map Run", err)
}

// ARNs: 1..256 characters ("Length Constraints: Minimum length of 1.
// Maximum length of 256.") → ValidationException; not an ARN of the
// resource's kind → InvalidArn; well-formed but unknown →
// ExecutionDoesNotExist / StateMachineDoesNotExist.
func TestReadAPIsArnRules(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	execPrefix := "arn:aws:states:us-east-1:123456789012:execution:workflow:"
	at256 := execPrefix + strings.Repeat("n", 256-len(execPrefix))
	over := execPrefix + strings.Repeat("n", 257-len(execPrefix))
	smOver := "arn:aws:states:us-east-1:123456789012:stateMachine:" + strings.Repeat("m", 257-len("arn:aws:states:us-east-1:123456789012:stateMachine:"))
	ops := map[string]func(arn string) error{
		"DescribeExecution": func(arn string) error {
			_, err := client.DescribeExecution(ctx, &sfn.DescribeExecutionInput{ExecutionArn: aws.String(arn)})
			return err
		},
		"StopExecution": func(arn string) error {
			_, err := client.StopExecution(ctx, &sfn.StopExecutionInput{ExecutionArn: aws.String(arn)})
			return err
		},
		"GetExecutionHistory": func(arn string) error {
			_, err := client.GetExecutionHistory(ctx, &sfn.GetExecutionHistoryInput{ExecutionArn: aws.String(arn)})
			return err
		},
	}
	for op, call := range ops {
		validationError(t, op+" with an empty ARN", call(""))
		validationError(t, op+" with a 257-character ARN", call(over))
		apiError[*types.ExecutionDoesNotExist](t, op+" with a 256-character unknown ARN", call(at256))
		apiError[*types.ExecutionDoesNotExist](t, op+" of an unknown execution", call(shared.ExecutionArn("workflow", uniq("never"))))
		for _, bad := range []string{"not-an-arn", shared.StateMachineArn("workflow"), "arn:aws:states:us-east-1:123456789012:execution:workflow", "arn:aws:lambda:us-east-1:123456789012:execution:workflow:x"} {
			apiError[*types.InvalidArn](t, fmt.Sprintf("%s(%q)", op, bad), call(bad))
		}
	}
	list := func(arn string) error {
		_, err := client.ListExecutions(ctx, &sfn.ListExecutionsInput{StateMachineArn: aws.String(arn)})
		return err
	}
	validationError(t, "ListExecutions with a 257-character ARN", list(smOver))
	apiError[*types.InvalidArn](t, "ListExecutions with an execution ARN", list(shared.ExecutionArn("workflow", "x")))
	apiError[*types.StateMachineDoesNotExist](t, "ListExecutions of an unknown state machine", list(shared.StateMachineArn(uniq("nope"))))
}

// StopExecution: error ≤ 256 and cause ≤ 32768 characters (API_StopExecution,
// Length Constraints) → ValidationException, and the execution keeps
// running; at the limits both are kept whole. Stopping an execution that
// already ended (no error is documented for it) answers its stop date and
// leaves it as it ended.
func TestStopExecutionRules(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	arn := startHold(t)
	stop := func(arn string, e, c *string) error {
		_, err := client.StopExecution(ctx, &sfn.StopExecutionInput{ExecutionArn: aws.String(arn), Error: e, Cause: c})
		return err
	}
	describe := func(arn string) *sfn.DescribeExecutionOutput {
		t.Helper()
		d, err := client.DescribeExecution(ctx, &sfn.DescribeExecutionInput{ExecutionArn: aws.String(arn)})
		if err != nil {
			t.Fatal(err)
		}
		return d
	}
	validationError(t, "error of 257 characters", stop(arn, aws.String(strings.Repeat("e", 257)), nil))
	validationError(t, "cause of 32769 characters", stop(arn, nil, aws.String(strings.Repeat("c", 32769))))
	validationError(t, "error of 257 characters on an unknown execution", stop(shared.ExecutionArn("hold", uniq("never")), aws.String(strings.Repeat("e", 257)), nil))
	if d := describe(arn); d.Status != types.ExecutionStatusRunning {
		t.Fatalf("after rejected stops: %s", d.Status)
	}
	errText, cause := strings.Repeat("é", 256), strings.Repeat("ç", 32768)
	if err := stop(arn, aws.String(errText), aws.String(cause)); err != nil {
		t.Fatalf("stop at the limits: %v", err)
	}
	d := describe(arn)
	if d.Status != types.ExecutionStatusAborted || aws.ToString(d.Error) != errText || aws.ToString(d.Cause) != cause || d.StopDate == nil {
		t.Fatalf("after stop: %s error %d chars, cause %d chars", d.Status, len([]rune(aws.ToString(d.Error))), len([]rune(aws.ToString(d.Cause))))
	}
	out, err := client.StopExecution(ctx, &sfn.StopExecutionInput{ExecutionArn: aws.String(arn), Error: aws.String("Again"), Cause: aws.String("again")})
	if err != nil || out.StopDate == nil || !out.StopDate.Equal(*d.StopDate) {
		t.Fatalf("stop of an ABORTED execution: %v %v, want its stop date %v", out, err, d.StopDate)
	}
	if again := describe(arn); again.Status != types.ExecutionStatusAborted || aws.ToString(again.Error) != errText {
		t.Fatalf("a second stop changed the execution: %s %q", again.Status, aws.ToString(again.Error))
	}

	done, err := client.StartExecution(ctx, &sfn.StartExecutionInput{StateMachineArn: aws.String(shared.StateMachineArn("paging")), Name: aws.String(uniq("stopdone"))})
	if err != nil {
		t.Fatal(err)
	}
	ended := waitDone(t, client, aws.ToString(done.ExecutionArn))
	if err := stop(aws.ToString(done.ExecutionArn), aws.String("Late"), aws.String("late")); err != nil {
		t.Fatalf("stop of a SUCCEEDED execution: %v", err)
	}
	if d := describe(aws.ToString(done.ExecutionArn)); d.Status != types.ExecutionStatusSucceeded || d.Error != nil || d.Cause != nil || !d.StopDate.Equal(*ended.StopDate) {
		t.Fatalf("stop changed a SUCCEEDED execution: %s %v %v", d.Status, d.Error, d.Cause)
	}
}

// retoken decodes a page token of the local service, lets edit change it,
// and encodes it again (to forge an expired one).
func retoken(t *testing.T, token *string, edit func(map[string]any)) *string {
	t.Helper()
	raw, err := base64.StdEncoding.DecodeString(aws.ToString(token))
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(raw, &m); err != nil {
		t.Fatal(err)
	}
	edit(m)
	b, _ := json.Marshal(m)
	return aws.String(base64.StdEncoding.EncodeToString(b))
}

// ListExecutions: maxResults 0..1000, default 100 ("A value of 0 uses the
// default"); statusFilter one of RUNNING | SUCCEEDED | FAILED | TIMED_OUT |
// ABORTED | PENDING_REDRIVE; nextToken only with the other arguments
// unchanged and for 24 hours, else InvalidToken.
func TestListExecutionsRules(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	sm := aws.String(shared.StateMachineArn("paging"))
	for range 101 {
		if _, err := client.StartExecution(ctx, &sfn.StartExecutionInput{StateMachineArn: sm, Name: aws.String(uniq("page"))}); err != nil {
			t.Fatal(err)
		}
	}
	list := func(in sfn.ListExecutionsInput) (*sfn.ListExecutionsOutput, error) {
		in.StateMachineArn = sm
		return client.ListExecutions(ctx, &in)
	}
	for _, n := range []int32{-1, 1001} {
		_, err := list(sfn.ListExecutionsInput{MaxResults: n})
		validationError(t, fmt.Sprintf("maxResults %d", n), err)
	}
	_, err := list(sfn.ListExecutionsInput{StatusFilter: "DONE"})
	validationError(t, "statusFilter DONE", err)
	if out, err := list(sfn.ListExecutionsInput{StatusFilter: types.ExecutionStatusPendingRedrive}); err != nil || len(out.Executions) != 0 {
		t.Fatalf("statusFilter PENDING_REDRIVE: %v %v", out, err)
	}
	first, err := list(sfn.ListExecutionsInput{})
	if err != nil || len(first.Executions) != 100 || first.NextToken == nil {
		t.Fatalf("default page: %d executions, token %v, %v; want 100 and a token", len(first.Executions), first.NextToken != nil, err)
	}
	all, err := list(sfn.ListExecutionsInput{MaxResults: 1000})
	if err != nil || len(all.Executions) < 101 || (len(all.Executions) < 1000) != (all.NextToken == nil) {
		t.Fatalf("maxResults 1000: %d executions, token %v, %v", len(all.Executions), all.NextToken != nil, err)
	}

	page, err := list(sfn.ListExecutionsInput{MaxResults: 2})
	if err != nil || page.NextToken == nil {
		t.Fatalf("page of 2: %v %v", page, err)
	}
	next, err := list(sfn.ListExecutionsInput{MaxResults: 2, NextToken: page.NextToken})
	if err != nil || len(next.Executions) != 2 || aws.ToString(next.Executions[0].ExecutionArn) == aws.ToString(page.Executions[0].ExecutionArn) {
		t.Fatalf("next page: %v %v", next, err)
	}
	// The page size may change between pages; the other arguments may not.
	if _, err := list(sfn.ListExecutionsInput{MaxResults: 5, NextToken: page.NextToken}); err != nil {
		t.Fatalf("next page of another size: %v", err)
	}
	_, err = list(sfn.ListExecutionsInput{NextToken: page.NextToken, StatusFilter: types.ExecutionStatusSucceeded})
	apiError[*types.InvalidToken](t, "token with another statusFilter", err)
	_, err = client.ListExecutions(ctx, &sfn.ListExecutionsInput{StateMachineArn: aws.String(shared.StateMachineArn("workflow")), NextToken: page.NextToken})
	apiError[*types.InvalidToken](t, "token of another state machine", err)
	for _, bad := range []string{"garbage", "e30=", base64.StdEncoding.EncodeToString([]byte(`{"k":"hist","t":1}`))} {
		_, err = list(sfn.ListExecutionsInput{NextToken: aws.String(bad)})
		apiError[*types.InvalidToken](t, fmt.Sprintf("token %q", bad), err)
	}
	expired := retoken(t, page.NextToken, func(m map[string]any) {
		m["t"] = float64(time.Now().Add(-24*time.Hour - time.Minute).UnixMilli())
	})
	_, err = list(sfn.ListExecutionsInput{MaxResults: 2, NextToken: expired})
	apiError[*types.InvalidToken](t, "token older than 24 hours", err)
}

// GetExecutionHistory: maxResults 0..1000; reverseOrder lists the latest
// events first; includeExecutionData false leaves input and output out;
// nextToken only for the same execution and arguments, within 24 hours.
func TestGetExecutionHistoryRules(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	out, err := client.StartExecution(ctx, &sfn.StartExecutionInput{StateMachineArn: aws.String(shared.StateMachineArn("paging")), Name: aws.String(uniq("hist")), Input: aws.String(`{"secret":1}`)})
	if err != nil {
		t.Fatal(err)
	}
	arn := aws.ToString(out.ExecutionArn)
	waitDone(t, client, arn)
	get := func(in sfn.GetExecutionHistoryInput) (*sfn.GetExecutionHistoryOutput, error) {
		in.ExecutionArn = aws.String(arn)
		return client.GetExecutionHistory(ctx, &in)
	}
	for _, n := range []int32{-1, 1001} {
		_, err := get(sfn.GetExecutionHistoryInput{MaxResults: n})
		validationError(t, fmt.Sprintf("maxResults %d", n), err)
	}
	forward := history(t, client, arn, 1000)
	if len(forward) < 3 || forward[0].Type != types.HistoryEventTypeExecutionStarted {
		t.Fatalf("history %v", eventTypes(forward))
	}
	var backward []types.HistoryEvent
	p := sfn.NewGetExecutionHistoryPaginator(client, &sfn.GetExecutionHistoryInput{ExecutionArn: aws.String(arn), ReverseOrder: true, MaxResults: 1})
	pages := 0
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			t.Fatal(err)
		}
		pages++
		backward = append(backward, page.Events...)
	}
	if pages != len(forward) || len(backward) != len(forward) {
		t.Fatalf("reverse order in pages of 1: %d events in %d pages, want %d", len(backward), pages, len(forward))
	}
	for i := range forward {
		if backward[len(backward)-1-i].Id != forward[i].Id {
			t.Fatalf("reverseOrder: %v, forward %v", eventTypes(backward), eventTypes(forward))
		}
	}
	lean, err := get(sfn.GetExecutionHistoryInput{IncludeExecutionData: aws.Bool(false)})
	if err != nil || lean.Events[0].ExecutionStartedEventDetails == nil || lean.Events[0].ExecutionStartedEventDetails.Input != nil {
		t.Fatalf("includeExecutionData false: %+v %v", lean, err)
	}

	page, err := get(sfn.GetExecutionHistoryInput{MaxResults: 1})
	if err != nil || page.NextToken == nil {
		t.Fatalf("page of 1: %v %v", page, err)
	}
	_, err = get(sfn.GetExecutionHistoryInput{MaxResults: 1, NextToken: page.NextToken, ReverseOrder: true})
	apiError[*types.InvalidToken](t, "token with reverseOrder changed", err)
	_, err = get(sfn.GetExecutionHistoryInput{MaxResults: 1, NextToken: page.NextToken, IncludeExecutionData: aws.Bool(false)})
	apiError[*types.InvalidToken](t, "token with includeExecutionData changed", err)
	other := startHold(t)
	defer func() { _, _ = client.StopExecution(ctx, &sfn.StopExecutionInput{ExecutionArn: aws.String(other)}) }()
	_, err = client.GetExecutionHistory(ctx, &sfn.GetExecutionHistoryInput{ExecutionArn: aws.String(other), NextToken: page.NextToken})
	apiError[*types.InvalidToken](t, "token of another execution", err)
	expired := retoken(t, page.NextToken, func(m map[string]any) {
		m["t"] = float64(time.Now().Add(-24*time.Hour - time.Minute).UnixMilli())
	})
	_, err = get(sfn.GetExecutionHistoryInput{MaxResults: 1, NextToken: expired})
	apiError[*types.InvalidToken](t, "token older than 24 hours", err)
	if _, err := get(sfn.GetExecutionHistoryInput{MaxResults: 1, NextToken: page.NextToken}); err != nil {
		t.Fatalf("the token itself: %v", err)
	}
}

// ListExecutions and DescribeExecution are "eventually consistent. The
// results are best effort and may not reflect very recent updates and
// changes." (API_ListExecutions, API_DescribeExecution). With the lags set,
// a new execution is missing from the first ListExecutionsLag listings and
// not found by the first DescribeExecutionLag describes; the production
// starter (workflow.SFN) still reports a just-started execution running, so
// the reconciler does not start a second attempt beside it.
func TestEventualConsistency(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	cfg := testConfig()
	cfg.ListExecutionsLag, cfg.DescribeExecutionLag = 2, 2
	svc, err := localsfn.Start(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = svc.Stop() }()
	c, err := localsfn.NewClient(ctx, svc.Endpoint)
	if err != nil {
		t.Fatal(err)
	}

	out, err := c.StartExecution(ctx, &sfn.StartExecutionInput{StateMachineArn: aws.String(svc.StateMachineArn("hold")), Name: aws.String(uniq("lag"))})
	if err != nil {
		t.Fatal(err)
	}
	arn := aws.ToString(out.ExecutionArn)
	listed := func() bool {
		ls, err := c.ListExecutions(ctx, &sfn.ListExecutionsInput{StateMachineArn: aws.String(svc.StateMachineArn("hold"))})
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range ls.Executions {
			if aws.ToString(e.ExecutionArn) == arn {
				return true
			}
		}
		return false
	}
	for i, want := range []bool{false, false, true, true} {
		if got := listed(); got != want {
			t.Fatalf("ListExecutions call %d: listed %v, want %v", i+1, got, want)
		}
	}
	for i := range 2 {
		_, err := c.DescribeExecution(ctx, &sfn.DescribeExecutionInput{ExecutionArn: aws.String(arn)})
		apiError[*types.ExecutionDoesNotExist](t, fmt.Sprintf("DescribeExecution call %d", i+1), err)
	}
	if d, err := c.DescribeExecution(ctx, &sfn.DescribeExecutionInput{ExecutionArn: aws.String(arn)}); err != nil || d.Status != types.ExecutionStatusRunning {
		t.Fatalf("DescribeExecution call 3: %v %v", d, err)
	}
	// StopExecution sees the execution at once.
	if _, err := c.StopExecution(ctx, &sfn.StopExecutionInput{ExecutionArn: aws.String(arn)}); err != nil {
		t.Fatal(err)
	}

	machines := map[domain.WorkflowKind]string{}
	for _, k := range domain.AllWorkflowKinds {
		machines[k] = svc.StateMachineArn("hold")
	}
	s, err := workflow.NewSFN(workflow.SFNConfig{Client: c, StateMachines: machines})
	if err != nil {
		t.Fatal(err)
	}
	p := domain.Pipeline{Name: uniq("lag")[1:] + "-" + uniq("p")[1:], ID: "0b3e6c52-1f4d-4c7a-9d3e-2a1b5c6d7e8f", Generation: 3}
	ref, err := s.Start(ctx, p, domain.WorkflowSuspend)
	if err != nil {
		t.Fatal(err)
	}
	for i := range 3 { // two stale answers, then the real one
		if running, err := s.IsRunning(ctx, ref); err != nil || !running {
			t.Fatalf("IsRunning call %d right after the start: %v %v, want running", i+1, running, err)
		}
	}
	if err := s.Stop(ctx, ref, "test"); err != nil {
		t.Fatal(err)
	}
	if running, err := s.IsRunning(ctx, ref); err != nil || running {
		t.Fatalf("IsRunning after the stop: %v %v", running, err)
	}
}
