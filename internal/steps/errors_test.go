package steps

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/sluicehq/sluice/internal/compute"
	"github.com/sluicehq/sluice/internal/domain"
	"github.com/sluicehq/sluice/internal/runtimeclient"
)

func TestCauseFromCatch(t *testing.T) {
	body := domain.ErrorBody{ErrorCode: "SuspendError", Message: "checkpoint failed: disk full", Details: map[string]any{"http_status": float64(500)}}
	bodyJSON := (&PipelineRuntimeError{Body: body}).Error()
	// What Step Functions puts in Cause for a Lambda function error: the
	// function's error document, as a JSON string.
	awsDoc, _ := json.Marshal(map[string]string{"errorMessage": bodyJSON, "errorType": "PipelineRuntimeError"})
	computeDoc, _ := json.Marshal(map[string]string{"errorMessage": bodyJSON, "errorType": "PipelineComputeError"})

	tests := []struct {
		name        string
		in          *CaughtError
		wantCode    string
		wantMessage string
		wantDetails map[string]any
	}{
		{"AWS error document", &CaughtError{Error: "PipelineRuntimeError", Cause: string(awsDoc)},
			"SuspendError", "checkpoint failed: disk full", map[string]any{"http_status": float64(500)}},
		{"compute error document", &CaughtError{Error: "PipelineComputeError", Cause: string(computeDoc)},
			"SuspendError", "checkpoint failed: disk full", map[string]any{"http_status": float64(500)}},
		{"plain body as Cause", &CaughtError{Error: "PipelineRuntimeError", Cause: bodyJSON},
			"SuspendError", "checkpoint failed: disk full", map[string]any{"http_status": float64(500)}},
		{"body without details", &CaughtError{Error: "PipelineComputeError", Cause: `{"message":"m","error_code":"C"}`},
			"C", "m", map[string]any{}},
		{"plain message", &CaughtError{Error: "States.Timeout", Cause: "Task timed out after 30 seconds"},
			"WorkflowFailed", "States.Timeout: Task timed out after 30 seconds", map[string]any{"error": "States.Timeout"}},
		{"other error type in an AWS document", &CaughtError{Error: "Sandbox.Timedout",
			Cause: `{"errorMessage":"RequestId: 1 Error: Task timed out after 30.00 seconds","errorType":"Sandbox.Timedout"}`},
			"WorkflowFailed", "Sandbox.Timedout: RequestId: 1 Error: Task timed out after 30.00 seconds", map[string]any{"error": "Sandbox.Timedout"}},
		{"PipelineRuntimeError with a message that is no body", &CaughtError{Error: "PipelineRuntimeError", Cause: `{"errorMessage":"boom","errorType":"PipelineRuntimeError"}`},
			"WorkflowFailed", "PipelineRuntimeError: boom", map[string]any{"error": "PipelineRuntimeError"}},
		{"a body sent as a control-plane error is not trusted", &CaughtError{Error: "ControlPlaneError", Cause: bodyJSON},
			"WorkflowFailed", "ControlPlaneError: " + bodyJSON, map[string]any{"error": "ControlPlaneError"}},
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

// A pipeline error's message round-trips through causeFromCatch whatever the
// body holds, under either name.
func TestPipelineErrorRoundTrip(t *testing.T) {
	for _, body := range []domain.ErrorBody{
		{ErrorCode: "X", Message: "quote \" and newline \n and <html>", Details: map[string]any{"a": []any{"b"}}},
		{ErrorCode: "RuntimeError", Message: "ünïcødé", Details: map[string]any{}},
	} {
		for _, err := range []error{runtimeFailed(body.ErrorCode, body.Message, body.Details), computeFailed(body.ErrorCode, body.Message, body.Details)} {
			name := errorTypeName(err)
			doc, _ := json.Marshal(map[string]string{"errorMessage": err.Error(), "errorType": name})
			got := causeFromCatch(&CaughtError{Error: name, Cause: string(doc)})
			if got.ErrorCode != body.ErrorCode || got.Message != body.Message || mustJSON(got.Details) != mustJSON(body.Details) {
				t.Fatalf("%s: got %+v, want %+v", name, got, body)
			}
		}
	}
}

// errorTypeName is the Step Functions error name of a step error: the Go type
// name without package or pointer, as aws-lambda-go reports it.
func errorTypeName(err error) string {
	t := reflect.TypeOf(err)
	if t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	return t.Name()
}

// ForceStopErrors names exactly the pipeline's own permanent failures, and no
// control-plane error shares a name with them.
func TestForceStopErrorNames(t *testing.T) {
	want := []string{errorTypeName(&PipelineRuntimeError{}), errorTypeName(&PipelineComputeError{})}
	if !slices.Equal(ForceStopErrors, want) {
		t.Fatalf("ForceStopErrors %v, want %v", ForceStopErrors, want)
	}
	for _, err := range []error{&ControlPlaneError{}, &TemporaryError{}, &SupersededError{}, &NotApplicableError{}} {
		if slices.Contains(ForceStopErrors, errorTypeName(err)) {
			t.Fatalf("%T shares a name with a force-stop error", err)
		}
	}
}

// errDriver is a stubDriver whose Check, Deprovision and ClearStorage fail
// with err when it is set (Provision fails with the stub's provisionErr).
type errDriver struct {
	*stubDriver
	err error
}

func (d *errDriver) Check(ctx context.Context, p, id string) (compute.CheckResult, error) {
	if d.err != nil {
		return compute.CheckResult{}, d.err
	}
	return d.stubDriver.Check(ctx, p, id)
}

func (d *errDriver) Deprovision(ctx context.Context, p, id string) error {
	if d.err != nil {
		return d.err
	}
	return d.stubDriver.Deprovision(ctx, p, id)
}

func (d *errDriver) ClearStorage(ctx context.Context, p, id string) error {
	if d.err != nil {
		return d.err
	}
	return d.stubDriver.ClearStorage(ctx, p, id)
}

// Every way a step fails is classified: the pipeline's own permanent failures
// (its runtime refuses or fails, its compute cannot be provisioned) are
// PipelineRuntimeError or PipelineComputeError, which force-stop it; a fault
// of the control plane is a ControlPlaneError or a TemporaryError, which
// never does.
func TestStepErrorClassification(t *testing.T) {
	permanentDriver := errors.New("RunTask: MISSING: the image does not exist")
	fatal := &runtimeclient.FatalError{Op: "suspend", StatusCode: 400, Body: runtimeclient.ErrorBody{Message: "no", ErrorCode: "SuspendNotPossible"}}
	tests := []struct {
		name    string
		step    string
		record  string
		state   func(Payload) Payload
		setup   func(s *Steps, rt *stubRuntime, d *errDriver)
		want    string
		wantErr string // the deployment error code, for pipeline errors
	}{
		{name: "unknown step after a deploy", step: "Explode", record: "running", want: "ControlPlaneError"},
		{name: "no pipeline in the input", step: StepMarkStopped, record: "", want: "ControlPlaneError"},
		{name: "suspend without a location", step: StepRequestSuspend, record: "suspending",
			state: func(st Payload) Payload { st.Location = ""; return st }, want: "ControlPlaneError"},
		{name: "unparsable location", step: StepCheckSuspend, record: "suspending",
			setup: func(s *Steps, _ *stubRuntime, _ *errDriver) {
				s.RuntimeFor = func(string) (Runtime, error) { return nil, errors.New("bad URL") }
			}, want: "ControlPlaneError"},
		{name: "runtime refuses the suspend", step: StepRequestSuspend, record: "suspending",
			setup: func(_ *Steps, rt *stubRuntime, _ *errDriver) { rt.suspendErr = fatal },
			want:  "PipelineRuntimeError", wantErr: "SuspendNotPossible"},
		{name: "runtime fails the suspend", step: StepCheckSuspend, record: "suspending",
			setup: func(_ *Steps, rt *stubRuntime, _ *errDriver) { rt.statusErr = errors.New("garbled answer") },
			want:  "PipelineRuntimeError", wantErr: "RuntimeError"},
		{name: "the step's own deadline during a runtime call", step: StepCheckSuspend, record: "suspending",
			setup: func(_ *Steps, rt *stubRuntime, _ *errDriver) {
				rt.statusErr = fmt.Errorf("runtime status: %w", context.DeadlineExceeded)
			}, want: "TemporaryError"},
		{name: "compute refuses the deployment", step: StepProvision, record: "provisioning",
			setup: func(_ *Steps, _ *stubRuntime, d *errDriver) { d.stubDriver.provisionErr = permanentDriver },
			want:  "PipelineComputeError", wantErr: "ComputeError"},
		{name: "compute short of capacity", step: StepProvision, record: "provisioning",
			setup: func(_ *Steps, _ *stubRuntime, d *errDriver) {
				d.stubDriver.provisionErr = fmt.Errorf("%w: RESOURCE:FARGATE", compute.ErrTemporary)
			}, want: "TemporaryError"},
		{name: "provisioning runs out of the step's time", step: StepProvision, record: "provisioning",
			setup: func(_ *Steps, _ *stubRuntime, d *errDriver) { d.stubDriver.provisionErr = context.DeadlineExceeded },
			want:  "TemporaryError"},
		{name: "the driver cannot check", step: StepCheckReadiness, record: "provisioning",
			setup: func(_ *Steps, _ *stubRuntime, d *errDriver) { d.err = errors.New("AccessDenied") },
			want:  "ControlPlaneError"},
		{name: "the driver cannot deprovision", step: StepDeprovision, record: "stopping",
			setup: func(_ *Steps, _ *stubRuntime, d *errDriver) { d.err = errors.New("AccessDenied") },
			want:  "ControlPlaneError"},
		{name: "compute vanished while starting", step: StepCheckReadiness, record: "provisioning",
			setup: func(_ *Steps, _ *stubRuntime, d *errDriver) {
				d.check = compute.CheckResult{State: compute.StateGone, Reason: "exit 1"}
			}, want: "PipelineComputeError", wantErr: "ComputeVanished"},
		{name: "provisioning timeout", step: StepCheckReadiness, record: "provisioning",
			state: func(st Payload) Payload { st.Deadline = time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC); return st },
			want:  "PipelineComputeError", wantErr: "ProvisioningTimeout"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			rt := &stubRuntime{report: runtimeclient.StatusReport{RuntimeStatus: domain.RuntimeSuspending}}
			d := &errDriver{stubDriver: &stubDriver{check: compute.CheckResult{State: compute.StateRunning, Location: "http://rt"}, location: "http://rt"}}
			s := &Steps{Store: &memStore{records: fuzzRecords(t)}, Driver: d, Continuer: stubContinuer{}, Logger: discard, Rand: fixedRand(0.5),
				RuntimeFor: func(string) (Runtime, error) { return rt, nil },
				Now:        func() time.Time { return time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC) }}
			if tc.setup != nil {
				tc.setup(s, rt, d)
			}
			st := Payload{Pipeline: tc.record, Generation: 1, Location: "http://rt", DeploymentID: "dep"}
			if tc.state != nil {
				st = tc.state(st)
			}
			_, err := s.Handle(context.Background(), Request{Step: tc.step, Execution: "e", State: st})
			if err == nil {
				t.Fatal("no error")
			}
			if got := errorTypeName(err); got != tc.want {
				t.Fatalf("%s: error %s (%v), want %s", tc.step, got, err, tc.want)
			}
			if tc.wantErr != "" {
				var body domain.ErrorBody
				if json.Unmarshal([]byte(err.Error()), &body) != nil || body.ErrorCode != tc.wantErr {
					t.Fatalf("deployment error %s, want code %s", err.Error(), tc.wantErr)
				}
			}
		})
	}
}
