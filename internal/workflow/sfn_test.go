package workflow

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/sfn"

	"github.com/sluicehq/sluice/internal/domain"
)

const testAccount = "arn:aws:states:eu-west-1:123456789012:stateMachine:"

func machines() map[domain.WorkflowKind]string {
	m := map[domain.WorkflowKind]string{}
	for _, k := range domain.AllWorkflowKinds {
		m[k] = testAccount + "sluice-" + string(k)
	}
	return m
}

// fakeSFN is a Step Functions endpoint (AWS JSON 1.0 protocol) answering from
// a script, so the real SDK client's error decoding is what is tested.
type fakeSFN struct {
	mu       sync.Mutex
	requests []fakeRequest
	answer   func(target string, body map[string]any) (int, string)
}

type fakeRequest struct {
	Target string
	Body   map[string]any
}

func (f *fakeSFN) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	raw, _ := io.ReadAll(r.Body)
	var body map[string]any
	_ = json.Unmarshal(raw, &body)
	target := strings.TrimPrefix(r.Header.Get("X-Amz-Target"), "AWSStepFunctions.")
	f.mu.Lock()
	f.requests = append(f.requests, fakeRequest{Target: target, Body: body})
	answer := f.answer
	f.mu.Unlock()
	code, resp := answer(target, body)
	w.Header().Set("Content-Type", "application/x-amz-json-1.0")
	w.WriteHeader(code)
	_, _ = io.WriteString(w, resp)
}

func (f *fakeSFN) reqs() []fakeRequest {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]fakeRequest(nil), f.requests...)
}

func newFake(t *testing.T, answer func(target string, body map[string]any) (int, string)) (*fakeSFN, *SFN) {
	t.Helper()
	f := &fakeSFN{answer: answer}
	srv := httptest.NewServer(f)
	t.Cleanup(srv.Close)
	client := sfn.New(sfn.Options{
		Region:           "eu-west-1",
		BaseEndpoint:     aws.String(srv.URL),
		Credentials:      credentials.NewStaticCredentialsProvider("test", "test", ""),
		RetryMaxAttempts: 1,
	})
	s, err := NewSFN(SFNConfig{Client: client, StateMachines: machines(), Now: func() time.Time { return time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC) }})
	if err != nil {
		t.Fatal(err)
	}
	return f, s
}

func pipeline() domain.Pipeline {
	dep := "dep-1"
	return domain.Pipeline{Name: "p1", Generation: 8, DeploymentID: &dep}
}

func TestStartExecution(t *testing.T) {
	f, s := newFake(t, func(target string, body map[string]any) (int, string) {
		return 200, `{"executionArn":"arn:aws:states:eu-west-1:123456789012:execution:sluice-suspend:p1-g8-suspend","startDate":1767323045}`
	})
	ref, err := s.Start(context.Background(), pipeline(), domain.WorkflowSuspend)
	if err != nil {
		t.Fatal(err)
	}
	want := domain.WorkflowRef{Kind: domain.WorkflowSuspend, Generation: 8, ExecutionName: "p1-g8-suspend",
		ExecutionArn: "arn:aws:states:eu-west-1:123456789012:execution:sluice-suspend:p1-g8-suspend",
		StartedAt:    time.Unix(1767323045, 0).UTC(), Status: "RUNNING"}
	if ref != want {
		t.Fatalf("ref = %+v\nwant %+v", ref, want)
	}
	reqs := f.reqs()
	if len(reqs) != 1 || reqs[0].Target != "StartExecution" {
		t.Fatalf("requests: %+v", reqs)
	}
	b := reqs[0].Body
	if b["stateMachineArn"] != testAccount+"sluice-suspend" || b["name"] != "p1-g8-suspend" {
		t.Fatalf("request body %v", b)
	}
	var in map[string]any
	if err := json.Unmarshal([]byte(b["input"].(string)), &in); err != nil {
		t.Fatal(err)
	}
	wantIn := map[string]any{"pipeline": "p1", "pipeline_id": "", "generation": float64(8), "kind": "suspend", "deployment_id": "dep-1"}
	if len(in) != len(wantIn) {
		t.Fatalf("input %v, want %v", in, wantIn)
	}
	for k, v := range wantIn {
		if in[k] != v {
			t.Fatalf("input %v, want %v", in, wantIn)
		}
	}
}

