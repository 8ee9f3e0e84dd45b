package security

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/big"
	"net/http"
	"net/http/httptest"
	"os"
	"regexp"
	"sort"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/golang-jwt/jwt/v5"

	"github.com/sluicehq/sluice/internal/auth"
	"github.com/sluicehq/sluice/internal/dynamolocal"
	"github.com/sluicehq/sluice/internal/httpapi"
	"github.com/sluicehq/sluice/internal/lambdalocal"
	"github.com/sluicehq/sluice/internal/store"
	"github.com/sluicehq/sluice/internal/testkit"
	"github.com/sluicehq/sluice/internal/workflow/workflowtest"
)

// One shared DynamoDB Local per test binary; the suite makes its own table.
func TestMain(m *testing.M) { dynamolocal.RunTests(m) }

const (
	issuer   = "https://issuer.example.test/"
	audience = "sluice-api"
	pipeline = "sec-p"
	keyName  = "sec-k"
)

var hsSecret = []byte("0123456789abcdef0123456789abcdef-security-suite-hs256")

// suite is the system under attack: the real handler over DynamoDB Local,
// API keys of both roles, JWTs from a JWKS (RS256) and a shared secret
// (HS256), both fronts.
type suite struct {
	t          *testing.T
	ctx        context.Context
	client     *dynamodb.Client
	table      string
	handler    *httpapi.Handler
	authorizer *auth.APIGatewayAuthorizer
	rec        *workflowtest.Recorder
	srv        *httptest.Server
	logs       *testkit.SyncBuffer

	writeKey, readKey string
	issuerKey         *rsa.PrivateKey // the JWKS's key, kid "k1"
	attackerKey       *rsa.PrivateKey
	foreignFetches    atomic.Int32 // requests to URLs a token names (jku, x5u)
	foreignURL        string
	unauthorizedBody  string // template.yaml's UNAUTHORIZED gateway response
}

func newSuite(t *testing.T) *suite {
	t.Helper()
	s := &suite{t: t, ctx: context.Background(), rec: workflowtest.NewRecorder(), logs: &testkit.SyncBuffer{}}
	s.client, s.table = dynamolocal.NewPipelinesTable(t)
	logger := slog.New(slog.NewJSONHandler(s.logs, nil))
	st := store.NewDynamo(s.client, s.table, store.WithLogger(logger))
	var err error
	if s.writeKey, _, err = auth.CreateKey(s.ctx, st, store.RoleWrite, "writer"); err != nil {
		t.Fatal(err)
	}
	if s.readKey, _, err = auth.CreateKey(s.ctx, st, store.RoleRead, "reader"); err != nil {
		t.Fatal(err)
	}
	if s.issuerKey, err = rsa.GenerateKey(rand.Reader, 2048); err != nil {
		t.Fatal(err)
	}
	if s.attackerKey, err = rsa.GenerateKey(rand.Reader, 2048); err != nil {
		t.Fatal(err)
	}
	pub := s.issuerKey.PublicKey
	jwks := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(map[string]any{"keys": []map[string]any{{
			"kty": "RSA", "kid": "k1", "use": "sig", "alg": "RS256",
			"n": b64(pub.N.Bytes()), "e": b64(big.NewInt(int64(pub.E)).Bytes()),
		}}})
	}))
	t.Cleanup(jwks.Close)
	foreign := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		s.foreignFetches.Add(1)
		attacker := s.attackerKey.PublicKey
		_ = json.NewEncoder(w).Encode(map[string]any{"keys": []map[string]any{{
			"kty": "RSA", "kid": "evil", "n": b64(attacker.N.Bytes()), "e": b64(big.NewInt(int64(attacker.E)).Bytes()),
		}}})
	}))
	t.Cleanup(foreign.Close)
	s.foreignURL = foreign.URL + "/jwks.json"
	verifier, err := auth.NewVerifier(auth.Config{Issuer: issuer, Audience: audience, JWKSURL: jwks.URL, HS256Secret: hsSecret}, st, logger)
	if err != nil {
		t.Fatal(err)
	}
	s.authorizer = auth.NewAPIGatewayAuthorizer(verifier, logger)
	if s.handler, err = httpapi.New(httpapi.Config{Store: st, Starter: s.rec, Verifier: verifier, Logger: logger}); err != nil {
		t.Fatal(err)
	}
	s.srv = httptest.NewServer(s.handler)
	t.Cleanup(s.srv.Close)
	s.unauthorizedBody = gatewayResponse(t, "UNAUTHORIZED")

	// What the attacks aim at: a pipeline and a key name.
	if r := s.local(req{method: "POST", path: "/v0/pipelines", body: `{"name":"` + pipeline + `","description":"target"}`}, "Bearer "+s.writeKey); r.status != 201 {
		t.Fatalf("setup: create pipeline: %d %s", r.status, r.body)
	}
	if r := s.local(req{method: "POST", path: "/v0/api_keys", body: `{"name":"` + keyName + `","role":"read"}`}, "Bearer "+s.writeKey); r.status != 201 {
		t.Fatalf("setup: create key: %d %s", r.status, r.body)
	}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("handler log:\n%s", s.logs.String())
		}
	})
	return s
}

