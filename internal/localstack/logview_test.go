package localstack

import (
	"bytes"
	"encoding/json"
	"log/slog"
	"strings"
	"testing"
	"time"
)

func TestTerminalSummary(t *testing.T) {
	var file, term bytes.Buffer
	logger, _ := newTeeLogger(&file, slog.LevelDebug, &term, false)
	api := logger.With("function", FunctionAPI)
	api.Info("request", "method", "POST", "route", "/v0/pipelines/{pipeline_name}/stop", "status", 202, "pipeline", "p1", "generation", 3,
		"principal", "apikey:abc")
	api.Info("request", "method", "GET", "route", "/v0/pipelines/{pipeline_name}", "status", 200, "pipeline", "p1") // a read: file only
	api.Info("request", "method", "GET", "route", "/v0/pipelines", "status", 401, "error_code", "AuthenticationFailed")
	store := logger.With("component", "store")
	store.Info(MsgStatus, "pipeline", "p1", "generation", 3, "action", "MarkSuspending", "actor", "workflow",
		"deployment_status", "Suspending", "deployment_desired_status", "Suspended", "storage_status", "InUse")
	store.Info(MsgStatus, "pipeline", "p1", "generation", 3, "action", "MarkStopped", "actor", "workflow",
		"deployment_status", "Stopped", "deployment_desired_status", "Stopped", "storage_status", "InUse",
		"deployment_error", "SuspendError: disk full")
	store.Info(MsgStatus, "pipeline", "p1", "generation", 4, "action", "clear", "actor", "user:k1",
		"deployment_status", "Stopped", "deployment_desired_status", "Stopped", "storage_status", "Clearing")
	logger.With("function", FunctionSteps).With("step", "CheckSuspend").Info("step done", "pipeline", "p1") // file only
	logger.With("function", FunctionSteps).Warn("step failed", "step", "RequestSuspend", "pipeline", "p1", "generation", 3, "error", "boom")
	logger.With("component", "localproc").Info("runtime started", "pipeline", "p1", "pid", 123)
	logger.With("function", FunctionReconciler).WithGroup("g").Error("reconciler pass failed", "error", "table gone")
	logger.Debug("debug detail") // file only

	var lines []string
	for _, l := range strings.Split(strings.TrimSpace(term.String()), "\n") {
		lines = append(lines, l[9:]) // drop the time
	}
	want := []string{
		"api     POST /v0/pipelines/p1/stop 202  (p1 g3)",
		"api     GET /v0/pipelines 401 AuthenticationFailed",
		"steps   MarkSuspending p1 g3 → Suspending (desired Suspended)",
		"steps   MarkStopped p1 g3 → Stopped  error: SuspendError: disk full",
		"api     clear p1 g4 → Stopped, storage Clearing",
		"steps   WARN  RequestSuspend p1 g3 failed: boom",
		"compute runtime of p1 started, pid 123",
		"recon   ERROR reconciler pass failed error=table gone",
	}
	if strings.Join(lines, "\n") != strings.Join(want, "\n") {
		t.Errorf("terminal:\n%s\nwant:\n%s", strings.Join(lines, "\n"), strings.Join(want, "\n"))
	}
	fileLines := strings.Split(strings.TrimSpace(file.String()), "\n")
	if len(fileLines) != 11 {
		t.Fatalf("the file has %d lines, want every record (11):\n%s", len(fileLines), file.String())
	}
	for _, l := range fileLines {
		var m map[string]any
		if err := json.Unmarshal([]byte(l), &m); err != nil {
			t.Fatalf("not JSON: %q", l)
		}
	}
	logger.Info("x", "api_key", "apikey:secret")
	if strings.Contains(file.String(), "apikey:secret") || strings.Contains(term.String(), "apikey:secret") {
		t.Error("a credential reached a log")
	}

	// Verbose: reads and step results too.
	term.Reset()
	verbose, _ := newTeeLogger(&file, slog.LevelInfo, &term, true)
	verbose.With("function", FunctionAPI).Info("request", "method", "GET", "route", "/v0/pipelines", "status", 200)
	verbose.With("function", FunctionSteps).Info("step done", "step", "CheckSuspend", "pipeline", "p1")
	if got := strings.Count(term.String(), "\n"); got != 2 {
		t.Errorf("verbose terminal:\n%s", term.String())
	}
}

func TestServiceLog(t *testing.T) {
	var file, term bytes.Buffer
	_, tv := newTeeLogger(&file, slog.LevelInfo, &term, false)
	s := newServiceLog(&file, tv)
	s.now = func() time.Time { return time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC) }
	// DynamoDB Local's text, in pieces; the Step Functions service's JSON.
	_, _ = s.Write([]byte("Initializing DynamoDB Local with the following configuration:\nPort:\t80"))
	_, _ = s.Write([]byte("00\n"))
	_, _ = s.Write([]byte(`{"msg":"execution finished","executionArn":"arn:aws:states:us-east-1:123456789012:execution:sluice-stop:p1-abc-g4-stop","status":"FAILED","error":"States.Runtime","time":"2026-01-02T03:04:06Z"}` + "\n"))
	_, _ = s.Write([]byte(`{"msg":"execution finished","executionArn":"arn:aws:states:us-east-1:123456789012:execution:sluice-suspend:p1-abc-g2-suspend","status":"SUCCEEDED","time":"2026-01-02T03:04:07Z"}` + "\n"))
	_, _ = s.Write([]byte(`{"msg":"api","op":"DescribeExecution"}` + "\nunterminated"))
	s.Flush()
	var got []map[string]any
	for _, l := range strings.Split(strings.TrimSpace(file.String()), "\n") {
		var m map[string]any
		if err := json.Unmarshal([]byte(l), &m); err != nil {
			t.Fatalf("not JSON: %q", l)
		}
		got = append(got, m)
	}
	if len(got) != 6 {
		t.Fatalf("lines: %d\n%s", len(got), file.String())
	}
	if got[0]["component"] != "dynamodb-local" || got[1]["msg"] != "Port:\t8000" || got[5]["msg"] != "unterminated" {
		t.Errorf("text lines: %v", got)
	}
	if got[2]["component"] != "stepfunctions" || got[4]["op"] != "DescribeExecution" {
		t.Errorf("JSON lines: %v", got)
	}
	lines := strings.Split(strings.TrimSpace(term.String()), "\n")
	if len(lines) != 2 || !strings.HasSuffix(lines[0], "sfn     WARN  execution p1-abc-g4-stop (sluice-stop) FAILED: States.Runtime") ||
		!strings.HasSuffix(lines[1], "sfn     execution p1-abc-g2-suspend (sluice-suspend) SUCCEEDED") {
		t.Errorf("terminal:\n%s", term.String())
	}
}
