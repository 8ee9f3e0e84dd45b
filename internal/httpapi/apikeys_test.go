package httpapi

import (
	"encoding/json"
	"net/url"
	"strings"
	"testing"

	"github.com/sluicehq/sluice/internal/auth"
	"github.com/sluicehq/sluice/internal/domain"
)

type newKeyAnswer struct {
	ID     string `json:"id"`
	Name   string `json:"name"`
	APIKey string `json:"api_key"`
	Role   string `json:"role"`
}

func (e *env) createKey(body string) newKeyAnswer {
	e.t.Helper()
	r := e.do("POST", "/v0/api_keys", []byte(body))
	if r.status != 201 {
		e.t.Fatalf("POST /v0/api_keys %s: %d %s", body, r.status, r.body)
	}
	if cc := r.header.Get("Cache-Control"); cc != "no-store" {
		e.t.Errorf("Cache-Control %q on the answer carrying a secret", cc)
	}
	var a newKeyAnswer
	if err := json.Unmarshal(r.body, &a); err != nil {
		e.t.Fatal(err)
	}
	return a
}

func bearer(secret string) reqOpt { return withHeader("Authorization", "Bearer "+secret) }

// The whole life of a key over HTTP (the net/http adapter, which verifies
// every request's key in the store, as the authorizer does): created, it
// authenticates with its role; deleted, it is rejected by the very next
// request.
func TestAPIKeyLifecycle(t *testing.T) {
	e := newEnv(t)
	e.create("p1", "")

	a := e.createKey(`{"name":"ci-deployer"}`)
	if a.Name != "ci-deployer" || a.Role != "write" || !strings.HasPrefix(a.APIKey, auth.APIKeyPrefix) {
		t.Fatalf("created %+v", a)
	}
	hash := auth.HashAPIKey(a.APIKey)
	if a.ID[:8] != hash[:8] {
		t.Errorf("id %s is not derived from the hash", a.ID)
	}
	if strings.Contains(e.logs.String(), a.APIKey) || strings.Contains(e.snapshot(), a.APIKey) {
		t.Fatal("the secret was logged or stored")
	}

	// The new key authenticates, with the write role (the default).
	if r := e.do("GET", "/v0/pipelines/p1", nil, bearer(a.APIKey)); r.status != 200 {
		t.Fatalf("new key: %d %s", r.status, r.body)
	}
	if r := e.do("POST", "/v0/pipelines", []byte(`{"name":"p2"}`), bearer(a.APIKey)); r.status != 201 {
		t.Fatalf("new key writing: %d %s", r.status, r.body)
	}

	// Read back: an array of one, both Feldera shapes.
	r := e.do("GET", "/v0/api_keys/ci-deployer", nil)
	if r.status != 200 {
		t.Fatalf("get: %d %s", r.status, r.body)
	}
	jsonEqual(t, r.json(t), []any{map[string]any{"id": a.ID, "name": "ci-deployer", "role": "write", "scopes": []any{"Read", "Write"}}})

	// Listed in name order, beside the harness's two keys (named by their ids).
	r = e.do("GET", "/v0/api_keys", nil)
	var list []map[string]any
	if err := json.Unmarshal(r.body, &list); err != nil || r.status != 200 || len(list) != 3 {
		t.Fatalf("list: %d %s", r.status, r.body)
	}
	for i := 1; i < len(list); i++ {
		if list[i-1]["name"].(string) >= list[i]["name"].(string) {
			t.Errorf("not in name order: %v", list)
		}
	}
	if strings.Contains(string(r.body), "apikey:") {
		t.Fatal("a secret in the list")
	}

	// A taken name.
	wantError(t, e.do("POST", "/v0/api_keys", []byte(`{"name":"ci-deployer","role":"read"}`)), 409, domain.CodeDuplicateName,
		map[string]any{"name": "ci-deployer"})

	// Delete, and the key is rejected by the very next request.
	r = e.do("DELETE", "/v0/api_keys/ci-deployer", nil)
	if r.status != 200 || len(r.body) != 0 {
		t.Fatalf("delete: %d %q", r.status, r.body)
	}
	wantError(t, e.do("GET", "/v0/pipelines/p1", nil, bearer(a.APIKey)), 401, domain.CodeAuthenticationFailed, nil)
	wantError(t, e.do("GET", "/v0/api_keys/ci-deployer", nil), 404, domain.CodeUnknownAPIKey, map[string]any{"name": "ci-deployer"})
	wantError(t, e.do("DELETE", "/v0/api_keys/ci-deployer", nil), 404, domain.CodeUnknownAPIKey, map[string]any{"name": "ci-deployer"})

	// The name can be used again; the old secret stays dead.
	b := e.createKey(`{"name":"ci-deployer","role":null}`)
	if b.APIKey == a.APIKey || b.ID == a.ID {
		t.Fatal("the same key twice")
	}
	wantError(t, e.do("GET", "/v0/pipelines/p1", nil, bearer(a.APIKey)), 401, domain.CodeAuthenticationFailed, nil)
	if r := e.do("GET", "/v0/pipelines/p1", nil, bearer(b.APIKey)); r.status != 200 {
		t.Fatalf("re-created key: %d", r.status)
	}
}