func b64(b []byte) string { return base64.RawURLEncoding.EncodeToString(b) }

// gatewayResponse reads a gateway response's body template from template.yaml:
// what API Gateway answers when the authorizer says Unauthorized.
func gatewayResponse(t *testing.T, name string) string {
	t.Helper()
	raw, err := os.ReadFile("../../template.yaml")
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`(?s)\n\s+` + name + `:\n.*?application/json: '([^\n]*)'\n`).FindSubmatch(raw)
	if m == nil {
		t.Fatalf("template.yaml has no %s gateway response", name)
	}
	return strings.ReplaceAll(string(m[1]), "''", "'")
}

// req is one HTTP request of an attack. headers are added in order (a name
// may repeat); authz, when set, replaces the default credential.
type req struct {
	method, path, body string
	headers            [][2]string
	noAuth             bool
}

type answer struct {
	status int
	header http.Header
	body   []byte
}

// local serves r through the local front: the real handler's ServeHTTP (the
// local stack's API server), in-process so that bytes net/http's client
// would refuse to send (NUL in a header) still reach it.
func (s *suite) local(r req, authz string) answer {
	var body io.Reader
	if r.body != "" {
		body = strings.NewReader(r.body)
	}
	hr := httptest.NewRequest(r.method, r.path, body)
	if r.body != "" {
		hr.Header.Set("Content-Type", "application/json")
	}
	if !r.noAuth {
		hr.Header.Set("Authorization", authz)
	}
	for _, h := range r.headers {
		if strings.EqualFold(h[0], "Content-Type") {
			hr.Header.Del(h[0])
		}
	}
	for _, h := range r.headers {
		hr.Header[h[0]] = append(hr.Header[h[0]], h[1]) // as sent, no canonicalisation
		if c := http.CanonicalHeaderKey(h[0]); c != h[0] {
			hr.Header[c] = append(hr.Header[c], hr.Header[h[0]]...)
			delete(hr.Header, h[0])
		}
	}
	rec := httptest.NewRecorder()
	s.handler.ServeHTTP(rec, hr)
	return answer{status: rec.Code, header: rec.Header(), body: rec.Body.Bytes()}
}

