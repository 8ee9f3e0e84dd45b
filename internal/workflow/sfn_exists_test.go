package workflow

import (
	"context"
	"testing"
	"time"

	"github.com/sluicehq/sluice/internal/domain"
)

// Starting an execution that exists (and may have ended) returns its real
// start time and status, so that recording the reference again is a no-op.
func TestStartExistingExecutionDescribesIt(t *testing.T) {
	f, s := newFake(t, func(target string, body map[string]any) (int, string) {
		switch target {
		case "StartExecution":
			return 400, `{"__type":"com.amazonaws.swf.service.v2.model#ExecutionAlreadyExists","message":"Execution Already Exists"}`
		case "DescribeExecution":
			return 200, `{"executionArn":"arn:aws:states:eu-west-1:123456789012:execution:sluice-stop:p1-g8-stop","status":"SUCCEEDED","startDate":1767323045,"stateMachineArn":"x"}`
		}
		return 500, `{}`
	})
	ref, err := s.Start(context.Background(), pipeline(), domain.WorkflowStop)
	if err != nil {
		t.Fatal(err)
	}
	want := domain.WorkflowRef{Kind: domain.WorkflowStop, Generation: 8, ExecutionName: "p1-g8-stop",
		ExecutionArn: "arn:aws:states:eu-west-1:123456789012:execution:sluice-stop:p1-g8-stop",
		StartedAt:    time.Unix(1767323045, 0).UTC(), Status: "SUCCEEDED"}
	if ref != want {
		t.Fatalf("ref = %+v\nwant %+v", ref, want)
	}
	again, err := s.Start(context.Background(), pipeline(), domain.WorkflowStop)
	if err != nil || again != ref {
		t.Fatalf("a repeated start: %+v %v, want %+v", again, err, ref)
	}
	if reqs := f.reqs(); len(reqs) != 4 || reqs[1].Target != "DescribeExecution" || reqs[1].Body["executionArn"] != want.ExecutionArn {
		t.Fatalf("requests %+v", reqs)
	}
}