func TestAPIKeyRoles(t *testing.T) {
	e := newEnv(t)
	e.create("p1", "")
	rd := e.createKey(`{"name":"reader","role":"read"}`)
	if rd.Role != "read" {
		t.Fatalf("role %q", rd.Role)
	}
	r := e.do("GET", "/v0/api_keys/reader", nil)
	jsonEqual(t, r.json(t), []any{map[string]any{"id": rd.ID, "name": "reader", "role": "read", "scopes": []any{"Read"}}})

	// The read key reads pipelines, writes nothing and never manages keys,
	// not even to list them.
	if r := e.do("GET", "/v0/pipelines/p1", nil, bearer(rd.APIKey)); r.status != 200 {
		t.Fatalf("read key reading: %d", r.status)
	}
	forbidden := map[string]any{"required": "write", "actual": "read"}
	wantError(t, e.do("POST", "/v0/pipelines/p1/start", nil, bearer(rd.APIKey)), 403, domain.CodeInsufficientPermissions, forbidden)
	wantError(t, e.do("GET", "/v0/api_keys", nil, bearer(rd.APIKey)), 403, domain.CodeInsufficientPermissions, forbidden)
	wantError(t, e.do("GET", "/v0/api_keys/reader", nil, asReader(e)), 403, domain.CodeInsufficientPermissions, forbidden)
	wantError(t, e.do("POST", "/v0/api_keys", []byte(`{"name":"escalate","role":"write"}`), bearer(rd.APIKey)), 403, domain.CodeInsufficientPermissions, forbidden)
	wantError(t, e.do("DELETE", "/v0/api_keys/reader", nil, bearer(rd.APIKey)), 403, domain.CodeInsufficientPermissions, forbidden)
	wantError(t, e.do("GET", "/v0/api_keys", nil, noAuth()), 401, domain.CodeAuthenticationFailed, nil)

	wr := e.createKey(`{"name":"writer","role":"write"}`)
	if wr.Role != "write" {
		t.Fatalf("role %q", wr.Role)
	}
	if r := e.do("POST", "/v0/pipelines/p1/start", nil, bearer(wr.APIKey)); r.status != 202 {
		t.Fatalf("write key: %d %s", r.status, r.body)
	}
}

