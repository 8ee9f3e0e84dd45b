package steps

import (
	"encoding/json"
	"fmt"
	"slices"
	"unicode/utf8"

	"github.com/sluicehq/sluice/internal/domain"
)

// The step errors. aws-lambda-go reports an error's Go type name as the
// Lambda errorType, which Step Functions uses as the error name that the ASL's
// Retry and Catch match on: renaming a type here means editing statemachine/.

// SupersededError: the pipeline's generation moved on; a newer intent owns the
// pipeline. The execution ends without writing (state "Superseded").
type SupersededError struct {
	Pipeline   string
	Generation int64
	Current    int64
}

func (e *SupersededError) Error() string {
	return fmt.Sprintf("pipeline %s: generation %d superseded by %d", e.Pipeline, e.Generation, e.Current)
}

// NotApplicableError: the record is in a status this workflow does not drive
// (for example the reconciler already stopped a pipeline whose process
// vanished). The execution ends without writing.
type NotApplicableError struct {
	Pipeline string
	Reason   string
}

func (e *NotApplicableError) Error() string {
	return fmt.Sprintf("pipeline %s: %s", e.Pipeline, e.Reason)
}

// TemporaryError: worth retrying (the state store throttles, the compute
// service is short of capacity). The ASL retries it with capped backoff.
type TemporaryError struct {
	Step  string
	Cause string
}

func (e *TemporaryError) Error() string { return e.Step + ": " + e.Cause }

// PipelineRuntimeError: the pipeline's runtime refused or failed what the
// workflow asked of it, permanently (it refused or failed the suspend, it
// answered a fatal error while starting, a new runtime reported Suspended).
// Its message is the JSON of the deployment_error to record, so the
// RecordError step can read it back from the Catch's Cause.
//
// PipelineRuntimeError and PipelineComputeError are the only errors the ASL
// routes to RecordError (ForceStopErrors): a pipeline is force-stopped with an
// error only when the pipeline itself failed (SPEC §3), never for a fault of
// the control plane.
type PipelineRuntimeError struct {
	Body domain.ErrorBody
}

func (e *PipelineRuntimeError) Error() string { return bodyJSON(e.Body) }

// PipelineComputeError: the pipeline's compute can never be provisioned (the
// compute driver refused its deployment permanently, the runtime did not
// become ready within the provisioning timeout, its process exited while
// starting). The ASL force-stops the pipeline with the error recorded. Its
// message is the JSON of the deployment_error, as for PipelineRuntimeError.
type PipelineComputeError struct {
	Body domain.ErrorBody
}

func (e *PipelineComputeError) Error() string { return bodyJSON(e.Body) }

// ControlPlaneError: a permanent fault of the control plane itself, not of
// the pipeline: an unknown step name (a state machine and steps function of
// different deploys), a step input without a pipeline, a record without the
// deployment location a step needs, a compute driver call other than
// provisioning failing permanently. Like every error not in ForceStopErrors
// (a Go panic, a Lambda timeout or crash, an exhausted retry), the ASL ends
// the execution in a Fail state: the pipeline is left as it is, the
// reconciler restarts the workflow, the failed-executions alarm fires.
type ControlPlaneError struct {
	Code    string
	Message string
}

func (e *ControlPlaneError) Error() string { return e.Code + ": " + e.Message }

// ForceStopErrors are the Step Functions names of the errors that may
// force-stop a pipeline with its deployment_error set: the ASL routes exactly
// these to RecordError, and internal/samtemplate checks that nothing else can
// reach it.
var ForceStopErrors = []string{"PipelineRuntimeError", "PipelineComputeError"}

func bodyJSON(body domain.ErrorBody) string {
	b, err := json.Marshal(body)
	if err != nil {
		return body.Message
	}
	return string(b)
}

func errorBody(code, message string, details map[string]any) domain.ErrorBody {
	if details == nil {
		details = map[string]any{}
	}
	return domain.ErrorBody{ErrorCode: code, Message: message, Details: details}
}

// runtimeFailed is a PipelineRuntimeError with the given deployment_error.
func runtimeFailed(code, message string, details map[string]any) *PipelineRuntimeError {
	return &PipelineRuntimeError{Body: errorBody(code, message, details)}
}

// computeFailed is a PipelineComputeError with the given deployment_error.
func computeFailed(code, message string, details map[string]any) *PipelineComputeError {
	return &PipelineComputeError{Body: errorBody(code, message, details)}
}

func controlPlane(code, message string) *ControlPlaneError {
	return &ControlPlaneError{Code: code, Message: message}
}

// causeFromCatch turns the Cause of a caught PipelineRuntimeError or
// PipelineComputeError back into the error body to record; any other cause
// (which the ASL never routes to RecordError) is recorded as a generic failure.
func causeFromCatch(c *CaughtError) *domain.ErrorBody {
	if c == nil {
		return &domain.ErrorBody{ErrorCode: "WorkflowFailed", Message: "the workflow failed", Details: map[string]any{}}
	}
	// Step Functions puts a Lambda function error's document in Cause:
	// {"errorMessage": …, "errorType": …}; the message of a pipeline error
	// is itself the JSON of the error body to record.
	message := c.Cause
	var doc struct {
		ErrorMessage string `json:"errorMessage"`
	}
	if json.Unmarshal([]byte(c.Cause), &doc) == nil && doc.ErrorMessage != "" {
		message = doc.ErrorMessage
	}
	var body domain.ErrorBody
	if slices.Contains(ForceStopErrors, c.Error) && json.Unmarshal([]byte(message), &body) == nil && body.Message != "" {
		if body.Details == nil {
			body.Details = map[string]any{}
		}
		return &body
	}
	return &domain.ErrorBody{ErrorCode: "WorkflowFailed", Message: fmt.Sprintf("%s: %s", c.Error, truncate(message, 1000)), Details: map[string]any{"error": c.Error}}
}

// truncate cuts s to at most n bytes, on a rune boundary (a deployment error
// message stays valid UTF-8).
func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n] + "…"
}
