package httpapi

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-lambda-go/lambdacontext"

	"github.com/sluicehq/sluice/internal/auth"
	"github.com/sluicehq/sluice/internal/domain"
)

// fixture loads functions/api/event.json, the event `sam local invoke -e` uses.
func fixture(t *testing.T) events.APIGatewayProxyRequest {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "..", "functions", "api", "event.json"))
	if err != nil {
		t.Fatal(err)
	}
	var ev events.APIGatewayProxyRequest
	if err := json.Unmarshal(b, &ev); err != nil {
		t.Fatal(err)
	}
	return ev
}

// authorized is what the REQUEST authorizer puts in the context.
func authorized(role string) map[string]any {
	return map[string]any{"principalId": "apikey/test", auth.ContextKind: "apikey", auth.ContextSubject: "test", auth.ContextRole: role}
}

// event builds an API Gateway REST proxy event the way API Gateway does for
// this API's resources.
func event(method, resource, name, rawQuery string, body string, role string) events.APIGatewayProxyRequest {
	path := strings.ReplaceAll(resource, nameParam, url.PathEscape(name))
	ev := events.APIGatewayProxyRequest{
		Resource: resource, Path: path, HTTPMethod: method,
		Headers:           map[string]string{"Content-Type": "application/json"},
		MultiValueHeaders: map[string][]string{"Content-Type": {"application/json"}},
		RequestContext: events.APIGatewayProxyRequestContext{RequestID: "req-" + strings.ToLower(method),
			ResourcePath: resource, HTTPMethod: method, Stage: "Prod"},
		Body: body,
	}
	if strings.Contains(resource, nameParam) {
		ev.PathParameters = map[string]string{"pipeline_name": name}
	}
	if rawQuery != "" {
		q, _ := url.ParseQuery(rawQuery)
		ev.QueryStringParameters = map[string]string{}
		ev.MultiValueQueryStringParameters = map[string][]string{}
		for k, vs := range q {
			ev.QueryStringParameters[k] = vs[len(vs)-1]
			ev.MultiValueQueryStringParameters[k] = vs
		}
	}
	if role != "" {
		ev.RequestContext.Authorizer = authorized(role)
	}
	return ev
}

// invoke calls the Lambda adapter, which must never return a Go error, and
// validates the answer against the OpenAPI document.
func invoke(t *testing.T, h *Handler, ev events.APIGatewayProxyRequest) response {
	t.Helper()
	ctx := lambdacontext.NewContext(context.Background(), &lambdacontext.LambdaContext{AwsRequestID: "lambda-req-1"})
	out, err := h.LambdaHandler(ctx, ev)
	if err != nil {
		t.Fatalf("LambdaHandler returned a Go error (API Gateway would answer 502): %v", err)
	}
	if out.IsBase64Encoded {
		t.Fatal("base64 response")
	}
	header := http.Header{}
	for k, v := range out.Headers {
		header.Set(k, v)
	}
	for k, vs := range out.MultiValueHeaders {
		for _, v := range vs {
			header.Add(k, v)
		}
	}
	rawURL := ev.Path
	if len(ev.MultiValueQueryStringParameters) > 0 {
		rawURL += "?" + url.Values(ev.MultiValueQueryStringParameters).Encode()
	}
	checkResponse(t, ev.HTTPMethod, rawURL, out.StatusCode, header, []byte(out.Body))
	return response{status: out.StatusCode, header: header, body: []byte(out.Body)}
}

func TestLambdaFixture(t *testing.T) {
	e := newEnv(t)
	before := e.pipelineIn("p1", "Running/Running", "")
	r := invoke(t, e.handler, fixture(t))
	if r.status != 202 || r.str(t) != "Pipeline 'p1' is being stopped (forced): compute is deprovisioned without a checkpoint." {
		t.Fatalf("fixture: %d %s", r.status, r.body)
	}
	if r.header.Get(RequestIDHeader) != "c6af9ac6-7b61-11e6-9a41-93e8deadbeef" {
		t.Fatalf("request id %q", r.header.Get(RequestIDHeader))
	}
	after := e.get("p1")
	wantExec := execName(before, before.Generation+1, domain.WorkflowStop)
	if after.ResourcesDesiredStatus != "Stopped" || after.Workflow == nil || after.Workflow.ExecutionName != wantExec {
		t.Fatalf("after the fixture: %+v", after)
	}
	// The log line carries both request ids.
	logs := e.logs.String()
	if !strings.Contains(logs, `"aws_request_id":"lambda-req-1"`) || !strings.Contains(logs, `"request_id":"c6af9ac6-7b61-11e6-9a41-93e8deadbeef"`) {
		t.Fatalf("request ids missing from the log:\n%s", logs)
	}
	// The same event again: an idempotent repeat.
	r = invoke(t, e.handler, fixture(t))
	if r.status != 202 || r.str(t) != "Pipeline 'p1' is already being stopped (forced)." || len(e.startsOf("p1")) != 1 {
		t.Fatalf("repeat: %d %s", r.status, r.body)
	}
}

