package httpapi

import (
	"bytes"
	"net/http"
	"strings"
	"testing"

	"github.com/sluicehq/sluice/internal/domain"
)

// TestBadInput: malformed query values, bodies, content types, methods,
// routes and names get a clear 4xx in the error shape, and nothing is written
// (the whole table is compared before and after).
func TestBadInput(t *testing.T) {
	e := newEnv(t)
	e.pipelineIn("p1", "Running/Running", "")
	before := e.snapshot()
	long := strings.Repeat("n", 64)
	big := append([]byte(`{"name":"big","description":"`), bytes.Repeat([]byte("x"), MaxBodyBytes)...)
	big = append(big, `"}`...)
	ct := func(v string) reqOpt { return withHeader("Content-Type", v) }
	noCT := func(r *http.Request) { r.Header.Del("Content-Type") }
	cases := []struct {
		name    string
		method  string
		url     string
		body    []byte
		opts    []reqOpt
		status  int
		code    domain.ErrorCode
		details map[string]any
	}{
		// Query parameters, strictly.
		{"force=yes", "POST", "/v0/pipelines/p1/stop?force=yes", nil, nil, 400, domain.CodeInvalidQueryParameter,
			map[string]any{"parameter": "force", "value": "yes", "expected": "true or false"}},
		{"force=TRUE", "POST", "/v0/pipelines/p1/stop?force=TRUE", nil, nil, 400, domain.CodeInvalidQueryParameter, nil},
		{"force=1", "POST", "/v0/pipelines/p1/stop?force=1", nil, nil, 400, domain.CodeInvalidQueryParameter, nil},
		{"force empty", "POST", "/v0/pipelines/p1/stop?force=", nil, nil, 400, domain.CodeInvalidQueryParameter, nil},
		{"force bare", "POST", "/v0/pipelines/p1/stop?force", nil, nil, 400, domain.CodeInvalidQueryParameter, nil},
		{"force twice", "POST", "/v0/pipelines/p1/stop?force=true&force=false", nil, nil, 400, domain.CodeInvalidQueryParameter, nil},
		{"unknown parameter", "POST", "/v0/pipelines/p1/stop?forse=true", nil, nil, 400, domain.CodeInvalidQueryParameter,
			map[string]any{"parameter": "forse", "value": "true", "expected": "only the parameters force"}},
		{"parameter of another endpoint", "POST", "/v0/pipelines/p1/pause?force=true", nil, nil, 400, domain.CodeInvalidQueryParameter, nil},
		{"semicolon query", "POST", "/v0/pipelines/p1/stop?force=true;x=1", nil, nil, 400, domain.CodeInvalidQueryParameter, nil},
		{"bad escape in query", "POST", "/v0/pipelines/p1/stop?force=%zz", nil, nil, 400, domain.CodeInvalidQueryParameter, nil},
		{"initial=RUNNING", "POST", "/v0/pipelines/p1/start?initial=RUNNING", nil, nil, 405, domain.CodeUnsupportedPipelineAction, nil},
		{"selector twice", "GET", "/v0/pipelines/p1?selector=all&selector=status", nil, nil, 400, domain.CodeInvalidQueryParameter, nil},

		// Bodies.
		{"malformed JSON", "POST", "/v0/pipelines", []byte(`{"name":`), nil, 400, domain.CodeInvalidRequestBody, nil},
		{"syntax error", "POST", "/v0/pipelines", []byte(`{"name" "x"}`), nil, 400, domain.CodeInvalidRequestBody,
			map[string]any{"reason": "malformed JSON at byte 9"}},
		{"unknown field", "POST", "/v0/pipelines", []byte(`{"name":"x","programcode":"select 1"}`), nil, 400, domain.CodeInvalidRequestBody,
			map[string]any{"field": "programcode", "reason": "unknown field (accepted: name, description, tags, runtime_config, program_code, udf_rust, udf_toml, program_config)"}},
		// Issue 14: what encoding/json accepts silently is refused.
		{"field name in another case", "POST", "/v0/pipelines", []byte(`{"NAME":"b1"}`), nil, 400, domain.CodeInvalidRequestBody,
			map[string]any{"field": "NAME", "reason": `unknown field (field names are case-sensitive: did you mean "name"?)`}},
		{"mixed-case field", "POST", "/v0/pipelines", []byte(`{"name":"b1","Runtime_Config":{}}`), nil, 400, domain.CodeInvalidRequestBody, nil},
		{"duplicate key", "POST", "/v0/pipelines", []byte(`{"name":"b1","name":"b2"}`), nil, 400, domain.CodeInvalidRequestBody,
			map[string]any{"field": "name", "reason": "appears more than once in one object"}},
		{"duplicate nested key", "POST", "/v0/pipelines", []byte(`{"name":"b1","runtime_config":{"storage":true,"storage":false}}`), nil, 400, domain.CodeInvalidRequestBody, nil},
		{"invalid UTF-8 body", "POST", "/v0/pipelines", []byte("{\"name\":\"b1\",\"description\":\"\xff\"}"), nil, 400, domain.CodeInvalidRequestBody,
			map[string]any{"reason": "the body is not valid UTF-8"}},
		{"program_config not an object", "POST", "/v0/pipelines", []byte(`{"name":"x","program_config":[1]}`), nil, 400, domain.CodeInvalidRequestBody, nil},
		{"program_code not a string", "POST", "/v0/pipelines", []byte(`{"name":"x","program_code":1}`), nil, 400, domain.CodeInvalidRequestBody, nil},
		{"tags not strings", "POST", "/v0/pipelines", []byte(`{"name":"x","tags":[1]}`), nil, 400, domain.CodeInvalidRequestBody, nil},
		{"wrong type", "POST", "/v0/pipelines", []byte(`{"name":5}`), nil, 400, domain.CodeInvalidRequestBody,
			map[string]any{"field": "name", "reason": "must be a string, not number"}},
		{"array body", "POST", "/v0/pipelines", []byte(`[{"name":"x"}]`), nil, 400, domain.CodeInvalidRequestBody, nil},
		{"null body", "POST", "/v0/pipelines", []byte(`null`), nil, 400, domain.CodeInvalidRequestBody, nil},
		{"trailing data", "POST", "/v0/pipelines", []byte(`{"name":"x"} {"name":"y"}`), nil, 400, domain.CodeInvalidRequestBody, nil},
		{"empty body", "POST", "/v0/pipelines", []byte{}, nil, 400, domain.CodeInvalidRequestBody, nil},
		{"no name", "POST", "/v0/pipelines", []byte(`{"description":"x"}`), nil, 400, domain.CodeInvalidRequestBody,
			map[string]any{"field": "name", "reason": "is required"}},
		{"runtime_config not an object", "POST", "/v0/pipelines", []byte(`{"name":"x","runtime_config":[1]}`), nil, 400, domain.CodeInvalidRequestBody, nil},
		{"runtime_config storage wrong type", "POST", "/v0/pipelines", []byte(`{"name":"x","runtime_config":{"storage":"yes"}}`), nil, 400, domain.CodeInvalidRequestBody, nil},
		{"description too long", "POST", "/v0/pipelines", []byte(`{"name":"x","description":"` + strings.Repeat("é", 301) + `"}`), nil, 400, domain.CodeInvalidRequestBody, nil},
		{"name with slash in body", "POST", "/v0/pipelines", []byte(`{"name":"a/b"}`), nil, 400, domain.CodeNameDoesNotMatchPattern, nil},
		{"empty name in body", "POST", "/v0/pipelines", []byte(`{"name":""}`), nil, 400, domain.CodeEmptyName, nil},
		{"body over 1 MiB", "POST", "/v0/pipelines", big, nil, 413, domain.CodePayloadTooLarge, map[string]any{"limit_bytes": MaxBodyBytes}},
		{"body over 1 MiB on an action", "POST", "/v0/pipelines/p1/stop?force=true", big, nil, 413, domain.CodePayloadTooLarge, nil},
		{"text/plain", "POST", "/v0/pipelines", []byte(`{"name":"x"}`), []reqOpt{ct("text/plain")}, 415, domain.CodeUnsupportedMediaType,
			map[string]any{"content_type": "text/plain", "expected": "application/json"}},
		{"no content type", "POST", "/v0/pipelines", []byte(`{"name":"x"}`), []reqOpt{noCT}, 415, domain.CodeUnsupportedMediaType, nil},
		{"latin1", "PUT", "/v0/pipelines/x", []byte(`{"name":"x"}`), []reqOpt{ct("application/json; charset=latin1")}, 415, domain.CodeUnsupportedMediaType, nil},
		{"form", "PUT", "/v0/pipelines/x", []byte(`name=x`), []reqOpt{ct("application/x-www-form-urlencoded")}, 415, domain.CodeUnsupportedMediaType, nil},

		// Methods and routes.
		{"PATCH of an action", "PATCH", "/v0/pipelines/p1/stop", []byte(`{}`), nil, 405, domain.CodeMethodNotAllowed,
			map[string]any{"method": "PATCH", "path": "/v0/pipelines/{pipeline_name}/stop", "allow": []string{"POST"}}},
		{"PATCH while running", "PATCH", "/v0/pipelines/p1", []byte(`{"description":"x"}`), nil, 400, domain.CodeUpdateRestrictedToStopped, nil},
		{"PATCH renaming", "PATCH", "/v0/pipelines/p1", []byte(`{"name":"other"}`), nil, 400, domain.CodeInvalidRequestBody, nil},
		{"TRACE", "TRACE", "/v0/pipelines", nil, nil, 405, domain.CodeMethodNotAllowed, nil},
		{"OPTIONS", "OPTIONS", "/v0/pipelines/p1/stop", nil, nil, 405, domain.CodeMethodNotAllowed, nil},
		{"GET stop", "GET", "/v0/pipelines/p1/stop", nil, nil, 405, domain.CodeMethodNotAllowed, nil},
		{"DELETE start", "DELETE", "/v0/pipelines/p1/start", nil, nil, 405, domain.CodeMethodNotAllowed, nil},
		{"unknown action", "POST", "/v0/pipelines/p1/explode", nil, nil, 404, domain.CodeNotFound, nil},
		{"singular", "GET", "/v0/pipeline", nil, nil, 404, domain.CodeNotFound, nil},
		{"v1", "GET", "/v1/pipelines", nil, nil, 404, domain.CodeNotFound, nil},
		{"root", "GET", "/", nil, nil, 404, domain.CodeNotFound, nil},
		{"double slash", "GET", "/v0//pipelines", nil, nil, 404, domain.CodeNotFound, nil},
		{"trailing slash after action", "POST", "/v0/pipelines/p1/stop/", nil, nil, 404, domain.CodeNotFound, nil},

		// Names in the path: 400 in the documented shape, never a 404 of a wrong route.
		{"encoded slash", "POST", "/v0/pipelines/a%2Fb/stop?force=true", nil, nil, 400, domain.CodeNameDoesNotMatchPattern,
			map[string]any{"name": "a/b", "pattern": "^[a-zA-Z0-9_-]+$"}},
		{"encoded slash in GET", "GET", "/v0/pipelines/p1%2Fstop", nil, nil, 400, domain.CodeNameDoesNotMatchPattern, nil},
		{"dot dot", "POST", "/v0/pipelines/../stop?force=true", nil, nil, 400, domain.CodeNameDoesNotMatchPattern, nil},
		{"encoded dot dot", "POST", "/v0/pipelines/%2E%2E/stop", nil, nil, 400, domain.CodeNameDoesNotMatchPattern, nil},
		{"dot", "DELETE", "/v0/pipelines/.", nil, nil, 400, domain.CodeNameDoesNotMatchPattern, nil},
		{"non-ASCII", "POST", "/v0/pipelines/caf%C3%A9/stop", nil, nil, 400, domain.CodeNameDoesNotMatchPattern, nil},
		{"invalid UTF-8", "POST", "/v0/pipelines/%FF%FE/stop", nil, nil, 400, domain.CodeNameDoesNotMatchPattern, nil},
		{"space", "GET", "/v0/pipelines/a%20b", nil, nil, 400, domain.CodeNameDoesNotMatchPattern, nil},
		{"NUL", "GET", "/v0/pipelines/a%00b", nil, nil, 400, domain.CodeNameDoesNotMatchPattern, nil},
		{"overlong", "POST", "/v0/pipelines/" + long + "/stop", nil, nil, 400, domain.CodeTooLongName,
			map[string]any{"name": strings.Repeat("n", 63) + "…", "max_length": 63}},
		{"empty", "POST", "/v0/pipelines//stop", nil, nil, 400, domain.CodeEmptyName, map[string]any{"name": ""}},
		{"trailing slash", "GET", "/v0/pipelines/", nil, nil, 400, domain.CodeEmptyName, nil},
		{"PUT bad name", "PUT", "/v0/pipelines/a.b", []byte(`{}`), nil, 400, domain.CodeNameDoesNotMatchPattern, nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := e.do(tc.method, tc.url, tc.body, tc.opts...)
			wantError(t, r, tc.status, tc.code, tc.details)
			if tc.status == 405 && r.header.Get("Allow") == "" && tc.code == domain.CodeMethodNotAllowed {
				t.Fatal("405 without Allow")
			}
			if got := e.snapshot(); got != before {
				t.Fatalf("the table changed:\nbefore %s\nafter  %s", before, got)
			}
		})
	}
	if n := len(e.rec.Calls()); n != 0 {
		t.Fatalf("%d workflows started by bad requests", n)
	}
	if n := len(e.runtime.received()); n != 0 {
		t.Fatalf("%d runtime calls by bad requests", n)
	}
}
