package httpapi

import (
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/aws/aws-lambda-go/events"

	"github.com/sluicehq/sluice/internal/auth"
	"github.com/sluicehq/sluice/internal/domain"
	"github.com/sluicehq/sluice/internal/runtimeclient"
	"github.com/sluicehq/sluice/internal/store"
	"github.com/sluicehq/sluice/internal/workflow/workflowtest"
)

// stubRuntime answers forwarded actions without a network; the runtime of
// pipeline "flaky" is temporarily unavailable.
type stubRuntime struct{ unavailable bool }

func (s stubRuntime) err() error {
	if s.unavailable {
		return &runtimeclient.TemporaryError{Op: "x", StatusCode: 503, RetryAfter: 2 * time.Second}
	}
	return nil
}
func (s stubRuntime) Pause(context.Context) error { return s.err() }
func (s stubRuntime) Start(context.Context) error { return s.err() }
func (s stubRuntime) Checkpoint(context.Context) (runtimeclient.CheckpointResponse, error) {
	return runtimeclient.CheckpointResponse{CheckpointSequenceNumber: 7, IncarnationUUID: "u"}, s.err()
}
func (s stubRuntime) CheckpointStatus(context.Context, string) (runtimeclient.CheckpointStatus, error) {
	return runtimeclient.CheckpointStatus{}, s.err()
}
func (s stubRuntime) Status(context.Context) (runtimeclient.StatusReport, error) {
	// Not observed: the record keeps what the action wrote.
	return runtimeclient.StatusReport{}, &runtimeclient.TemporaryError{Op: "status", StatusCode: 503}
}
func (s stubRuntime) Stats(context.Context) (json.RawMessage, error) {
	return json.RawMessage(`{"records":1}`), s.err()
}

type memSetup struct {
	ms *memStore
	t  testing.TB
}

func (m memSetup) act(name string, decide func(domain.Pipeline, time.Time) (domain.Outcome, error)) {
	p, _ := m.ms.Get(context.Background(), name)
	out, err := decide(p, time.Now().UTC())
	if err != nil {
		m.t.Fatal(err)
	}
	if _, err := m.ms.ApplyAction(context.Background(), p, out, store.Cause{Action: "setup"}); err != nil {
		m.t.Fatal(err)
	}
}

func (m memSetup) tr(name string, tr domain.Transition) {
	p, _ := m.ms.Get(context.Background(), name)
	if _, err := m.ms.Transition(context.Background(), name, p.Generation, tr, store.Cause{Action: "setup"}); err != nil {
		m.t.Fatal(err)
	}
}

// fuzzHandler builds a handler on a fresh in-memory store holding pipelines
// in several statuses, with real API keys verified by the real verifier.
func fuzzHandler(t testing.TB) (*Handler, string, string) {
	ms := newMemStore()
	ctx := context.Background()
	m := memSetup{ms: ms, t: t}
	start := func(p domain.Pipeline, now time.Time) (domain.Outcome, error) {
		return domain.Start(p, domain.StartRequest{Initial: domain.InitialRunning, DismissError: true}, now)
	}
	for _, name := range []string{"p1", "running", "flaky", "suspending", "stopping", "nostore"} {
		cfg := `{"checkpoint_interval_secs":1}`
		if name == "nostore" {
			cfg = `{"storage":false}`
		}
		p, err := domain.Create(domain.Definition{Name: name, RuntimeConfig: []byte(cfg)}, "id-"+name, time.Now().UTC())
		if err != nil {
			t.Fatal(err)
		}
		if err := ms.Create(ctx, p, store.Cause{Action: "create"}); err != nil {
			t.Fatal(err)
		}
		if name == "p1" {
			continue
		}
		m.act(name, start)
		m.tr(name, domain.MarkProvisioning("dep"))
		m.tr(name, domain.MarkProvisioned("http://"+name+".runtime.invalid", domain.RuntimeRunning))
		switch name {
		case "suspending":
			m.act(name, func(p domain.Pipeline, now time.Time) (domain.Outcome, error) { return domain.Stop(p, false, now) })
			m.tr(name, domain.MarkSuspending())
		case "stopping":
			m.act(name, func(p domain.Pipeline, now time.Time) (domain.Outcome, error) { return domain.Stop(p, true, now) })
			m.tr(name, domain.MarkStopping())
		}
	}
	writeKey, _, err := auth.CreateKey(ctx, ms, store.RoleWrite, "w")
	if err != nil {
		t.Fatal(err)
	}
	readKey, _, err := auth.CreateKey(ctx, ms, store.RoleRead, "r")
	if err != nil {
		t.Fatal(err)
	}
	quiet := slog.New(slog.DiscardHandler)
	v, err := auth.NewVerifier(auth.Config{}, ms, quiet)
	if err != nil {
		t.Fatal(err)
	}
	h, err := New(Config{Store: ms, Starter: workflowtest.NewRecorder(), Verifier: v, Logger: quiet,
		Runtimes: func(location string) (Runtime, error) {
			return stubRuntime{unavailable: strings.Contains(location, "flaky")}, nil
		}})
	if err != nil {
		t.Fatal(err)
	}
	return h, writeKey, readKey
}