func TestStartExecutionAlreadyExists(t *testing.T) {
	_, s := newFake(t, func(string, map[string]any) (int, string) {
		return 400, `{"__type":"com.amazonaws.swf.service.v2.model#ExecutionAlreadyExists","message":"Execution Already Exists"}`
	})
	ref, err := s.Start(context.Background(), pipeline(), domain.WorkflowStop)
	if err != nil {
		t.Fatalf("ExecutionAlreadyExists must count as success: %v", err)
	}
	if ref.ExecutionArn != "arn:aws:states:eu-west-1:123456789012:execution:sluice-stop:p1-g8-stop" || ref.ExecutionName != "p1-g8-stop" || ref.Generation != 8 {
		t.Fatalf("ref %+v", ref)
	}
}

func TestStartExecutionFailures(t *testing.T) {
	tests := []struct {
		name        string
		code        int
		body        string
		unavailable bool
	}{
		{"throttling", 400, `{"__type":"ThrottlingException","message":"Rate exceeded"}`, true},
		{"internal", 500, `{"__type":"InternalServerError","message":"x"}`, true},
		{"503 without type", 503, `{}`, true},
		{"execution limit", 400, `{"__type":"ExecutionLimitExceeded","message":"x"}`, true},
		{"missing state machine", 400, `{"__type":"StateMachineDoesNotExist","message":"x"}`, false},
		{"validation", 400, `{"__type":"ValidationException","message":"x"}`, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, s := newFake(t, func(string, map[string]any) (int, string) { return tc.code, tc.body })
			_, err := s.Start(context.Background(), pipeline(), domain.WorkflowStart)
			if err == nil {
				t.Fatal("no error")
			}
			if got := errors.Is(err, ErrUnavailable); got != tc.unavailable {
				t.Fatalf("errors.Is(ErrUnavailable) = %v, want %v (err %v)", got, tc.unavailable, err)
			}
		})
	}
}

func TestStartExecutionUnreachable(t *testing.T) {
	srv := httptest.NewServer(http.NotFoundHandler())
	url := srv.URL
	srv.Close()
	client := sfn.New(sfn.Options{Region: "eu-west-1", BaseEndpoint: aws.String(url),
		Credentials: credentials.NewStaticCredentialsProvider("t", "t", ""), RetryMaxAttempts: 1})
	s, err := NewSFN(SFNConfig{Client: client, StateMachines: machines()})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Start(context.Background(), pipeline(), domain.WorkflowStart); !errors.Is(err, ErrUnavailable) {
		t.Fatalf("unreachable service: %v, want ErrUnavailable", err)
	}
}

func TestStopExecution(t *testing.T) {
	f, s := newFake(t, func(string, map[string]any) (int, string) { return 200, `{"stopDate":1767323045}` })
	ref := domain.WorkflowRef{Kind: domain.WorkflowSuspend, Generation: 8, ExecutionName: "p1-g8-suspend"}
	if err := s.Stop(context.Background(), ref, "superseded by generation 9 (stop?force=true)"); err != nil {
		t.Fatal(err)
	}
	reqs := f.reqs()
	if len(reqs) != 1 || reqs[0].Target != "StopExecution" ||
		reqs[0].Body["executionArn"] != "arn:aws:states:eu-west-1:123456789012:execution:sluice-suspend:p1-g8-suspend" ||
		reqs[0].Body["error"] != "Superseded" || reqs[0].Body["cause"] != "superseded by generation 9 (stop?force=true)" {
		t.Fatalf("requests %+v", reqs)
	}

	_, s = newFake(t, func(string, map[string]any) (int, string) {
		return 400, `{"__type":"ExecutionDoesNotExist","message":"x"}`
	})
	if err := s.Stop(context.Background(), ref, "x"); err != nil {
		t.Fatalf("ExecutionDoesNotExist must be ignored: %v", err)
	}
	_, s = newFake(t, func(string, map[string]any) (int, string) { return 400, `{"__type":"ThrottlingException"}` })
	if err := s.Stop(context.Background(), ref, "x"); !errors.Is(err, ErrUnavailable) {
		t.Fatalf("throttled stop: %v", err)
	}
}