// tcp sends r to the handler behind a real HTTP server.
func (s *suite) tcp(r req, authz string) answer {
	s.t.Helper()
	var body io.Reader
	if r.body != "" {
		body = strings.NewReader(r.body)
	}
	hr, err := http.NewRequest(r.method, s.srv.URL+r.path, body)
	if err != nil {
		s.t.Fatal(err)
	}
	if r.body != "" {
		hr.Header.Set("Content-Type", "application/json")
	}
	if !r.noAuth {
		hr.Header.Set("Authorization", authz)
	}
	for _, h := range r.headers {
		hr.Header[h[0]] = append(hr.Header[h[0]], h[1]) // sent as written
	}
	res, err := http.DefaultClient.Do(hr)
	if err != nil {
		s.t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return answer{status: res.StatusCode, header: res.Header, body: b}
}

// aws serves r through the deployed chain: the REQUEST authorizer on the
// event's headers (Unauthorized → template.yaml's UNAUTHORIZED gateway
// response), then the api Lambda adapter with the authorizer's context.
func (s *suite) aws(r req, authz string) answer {
	multi := map[string][]string{}
	if r.body != "" {
		multi["Content-Type"] = []string{"application/json"}
	}
	if !r.noAuth {
		multi["Authorization"] = []string{authz}
	}
	for _, h := range r.headers {
		if strings.EqualFold(h[0], "Content-Type") {
			delete(multi, "Content-Type")
		}
	}
	for _, h := range r.headers {
		multi[h[0]] = append(multi[h[0]], h[1])
	}
	single := map[string]string{}
	for k, vs := range multi {
		single[k] = vs[len(vs)-1]
	}
	path, rawQuery, _ := strings.Cut(r.path, "?")
	methodArn := "arn:aws:execute-api:us-east-1:123456789012:abc123/Prod/" + r.method + path
	ctx := context.Background()
	var authorizer map[string]any
	if !strings.HasPrefix(path, "/healthz") && path != "/v0/openapi.json" {
		resp, err := s.authorizer.Handle(ctx, events.APIGatewayCustomAuthorizerRequestTypeRequest{
			Type: "REQUEST", MethodArn: methodArn, HTTPMethod: r.method, Path: path, Headers: single, MultiValueHeaders: multi,
		})
		if errors.Is(err, auth.ErrUnauthorized) {
			return answer{status: 401, header: http.Header{"Content-Type": {"application/json"}}, body: []byte(s.unauthorizedBody)}
		}
		if err != nil {
			return answer{status: 503, body: []byte(err.Error())}
		}
		authorizer = resp.Context
	}
	decoded := path
	if strings.Contains(path, "%") {
		decoded = strings.ReplaceAll(path, "%00", "\x00")
	}
	ev := events.APIGatewayProxyRequest{
		HTTPMethod: r.method, Path: decoded, Headers: single, MultiValueHeaders: multi, Body: r.body,
		RequestContext: events.APIGatewayProxyRequestContext{RequestID: "sec", Authorizer: authorizer},
	}
	if rawQuery != "" {
		ev.MultiValueQueryStringParameters = map[string][]string{}
		for _, kv := range strings.Split(rawQuery, "&") {
			k, v, _ := strings.Cut(kv, "=")
			ev.MultiValueQueryStringParameters[k] = append(ev.MultiValueQueryStringParameters[k], v)
		}
	}
	out, err := s.handler.LambdaHandler(ctx, ev)
	if err != nil {
		s.t.Fatalf("LambdaHandler returned an error (API Gateway: 502): %v", err)
	}
	h := http.Header{}
	for k, v := range out.Headers {
		h.Set(k, v)
	}
	return answer{status: out.StatusCode, header: h, body: []byte(out.Body)}
}

// snapshot is the whole table, sorted, and the workflow starts.
func (s *suite) snapshot() string {
	s.t.Helper()
	out, err := s.client.Scan(s.ctx, &dynamodb.ScanInput{TableName: aws.String(s.table)})
	if err != nil {
		s.t.Fatal(err)
	}
	var items []string
	for _, it := range out.Items {
		b, _ := json.Marshal(it)
		items = append(items, string(b))
	}
	sort.Strings(items)
	return fmt.Sprintf("%d starts\n%s", len(s.rec.Calls()), strings.Join(items, "\n"))
}

// wantRefused checks the documented error shape: exactly message (a
// non-empty string), error_code (the expected one) and details (an object),
// the status expected for it, never a 5xx.
func wantRefused(t *testing.T, what string, a answer, status int, code string) {
	t.Helper()
	if a.status >= 500 {
		t.Errorf("%s: a 5xx (%d) %s", what, a.status, a.body)
		return
	}
	var doc map[string]json.RawMessage
	if err := json.Unmarshal(a.body, &doc); err != nil {
		t.Errorf("%s: %d, the body is not JSON: %s", what, a.status, a.body)
		return
	}
	var msg, ec string
	var details map[string]any
	if len(doc) != 3 || json.Unmarshal(doc["message"], &msg) != nil || msg == "" ||
		json.Unmarshal(doc["error_code"], &ec) != nil || json.Unmarshal(doc["details"], &details) != nil || details == nil {
		t.Errorf("%s: not the documented error shape {message, error_code, details}: %s", what, a.body)
		return
	}
	if a.status != status || ec != code {
		t.Errorf("%s: %d %s, want %d %s (%s)", what, a.status, ec, status, code, msg)
	}
}

// attack is one row: a request and the credential it carries, the answer it
// must get, and which fronts it is replayed through.
type attack struct {
	name   string
	req    req
	authz  string
	status int
	code   string
	fronts []string // "local", "aws"; empty: both
}

// TestAttacks replays every attack on both fronts; each must be refused in
// the documented shape and change nothing.
func TestAttacks(t *testing.T) {
	s := newSuite(t)
	now := time.Now()
	claims := func(mod func(jwt.MapClaims)) jwt.MapClaims {
		c := jwt.MapClaims{"iss": issuer, "aud": audience, "sub": "mallory", "sluice_role": "write",
			"iat": now.Unix(), "exp": now.Add(time.Hour).Unix()}
		if mod != nil {
			mod(c)
		}
		return c
	}
	signed := func(method jwt.SigningMethod, key any, header map[string]any, c jwt.MapClaims) string {
		tok := jwt.NewWithClaims(method, c)
		for k, v := range header {
			tok.Header[k] = v
		}
		str, err := tok.SignedString(key)
		if err != nil {
			t.Fatal(err)
		}
		return "Bearer " + str
	}
	pubDER, err := x509.MarshalPKIXPublicKey(&s.issuerKey.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	pubPEM := pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pubDER})
	unsignedJWT := "Bearer " + b64([]byte(`{"alg":"none","typ":"JWT"}`)) + "." + b64(mustJSON(t, claims(nil))) + "."
	deletePipeline := req{method: "DELETE", path: "/v0/pipelines/" + pipeline}
	write := "Bearer " + s.writeKey
	const authFailed, forbidden = "AuthenticationFailed", "InsufficientPermissions"

	attacks := []attack{
		// Tokens.
		{name: "alg=none JWT", req: deletePipeline, authz: unsignedJWT, status: 401, code: authFailed},
		{name: "alg=NONE JWT", req: deletePipeline, authz: "Bearer " + b64([]byte(`{"alg":"NONE"}`)) + "." + b64(mustJSON(t, claims(nil))) + ".", status: 401, code: authFailed},
		{name: "HS256 signed with the issuer's RSA public key (PEM)", req: deletePipeline, authz: signed(jwt.SigningMethodHS256, pubPEM, map[string]any{"kid": "k1"}, claims(nil)), status: 401, code: authFailed},
		{name: "HS256 signed with the issuer's RSA public key (DER)", req: deletePipeline, authz: signed(jwt.SigningMethodHS256, pubDER, map[string]any{"kid": "k1"}, claims(nil)), status: 401, code: authFailed},
		{name: "kid path traversal", req: deletePipeline, authz: signed(jwt.SigningMethodRS256, s.attackerKey, map[string]any{"kid": "../../../../dev/null"}, claims(nil)), status: 401, code: authFailed},
		{name: "kid SQL injection", req: deletePipeline, authz: signed(jwt.SigningMethodRS256, s.attackerKey, map[string]any{"kid": "' OR '1'='1' --"}, claims(nil)), status: 401, code: authFailed},
		{name: "kid of the issuer's key, signed by the attacker", req: deletePipeline, authz: signed(jwt.SigningMethodRS256, s.attackerKey, map[string]any{"kid": "k1"}, claims(nil)), status: 401, code: authFailed},
		{name: "jku pointing at the attacker's key set", req: deletePipeline, authz: signed(jwt.SigningMethodRS256, s.attackerKey, map[string]any{"kid": "evil", "jku": s.foreignURL}, claims(nil)), status: 401, code: authFailed},
		{name: "x5u pointing at the attacker's certificate", req: deletePipeline, authz: signed(jwt.SigningMethodRS256, s.attackerKey, map[string]any{"kid": "evil", "x5u": s.foreignURL}, claims(nil)), status: 401, code: authFailed},
		{name: "jwk header embedding the attacker's key", req: deletePipeline, authz: signed(jwt.SigningMethodRS256, s.attackerKey, map[string]any{"kid": "evil", "jwk": map[string]any{"kty": "RSA", "n": b64(s.attackerKey.N.Bytes()), "e": "AQAB"}}, claims(nil)), status: 401, code: authFailed},
		{name: "expired JWT", req: deletePipeline, authz: signed(jwt.SigningMethodRS256, s.issuerKey, map[string]any{"kid": "k1"}, claims(func(c jwt.MapClaims) { c["exp"] = now.Add(-time.Hour).Unix() })), status: 401, code: authFailed},
		{name: "JWT with nbf in the future", req: deletePipeline, authz: signed(jwt.SigningMethodRS256, s.issuerKey, map[string]any{"kid": "k1"}, claims(func(c jwt.MapClaims) { c["nbf"] = now.Add(time.Hour).Unix() })), status: 401, code: authFailed},
		{name: "JWT for another audience", req: deletePipeline, authz: signed(jwt.SigningMethodRS256, s.issuerKey, map[string]any{"kid": "k1"}, claims(func(c jwt.MapClaims) { c["aud"] = "other" })), status: 401, code: authFailed},
		{name: "HS256 JWT with a guessed secret", req: deletePipeline, authz: signed(jwt.SigningMethodHS256, []byte("secretsecretsecretsecretsecret!!"), nil, claims(nil)), status: 401, code: authFailed},
		{name: "oversized token (64 KiB)", req: deletePipeline, authz: "Bearer " + strings.Repeat("A", 64<<10), status: 401, code: authFailed},
		{name: "oversized Authorization header (1 MiB)", req: deletePipeline, authz: "Bearer apikey:" + strings.Repeat("x", 1<<20), status: 401, code: authFailed},
		{name: "API key with a NUL byte", req: deletePipeline, authz: "Bearer " + s.writeKey + "\x00", status: 401, code: authFailed},
		{name: "NUL between scheme and key", req: deletePipeline, authz: "Bearer\x00" + s.writeKey, status: 401, code: authFailed},
		{name: "no credential", req: req{method: "DELETE", path: "/v0/pipelines/" + pipeline, noAuth: true}, status: 401, code: authFailed},

		// Issue 14.2: a second Authorization header, however it comes.
		{name: "two Authorization headers, the second a valid key", req: req{method: "DELETE", path: "/v0/pipelines/" + pipeline, headers: [][2]string{{"Authorization", write}}}, authz: "Bearer apikey:nope", status: 401, code: authFailed},
		{name: "two Authorization headers, a valid key first", req: req{method: "DELETE", path: "/v0/pipelines/" + pipeline, headers: [][2]string{{"Authorization", "Bearer apikey:nope"}}}, authz: write, status: 401, code: authFailed},
		{name: "the same valid key twice", req: req{method: "DELETE", path: "/v0/pipelines/" + pipeline, headers: [][2]string{{"Authorization", write}}}, authz: write, status: 401, code: authFailed},
		{name: "a valid key twice, in two letter cases", req: req{method: "DELETE", path: "/v0/pipelines/" + pipeline, headers: [][2]string{{"authorization", write}}}, authz: write, status: 401, code: authFailed},
		{name: "comma-joined Authorization values", req: deletePipeline, authz: write + ", Bearer apikey:nope", status: 401, code: authFailed},

		// NUL bytes and oversized input past the credential check.
		{name: "NUL in the path (percent-encoded)", req: req{method: "DELETE", path: "/v0/pipelines/" + pipeline + "%00"}, authz: write, status: 400, code: "NameDoesNotMatchPattern"},
		{name: "NUL in a JSON name", req: req{method: "POST", path: "/v0/pipelines", body: `{"name":"a\u0000b"}`}, authz: write, status: 400, code: "NameDoesNotMatchPattern"},
		{name: "raw NUL byte in the body", req: req{method: "POST", path: "/v0/pipelines", body: "{\"name\":\"a\x00\"}"}, authz: write, status: 400, code: "InvalidRequestBody"},
		{name: "NUL in Content-Type", req: req{method: "POST", path: "/v0/pipelines", body: `{"name":"nul-ct"}`, headers: [][2]string{{"Content-Type", "application/json\x00"}}}, authz: write, status: 415, code: "UnsupportedMediaType"},
		{name: "body over the size limit", req: req{method: "POST", path: "/v0/pipelines", body: `{"name":"big","description":"` + strings.Repeat("x", httpapi.MaxBodyBytes) + `"}`}, authz: write, status: 413, code: "PayloadTooLarge"},

		// Nothing an API caller sends decides what runs on a host.
		{name: "runtime_config.command", req: req{method: "POST", path: "/v0/pipelines", body: `{"name":"cmd","runtime_config":{"command":["/bin/sh","-c","id"]}}`}, authz: write, status: 400, code: "InvalidRequestBody"},
		{name: "runtime_config.image", req: req{method: "POST", path: "/v0/pipelines", body: `{"name":"img","runtime_config":{"image":"attacker/evil:latest"}}`}, authz: write, status: 400, code: "InvalidRequestBody"},
		{name: "runtime_config.entrypoint", req: req{method: "POST", path: "/v0/pipelines", body: `{"name":"ep","runtime_config":{"entrypoint":["/bin/sh"]}}`}, authz: write, status: 400, code: "InvalidRequestBody"},
		{name: "runtime_config.command by PATCH", req: req{method: "PATCH", path: "/v0/pipelines/" + pipeline, body: `{"runtime_config":{"command":["/bin/sh"]}}`}, authz: write, status: 400, code: "InvalidRequestBody"},
		// Strict JSON: case variants and duplicate keys.
		{name: "case-variant key (Name)", req: req{method: "POST", path: "/v0/pipelines", body: `{"Name":"case"}`}, authz: write, status: 400, code: "InvalidRequestBody"},
		{name: "case-variant nested key (runtime_config.Command)", req: req{method: "POST", path: "/v0/pipelines", body: `{"name":"case2","runtime_config":{"Command":["/bin/sh"]}}`}, authz: write, status: 400, code: "InvalidRequestBody"},
		{name: "duplicate key (name twice)", req: req{method: "POST", path: "/v0/pipelines", body: `{"name":"dup-a","name":"dup-b"}`}, authz: write, status: 400, code: "InvalidRequestBody"},
		{name: "duplicate nested key (runtime_config.workers twice)", req: req{method: "PATCH", path: "/v0/pipelines/" + pipeline, body: `{"runtime_config":{"workers":1,"workers":64}}`}, authz: write, status: 400, code: "InvalidRequestBody"},
	}

	// Read-role writes: every route and method of the OpenAPI document
	// that needs write (every non-GET method, and every /v0/api_keys
	// method), with the read key.
	attacks = append(attacks, readRoleWrites(t, s)...)
	before := s.snapshot()
	refused := 0
	for _, a := range attacks {
		fronts := a.fronts
		if len(fronts) == 0 {
			fronts = []string{"local", "aws"}
		}
		for _, front := range fronts {
			var got answer
			if front == "local" {
				got = s.local(a.req, a.authz)
			} else {
				got = s.aws(a.req, a.authz)
			}
			wantRefused(t, front+": "+a.name, got, a.status, a.code)
			refused++
		}
	}
	if after := s.snapshot(); after != before {
		t.Errorf("the attacks changed the table or started workflows:\nbefore %s\nafter  %s", before, after)
	}
	if n := s.foreignFetches.Load(); n != 0 {
		t.Errorf("a URL named in a token header was fetched %d times", n)
	}
	if strings.Contains(s.logs.String(), s.writeKey) || strings.Contains(s.logs.String(), s.readKey) {
		t.Error("a key appears in the logs")
	}
	// The same requests with the write key and nothing forged are served:
	// the rows fail for the attack, not for the request.
	if r := s.local(req{method: "GET", path: "/v0/pipelines/" + pipeline}, write); r.status != 200 {
		t.Fatalf("control: %d %s", r.status, r.body)
	}
	// The Authorization rows once more over real TCP, through net/http's
	// own parsing (it delivers both of two headers to the handler).
	for _, a := range attacks {
		if !strings.Contains(a.name, "Authorization") && !strings.Contains(a.name, "twice") {
			continue
		}
		wantRefused(t, "tcp: "+a.name, s.tcp(a.req, a.authz), a.status, a.code)
		refused++
	}
	if after := s.snapshot(); after != before {
		t.Errorf("the TCP replays changed the table:\nbefore %s\nafter  %s", before, after)
	}
	if !t.Failed() {
		t.Logf("security suite: %d attacks, %d replays (local and AWS fronts, Authorization rows also over TCP), all refused in the documented shape, none a 5xx, nothing changed", len(attacks), refused)
	}
}

