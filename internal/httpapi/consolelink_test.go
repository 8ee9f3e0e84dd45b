package httpapi

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/sluicehq/sluice/internal/domain"
	"github.com/sluicehq/sluice/internal/workflow"
	"github.com/sluicehq/sluice/internal/workflow/workflowtest"
)

// The record links to the page that shows its workflow execution: on AWS
// the AWS console's page of the same execution (awswire sets
// workflow.AWSConsoleURL), and nothing without a link function or an ARN.
func TestRecordLinksToItsExecution(t *testing.T) {
	arn := "arn:aws:states:eu-west-1:111122223333:execution:sluice-stop:p1-abcd1234-g2-stop"
	plain, err := domain.Create(domain.Definition{Name: "p1"}, "abcd1234-0000-4000-8000-000000000000", time.Now())
	if err != nil {
		t.Fatal(err)
	}
	withRef := plain
	withRef.Workflow = &domain.WorkflowRef{Kind: domain.WorkflowStop, Generation: 2, ExecutionName: "p1-abcd1234-g2-stop", ExecutionArn: arn, Status: "RUNNING"}
	for _, tc := range []struct {
		name string
		link func(string) (string, bool)
		p    domain.Pipeline
		want string
	}{
		{"AWS console", workflow.AWSConsoleURL, withRef, "https://eu-west-1.console.aws.amazon.com/states/home?region=eu-west-1#/v2/executions/details/" + arn},
		{"no link function", nil, withRef, ""},
		{"no workflow", workflow.AWSConsoleURL, plain, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h, err := New(Config{Store: newMemStore(), Starter: workflowtest.NewRecorder(), ExecutionLink: tc.link})
			if err != nil {
				t.Fatal(err)
			}
			b, err := h.view(tc.p, domain.SelectorAll)
			if err != nil {
				t.Fatal(err)
			}
			var got struct {
				URL *string `json:"workflow_console_url"`
			}
			if err := json.Unmarshal(b, &got); err != nil {
				t.Fatal(err)
			}
			switch {
			case tc.want == "" && got.URL != nil:
				t.Errorf("workflow_console_url = %q, want absent", *got.URL)
			case tc.want != "" && (got.URL == nil || *got.URL != tc.want):
				t.Errorf("workflow_console_url = %v, want %q", got.URL, tc.want)
			}
			if tc.want != "" && !strings.Contains(string(b), `"workflow_console_url"`) {
				t.Error("field missing from the JSON")
			}
		})
	}
}