// allowed5xx are the server-side codes a valid request may legitimately get.
var allowed5xx = map[string]bool{
	string(domain.CodeFeatureNotAvailable):            true,
	string(domain.CodePipelineInteractionNotDeployed): true,
	string(domain.CodePipelineUnavailable):            true,
	string(domain.CodePipelineInteractionUnreachable): true,
}

func checkInvariants(t *testing.T, via string, status int, header http.Header, body []byte) {
	t.Helper()
	if status < 200 || status > 599 {
		t.Fatalf("%s: status %d", via, status)
	}
	if ct := header.Get("Content-Type"); ct != "application/json" {
		t.Fatalf("%s: %d with Content-Type %q", via, status, ct)
	}
	var v any
	if err := json.Unmarshal(body, &v); err != nil {
		t.Fatalf("%s: %d body is not JSON: %q", via, status, body)
	}
	if status < 400 {
		return
	}
	e, ok := v.(map[string]any)
	if !ok {
		t.Fatalf("%s: %d body is not an object: %s", via, status, body)
	}
	msg, _ := e["message"].(string)
	code, _ := e["error_code"].(string)
	_, detailsOK := e["details"].(map[string]any)
	if msg == "" || code == "" || !detailsOK || len(e) != 3 {
		t.Fatalf("%s: %d body is not the error shape: %s", via, status, body)
	}
	if status >= 500 && !allowed5xx[code] {
		t.Fatalf("%s: %d %s for a request (bad input must never be a 5xx): %s", via, status, code, body)
	}
	if status == 503 && header.Get("Retry-After") == "" {
		t.Fatalf("%s: 503 without Retry-After", via)
	}
}

