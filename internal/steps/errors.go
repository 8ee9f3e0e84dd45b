package steps

import (
	"encoding/json"
	"fmt"
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

// PermanentError: retrying will not help (the runtime refused or failed the
// suspend, provisioning timed out, the process vanished). The ASL catches it
// and force-stops the pipeline with the error recorded. Its message is the JSON
// of the deployment_error to record, so the RecordError step can read it back
// from the Catch's Cause.
type PermanentError struct {
	Body domain.ErrorBody
}

func (e *PermanentError) Error() string {
	b, err := json.Marshal(e.Body)
	if err != nil {
		return e.Body.Message
	}
	return string(b)
}

func permanent(code, message string, details map[string]any) *PermanentError {
	if details == nil {
		details = map[string]any{}
	}
	return &PermanentError{Body: domain.ErrorBody{ErrorCode: code, Message: message, Details: details}}
}

// causeFromCatch turns the Cause of a caught PermanentError back into the
// error body to record; any other cause is recorded as a generic failure.
func causeFromCatch(c *CaughtError) *domain.ErrorBody {
	if c == nil {
		return &domain.ErrorBody{ErrorCode: "WorkflowFailed", Message: "the workflow failed", Details: map[string]any{}}
	}
	// Step Functions puts a Lambda function error's document in Cause:
	// {"errorMessage": …, "errorType": …}; our PermanentError's message is
	// itself the JSON of the error body to record.
	message := c.Cause
	var doc struct {
		ErrorMessage string `json:"errorMessage"`
	}
	if json.Unmarshal([]byte(c.Cause), &doc) == nil && doc.ErrorMessage != "" {
		message = doc.ErrorMessage
	}
	var body domain.ErrorBody
	if c.Error == "PermanentError" && json.Unmarshal([]byte(message), &body) == nil && body.Message != "" {
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
