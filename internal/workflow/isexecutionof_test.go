package workflow

import (
	"strings"
	"testing"

	"github.com/sluicehq/sluice/internal/domain"
)

func TestIsExecutionOf(t *testing.T) {
	const id = "95bb9457-1234-5678-9abc-def012345678"
	p := domain.Pipeline{Name: "p1", ID: id, Generation: 7}
	long := domain.Pipeline{Name: strings.Repeat("a-g1-", 15), ID: id, Generation: 12}
	for _, tc := range []struct {
		name, pipeline, pipelineID string
		want                       bool
	}{
		{ExecutionNameFor(p, domain.WorkflowSuspend, 0), "p1", id, true},
		{ExecutionNameFor(p, domain.WorkflowStart, 3), "p1", id, true},
		{ExecutionNameFor(long, domain.WorkflowStop, 0), long.Name, id, true}, // the hashed form
		{ExecutionNameFor(long, domain.WorkflowClear, 2), long.Name, id, true},
		{ExecutionNameFor(p, domain.WorkflowStop, 0), "p", id, false},                                      // a name that merely starts the same
		{ExecutionNameFor(domain.Pipeline{Name: "p1-x", ID: id}, domain.WorkflowStop, 0), "p1", id, false}, // another pipeline
		{ExecutionNameFor(p, domain.WorkflowStop, 0), "p1", "00000000-1111", false},                        // a re-created pipeline's
		{ExecutionName("p1", 4, domain.WorkflowStop), "p1", "", true},                                      // no id: the old form
		{"p1-95bb9457-gx-stop", "p1", id, false},
		{"p1-95bb9457", "p1", id, false},
	} {
		if got := IsExecutionOf(tc.name, tc.pipeline, tc.pipelineID); got != tc.want {
			t.Errorf("IsExecutionOf(%q, %q, %q) = %v, want %v", tc.name, tc.pipeline, tc.pipelineID, got, tc.want)
		}
	}
	if n := ExecutionNameFor(long, domain.WorkflowStop, 0); strings.HasPrefix(n, long.Name) {
		t.Fatalf("the long name was not shortened (%q): the test does not cover the hashed form", n)
	}
}
