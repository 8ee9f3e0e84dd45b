package steps

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"strings"
	"testing"

	"github.com/aws/aws-lambda-go/lambdacontext"

	"github.com/sluicehq/sluice/internal/domain"
)

// Every step's log line carries the pipeline, generation, workflow execution
// and the Lambda request id.
func TestStepLogsCarryCorrelationIDs(t *testing.T) {
	f := newFixture(t, Config{})
	var buf bytes.Buffer
	f.steps.Logger = slog.New(slog.NewJSONHandler(&buf, nil))
	p := f.create("logged")
	p = f.act("logged", startDecision)
	ctx := lambdacontext.NewContext(context.Background(), &lambdacontext.LambdaContext{AwsRequestID: "req-42"})
	if _, err := f.steps.Handle(ctx, Request{Step: StepMarkProvisioning, Execution: "logged-g1-start", State: startState(p, domain.WorkflowStart)}); err != nil {
		t.Fatal(err)
	}
	line := strings.TrimSpace(buf.String())
	var v map[string]any
	if err := json.Unmarshal([]byte(line), &v); err != nil {
		t.Fatalf("not one JSON line: %q", line)
	}
	want := map[string]any{"pipeline": "logged", "generation": float64(p.Generation), "execution": "logged-g1-start", "aws_request_id": "req-42", "step": StepMarkProvisioning}
	for k, w := range want {
		if v[k] != w {
			t.Errorf("%s = %v, want %v (line %s)", k, v[k], w, line)
		}
	}
}