func TestLambdaAdapter(t *testing.T) {
	e := newEnv(t)
	e.pipelineIn("p1", "Running/Running", "")
	const stopRes = "/v0/pipelines/{pipeline_name}/stop"
	before := e.snapshot()

	// The same bad requests as over HTTP.
	wantError(t, invoke(t, e.handler, event("POST", stopRes, "p1", "force=yes", "", "write")), 400, domain.CodeInvalidQueryParameter,
		map[string]any{"parameter": "force", "value": "yes", "expected": "true or false"})
	wantError(t, invoke(t, e.handler, event("POST", stopRes, "p1", "force=true&force=false", "", "write")), 400, domain.CodeInvalidQueryParameter, nil)
	wantError(t, invoke(t, e.handler, event("POST", stopRes, "p1", "forse=true", "", "write")), 400, domain.CodeInvalidQueryParameter, nil)
	wantError(t, invoke(t, e.handler, event("POST", stopRes, "a/b", "", "", "write")), 400, domain.CodeNameDoesNotMatchPattern, nil)
	wantError(t, invoke(t, e.handler, event("POST", stopRes, "..", "", "", "write")), 400, domain.CodeNameDoesNotMatchPattern, nil)
	wantError(t, invoke(t, e.handler, event("POST", stopRes, "café", "", "", "write")), 400, domain.CodeNameDoesNotMatchPattern, nil)
	wantError(t, invoke(t, e.handler, event("POST", stopRes, strings.Repeat("x", 64), "", "", "write")), 400, domain.CodeTooLongName, nil)
	wantError(t, invoke(t, e.handler, event("PATCH", "/v0/pipelines/{pipeline_name}/stop", "p1", "", "{}", "write")), 405, domain.CodeMethodNotAllowed, nil)
	wantError(t, invoke(t, e.handler, event("GET", "/v0/nothing", "", "", "", "write")), 404, domain.CodeNotFound, nil)
	wantError(t, invoke(t, e.handler, event("POST", "/v0/pipelines", "", "", `{"name":`, "write")), 400, domain.CodeInvalidRequestBody, nil)
	big := event("POST", "/v0/pipelines", "", "", `{"name":"x","description":"`+strings.Repeat("x", MaxBodyBytes)+`"}`, "write")
	wantError(t, invoke(t, e.handler, big), 413, domain.CodePayloadTooLarge, nil)
	textPlain := event("POST", "/v0/pipelines", "", "", `{"name":"x"}`, "write")
	textPlain.Headers = map[string]string{"Content-Type": "text/plain"}
	textPlain.MultiValueHeaders = nil
	wantError(t, invoke(t, e.handler, textPlain), 415, domain.CodeUnsupportedMediaType, nil)
	badB64 := event("POST", "/v0/pipelines", "", "", "%%%not base64", "write")
	badB64.IsBase64Encoded = true
	wantError(t, invoke(t, e.handler, badB64), 400, domain.CodeInvalidRequestBody, map[string]any{"reason": "the body is not valid base64"})
	// Roles: the authorizer's principal, the route's rule.
	wantDomainError(t, invoke(t, e.handler, event("POST", stopRes, "p1", "force=true", "", "read")), domain.InsufficientPermissions("write", "read"))
	// No authorizer context and no Authorization header: 401.
	wantError(t, invoke(t, e.handler, event("POST", stopRes, "p1", "force=true", "", "")), 401, domain.CodeAuthenticationFailed, nil)
	if got := e.snapshot(); got != before {
		t.Fatal("a rejected event wrote to the table")
	}

	// Routing on the path when the resource is a catch-all proxy.
	proxy := event("GET", "/v0/pipelines/{pipeline_name}", "p1", "selector=status", "", "read")
	proxy.Resource, proxy.PathParameters = "/{proxy+}", map[string]string{"proxy": "v0/pipelines/p1"}
	if r := invoke(t, e.handler, proxy); r.status != 200 || obj(t, r)["name"] != "p1" {
		t.Fatalf("proxy resource: %d %s", r.status, r.body)
	}
	// A base64 body (binary media types configured on the API).
	create := event("POST", "/v0/pipelines", "", "", base64.StdEncoding.EncodeToString([]byte(`{"name":"b64","description":"from base64"}`)), "write")
	create.IsBase64Encoded = true
	if r := invoke(t, e.handler, create); r.status != 201 || obj(t, r)["description"] != "from base64" {
		t.Fatalf("base64 create: %d %s", r.status, r.body)
	}
	// Single-value query parameters only (no multi-value map).
	single := event("POST", stopRes, "p1", "force=false", "", "write")
	single.MultiValueQueryStringParameters = nil
	if r := invoke(t, e.handler, single); r.status != 202 || len(e.startsOf("p1")) != 1 || e.startsOf("p1")[0].Kind != domain.WorkflowSuspend {
		t.Fatalf("single-value query: %d %s", r.status, r.body)
	}
	// Public routes need no authorizer context.
	if r := invoke(t, e.handler, event("GET", "/healthz", "", "", "", "")); r.status != 200 {
		t.Fatalf("healthz: %d", r.status)
	}
	if r := invoke(t, e.handler, event("GET", "/v0/openapi.json", "", "", "", "")); r.status != 200 {
		t.Fatalf("openapi.json: %d", r.status)
	}
}