// FuzzHandler drives the whole handler — routing, auth, query, body, the
// actions — through both adapters with arbitrary method, path, query,
// headers and body. Invariants: it never panics (a panic would be a 500),
// bad input is never a 5xx, and every answer is JSON: the error shape for
// every error.
func FuzzHandler(f *testing.F) {
	seeds := []struct {
		method, path, query, ct string
		auth                    uint8
		body                    string
	}{
		{"POST", "/v0/pipelines/running/stop", "force=true", "", 1, ""},
		{"POST", "/v0/pipelines/running/stop", "force=false", "", 1, ""},
		{"POST", "/v0/pipelines/suspending/stop", "force=false", "", 1, ""},
		{"POST", "/v0/pipelines/stopping/stop", "", "", 1, ""},
		{"POST", "/v0/pipelines/nostore/stop", "", "", 1, ""},
		{"POST", "/v0/pipelines/p1/stop", "force=yes", "", 1, ""},
		{"POST", "/v0/pipelines/a%2Fb/stop", "force=true", "", 1, ""},
		{"POST", "/v0/pipelines/../stop", "", "", 1, ""},
		{"POST", "/v0/pipelines/caf%C3%A9/stop", "", "", 1, ""},
		{"POST", "/v0/pipelines/p1/start", "initial=paused&dismiss_error=false", "", 1, ""},
		{"POST", "/v0/pipelines/running/start", "initial=sideways", "", 1, ""},
		{"POST", "/v0/pipelines/running/pause", "", "", 1, ""},
		{"POST", "/v0/pipelines/flaky/resume", "", "", 1, ""},
		{"POST", "/v0/pipelines/running/checkpoint", "", "", 1, ""},
		{"GET", "/v0/pipelines/flaky/stats", "", "", 2, ""},
		{"GET", "/v0/pipelines/running/checkpoint_status", "", "", 2, ""},
		{"GET", "/v0/pipelines/p1/events", "limit=1", "", 2, ""},
		{"GET", "/v0/pipelines", "selector=status&limit=2", "", 2, ""},
		{"GET", "/v0/pipelines", "page_token=zz", "", 2, ""},
		{"GET", "/v0/pipelines/p1", "selector=status", "", 2, ""},
		{"POST", "/v0/pipelines", "", "application/json", 1, `{"name":"new","description":"d","runtime_config":{"storage":true}}`},
		{"POST", "/v0/pipelines", "", "application/json", 1, `{"name":`},
		{"POST", "/v0/pipelines", "", "text/plain", 1, `{"name":"x"}`},
		{"PUT", "/v0/pipelines/p1", "", "application/json; charset=utf-8", 1, `{"description":"e"}`},
		{"PUT", "/v0/pipelines/zz", "", "application/json", 1, `{"name":"other"}`},
		{"DELETE", "/v0/pipelines/p1", "", "", 1, ""},
		{"POST", "/v0/pipelines/p1/clear", "", "", 1, ""},
		{"POST", "/v0/pipelines/p1/dismiss_error", "", "", 1, ""},
		{"PATCH", "/v0/pipelines/p1", "", "", 1, ""},
		{"TRACE", "/v0/pipelines", "", "", 0, ""},
		{"GET", "/healthz", "x=1", "", 0, ""},
		{"GET", "/v0/openapi.json", "", "", 0, ""},
		{"POST", "/v0/pipelines/running/stop", "force=true", "", 2, ""},
		{"POST", "/v0/pipelines/running/stop", "force=true", "", 3, ""},
		{"GET", "/v0/pipelines/%", "", "", 1, ""},
		{"", "", "", "", 0, ""},
	}
	for _, s := range seeds {
		f.Add(s.method, s.path, s.query, s.ct, s.auth, []byte(s.body))
	}
	f.Fuzz(func(t *testing.T, method, path, rawQuery, contentType string, authMode uint8, body []byte) {
		h, writeKey, readKey := fuzzHandler(t)
		header := http.Header{}
		if contentType != "" {
			header.Set("Content-Type", contentType)
		}
		var principal *auth.Principal
		switch authMode % 4 {
		case 1:
			header.Set("Authorization", "Bearer "+writeKey)
			principal = &auth.Principal{Kind: auth.KindAPIKey, Subject: "w", Role: store.RoleWrite}
		case 2:
			header.Set("Authorization", "Bearer "+readKey)
			principal = &auth.Principal{Kind: auth.KindAPIKey, Subject: "r", Role: store.RoleRead}
		case 3:
			header.Set("Authorization", "Bearer "+string(body))
		}
		ctx := context.Background()
		r := h.Handle(ctx, Request{Method: method, Path: path, RawPath: path, RawQuery: rawQuery, Header: header.Clone(), Body: body, RequestID: "fuzz"})
		checkInvariants(t, "Handle", r.Status, r.Header, r.Body)

		ev := events.APIGatewayProxyRequest{HTTPMethod: method, Path: path, Headers: map[string]string{}, Body: string(body),
			RequestContext: events.APIGatewayProxyRequestContext{RequestID: "fuzz-lambda"}}
		for k := range header {
			ev.Headers[k] = header.Get(k)
		}
		if q, err := url.ParseQuery(rawQuery); err == nil {
			ev.MultiValueQueryStringParameters = q
		}
		if principal != nil {
			ev.RequestContext.Authorizer = map[string]any{auth.ContextKind: principal.Kind, auth.ContextSubject: principal.Subject, auth.ContextRole: string(principal.Role)}
		}
		out, err := h.LambdaHandler(ctx, ev)
		if err != nil {
			t.Fatalf("LambdaHandler returned an error: %v", err)
		}
		lh := http.Header{}
		for k, v := range out.Headers {
			lh.Set(k, v)
		}
		checkInvariants(t, "LambdaHandler", out.StatusCode, lh, []byte(out.Body))
	})
}

// FuzzStrictJSON: checkStrictJSON never panics, and whatever it accepts has
// no duplicate keys and is valid UTF-8 (it only ever narrows what the
// decoder accepts).
func FuzzStrictJSON(f *testing.F) {
	for _, s := range []string{`{"name":"a"}`, `{"name":"a","name":"b"}`, `{"NAME":"a"}`, "{\"a\":\"\xff\"}", `{"runtime_config":{"x":[{"y":1,"y":2}]}}`, `[`, `{"a":`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		err := checkStrictJSON(b, definitionBody{})
		if err == nil && !utf8.Valid(b) {
			t.Fatalf("accepted invalid UTF-8 %q", b)
		}
	})
}
