package httpapi

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"github.com/sluicehq/sluice/internal/testkit"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"regexp"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers"
	"github.com/getkin/kin-openapi/routers/gorillamux"
	"github.com/google/uuid"

	"github.com/sluicehq/sluice/functions/api/openapi"
	"github.com/sluicehq/sluice/internal/auth"
	"github.com/sluicehq/sluice/internal/domain"
	"github.com/sluicehq/sluice/internal/dynamolocal"
	"github.com/sluicehq/sluice/internal/store"
	"github.com/sluicehq/sluice/internal/workflow"
	"github.com/sluicehq/sluice/internal/workflow/workflowtest"
)

// ---- the OpenAPI document, loaded once ----

var apiDoc struct {
	once   sync.Once
	doc    *openapi3.T
	router routers.Router
	err    error
}

func loadDoc(t testing.TB) (*openapi3.T, routers.Router) {
	t.Helper()
	apiDoc.once.Do(func() {
		doc, err := openapi3.NewLoader().LoadFromData(openapi.YAML())
		if err != nil {
			apiDoc.err = err
			return
		}
		if err := doc.Validate(context.Background()); err != nil {
			apiDoc.err = err
			return
		}
		apiDoc.doc = doc
		apiDoc.router, apiDoc.err = gorillamux.NewRouter(doc)
	})
	if apiDoc.err != nil {
		t.Fatalf("OpenAPI document: %v", apiDoc.err)
	}
	return apiDoc.doc, apiDoc.router
}

// checkResponse validates one response against the OpenAPI document: through
// its operation when the request matches one, else (unknown route, wrong
// method, undecodable path) as an error in the Error schema. Every error
// answer must be JSON in the error shape; every 503 must carry Retry-After.
func checkResponse(t testing.TB, method, rawURL string, status int, header http.Header, body []byte) {
	t.Helper()
	doc, router := loadDoc(t)
	if status >= 400 {
		if ct := header.Get("Content-Type"); ct != "application/json" {
			t.Errorf("%s %s: %d with Content-Type %q", method, rawURL, status, ct)
		}
		var e map[string]any
		if err := json.Unmarshal(body, &e); err != nil {
			t.Errorf("%s %s: %d body is not JSON: %q", method, rawURL, status, body)
		} else if err := doc.Components.Schemas["Error"].Value.VisitJSON(e); err != nil {
			t.Errorf("%s %s: %d body is not in the error shape: %v: %s", method, rawURL, status, err, body)
		}
	}
	if status == http.StatusServiceUnavailable && header.Get("Retry-After") == "" {
		t.Errorf("%s %s: 503 without Retry-After", method, rawURL)
	}
	req, err := http.NewRequest(method, "http://sluice.test"+rawURL, nil)
	if err != nil {
		return // not a URL the document could describe
	}
	route, params, err := router.FindRoute(req)
	if err != nil {
		if status < 400 {
			t.Errorf("%s %s: %d success for a request the document does not describe (%v)", method, rawURL, status, err)
		}
		return
	}
	in := &openapi3filter.ResponseValidationInput{
		RequestValidationInput: &openapi3filter.RequestValidationInput{Request: req, PathParams: params, Route: route,
			Options: &openapi3filter.Options{AuthenticationFunc: openapi3filter.NoopAuthenticationFunc}},
		Status:  status,
		Header:  header,
		Options: &openapi3filter.Options{IncludeResponseStatus: true, MultiError: true},
	}
	in.SetBodyBytes(body)
	if err := openapi3filter.ValidateResponse(context.Background(), in); err != nil {
		t.Errorf("%s %s: response %d does not match the OpenAPI document: %v\nbody: %s", method, rawURL, status, err, truncate(string(body), 2000))
	}
}

// ---- a fake pipeline runtime ----

type fakeAnswer struct {
	status int
	body   string
	header map[string]string
}

type fakeRuntime struct {
	srv     *httptest.Server
	mu      sync.Mutex
	calls   []string
	answers map[string]fakeAnswer
	// status is what GET /status reports unless answered otherwise: a
	// forwarded pause or start changes it, as a real runtime does.
	status string
}