// TestLambdaWithoutVerifier: the deployed configuration (no verifier: the
// authorizer verified) answers 401 to an event without authorizer context,
// whatever its Authorization header says.
func TestLambdaWithoutVerifier(t *testing.T) {
	e := newEnv(t)
	e.pipelineIn("p1", "Running/Running", "")
	h, err := New(Config{Store: e.store, Starter: e.rec, Logger: e.handler.log})
	if err != nil {
		t.Fatal(err)
	}
	ev := event("POST", "/v0/pipelines/{pipeline_name}/stop", "p1", "force=true", "", "")
	ev.Headers["Authorization"] = "Bearer " + e.writeKey
	ev.MultiValueHeaders = nil
	wantError(t, invoke(t, h, ev), 401, domain.CodeAuthenticationFailed, nil)
	bad := event("POST", "/v0/pipelines/{pipeline_name}/stop", "p1", "force=true", "", "")
	bad.RequestContext.Authorizer = map[string]any{auth.ContextKind: "apikey", auth.ContextRole: "admin"}
	wantError(t, invoke(t, h, bad), 401, domain.CodeAuthenticationFailed, nil)
	if len(e.startsOf("p1")) != 0 {
		t.Fatal("started a workflow")
	}
	// Auth disabled explicitly (local development): anonymous writer.
	v, err := auth.NewVerifier(auth.Config{Disabled: true}, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	h, _ = New(Config{Store: e.store, Starter: e.rec, Verifier: v, Logger: e.handler.log})
	if r := invoke(t, h, event("POST", "/v0/pipelines/{pipeline_name}/stop", "p1", "force=true", "", "")); r.status != 202 {
		t.Fatalf("auth disabled: %d %s", r.status, r.body)
	}
}

// TestLambdaPanic: a panicking handler is a 500 InternalError answer with the
// request id, never a Go error.
func TestLambdaPanic(t *testing.T) {
	e := newEnv(t)
	h, err := New(Config{Store: &failingStore{Store: e.store, panicGet: true}, Starter: e.rec, Logger: e.handler.log})
	if err != nil {
		t.Fatal(err)
	}
	r := invoke(t, h, event("GET", "/v0/pipelines/{pipeline_name}", "p1", "", "", "read"))
	wantDomainError(t, r, domain.InternalError("req-get"))
	if strings.Contains(string(r.body), "exploded") {
		t.Fatal("the panic leaked into the body")
	}
	if !strings.Contains(e.logs.String(), "store exploded") {
		t.Fatal("the panic was not logged")
	}
	// Through net/http too.
	v, _ := auth.NewVerifier(auth.Config{Disabled: true}, nil, nil)
	h, _ = New(Config{Store: &failingStore{Store: e.store, panicGet: true}, Starter: e.rec, Verifier: v, Logger: e.handler.log})
	r = doOn(t, newServer(t, h), "", http.MethodGet, "/v0/pipelines/p1", nil)
	wantError(t, r, 500, domain.CodeInternalError, nil)
}