func TestExecutionARN(t *testing.T) {
	for in, want := range map[string]string{
		"arn:aws:states:eu-west-1:123456789012:stateMachine:M":      "arn:aws:states:eu-west-1:123456789012:execution:M:n",
		"arn:aws-cn:states:cn-north-1:123456789012:stateMachine:M":  "arn:aws-cn:states:cn-north-1:123456789012:execution:M:n",
		"arn:aws:states:eu-west-1:123456789012:stateMachine:M:PROD": "arn:aws:states:eu-west-1:123456789012:execution:M:n",
	} {
		got, err := ExecutionARN(in, "n")
		if err != nil || got != want {
			t.Errorf("ExecutionARN(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	for _, bad := range []string{"", "arn:aws:states:eu-west-1:1:activity:M", "arn:aws:lambda:eu-west-1:1:stateMachine:M", "arn:aws:states:eu-west-1:1:stateMachine:", "x:aws:states:r:a:stateMachine:M"} {
		if _, err := ExecutionARN(bad, "n"); err == nil {
			t.Errorf("ExecutionARN(%q): no error", bad)
		}
	}
}

func TestNewSFNValidates(t *testing.T) {
	client := sfn.New(sfn.Options{Region: "eu-west-1"})
	if _, err := NewSFN(SFNConfig{StateMachines: machines()}); err == nil {
		t.Error("no client: no error")
	}
	m := machines()
	delete(m, domain.WorkflowClear)
	if _, err := NewSFN(SFNConfig{Client: client, StateMachines: m}); err == nil {
		t.Error("missing kind: no error")
	}
	m = machines()
	m[domain.WorkflowStop] = "not-an-arn"
	if _, err := NewSFN(SFNConfig{Client: client, StateMachines: m}); err == nil {
		t.Error("bad ARN: no error")
	}
	m = machines()
	m["bogus"] = testAccount + "x"
	if _, err := NewSFN(SFNConfig{Client: client, StateMachines: m}); err == nil {
		t.Error("unknown kind: no error")
	}
}

// DescribeExecution is eventually consistent (API_DescribeExecution: "The
// results are best effort and may not reflect very recent updates and
// changes"): ExecutionDoesNotExist for an execution started less than
// DescribeGrace ago is a stale read, so it counts as running; for one
// started earlier, or with no recorded start, it is gone.
func TestIsRunningMissingExecution(t *testing.T) {
	_, s := newFake(t, func(string, map[string]any) (int, string) {
		return 400, `{"__type":"ExecutionDoesNotExist","message":"Execution Does Not Exist"}`
	})
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	s.now = func() time.Time { return now }
	ref := domain.WorkflowRef{Kind: domain.WorkflowSuspend, Generation: 8, ExecutionName: "p1-g8-suspend"}
	for _, tc := range []struct {
		started time.Time
		want    bool
	}{
		{now, true},
		{now.Add(-DescribeGrace + time.Second), true},
		{now.Add(-DescribeGrace), false},
		{now.Add(-time.Hour), false},
		{time.Time{}, false},
	} {
		ref.StartedAt = tc.started
		running, err := s.IsRunning(context.Background(), ref)
		if err != nil || running != tc.want {
			t.Errorf("started %v before: IsRunning = %v, %v; want %v", now.Sub(tc.started), running, err, tc.want)
		}
	}
}
