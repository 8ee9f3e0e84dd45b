package reliability

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

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sfn"
	sfntypes "github.com/aws/aws-sdk-go-v2/service/sfn/types"

	"github.com/sluicehq/sluice/internal/domain"
	"github.com/sluicehq/sluice/internal/dynamolocal"
	"github.com/sluicehq/sluice/internal/localstack"
	"github.com/sluicehq/sluice/internal/store"
	"github.com/sluicehq/sluice/internal/workflow"
)

// TestMain stops the shared DynamoDB Local after the tests.
func TestMain(m *testing.M) { dynamolocal.RunTests(m) }

// waitLimit bounds every wait for a state: generous, the suite never asserts
// on timing ($SLUICE_TEST_WAIT changes it while debugging).
var waitLimit = func() time.Duration {
	if d, err := time.ParseDuration(os.Getenv("SLUICE_TEST_WAIT")); err == nil && d > 0 {
		return d
	}
	return 120 * time.Second
}()

// tailLog keeps the last max bytes written to it (the stack's logs, shown
// when a test fails).
type tailLog struct {
	mu  sync.Mutex
	max int
	b   []byte
}

func (l *tailLog) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.b = append(l.b, p...)
	if len(l.b) > 2*l.max {
		l.b = append([]byte(nil), l.b[len(l.b)-l.max:]...)
	}
	return len(p), nil
}

// lines returns the last n lines that contain one of the words.
func (l *tailLog) lines(n int, words ...string) string {
	l.mu.Lock()
	text := string(l.b)
	l.mu.Unlock()
	var keep []string
	for _, line := range strings.Split(text, "\n") {
		for _, w := range words {
			if strings.Contains(line, w) {
				keep = append(keep, line)
				break
			}
		}
	}
	if len(keep) > n {
		keep = keep[len(keep)-n:]
	}
	return strings.Join(keep, "\n")
}

// startStack starts a local stack for one test and closes it (and so every
// runtime process it started) when the test ends. Without DataDir or
// DynamoEndpoint it uses the shared in-memory DynamoDB Local with a table of
// its own.
func startStack(t *testing.T, cfg localstack.Config) (*localstack.Stack, *tailLog) {
	t.Helper()
	logs := &tailLog{max: 4 << 20}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: slog.LevelInfo}))
	}
	if cfg.DataDir == "" && cfg.DynamoEndpoint == "" {
		cfg.DynamoEndpoint = dynamolocal.Shared(t).Endpoint
		cfg.Table = dynamolocal.UniqueTableName(t)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	stack, err := localstack.Start(ctx, cfg)
	if err != nil {
		t.Fatalf("starting the local stack: %v", err)
	}
	t.Cleanup(func() {
		if err := stack.Close(); err != nil {
			t.Errorf("closing the local stack: %v", err)
		}
	})
	return stack, logs
}

// reply is one answer of the API.
type reply struct {
	status int
	header http.Header
	body   []byte
	err    error
}

// apiClient sends requests to the stack's API with its key.
type apiClient struct {
	base, key string
	http      *http.Client
}

// newClient returns a client of the stack's API. Its connections are closed
// before the stack is: a connection the server accepted but never got a
// request on would hold the server's Shutdown for 5 s.
func newClient(t *testing.T, stack *localstack.Stack) *apiClient {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.MaxIdleConnsPerHost = 128
	t.Cleanup(tr.CloseIdleConnections)
	return &apiClient{base: stack.APIURL, key: stack.APIKey, http: &http.Client{Timeout: 60 * time.Second, Transport: tr}}
}

func (c *apiClient) do(ctx context.Context, method, path string, body any, requestID string) reply {
	var rd io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, rd)
	if err != nil {
		return reply{err: err}
	}
	req.Header.Set("Authorization", "Bearer "+c.key)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if requestID != "" {
		req.Header.Set("X-Request-Id", requestID)
	}
	res, err := c.http.Do(req)
	if err != nil {
		return reply{err: err}
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	return reply{status: res.StatusCode, header: res.Header, body: b, err: err}
}

// must sends a request and fails the test unless it gets want.
func (c *apiClient) must(t *testing.T, method, path string, body any, want int) reply {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	r := c.do(ctx, method, path, body, "")
	if r.err != nil || r.status != want {
		t.Fatalf("%s %s: %d %s (%v), want %d", method, path, r.status, r.body, r.err, want)
	}
	return r
}

// Actions, named as the API names them in the history (cause.action).
const (
	actStartRunning = "start?initial=running"
	actStartPaused  = "start?initial=paused"
	actStop         = "stop?force=false"
	actForceStop    = "stop?force=true"
	actPause        = "pause"
	actResume       = "resume"
	actCheckpoint   = "checkpoint"
	actClear        = "clear"
	actDismiss      = "dismiss_error"
	actGet          = "get"
)