func TestAPIKeyBadInput(t *testing.T) {
	e := newEnv(t)
	before := e.snapshot()
	for body, code := range map[string]domain.ErrorCode{
		``:                               domain.CodeInvalidRequestBody,
		`null`:                           domain.CodeInvalidRequestBody,
		`[]`:                             domain.CodeInvalidRequestBody,
		`{}`:                             domain.CodeInvalidRequestBody,
		`{"name":`:                       domain.CodeInvalidRequestBody,
		`{"name":"k"} {}`:                domain.CodeInvalidRequestBody,
		`{"name":1}`:                     domain.CodeInvalidRequestBody,
		`{"name":"k","scopes":["Read"]}`: domain.CodeInvalidRequestBody,
		`{"name":"k","role":"admin"}`:    domain.CodeInvalidRequestBody,
		`{"name":"k","role":"owner"}`:    domain.CodeInvalidRequestBody,
		`{"name":"k","role":"Write"}`:    domain.CodeInvalidRequestBody,
		`{"name":"k","role":5}`:          domain.CodeInvalidRequestBody,
		`{"name":""}`:                    domain.CodeEmptyName,
		`{"name":"a b"}`:                 domain.CodeNameDoesNotMatchPattern,
		`{"name":"` + strings.Repeat("k", 64) + `"}`: domain.CodeTooLongName,
	} {
		var b []byte
		if body != "" {
			b = []byte(body)
		}
		r := e.do("POST", "/v0/api_keys", b)
		if r.status != 400 {
			t.Errorf("%s: %d %s", body, r.status, r.body)
			continue
		}
		wantError(t, r, 400, code, nil)
	}
	wantError(t, e.do("POST", "/v0/api_keys", []byte(`{"name":"k"}`), withHeader("Content-Type", "text/plain")), 415, domain.CodeUnsupportedMediaType, nil)
	wantError(t, e.do("GET", "/v0/api_keys?selector=all", nil), 400, domain.CodeInvalidQueryParameter, nil)
	wantError(t, e.do("GET", "/v0/api_keys?page_token=nonsense", nil), 400, domain.CodeInvalidQueryParameter, nil)
	wantError(t, e.do("PUT", "/v0/api_keys/k", []byte(`{}`)), 405, domain.CodeMethodNotAllowed, nil)
	// A name no key can have is unknown (as in Feldera, where any string is a name).
	for _, name := range []string{"a%20b", "caf%C3%A9", strings.Repeat("x", 64), "a%2Fb"} {
		want, _ := url.PathUnescape(name)
		if len(want) > domain.MaxNameLength {
			want = want[:domain.MaxNameLength] + "…"
		}
		wantError(t, e.do("GET", "/v0/api_keys/"+name, nil), 404, domain.CodeUnknownAPIKey, map[string]any{"name": want})
		wantError(t, e.do("DELETE", "/v0/api_keys/"+name, nil), 404, domain.CodeUnknownAPIKey, nil)
	}
	if after := e.snapshot(); after != before {
		t.Fatalf("a rejected request wrote:\nbefore %s\nafter  %s", before, after)
	}
}

func TestAPIKeyPaging(t *testing.T) {
	e := newEnv(t)
	for _, n := range []string{"k3", "k1", "k2"} {
		e.createKey(`{"name":"` + n + `"}`)
	}
	var names []string
	token := ""
	for pages := 0; ; pages++ {
		if pages > 10 {
			t.Fatal("no end")
		}
		u := "/v0/api_keys?limit=2"
		if token != "" {
			u += "&page_token=" + url.QueryEscape(token)
		}
		r := e.do("GET", u, nil)
		var page []map[string]any
		if err := json.Unmarshal(r.body, &page); err != nil || r.status != 200 {
			t.Fatalf("%s: %d %s", u, r.status, r.body)
		}
		for _, k := range page {
			names = append(names, k["name"].(string))
		}
		if token = r.header.Get(NextPageHeader); token == "" {
			break
		}
	}
	if len(names) != 5 || names[2] != "k1" || names[3] != "k2" || names[4] != "k3" {
		t.Fatalf("paged %v (the harness's two keys, named by their hex ids, sort first)", names)
	}
}

// Behind API Gateway: routed on the resource and its api_key_name path
// parameter, the principal from the authorizer context.
func TestAPIKeyLambda(t *testing.T) {
	e := newEnv(t)
	e.createKey(`{"name":"lambda-key"}`)
	ev := event("GET", routeAPIKey, "", "", "", "write")
	ev.Path = "/v0/api_keys/lambda-key"
	ev.PathParameters = map[string]string{"api_key_name": "lambda-key"}
	r := invoke(t, e.handler, ev)
	if r.status != 200 || !strings.Contains(string(r.body), `"name":"lambda-key"`) {
		t.Fatalf("get: %d %s", r.status, r.body)
	}
	ev.RequestContext.Authorizer = authorized("read")
	wantError(t, invoke(t, e.handler, ev), 403, domain.CodeInsufficientPermissions, nil)
	del := event("DELETE", routeAPIKey, "", "", "", "write")
	del.Path = "/v0/api_keys/lambda-key"
	del.PathParameters = map[string]string{"api_key_name": "lambda-key"}
	if r := invoke(t, e.handler, del); r.status != 200 {
		t.Fatalf("delete: %d %s", r.status, r.body)
	}
	wantError(t, invoke(t, e.handler, del), 404, domain.CodeUnknownAPIKey, map[string]any{"name": "lambda-key"})
	create := event("POST", routeAPIKeys, "", "", `{"name":"from-lambda","role":"read"}`, "write")
	if r := invoke(t, e.handler, create); r.status != 201 {
		t.Fatalf("create: %d %s", r.status, r.body)
	}
}
