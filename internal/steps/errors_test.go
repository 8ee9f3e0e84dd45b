package steps

import (
	"encoding/json"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/sluicehq/sluice/internal/domain"
)

func TestCauseFromCatch(t *testing.T) {
	body := domain.ErrorBody{ErrorCode: "SuspendError", Message: "checkpoint failed: disk full", Details: map[string]any{"http_status": float64(500)}}
	bodyJSON := (&PermanentError{Body: body}).Error()
	// What Step Functions puts in Cause for a Lambda function error: the
	// function's error document, as a JSON string.
	awsDoc, _ := json.Marshal(map[string]string{"errorMessage": bodyJSON, "errorType": "PermanentError"})

	tests := []struct {
		name        string
		in          *CaughtError
		wantCode    string
		wantMessage string
		wantDetails map[string]any
	}{
		{"AWS error document", &CaughtError{Error: "PermanentError", Cause: string(awsDoc)},
			"SuspendError", "checkpoint failed: disk full", map[string]any{"http_status": float64(500)}},
		{"plain body as Cause", &CaughtError{Error: "PermanentError", Cause: bodyJSON},
			"SuspendError", "checkpoint failed: disk full", map[string]any{"http_status": float64(500)}},
		{"body without details", &CaughtError{Error: "PermanentError", Cause: `{"message":"m","error_code":"C"}`},
			"C", "m", map[string]any{}},
		{"plain message", &CaughtError{Error: "States.Timeout", Cause: "Task timed out after 30 seconds"},
			"WorkflowFailed", "States.Timeout: Task timed out after 30 seconds", map[string]any{"error": "States.Timeout"}},
		{"other error type in an AWS document", &CaughtError{Error: "Sandbox.Timedout",
			Cause: `{"errorMessage":"RequestId: 1 Error: Task timed out after 30.00 seconds","errorType":"Sandbox.Timedout"}`},
			"WorkflowFailed", "Sandbox.Timedout: RequestId: 1 Error: Task timed out after 30.00 seconds", map[string]any{"error": "Sandbox.Timedout"}},
		{"PermanentError with a message that is no body", &CaughtError{Error: "PermanentError", Cause: `{"errorMessage":"boom","errorType":"PermanentError"}`},
			"WorkflowFailed", "PermanentError: boom", map[string]any{"error": "PermanentError"}},
		{"a body sent under another error name is not trusted", &CaughtError{Error: "TemporaryError", Cause: bodyJSON},
			"WorkflowFailed", "TemporaryError: " + bodyJSON, map[string]any{"error": "TemporaryError"}},
		{"empty cause", &CaughtError{Error: "States.Runtime"},
			"WorkflowFailed", "States.Runtime: ", map[string]any{"error": "States.Runtime"}},
		{"nil", nil, "WorkflowFailed", "the workflow failed", map[string]any{}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := causeFromCatch(tc.in)
			if got.ErrorCode != tc.wantCode || got.Message != tc.wantMessage {
				t.Fatalf("got %q %q, want %q %q", got.ErrorCode, got.Message, tc.wantCode, tc.wantMessage)
			}
			if gd, _ := json.Marshal(got.Details); string(gd) != mustJSON(tc.wantDetails) {
				t.Fatalf("details %s, want %s", gd, mustJSON(tc.wantDetails))
			}
		})
	}
}

func mustJSON(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}

// A long plain cause is cut, on a rune boundary.
func TestCauseFromCatchTruncates(t *testing.T) {
	long := "a" + strings.Repeat("é", 800) // 1601 bytes: byte 1000 is inside a rune
	got := causeFromCatch(&CaughtError{Error: "States.Runtime", Cause: long})
	if !utf8.ValidString(got.Message) {
		t.Fatalf("message is not valid UTF-8: %q", got.Message[len(got.Message)-8:])
	}
	if len(got.Message) > len("States.Runtime: ")+1000+len("…") || !strings.HasSuffix(got.Message, "…") {
		t.Fatalf("message of %d bytes: %q", len(got.Message), got.Message[len(got.Message)-8:])
	}
	for n := 0; n < 8; n++ {
		if s := truncate("aé€😀b", n); !utf8.ValidString(s) {
			t.Fatalf("truncate(%d) = %q", n, s)
		}
	}
}

// PermanentError's message round-trips through causeFromCatch whatever the
// body holds.
func TestPermanentErrorRoundTrip(t *testing.T) {
	for _, body := range []domain.ErrorBody{
		{ErrorCode: "X", Message: "quote \" and newline \n and <html>", Details: map[string]any{"a": []any{"b"}}},
		{ErrorCode: "RuntimeError", Message: "ünïcødé", Details: map[string]any{}},
	} {
		err := permanent(body.ErrorCode, body.Message, body.Details)
		doc, _ := json.Marshal(map[string]string{"errorMessage": err.Error(), "errorType": "PermanentError"})
		got := causeFromCatch(&CaughtError{Error: "PermanentError", Cause: string(doc)})
		if got.ErrorCode != body.ErrorCode || got.Message != body.Message || mustJSON(got.Details) != mustJSON(body.Details) {
			t.Fatalf("got %+v, want %+v", got, body)
		}
	}
}