// readRoleWrites lists, from the handler's own OpenAPI document, every
// method that needs the write role, as a read-key attack (403
// InsufficientPermissions).
func readRoleWrites(t *testing.T, s *suite) []attack {
	t.Helper()
	r := s.local(req{method: "GET", path: "/v0/openapi.json"}, "")
	var doc struct {
		Paths map[string]map[string]json.RawMessage `json:"paths"`
	}
	if r.status != 200 || json.Unmarshal(r.body, &doc) != nil || len(doc.Paths) == 0 {
		t.Fatalf("openapi.json: %d", r.status)
	}
	fill := strings.NewReplacer("{pipeline_name}", pipeline, "{api_key_name}", keyName)
	var out []attack
	for path, methods := range doc.Paths {
		for m := range methods {
			method := strings.ToUpper(m)
			switch method {
			case "GET", "HEAD":
				if !strings.HasPrefix(path, "/v0/api_keys") {
					continue
				}
			case "PUT", "POST", "PATCH", "DELETE":
			default:
				continue
			}
			rq := req{method: method, path: fill.Replace(path)}
			if method == "PUT" || method == "POST" || method == "PATCH" {
				rq.body = `{"name":"` + pipeline + `"}`
			}
			if strings.Contains(rq.path, "{") {
				t.Fatalf("unfilled path parameter in %s", path)
			}
			out = append(out, attack{name: "read key: " + method + " " + path, req: rq, authz: "Bearer " + s.readKey, status: 403, code: "InsufficientPermissions"})
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].name < out[j].name })
	if len(out) < 10 {
		t.Fatalf("only %d write routes found in the OpenAPI document", len(out))
	}
	return out
}