func newFakeRuntime(t testing.TB) *fakeRuntime {
	f := &fakeRuntime{answers: map[string]fakeAnswer{}, status: "Running"}
	f.srv = httptest.NewServer(http.HandlerFunc(f.serve))
	t.Cleanup(f.srv.Close)
	return f
}

var defaultAnswers = map[string]fakeAnswer{
	"GET /pause":             {status: 202},
	"GET /start":             {status: 202},
	"POST /checkpoint":       {status: 200, body: `{"checkpoint_sequence_number":42,"incarnation_uuid":"0b6f1c4e-7c43-4a4b-9d43-3f3c3e1c9a11"}`},
	"GET /checkpoint_status": {status: 200, body: `{"success":42,"failure":null}`},
	"GET /stats":             {status: 200, body: `{"global_metrics":{"total_processed_records":1234},"inputs":[]}`},
	"POST /suspend":          {status: 202},
}

func (f *fakeRuntime) serve(w http.ResponseWriter, r *http.Request) {
	key := r.Method + " " + r.URL.Path
	f.mu.Lock()
	f.calls = append(f.calls, key)
	a, ok := f.answers[key]
	if !ok && key == "GET /status" {
		a, ok = fakeAnswer{status: 200, body: `{"runtime_status":"` + f.status + `","runtime_desired_status":"` + f.status + `"}`}, true
	}
	if !ok {
		a, ok = defaultAnswers[key]
	}
	switch {
	case key == "GET /pause" && a.status < 300:
		f.status = "Paused"
	case key == "GET /start" && a.status < 300:
		f.status = "Running"
	}
	f.mu.Unlock()
	if !ok {
		a = fakeAnswer{status: 404, body: `{"message":"no such endpoint","error_code":"NotFound","details":{}}`}
	}
	for k, v := range a.header {
		w.Header().Set(k, v)
	}
	if a.body != "" {
		w.Header().Set("Content-Type", "application/json")
	}
	w.WriteHeader(a.status)
	_, _ = io.WriteString(w, a.body)
}

func (f *fakeRuntime) answer(key string, a fakeAnswer) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.answers[key] = a
}

func (f *fakeRuntime) received() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.calls...)
}

// ---- the environment: a table, the store, the handler behind a server ----

type env struct {
	t        *testing.T
	ctx      context.Context
	client   *dynamodb.Client
	table    string
	store    *store.Dynamo
	rec      *workflowtest.Recorder
	setupRec *workflowtest.Recorder
	runtime  *fakeRuntime
	handler  *Handler
	srv      *httptest.Server
	logs     *testkit.SyncBuffer
	writeKey string
	readKey  string
}

