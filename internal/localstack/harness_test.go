package localstack

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sluicehq/sluice/internal/domain"
	"github.com/sluicehq/sluice/internal/dynamolocal"
	"github.com/sluicehq/sluice/internal/localsfn"
	"github.com/sluicehq/sluice/internal/steps"
)

func TestMain(m *testing.M) { dynamolocal.RunTests(m) }

// syncBuffer collects logs from many goroutines.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// env is a local stack with a fake compute driver and fake runtimes, for the
// workflow scenarios: the real ASL on the real engine, the real step handlers
// through the local Lambda endpoint, DynamoDB Local.
type env struct {
	t      *testing.T
	ctx    context.Context
	stack  *Stack
	driver *fakeDriver
	logs   *syncBuffer
	client *http.Client
}

func newEnv(t *testing.T, stepsCfg steps.Config) *env {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	t.Cleanup(cancel)
	inst := dynamolocal.Shared(t)
	driver := newFakeDriver()
	t.Cleanup(driver.close)
	logs := &syncBuffer{}
	stack, err := Start(ctx, Config{
		DynamoEndpoint:    inst.Endpoint,
		Table:             dynamolocal.UniqueTableName(t),
		Driver:            driver,
		Steps:             stepsCfg,
		Overrides:         localsfn.Overrides{WaitTimeOverrides: map[string]int{"*": 20}, RetryIntervalOverrides: map[string]int{"*": 20}},
		ReconcileInterval: -1,
		Logger:            slog.New(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
	})
	if err != nil {
		t.Fatalf("starting the local stack: %v", err)
	}
	t.Cleanup(func() {
		if t.Failed() {
			tail := logs.String()
			if len(tail) > 20000 {
				tail = tail[len(tail)-20000:]
			}
			t.Logf("stack logs (tail):\n%s", tail)
		}
		if err := stack.Close(); err != nil {
			t.Errorf("closing the stack: %v", err)
		}
	})
	return &env{t: t, ctx: ctx, stack: stack, driver: driver, logs: logs, client: &http.Client{Timeout: 30 * time.Second}}
}

type response struct {
	status int
	body   []byte
}

func (e *env) do(method, path string, body any) response {
	e.t.Helper()
	var rd io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	}
	req, _ := http.NewRequestWithContext(e.ctx, method, e.stack.APIURL+path, rd)
	req.Header.Set("Authorization", "Bearer "+e.stack.APIKey)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	res, err := e.client.Do(req)
	if err != nil {
		e.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return response{status: res.StatusCode, body: b}
}

func (e *env) must(method, path string, body any, want int) response {
	e.t.Helper()
	r := e.do(method, path, body)
	if r.status != want {
		e.t.Fatalf("%s %s: %d %s, want %d", method, path, r.status, r.body, want)
	}
	return r
}

func (e *env) create(name string, runtimeConfig map[string]any) {
	e.t.Helper()
	e.must("POST", "/v0/pipelines", map[string]any{"name": name, "description": "test", "runtime_config": runtimeConfig}, 201)
}

func (e *env) get(name string) domain.Pipeline {
	e.t.Helper()
	p, err := e.stack.Store.Get(e.ctx, name)
	if err != nil {
		e.t.Fatalf("get %s: %v", name, err)
	}
	return p
}

// waitFor polls the record until cond holds (generous deadline: the suite
// never asserts on timing, only on eventually reaching a state).
func (e *env) waitFor(name, what string, cond func(p domain.Pipeline) bool) domain.Pipeline {
	e.t.Helper()
	deadline := time.Now().Add(90 * time.Second)
	var p domain.Pipeline
	for time.Now().Before(deadline) {
		p = e.get(name)
		if cond(p) {
			return p
		}
		time.Sleep(25 * time.Millisecond)
	}
	e.t.Fatalf("%s: never reached %s; last %s/%s %+v", name, what, p.DeploymentStatus(), p.DeploymentDesiredStatus(), p)
	return p
}

func status(s domain.CombinedStatus, d domain.CombinedDesiredStatus) func(domain.Pipeline) bool {
	return func(p domain.Pipeline) bool { return p.DeploymentStatus() == s && p.DeploymentDesiredStatus() == d }
}

// startRunning creates a pipeline and starts it until Running.
func (e *env) startRunning(name string) domain.Pipeline {
	e.t.Helper()
	e.create(name, map[string]any{"checkpoint_interval_secs": 1})
	e.must("POST", "/v0/pipelines/"+name+"/start", nil, 202)
	return e.waitFor(name, "Running", status(domain.CombinedRunning, domain.CombinedDesiredRunning))
}

// waitExecution waits until an execution ends and returns its status.
func (e *env) waitExecution(name string) string {
	e.t.Helper()
	deadline := time.Now().Add(90 * time.Second)
	for time.Now().Before(deadline) {
		for _, kind := range domain.AllWorkflowKinds {
			arn := e.stack.Machines[kind]
			execArn := strings.Replace(arn, ":stateMachine:", ":execution:", 1) + ":" + name
			out, err := e.stack.SFN.DescribeExecution(e.ctx, describe(execArn))
			if err == nil && string(out.Status) != "RUNNING" {
				return string(out.Status)
			}
		}
		time.Sleep(25 * time.Millisecond)
	}
	e.t.Fatalf("execution %s did not end", name)
	return ""
}

// historyActions lists the cause actions of a pipeline's history, oldest first.
func (e *env) historyActions(name string) []string {
	e.t.Helper()
	evs, _, err := e.stack.Store.History(e.ctx, name, "", 1000)
	if err != nil {
		e.t.Fatal(err)
	}
	out := make([]string, 0, len(evs))
	for i := len(evs) - 1; i >= 0; i-- {
		out = append(out, fmt.Sprintf("%s:%s", evs[i].Cause.Action, evs[i].DeploymentStatus))
	}
	return out
}

var _ = os.Getenv