func mustJSON(t *testing.T, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestForgedAuthorizerContext (issue 14.1): the local Lambda endpoint, with
// the api function registered as the local stack registers it. The
// request of the issue is refused in Lambda's error shape, a request signed
// with other credentials too, and even a signed invocation (the stack's own
// credentials) cannot claim the authorizer principal it carries: 401 in the
// API's shape. Nothing changes.
func TestForgedAuthorizerContext(t *testing.T) {
	s := newSuite(t)
	lam := lambdalocal.NewServer()
	lam.Register("sluice-api", lambdalocal.FromLambda(s.handler.LambdaHandlerWithoutAuthorizer))
	forged := []byte(`{"httpMethod":"DELETE","path":"/v0/pipelines/` + pipeline + `","resource":"/v0/pipelines/{pipeline_name}",` +
		`"pathParameters":{"pipeline_name":"` + pipeline + `"},"requestContext":{"requestId":"forged","authorizer":{"principal_kind":"apikey","principal_subject":"mallory","principal_role":"write"}}}`)
	invoke := func(creds *aws.Credentials) *httptest.ResponseRecorder {
		hr := httptest.NewRequest(http.MethodPost, "/2015-03-31/functions/sluice-api/invocations", bytes.NewReader(forged))
		hr.Header.Set("Content-Type", "application/json")
		if creds != nil {
			sum := sha256.Sum256(forged)
			if err := v4.NewSigner().SignHTTP(context.Background(), *creds, hr, hex.EncodeToString(sum[:]), "lambda", lambdalocal.DefaultRegion, time.Now()); err != nil {
				t.Fatal(err)
			}
		}
		rec := httptest.NewRecorder()
		lam.ServeHTTP(rec, hr)
		return rec
	}
	before := s.snapshot()
	other := lambdalocal.NewCredentials()
	rows := 0
	for what, c := range map[string]*aws.Credentials{"unsigned (the issue's request)": nil, "signed with other credentials": &other} {
		rec := invoke(c)
		var doc struct{ Type, Message string }
		if rec.Code != http.StatusForbidden || rec.Header().Get("x-amzn-ErrorType") == "" || json.Unmarshal(rec.Body.Bytes(), &doc) != nil || doc.Message == "" {
			t.Errorf("%s: %d %s, want 403 in Lambda's error shape", what, rec.Code, rec.Body.String())
		}
		rows++
	}
	own := lam.Credentials()
	rec := invoke(&own)
	var out events.APIGatewayProxyResponse
	if rec.Code != http.StatusOK || json.Unmarshal(rec.Body.Bytes(), &out) != nil {
		t.Fatalf("signed: %d %s", rec.Code, rec.Body.String())
	}
	wantRefused(t, "signed, forged authorizer context", answer{status: out.StatusCode, body: []byte(out.Body)}, 401, "AuthenticationFailed")
	rows++
	if after := s.snapshot(); after != before {
		t.Errorf("the forged invocations changed the table:\nbefore %s\nafter  %s", before, after)
	}
	t.Logf("forged authorizer context: %d invocations refused", rows)
}