// actionPath is the method and path of an action on a pipeline.
func actionPath(action, name string) (method, path string) {
	p := "/v0/pipelines/" + name
	switch action {
	case actGet:
		return "GET", p
	case actStartRunning:
		return "POST", p + "/start"
	case actStartPaused:
		return "POST", p + "/start?initial=paused"
	case actStop:
		return "POST", p + "/stop"
	case actForceStop:
		return "POST", p + "/stop?force=true"
	}
	return "POST", p + "/" + action
}

// sent is one request a test sent and what it got.
type sent struct {
	Pipeline, Action, RequestID string
	Sent, Received              time.Time
	Status                      int
	Body                        string
	Err                         string
}

func (s sent) acknowledged() bool { return s.Err == "" && s.Status >= 200 && s.Status < 300 }

// actionLog records the requests of many clients.
type actionLog struct {
	mu   sync.Mutex
	list []sent
}

func (l *actionLog) add(s sent) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.list = append(l.list, s)
}

func (l *actionLog) all() []sent {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]sent(nil), l.list...)
}

// act sends an action with a fresh request id and records it.
func (c *apiClient) act(ctx context.Context, log *actionLog, name, action, requestID string) sent {
	method, path := actionPath(action, name)
	s := sent{Pipeline: name, Action: action, RequestID: requestID, Sent: time.Now()}
	r := c.do(ctx, method, path, nil, requestID)
	s.Received = time.Now()
	s.Status, s.Body = r.status, string(r.body)
	if r.err != nil {
		s.Err = r.err.Error()
	}
	if log != nil {
		log.add(s)
	}
	return s
}

// history returns a pipeline's status history, oldest first.
func history(ctx context.Context, st store.Store, name string) ([]store.Event, error) {
	var all []store.Event
	token := ""
	for {
		evs, next, err := st.History(ctx, name, token, 1000)
		if err != nil {
			return nil, err
		}
		all = append(all, evs...)
		if next == "" {
			break
		}
		token = next
	}
	for i, j := 0, len(all)-1; i < j; i, j = i+1, j-1 {
		all[i], all[j] = all[j], all[i]
	}
	return all, nil
}

// waitRecord polls a record until cond holds; it fails the test at waitLimit.
func waitRecord(t *testing.T, stack *localstack.Stack, name, what string, cond func(domain.Pipeline) bool) domain.Pipeline {
	t.Helper()
	deadline := time.Now().Add(waitLimit)
	var p domain.Pipeline
	var err error
	for time.Now().Before(deadline) {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		p, err = stack.Store.Get(ctx, name)
		cancel()
		if err == nil && cond(p) {
			return p
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("%s: never %s: last %s/%s (error %v), workflow %+v", name, what, p.DeploymentStatus(), p.DeploymentDesiredStatus(), err, p.Workflow)
	return p
}

func isStatus(s domain.CombinedStatus, d domain.CombinedDesiredStatus) func(domain.Pipeline) bool {
	return func(p domain.Pipeline) bool { return p.DeploymentStatus() == s && p.DeploymentDesiredStatus() == d }
}

var fullyStopped = isStatus(domain.CombinedStopped, domain.CombinedDesiredStopped)

// settled: the pipeline is where its desired state says, with nothing
// pending: the combined status equals the combined desired status (Stopped,
// Running or Paused) and storage is not being cleared.
func settled(p domain.Pipeline) bool {
	if !p.Converged() || p.PendingWorkflow() != "" {
		return false
	}
	return string(p.DeploymentStatus()) == string(p.DeploymentDesiredStatus())
}

// describeExecution describes an execution by its recorded ref (nil if unknown).
func describeExecution(ctx context.Context, stack *localstack.Stack, ref domain.WorkflowRef) (*sfn.DescribeExecutionOutput, error) {
	arn := ref.ExecutionArn
	if arn == "" {
		var err error
		if arn, err = workflow.ExecutionARN(stack.Machines[ref.Kind], ref.ExecutionName); err != nil {
			return nil, err
		}
	}
	return stack.SFN.DescribeExecution(ctx, &sfn.DescribeExecutionInput{ExecutionArn: aws.String(arn)})
}

// waitExecutionEnd waits until an execution is no longer RUNNING.
func waitExecutionEnd(t *testing.T, stack *localstack.Stack, ref domain.WorkflowRef) sfntypes.ExecutionStatus {
	t.Helper()
	deadline := time.Now().Add(waitLimit)
	var last string
	for time.Now().Before(deadline) {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		out, err := describeExecution(ctx, stack, ref)
		cancel()
		if err == nil && out.Status != sfntypes.ExecutionStatusRunning {
			return out.Status
		}
		last = fmt.Sprint(err)
		time.Sleep(200 * time.Millisecond)
	}
	t.Fatalf("execution %s never ended (%s)", ref.ExecutionName, last)
	return ""
}

// eventually polls cond until it holds; it fails the test at waitLimit.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(waitLimit)
	for time.Now().Before(deadline) {
		if cond() {
			return
		}
		time.Sleep(200 * time.Millisecond)
	}
	t.Fatalf("never: %s", what)
}
