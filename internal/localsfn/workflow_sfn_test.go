package localsfn_test

import (
	"context"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sfn"
	"github.com/aws/aws-sdk-go-v2/service/sfn/types"

	"github.com/sluicehq/sluice/internal/domain"
	"github.com/sluicehq/sluice/internal/workflow"
)

// The production starter (internal/workflow.SFN) against the service's
// StartExecution rules: a repeated start of the same workflow — the API
// retried, the reconciler racing it — is the same execution while it runs
// (idempotent answer: same ARN and start date, one execution), and after it
// ended the ExecutionAlreadyExists answer is still that workflow, reported
// with its real start date and status; the next attempt has a name of its own.
func TestWorkflowStarterRepeats(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	machines := map[domain.WorkflowKind]string{}
	for _, k := range domain.AllWorkflowKinds {
		machines[k] = shared.StateMachineArn("hold")
	}
	s, err := workflow.NewSFN(workflow.SFNConfig{Client: client, StateMachines: machines})
	if err != nil {
		t.Fatal(err)
	}
	p := domain.Pipeline{Name: uniq("wf")[1:] + "-" + uniq("p")[1:], ID: "0b3e6c52-1f4d-4c7a-9d3e-2a1b5c6d7e8f", Generation: 12}
	first, err := s.Start(ctx, p, domain.WorkflowSuspend)
	if err != nil {
		t.Fatal(err)
	}
	if first.Status != "RUNNING" || first.ExecutionArn != shared.ExecutionArn("hold", first.ExecutionName) {
		t.Fatalf("first start %+v", first)
	}
	for range 3 {
		again, err := s.Start(ctx, p, domain.WorkflowSuspend)
		if err != nil || again != first {
			t.Fatalf("repeated start while RUNNING: %+v %v, want %+v", again, err, first)
		}
	}
	if running, err := s.IsRunning(ctx, first); err != nil || !running {
		t.Fatalf("IsRunning %v %v", running, err)
	}
	ls, err := client.ListExecutions(ctx, &sfn.ListExecutionsInput{StateMachineArn: aws.String(shared.StateMachineArn("hold"))})
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, e := range ls.Executions {
		if aws.ToString(e.Name) == first.ExecutionName {
			n++
		}
	}
	if n != 1 {
		t.Fatalf("%d executions named %s", n, first.ExecutionName)
	}

	// The deployment id in the input differs (the record moved on within the
	// generation): still the same workflow, not an error.
	dep := "dep-1"
	moved := p
	moved.DeploymentID = &dep
	if again, err := s.Start(ctx, moved, domain.WorkflowSuspend); err != nil || again.ExecutionArn != first.ExecutionArn || again.Status != "RUNNING" {
		t.Fatalf("start with another input: %+v %v", again, err)
	}

	if err := s.Stop(ctx, first, "test"); err != nil {
		t.Fatal(err)
	}
	closed, err := s.Start(ctx, p, domain.WorkflowSuspend)
	if err != nil {
		t.Fatalf("start after the execution ended: %v", err)
	}
	if closed.ExecutionArn != first.ExecutionArn || !closed.StartedAt.Equal(first.StartedAt) || closed.Status != string(types.ExecutionStatusAborted) {
		t.Fatalf("start after the end: %+v, want the ended execution %s (ABORTED, started %v)", closed, first.ExecutionArn, first.StartedAt)
	}
	if running, err := s.IsRunning(ctx, closed); err != nil || running {
		t.Fatalf("IsRunning after the end: %v %v", running, err)
	}
	next, err := s.StartAttempt(ctx, p, domain.WorkflowSuspend, workflow.AttemptOf(closed.ExecutionName)+1)
	if err != nil || next.ExecutionName == first.ExecutionName || next.Status != "RUNNING" || workflow.AttemptOf(next.ExecutionName) != 1 {
		t.Fatalf("next attempt %+v %v", next, err)
	}
	if err := s.Stop(ctx, next, "test"); err != nil {
		t.Fatal(err)
	}
}