// newEnv makes a fresh table on the shared DynamoDB Local, a Dynamo store on
// it, API keys of both roles verified by the real auth.Verifier, a fake
// runtime, and the handler behind an httptest server.
func newEnv(t *testing.T) *env {
	t.Helper()
	client, table := dynamolocal.NewPipelinesTable(t)
	e := &env{t: t, ctx: context.Background(), client: client, table: table,
		rec: workflowtest.NewRecorder(), setupRec: workflowtest.NewRecorder(), logs: &testkit.SyncBuffer{}}
	logger := slog.New(slog.NewJSONHandler(e.logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	e.store = store.NewDynamo(client, table, store.WithLogger(logger))
	var err error
	if e.writeKey, _, err = auth.CreateKey(e.ctx, e.store, store.RoleWrite, "test writer"); err != nil {
		t.Fatal(err)
	}
	if e.readKey, _, err = auth.CreateKey(e.ctx, e.store, store.RoleRead, "test reader"); err != nil {
		t.Fatal(err)
	}
	verifier, err := auth.NewVerifier(auth.Config{}, e.store, logger)
	if err != nil {
		t.Fatal(err)
	}
	e.runtime = newFakeRuntime(t)
	e.handler, err = New(Config{Store: e.store, Starter: e.rec, Verifier: verifier, Logger: logger})
	if err != nil {
		t.Fatal(err)
	}
	e.srv = httptest.NewServer(e.handler)
	t.Cleanup(e.srv.Close)
	t.Cleanup(func() {
		if t.Failed() {
			l := e.logs.String()
			if len(l) > 8000 {
				l = "…" + l[len(l)-8000:]
			}
			t.Logf("handler log (last lines):\n%s", l)
		}
	})
	return e
}

// response is what a test request got.
type response struct {
	status int
	header http.Header
	body   []byte
}

func (r response) json(t testing.TB) any {
	t.Helper()
	var v any
	if err := json.Unmarshal(r.body, &v); err != nil {
		t.Fatalf("body is not JSON: %v: %s", err, r.body)
	}
	return v
}

// str decodes a JSON string body (a 202's).
func (r response) str(t testing.TB) string {
	t.Helper()
	var s string
	if err := json.Unmarshal(r.body, &s); err != nil {
		t.Fatalf("body is not a JSON string: %v: %s", err, r.body)
	}
	return s
}

type reqOpt func(*http.Request)

func withHeader(k, v string) reqOpt { return func(r *http.Request) { r.Header.Set(k, v) } }
func noAuth() reqOpt                { return func(r *http.Request) { r.Header.Del("Authorization") } }
func asReader(e *env) reqOpt {
	return func(r *http.Request) { r.Header.Set("Authorization", "Bearer "+e.readKey) }
}

// do sends a request through the HTTP server (the net/http adapter) with the
// write key, and validates the answer against the OpenAPI document. rawURL is
// sent as is (percent-encoding and dot segments kept).
func (e *env) do(method, rawURL string, body []byte, opts ...reqOpt) response {
	e.t.Helper()
	return doOn(e.t, e.srv.URL, "Bearer "+e.writeKey, method, rawURL, body, opts...)
}

func doOn(t testing.TB, base, authz, method, rawURL string, body []byte, opts ...reqOpt) response {
	t.Helper()
	path, query, _ := strings.Cut(rawURL, "?")
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequest(method, base+"/", rd)
	if err != nil {
		t.Fatal(err)
	}
	req.URL.Opaque = path // sent exactly as written: percent-encoding and dot segments kept
	req.URL.RawQuery = query
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	req.Header.Set("Authorization", authz)
	for _, o := range opts {
		o(req)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, rawURL, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	if resp.Header.Get(RequestIDHeader) == "" {
		t.Errorf("%s %s: no %s header", method, rawURL, RequestIDHeader)
	}
	checkResponse(t, method, rawURL, resp.StatusCode, resp.Header, b)
	return response{status: resp.StatusCode, header: resp.Header, body: b}
}

// wantError asserts an error answer: status, error_code and, when details is
// not nil, the exact details.
func wantError(t testing.TB, r response, status int, code domain.ErrorCode, details map[string]any) map[string]any {
	t.Helper()
	if r.status != status {
		t.Fatalf("status %d, want %d; body %s", r.status, status, r.body)
	}
	var e map[string]any
	if err := json.Unmarshal(r.body, &e); err != nil {
		t.Fatalf("error body is not JSON: %s", r.body)
	}
	if e["error_code"] != string(code) {
		t.Fatalf("error_code %v, want %s; body %s", e["error_code"], code, r.body)
	}
	if details != nil {
		jsonEqual(t, e["details"], details)
	}
	return e
}

// wantDomainError asserts that the body is exactly the catalogue error de.
func wantDomainError(t testing.TB, r response, de *domain.Error) {
	t.Helper()
	want, err := json.Marshal(de)
	if err != nil {
		t.Fatal(err)
	}
	if r.status != de.HTTPStatus() {
		t.Fatalf("status %d, want %d; body %s", r.status, de.HTTPStatus(), r.body)
	}
	jsonEqualBytes(t, r.body, want)
}

func jsonEqual(t testing.TB, got, want any) {
	t.Helper()
	g, _ := json.Marshal(got)
	w, _ := json.Marshal(want)
	jsonEqualBytes(t, g, w)
}

func jsonEqualBytes(t testing.TB, got, want []byte) {
	t.Helper()
	var g, w any
	if err := json.Unmarshal(got, &g); err != nil {
		t.Fatalf("got is not JSON: %s", got)
	}
	if err := json.Unmarshal(want, &w); err != nil {
		t.Fatalf("want is not JSON: %s", want)
	}
	gb, _ := json.Marshal(g)
	wb, _ := json.Marshal(w)
	if !bytes.Equal(gb, wb) {
		t.Fatalf("JSON differs\n got: %s\nwant: %s", gb, wb)
	}
}

// ---- records in every status, through the store's own writes ----

type step func(e *env, name string)

var setupClock = time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC)

func (e *env) create(name string, runtimeConfig string) domain.Pipeline {
	e.t.Helper()
	if runtimeConfig == "" {
		runtimeConfig = `{"checkpoint_interval_secs":60}`
	}
	p, err := domain.Create(domain.Definition{Name: name, Description: "test pipeline " + name, RuntimeConfig: []byte(runtimeConfig)}, uuid.NewString(), setupClock)
	if err != nil {
		e.t.Fatal(err)
	}
	if err := e.store.Create(e.ctx, p, store.Cause{Action: "create", Actor: "test"}); err != nil {
		e.t.Fatal(err)
	}
	return p
}

func (e *env) get(name string) domain.Pipeline {
	e.t.Helper()
	p, err := e.store.Get(e.ctx, name)
	if err != nil {
		e.t.Fatalf("get %s: %v", name, err)
	}
	return p
}

// action applies a user action as the API would (workflow recorded on a
// separate recorder, so the test's recorder only sees what the test sends).
func action(decide func(domain.Pipeline, time.Time) (domain.Outcome, error)) step {
	return func(e *env, name string) {
		e.t.Helper()
		p := e.get(name)
		out, err := decide(p, time.Now().UTC())
		if err != nil {
			e.t.Fatalf("setup action on %s: %v", name, err)
		}
		after, err := e.store.ApplyAction(e.ctx, p, out, store.Cause{Action: "setup", Actor: "test"})
		if err != nil {
			e.t.Fatalf("setup action on %s: %v", name, err)
		}
		if out.Workflow != "" {
			ref, err := e.setupRec.Start(e.ctx, after, out.Workflow)
			if err != nil {
				e.t.Fatal(err)
			}
			if _, err := e.store.SetWorkflow(e.ctx, name, ref); err != nil {
				e.t.Fatalf("setup SetWorkflow on %s: %v", name, err)
			}
		}
	}
}

func transition(tr domain.Transition) step {
	return func(e *env, name string) {
		e.t.Helper()
		p := e.get(name)
		if _, err := e.store.Transition(e.ctx, name, p.Generation, tr, store.Cause{Action: "setup", Actor: "workflow"}); err != nil {
			e.t.Fatalf("setup transition on %s: %v", name, err)
		}
	}
}

var (
	startRunning = action(func(p domain.Pipeline, now time.Time) (domain.Outcome, error) {
		return domain.Start(p, domain.StartRequest{Initial: domain.InitialRunning, DismissError: true}, now)
	})
	startPaused = action(func(p domain.Pipeline, now time.Time) (domain.Outcome, error) {
		return domain.Start(p, domain.StartRequest{Initial: domain.InitialPaused, DismissError: true}, now)
	})
	stopGraceful = action(func(p domain.Pipeline, now time.Time) (domain.Outcome, error) { return domain.Stop(p, false, now) })
	stopForced   = action(func(p domain.Pipeline, now time.Time) (domain.Outcome, error) { return domain.Stop(p, true, now) })
	clearStorage = action(domain.Clear)
	provisioning = transition(domain.MarkProvisioning("dep-1"))
	suspending   = transition(domain.MarkSuspending())
	stopping     = transition(domain.MarkStopping())
	stopped      = transition(domain.MarkStopped())
	failed       = transition(domain.MarkFailed(&domain.ErrorBody{Message: "the runtime process exited (code 137)", ErrorCode: "RuntimeExited", Details: map[string]any{"exit_code": 137}}))
)

func provisioned(status domain.RuntimeStatus) step {
	return func(e *env, name string) {
		e.t.Helper()
		transition(domain.MarkProvisioned(e.runtime.srv.URL, status))(e, name)
	}
}

func observed(status domain.RuntimeStatus) step {
	return transition(domain.ObserveRuntime(status, nil))
}

// The statuses of SPEC §3's table, each as the steps that reach it.
var states = map[string][]step{
	"Stopped/Stopped":           {},
	"Stopped/Stopped InUse":     {startRunning, provisioning, provisioned(domain.RuntimeRunning), stopForced, stopping, stopped},
	"Stopped/Stopped error":     {startRunning, provisioning, provisioned(domain.RuntimeRunning), failed, stopped},
	"Stopping/Stopped error":    {startRunning, provisioning, provisioned(domain.RuntimeRunning), failed},
	"Stopped/Stopped Clearing":  {startRunning, provisioning, provisioned(domain.RuntimeRunning), stopForced, stopping, stopped, clearStorage},
	"Stopped/Provisioned":       {startRunning},
	"Provisioning/Provisioned":  {startRunning, provisioning},
	"Initializing/Running":      {startRunning, provisioning, provisioned(domain.RuntimeInitializing)},
	"Running/Running":           {startRunning, provisioning, provisioned(domain.RuntimeRunning)},
	"Paused/Paused":             {startPaused, provisioning, provisioned(domain.RuntimePaused)},
	"Unavailable/Running":       {startRunning, provisioning, provisioned(domain.RuntimeRunning), observed(domain.RuntimeUnavailable)},
	"Running/Suspended":         {startRunning, provisioning, provisioned(domain.RuntimeRunning), stopGraceful},
	"Suspending/Suspended":      {startRunning, provisioning, provisioned(domain.RuntimeRunning), stopGraceful, suspending},
	"Running/Stopped":           {startRunning, provisioning, provisioned(domain.RuntimeRunning), stopForced},
	"Provisioning/Stopped":      {startRunning, provisioning, stopForced},
	"Stopping/Stopped":          {startRunning, provisioning, provisioned(domain.RuntimeRunning), stopForced, stopping},
	"Suspending→forced/Stopped": {startRunning, provisioning, provisioned(domain.RuntimeRunning), stopGraceful, suspending, stopForced},
	"Suspended→Stopping/Stopped": {startRunning, provisioning, provisioned(domain.RuntimeRunning), stopGraceful, suspending,
		transition(domain.MarkSuspended(json.RawMessage(`{"checkpoints":[{"uuid":"c1","sequence_number":3,"size":10}]}`)))},
}

// pipelineIn creates name and drives it into state; runtimeConfig "" is the default.
func (e *env) pipelineIn(name, state, runtimeConfig string) domain.Pipeline {
	e.t.Helper()
	steps, ok := states[state]
	if !ok {
		e.t.Fatalf("no state %q", state)
	}
	e.create(name, runtimeConfig)
	for _, s := range steps {
		s(e, name)
	}
	return e.get(name)
}

// ---- the table's content, to prove that nothing was written ----

func (e *env) snapshot() string {
	e.t.Helper()
	var items []string
	var start map[string]types.AttributeValue
	for {
		out, err := e.client.Scan(e.ctx, &dynamodb.ScanInput{TableName: aws.String(e.table), ExclusiveStartKey: start, ConsistentRead: aws.Bool(true)})
		if err != nil {
			e.t.Fatal(err)
		}
		for _, it := range out.Items {
			b, _ := json.Marshal(it)
			items = append(items, string(b))
		}
		if len(out.LastEvaluatedKey) == 0 {
			break
		}
		start = out.LastEvaluatedKey
	}
	sort.Strings(items)
	return fmt.Sprintf("%d items\n%s", len(items), strings.Join(items, "\n"))
}

// startsOf is what the test's recorder was asked to start for a pipeline.
func (e *env) startsOf(name string) []workflowtest.StartCall {
	var out []workflowtest.StartCall
	for _, c := range e.rec.Executions() {
		if c.Pipeline == name {
			out = append(out, c)
		}
	}
	return out
}

func (e *env) stopsOf(name string) []workflowtest.StopCall {
	var out []workflowtest.StopCall
	for _, c := range e.rec.Stops() {
		if executionOf(c.Ref.ExecutionName, name) {
			out = append(out, c)
		}
	}
	return out
}

// execName is the execution name of the kind workflow of p at generation gen.
func execName(p domain.Pipeline, gen int64, kind domain.WorkflowKind) string {
	p.Generation = gen
	return workflow.ExecutionNameFor(p, kind, 0)
}

var executionSuffix = regexp.MustCompile(`^-[0-9a-f]{8}-g[0-9]+-`)

// executionOf reports whether an execution name belongs to the pipeline name.
func executionOf(execution, name string) bool {
	return strings.HasPrefix(execution, name) && executionSuffix.MatchString(execution[len(name):])
}
