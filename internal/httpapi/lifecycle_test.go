package httpapi

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/sluicehq/sluice/functions/api/openapi"
	"github.com/sluicehq/sluice/internal/domain"
	"github.com/sluicehq/sluice/internal/store"
	"github.com/sluicehq/sluice/internal/workflow"
)

func obj(t testing.TB, r response) map[string]any {
	t.Helper()
	m, ok := r.json(t).(map[string]any)
	if !ok {
		t.Fatalf("body is not an object: %s", r.body)
	}
	return m
}

func TestCreateGetListDelete(t *testing.T) {
	e := newEnv(t)
	r := e.do(http.MethodPost, "/v0/pipelines", []byte(`{"name":"p1","description":"first","runtime_config":{"checkpoint_interval_secs":5,"storage":true}}`))
	if r.status != http.StatusCreated {
		t.Fatalf("create: %d %s", r.status, r.body)
	}
	v := obj(t, r)
	for k, want := range map[string]any{
		"name": "p1", "description": "first", "version": float64(1), "generation": float64(0),
		"deployment_status": "Stopped", "deployment_desired_status": "Stopped",
		"deployment_resources_status": "Stopped", "deployment_resources_desired_status": "Stopped",
		"deployment_runtime_status": nil, "deployment_runtime_desired_status": nil, "deployment_error": nil,
		"storage_status": "Cleared", "workflow": nil,
	} {
		if fmt.Sprint(v[k]) != fmt.Sprint(want) {
			t.Errorf("%s = %v, want %v", k, v[k], want)
		}
	}
	jsonEqual(t, v["runtime_config"], map[string]any{"checkpoint_interval_secs": 5, "storage": true})
	stored := e.get("p1")
	if v["id"] != stored.ID || stored.Description != "first" {
		t.Fatalf("stored %+v", stored)
	}

	wantDomainError(t, e.do(http.MethodPost, "/v0/pipelines", []byte(`{"name":"p1"}`)), domain.DuplicateName("p1"))

	r = e.do(http.MethodGet, "/v0/pipelines/p1", nil, asReader(e))
	if r.status != 200 || obj(t, r)["id"] != stored.ID || obj(t, r)["description"] != "first" {
		t.Fatalf("get: %d %s", r.status, r.body)
	}
	r = e.do(http.MethodGet, "/v0/pipelines/p1?selector=status", nil, asReader(e))
	if m := obj(t, r); r.status != 200 || m["deployment_status"] != "Stopped" || m["description"] != "first" || m["program_status"] != "Success" {
		t.Fatalf("get selector=status: %d %s", r.status, r.body)
	}
	for _, f := range []string{"runtime_config", "program_code", "udf_rust", "udf_toml", "program_config", "program_info"} {
		if _, has := obj(t, r)[f]; has {
			t.Fatalf("selector=status kept %s", f)
		}
	}
	wantError(t, e.do(http.MethodGet, "/v0/pipelines/p1?selector=everything", nil), 400, domain.CodeInvalidQueryParameter,
		map[string]any{"parameter": "selector", "value": "everything", "expected": "all, status or status_with_connectors"})
	wantDomainError(t, e.do(http.MethodGet, "/v0/pipelines/nope", nil), domain.UnknownPipelineName("nope"))

	for _, n := range []string{"p3", "p2"} {
		if r := e.do(http.MethodPost, "/v0/pipelines", []byte(`{"name":"`+n+`"}`)); r.status != 201 {
			t.Fatalf("create %s: %d %s", n, r.status, r.body)
		}
	}
	r = e.do(http.MethodGet, "/v0/pipelines", nil, asReader(e))
	list, _ := r.json(t).([]any)
	if r.status != 200 || len(list) != 3 || r.header.Get(NextPageHeader) != "" {
		t.Fatalf("list: %d %s (next %q)", r.status, r.body, r.header.Get(NextPageHeader))
	}
	for i, n := range []string{"p1", "p2", "p3"} {
		if list[i].(map[string]any)["name"] != n {
			t.Fatalf("list order: %s", r.body)
		}
	}
	// Paging: the token of the next page in X-Next-Page-Token.
	var names []string
	token := ""
	for range 5 {
		u := "/v0/pipelines?selector=status&limit=2"
		if token != "" {
			u += "&page_token=" + token
		}
		r = e.do(http.MethodGet, u, nil)
		if r.status != 200 {
			t.Fatalf("page: %d %s", r.status, r.body)
		}
		for _, it := range r.json(t).([]any) {
			m := it.(map[string]any)
			if _, has := m["runtime_config"]; has {
				t.Fatal("selector=status kept runtime_config in a list")
			}
			names = append(names, m["name"].(string))
		}
		token = r.header.Get(NextPageHeader)
		if token == "" {
			break
		}
	}
	if strings.Join(names, ",") != "p1,p2,p3" {
		t.Fatalf("paged names %v", names)
	}
	wantError(t, e.do(http.MethodGet, "/v0/pipelines?page_token=garbage", nil), 400, domain.CodeInvalidQueryParameter, nil)
	for _, bad := range []string{"0", "1001", "-1", "two", "", "01"} {
		wantError(t, e.do(http.MethodGet, "/v0/pipelines?limit="+bad, nil), 400, domain.CodeInvalidQueryParameter, nil)
	}

	r = e.do(http.MethodDelete, "/v0/pipelines/p2", nil)
	if r.status != 200 || r.str(t) != "Pipeline 'p2' deleted." {
		t.Fatalf("delete: %d %s", r.status, r.body)
	}
	wantDomainError(t, e.do(http.MethodGet, "/v0/pipelines/p2", nil), domain.UnknownPipelineName("p2"))
	wantDomainError(t, e.do(http.MethodDelete, "/v0/pipelines/p2", nil), domain.UnknownPipelineName("p2"))
}

func TestDeleteRestrictions(t *testing.T) {
	e := newEnv(t)
	running := e.pipelineIn("running", "Running/Running", "")
	wantDomainError(t, e.do(http.MethodDelete, "/v0/pipelines/running", nil), domain.DeleteRestrictedToFullyStopped(running))
	inUse := e.pipelineIn("inuse", "Stopped/Stopped InUse", "")
	wantDomainError(t, e.do(http.MethodDelete, "/v0/pipelines/inuse", nil), domain.DeleteRestrictedToClearedStorage(inUse))
	e.get("running")
	e.get("inuse")
}

func TestPut(t *testing.T) {
	e := newEnv(t)
	r := e.do(http.MethodPut, "/v0/pipelines/p1", []byte(`{"description":"made by PUT"}`))
	if r.status != http.StatusCreated || obj(t, r)["version"] != float64(1) || obj(t, r)["description"] != "made by PUT" {
		t.Fatalf("PUT create: %d %s", r.status, r.body)
	}
	r = e.do(http.MethodPut, "/v0/pipelines/p1", []byte(`{"name":"p1","description":"replaced","runtime_config":{"storage":false}}`))
	if m := obj(t, r); r.status != http.StatusOK || m["version"] != float64(2) || m["description"] != "replaced" {
		t.Fatalf("PUT replace: %d %s", r.status, r.body)
	}
	if p := e.get("p1"); p.Version != 2 || p.StorageEnabled() {
		t.Fatalf("stored %+v", p)
	}
	wantError(t, e.do(http.MethodPut, "/v0/pipelines/p1", []byte(`{"name":"other"}`)), 400, domain.CodeInvalidRequestBody,
		map[string]any{"field": "name", "reason": "must equal the pipeline name in the path ('p1'): pipelines cannot be renamed"})
	running := e.pipelineIn("running", "Running/Running", "")
	wantDomainError(t, e.do(http.MethodPut, "/v0/pipelines/running", []byte(`{"description":"x"}`)), domain.UpdateRestrictedToStopped(running))
	if r := e.do(http.MethodPut, "/v0/pipelines/p1", []byte(`{"description":"`+strings.Repeat("d", 301)+`"}`)); r.status != 400 {
		t.Fatalf("long description: %d", r.status)
	}
}

func TestStartRules(t *testing.T) {
	e := newEnv(t)
	// From Stopped/Stopped: desired Provisioned, start workflow.
	p := e.pipelineIn("s1", "Stopped/Stopped", "")
	r := e.do(http.MethodPost, "/v0/pipelines/s1/start", nil)
	if r.status != 202 || r.str(t) != "Pipeline 's1' is being started (initial Running)." {
		t.Fatalf("start: %d %s", r.status, r.body)
	}
	after := e.get("s1")
	if after.ResourcesDesiredStatus != "Provisioned" || *after.RuntimeDesiredStatus != "Running" || after.Generation != p.Generation+1 {
		t.Fatalf("after start %+v", after)
	}
	wantExec := workflow.ExecutionNameFor(after, domain.WorkflowStart, 0)
	if s := e.startsOf("s1"); len(s) != 1 || s[0].ExecutionName != wantExec || after.Workflow.ExecutionName != wantExec {
		t.Fatalf("started %+v, recorded %+v", s, after.Workflow)
	}
	// A repeat with the same initial: 202, nothing new.
	r = e.do(http.MethodPost, "/v0/pipelines/s1/start?initial=running", nil)
	if r.status != 202 || r.str(t) != "Pipeline 's1' is already started (initial Running)." || len(e.startsOf("s1")) != 1 {
		t.Fatalf("repeat: %d %s", r.status, r.body)
	}
	// Another initial while not stopped.
	wantDomainError(t, e.do(http.MethodPost, "/v0/pipelines/s1/start?initial=paused", nil),
		domain.InitialImmutableUnlessStopped(domain.InitialRunning, domain.InitialPaused))
	// Bad initial: 405 UnsupportedPipelineAction.
	wantError(t, e.do(http.MethodPost, "/v0/pipelines/s1/start?initial=sideways", nil), 405, domain.CodeUnsupportedPipelineAction,
		map[string]any{"action": "sideways", "supported": []string{"running", "paused"}})

	// While a stop is in progress: the seed's example, word for word.
	e.pipelineIn("s2", "Stopping/Stopped", "")
	r = e.do(http.MethodPost, "/v0/pipelines/s2/start", nil)
	jsonEqualBytes(t, r.body, []byte(`{ "message": "Deployment resources status (current: 'Stopping', desired: 'Stopped') cannot have desired changed to 'Provisioned'. Cannot restart the pipeline while it is stopping. Wait for it to stop before starting a new instance of the pipeline.", "error_code": "IllegalPipelineAction", "details": { "status": "Stopping", "current_desired_status": "Stopped", "new_desired_status": "Provisioned", "hint": "Cannot restart the pipeline while it is stopping. Wait for it to stop before starting a new instance of the pipeline." } }`))
	if r.status != 400 {
		t.Fatalf("status %d", r.status)
	}
	// While suspending.
	e.pipelineIn("s3", "Suspending/Suspended", "")
	wantError(t, e.do(http.MethodPost, "/v0/pipelines/s3/start", nil), 400, domain.CodeIllegalPipelineAction, map[string]any{
		"status": "Suspending", "current_desired_status": "Suspended", "new_desired_status": "Running",
		"hint": "Cannot start the pipeline while it is suspending. Wait for it to stop, or cancel the suspend with stop?force=true."})
	// A deployment error and dismiss_error=false.
	withErr := e.pipelineIn("s4", "Stopped/Stopped error", "")
	wantDomainError(t, e.do(http.MethodPost, "/v0/pipelines/s4/start?dismiss_error=false", nil), domain.CannotStartWithUndismissedError(withErr))
	wantError(t, e.do(http.MethodPost, "/v0/pipelines/s4/start?dismiss_error=maybe", nil), 400, domain.CodeInvalidQueryParameter,
		map[string]any{"parameter": "dismiss_error", "value": "maybe", "expected": "true or false"})
	// The default dismiss_error=true clears it.
	r = e.do(http.MethodPost, "/v0/pipelines/s4/start?initial=paused", nil)
	if a := e.get("s4"); r.status != 202 || a.DeploymentError != nil || *a.DeploymentInitial != domain.InitialPaused {
		t.Fatalf("start dismissing: %d %s %+v", r.status, r.body, a)
	}
	// Storage Clearing.
	clearing := e.pipelineIn("s5", "Stopped/Stopped Clearing", "")
	wantDomainError(t, e.do(http.MethodPost, "/v0/pipelines/s5/start", nil), domain.CannotStartWhileClearingStorage(clearing))
}

func TestPauseResume(t *testing.T) {
	e := newEnv(t)
	p := e.pipelineIn("r1", "Running/Running", "")
	r := e.do(http.MethodPost, "/v0/pipelines/r1/pause", nil)
	if r.status != 202 || r.str(t) != "Pipeline 'r1': pause forwarded." {
		t.Fatalf("pause: %d %s", r.status, r.body)
	}
	// The record shows the runtime's new status when the 202 arrives: the
	// runtime is observed right after the forwarded call.
	// A pause is no workflow's intent: it keeps the generation.
	if a := e.get("r1"); *a.RuntimeDesiredStatus != "Paused" || *a.RuntimeStatus != "Paused" || a.Generation != p.Generation {
		t.Fatalf("after pause %+v", a)
	}
	r = e.do(http.MethodPost, "/v0/pipelines/r1/resume", nil)
	if a := e.get("r1"); r.status != 202 || *a.RuntimeDesiredStatus != "Running" || *a.RuntimeStatus != "Running" {
		t.Fatalf("resume: %d %s", r.status, r.body)
	}
	// Feldera 0.148 resumes with /start.
	e.do(http.MethodPost, "/v0/pipelines/r1/pause", nil)
	r = e.do(http.MethodPost, "/v0/pipelines/r1/start", nil)
	if a := e.get("r1"); r.status != 202 || *a.RuntimeDesiredStatus != "Running" || *a.RuntimeStatus != "Running" {
		t.Fatalf("start on Paused: %d %s %+v", r.status, r.body, a)
	}
	if got := strings.Join(e.runtime.received(), ","); got != "GET /pause,GET /status,GET /start,GET /status,GET /pause,GET /status,GET /start,GET /status" {
		t.Fatalf("runtime received %s", got)
	}
	if len(e.startsOf("r1")) != 0 {
		t.Fatal("pause/resume started a workflow")
	}

	// A pause of a Stopped/Stopped pipeline starts it paused (Feldera 0.148).
	e.pipelineIn("r2", "Stopped/Stopped", "")
	r = e.do(http.MethodPost, "/v0/pipelines/r2/pause", nil)
	if a := e.get("r2"); r.status != 202 || *a.RuntimeDesiredStatus != "Paused" || len(e.startsOf("r2")) != 1 {
		t.Fatalf("pause of a stopped pipeline: %d %s %+v", r.status, r.body, a)
	}
	// Then /start (0.148's Pipeline.start) makes it run once provisioned,
	// without superseding the start workflow.
	gen := e.get("r2").Generation
	r = e.do(http.MethodPost, "/v0/pipelines/r2/start", nil)
	if a := e.get("r2"); r.status != 202 || *a.RuntimeDesiredStatus != "Running" || a.Generation != gen || len(e.startsOf("r2")) != 1 {
		t.Fatalf("start of a pipeline starting paused: %d %s %+v", r.status, r.body, a)
	}
	// Not provisioned: a resume of a pipeline whose start is pending and
	// desired Running has nothing to tell.
	pending := e.pipelineIn("r5", "Stopped/Provisioned", "")
	r = e.do(http.MethodPost, "/v0/pipelines/r5/resume", nil)
	wantDomainError(t, r, domain.PipelineInteractionNotDeployed(pending))
	if r.header.Get("Retry-After") != "5" {
		t.Fatalf("Retry-After %q", r.header.Get("Retry-After"))
	}
	// A stop in progress.
	e.pipelineIn("r3", "Suspending/Suspended", "")
	wantError(t, e.do(http.MethodPost, "/v0/pipelines/r3/resume", nil), 400, domain.CodeIllegalPipelineAction, nil)
	e.pipelineIn("r4", "Running/Stopped", "")
	wantError(t, e.do(http.MethodPost, "/v0/pipelines/r4/pause", nil), 400, domain.CodeIllegalPipelineAction, nil)
}

func TestRuntimeFailures(t *testing.T) {
	e := newEnv(t)
	e.pipelineIn("f1", "Running/Running", "")

	// The runtime says 503: PipelineUnavailable, its Retry-After kept.
	e.runtime.answer("GET /pause", fakeAnswer{status: 503, body: `{"message":"busy","error_code":"Busy","details":{}}`, header: map[string]string{"Retry-After": "7"}})
	r := e.do(http.MethodPost, "/v0/pipelines/f1/pause", nil)
	wantDomainError(t, r, domain.PipelineUnavailable("f1", "the pipeline runtime answered HTTP 503"))
	if r.header.Get("Retry-After") != "7" {
		t.Fatalf("Retry-After %q", r.header.Get("Retry-After"))
	}
	// A fatal answer in the error shape: passed through.
	e.runtime.answer("POST /checkpoint", fakeAnswer{status: 400, body: `{"message":"checkpoint already in progress","error_code":"CheckpointInProgress","details":{"sequence_number":3}}`})
	r = e.do(http.MethodPost, "/v0/pipelines/f1/checkpoint", nil)
	if r.status != 400 {
		t.Fatalf("pass-through: %d %s", r.status, r.body)
	}
	jsonEqualBytes(t, r.body, []byte(`{"message":"checkpoint already in progress","error_code":"CheckpointInProgress","details":{"sequence_number":3}}`))
	// A fatal answer in another shape: 500 InternalError, nothing leaked.
	e.runtime.answer("GET /stats", fakeAnswer{status: 500, body: "panic at src/runtime.rs:42"})
	r = e.do(http.MethodGet, "/v0/pipelines/f1/stats", nil)
	m := wantError(t, r, 500, domain.CodeInternalError, nil)
	if strings.Contains(string(r.body), "panic") || !strings.Contains(m["message"].(string), r.header.Get(RequestIDHeader)) {
		t.Fatalf("500 body %s (request id %s)", r.body, r.header.Get(RequestIDHeader))
	}
	if !strings.Contains(e.logs.String(), r.header.Get(RequestIDHeader)) {
		t.Fatal("the request id is not in the log")
	}
	// No answer: PipelineInteractionUnreachable.
	e.runtime.srv.Close()
	r = e.do(http.MethodPost, "/v0/pipelines/f1/resume", nil)
	wantDomainError(t, r, domain.PipelineInteractionUnreachable("f1", "the pipeline runtime did not answer in time"))
	if r.header.Get("Retry-After") != "5" {
		t.Fatalf("Retry-After %q", r.header.Get("Retry-After"))
	}
}

func TestCheckpointStatsEvents(t *testing.T) {
	e := newEnv(t)
	e.pipelineIn("c1", "Running/Running", "")
	r := e.do(http.MethodPost, "/v0/pipelines/c1/checkpoint", nil)
	if r.status != 200 {
		t.Fatalf("checkpoint: %d %s", r.status, r.body)
	}
	jsonEqualBytes(t, r.body, []byte(`{"checkpoint_sequence_number":42,"incarnation_uuid":"0b6f1c4e-7c43-4a4b-9d43-3f3c3e1c9a11"}`))
	r = e.do(http.MethodGet, "/v0/pipelines/c1/checkpoint_status", nil, asReader(e))
	if r.status != 200 {
		t.Fatalf("checkpoint_status: %d %s", r.status, r.body)
	}
	jsonEqualBytes(t, r.body, []byte(`{"success":42,"failure":null}`))
	r = e.do(http.MethodGet, "/v0/pipelines/c1/stats", nil, asReader(e))
	if r.status != 200 {
		t.Fatalf("stats: %d %s", r.status, r.body)
	}
	jsonEqualBytes(t, r.body, []byte(`{"global_metrics":{"total_processed_records":1234},"inputs":[]}`))

	stopped := e.pipelineIn("c2", "Stopped/Stopped", "")
	wantDomainError(t, e.do(http.MethodPost, "/v0/pipelines/c2/checkpoint", nil), domain.PipelineInteractionNotDeployed(stopped))
	wantDomainError(t, e.do(http.MethodGet, "/v0/pipelines/c2/stats", nil), domain.PipelineInteractionNotDeployed(stopped))
	wantDomainError(t, e.do(http.MethodGet, "/v0/pipelines/c2/checkpoint_status", nil), domain.PipelineInteractionNotDeployed(stopped))
	e.pipelineIn("c3", "Running/Suspended", "")
	wantError(t, e.do(http.MethodPost, "/v0/pipelines/c3/checkpoint", nil), 400, domain.CodeIllegalPipelineAction, nil)
	e.create("c4", `{"storage":false}`)
	for _, s := range states["Running/Running"] {
		s(e, "c4")
	}
	wantDomainError(t, e.do(http.MethodPost, "/v0/pipelines/c4/checkpoint", nil), domain.FeatureNotAvailable("checkpoint", "runtime_config disables storage"))

	// Events: the history, newest first, paged.
	r = e.do(http.MethodGet, "/v0/pipelines/c1/events", nil, asReader(e))
	evs, _ := r.json(t).([]any)
	if r.status != 200 || len(evs) < 4 {
		t.Fatalf("events: %d %s", r.status, r.body)
	}
	first, last := evs[0].(map[string]any), evs[len(evs)-1].(map[string]any)
	if first["refresh_version"].(float64) <= last["refresh_version"].(float64) || last["cause"].(map[string]any)["action"] != "create" {
		t.Fatalf("events not newest first: %s", r.body)
	}
	r = e.do(http.MethodGet, "/v0/pipelines/c1/events?limit=1", nil)
	if evs, _ := r.json(t).([]any); r.status != 200 || len(evs) != 1 || r.header.Get(NextPageHeader) == "" {
		t.Fatalf("events page: %d %s", r.status, r.body)
	}
	r = e.do(http.MethodGet, "/v0/pipelines/c1/events?limit=1&page_token="+r.header.Get(NextPageHeader), nil)
	if evs, _ := r.json(t).([]any); r.status != 200 || len(evs) != 1 {
		t.Fatalf("events page 2: %d %s", r.status, r.body)
	}
	wantDomainError(t, e.do(http.MethodGet, "/v0/pipelines/none/events", nil), domain.UnknownPipelineName("none"))
}

func TestClearAndDismissError(t *testing.T) {
	e := newEnv(t)
	e.pipelineIn("k1", "Stopped/Stopped InUse", "")
	r := e.do(http.MethodPost, "/v0/pipelines/k1/clear", nil)
	if r.status != 202 || r.str(t) != "Pipeline 'k1': storage is being cleared." {
		t.Fatalf("clear: %d %s", r.status, r.body)
	}
	a := e.get("k1")
	wantExec := workflow.ExecutionNameFor(a, domain.WorkflowClear, 0)
	if a.StorageStatus != domain.StorageClearing || a.Workflow.ExecutionName != wantExec || len(e.startsOf("k1")) != 1 {
		t.Fatalf("after clear %+v", a)
	}
	r = e.do(http.MethodPost, "/v0/pipelines/k1/clear", nil)
	if r.status != 202 || r.str(t) != "Pipeline 'k1': storage is already being cleared." || len(e.startsOf("k1")) != 1 {
		t.Fatalf("clear repeat: %d %s", r.status, r.body)
	}
	e.pipelineIn("k2", "Stopped/Stopped", "")
	r = e.do(http.MethodPost, "/v0/pipelines/k2/clear", nil)
	if r.status != 202 || r.str(t) != "Pipeline 'k2': storage is already cleared." {
		t.Fatalf("clear cleared: %d %s", r.status, r.body)
	}
	running := e.pipelineIn("k3", "Running/Running", "")
	wantDomainError(t, e.do(http.MethodPost, "/v0/pipelines/k3/clear", nil), domain.StorageStatusImmutableUnlessStopped(running))

	e.pipelineIn("d1", "Stopped/Stopped error", "")
	r = e.do(http.MethodPost, "/v0/pipelines/d1/dismiss_error", nil)
	if r.status != 200 || r.str(t) != "Pipeline 'd1': deployment error dismissed." || e.get("d1").DeploymentError != nil {
		t.Fatalf("dismiss: %d %s", r.status, r.body)
	}
	// With no error set, dismiss_error is a no-op in any status (Feldera's
	// rule; today's SDK sends it before every start).
	for _, name := range []string{"d1", "k3"} {
		before := e.get(name)
		r = e.do(http.MethodPost, "/v0/pipelines/"+name+"/dismiss_error", nil)
		if r.status != 200 || e.get(name).RefreshVersion != before.RefreshVersion {
			t.Fatalf("dismiss without error on %s: %d %s", name, r.status, r.body)
		}
	}
	// An error set can only be dismissed while fully stopped.
	stoppingErr := e.pipelineIn("d2", "Stopping/Stopped error", "")
	wantDomainError(t, e.do(http.MethodPost, "/v0/pipelines/d2/dismiss_error", nil), domain.DismissErrorRestrictedToFullyStopped(stoppingErr))
}

func TestAuthAndPublicRoutes(t *testing.T) {
	e := newEnv(t)
	e.pipelineIn("a1", "Running/Running", "")
	r := e.do(http.MethodGet, "/healthz", nil, noAuth())
	if r.status != 200 {
		t.Fatalf("healthz: %d", r.status)
	}
	jsonEqualBytes(t, r.body, []byte(`{"status":"ok"}`))
	r = e.do(http.MethodGet, "/v0/openapi.json", nil, noAuth())
	want, _ := openapi.JSON()
	if r.status != 200 || string(r.body) != string(want) {
		t.Fatalf("openapi.json: %d", r.status)
	}

	before := e.snapshot()
	r = e.do(http.MethodPost, "/v0/pipelines/a1/stop?force=true", nil, noAuth())
	wantError(t, r, 401, domain.CodeAuthenticationFailed, map[string]any{"reason": "missing Authorization header"})
	if r.header.Get("WWW-Authenticate") == "" {
		t.Fatal("401 without WWW-Authenticate")
	}
	wantError(t, e.do(http.MethodGet, "/v0/pipelines", nil, withHeader("Authorization", "Bearer apikey:not-a-key")), 401, domain.CodeAuthenticationFailed, nil)
	wantError(t, e.do(http.MethodGet, "/v0/pipelines", nil, withHeader("Authorization", "Basic Zm9vOmJhcg==")), 401, domain.CodeAuthenticationFailed, nil)
	wantDomainError(t, e.do(http.MethodPost, "/v0/pipelines/a1/stop?force=true", nil, asReader(e)), domain.InsufficientPermissions("write", "read"))
	wantDomainError(t, e.do(http.MethodPost, "/v0/pipelines", []byte(`{"name":"x"}`), asReader(e)), domain.InsufficientPermissions("write", "read"))
	if e.snapshot() != before {
		t.Fatal("a rejected request wrote to the table")
	}
	if r := e.do(http.MethodGet, "/v0/pipelines/a1/stats", nil, asReader(e)); r.status != 200 {
		t.Fatalf("read key on GET: %d", r.status)
	}
	// The log never holds a credential.
	if logs := e.logs.String(); strings.Contains(logs, e.writeKey) || strings.Contains(logs, e.readKey) || strings.Contains(logs, "apikey:not-a-key") {
		t.Fatal("a credential reached the log")
	}
	// The access line carries method, route, status, request id, pipeline, generation.
	var found bool
	for _, line := range strings.Split(e.logs.String(), "\n") {
		if !strings.Contains(line, `"msg":"request"`) || !strings.Contains(line, `"status":403`) {
			continue
		}
		var m map[string]any
		if err := json.Unmarshal([]byte(line), &m); err != nil {
			t.Fatal(err)
		}
		if m["method"] == "POST" && m["route"] == "/v0/pipelines/{pipeline_name}/stop" && m["pipeline"] == nil && m["request_id"] != "" && m["duration_ms"] != nil {
			found = true
		}
	}
	if !found {
		t.Fatalf("no access line for the 403:\n%s", e.logs.String())
	}
}

// TestServiceUnavailable: a store that is down answers 503 ServiceUnavailable
// with Retry-After, and nothing is written.
func TestServiceUnavailable(t *testing.T) {
	e := newEnv(t)
	e.pipelineIn("u1", "Running/Running", "")
	down := &failingStore{Store: e.store, err: fmt.Errorf("throttled: %w", store.ErrUnavailable)}
	h, err := New(Config{Store: down, Starter: e.rec, Verifier: e.handler.verifier, Logger: e.handler.log})
	if err != nil {
		t.Fatal(err)
	}
	srv := newServer(t, h)
	r := doOn(t, srv, "Bearer "+e.writeKey, http.MethodPost, "/v0/pipelines/u1/stop?force=true", nil)
	wantDomainError(t, r, domain.ServiceUnavailable("state store"))
	if r.header.Get("Retry-After") != "5" {
		t.Fatal("no Retry-After")
	}
	// Losing the conditional write every time: bounded attempts, then 503.
	stale := &failingStore{Store: e.store, applyErr: store.ErrStale}
	h, _ = New(Config{Store: stale, Starter: e.rec, Verifier: e.handler.verifier, Logger: e.handler.log, MaxAttempts: 3})
	srv = newServer(t, h)
	r = doOn(t, srv, "Bearer "+e.writeKey, http.MethodPost, "/v0/pipelines/u1/stop?force=true", nil)
	wantDomainError(t, r, domain.ServiceUnavailable("state store"))
	if stale.applies.Load() != 3 {
		t.Fatalf("%d attempts, want 3", stale.applies.Load())
	}
	if len(e.startsOf("u1")) != 0 || e.get("u1").ResourcesDesiredStatus != "Provisioned" {
		t.Fatal("something was written or started")
	}
	// An inconsistent record: 500 InternalError with the request id.
	broken := &failingStore{Store: e.store, getErr: fmt.Errorf("decoding: %w", domain.ErrInconsistentRecord)}
	h, _ = New(Config{Store: broken, Starter: e.rec, Verifier: e.handler.verifier, Logger: e.handler.log})
	srv = newServer(t, h)
	r = doOn(t, srv, "Bearer "+e.writeKey, http.MethodGet, "/v0/pipelines/u1", nil, withHeader(RequestIDHeader, "req-123"))
	wantDomainError(t, r, domain.InternalError("req-123"))
	if strings.Contains(string(r.body), "decoding") {
		t.Fatal("internals leaked")
	}
}

// TestPanicAfterWrite: a panic while starting the workflow, after the desired
// state was written, still answers the action's 202 (never a 500 for a change
// that happened) and is logged.
func TestPanicAfterWrite(t *testing.T) {
	e := newEnv(t)
	before := e.pipelineIn("p1", "Running/Running", "")
	h, err := New(Config{Store: e.store, Starter: panickingStarter{}, Verifier: e.handler.verifier, Logger: e.handler.log})
	if err != nil {
		t.Fatal(err)
	}
	r := doOn(t, newServer(t, h), "Bearer "+e.writeKey, http.MethodPost, "/v0/pipelines/p1/stop?force=true", nil)
	if r.status != 202 {
		t.Fatalf("status %d: %s", r.status, r.body)
	}
	if after := e.get("p1"); after.Generation != before.Generation+1 || after.ResourcesDesiredStatus != "Stopped" {
		t.Fatalf("desired state not written: %+v", after)
	}
	if !strings.Contains(e.logs.String(), "starter exploded") {
		t.Fatal("the panic was not logged")
	}
}

// A list answer stays within Lambda's response limit whatever the records
// hold: pipelines with programs at the size limit come in several pages
// (X-Next-Page-Token), and selector=status (no program fields) in one.
func TestListStaysWithinTheResponseLimit(t *testing.T) {
	e := newEnv(t)
	program := strings.Repeat("x", domain.MaxProgramBytes-100)
	const n = 20 // 20 × ~192 KiB ≈ 3.75 MiB > MaxListBytes
	for i := range n {
		body := fmt.Sprintf(`{"name":"big%02d","program_code":%q}`, i, program)
		if r := e.do(http.MethodPost, "/v0/pipelines", []byte(body)); r.status != 201 {
			t.Fatalf("create: %d %s", r.status, r.body)
		}
	}
	seen, pages, token := 0, 0, ""
	for {
		u := "/v0/pipelines"
		if token != "" {
			u += "?page_token=" + token
		}
		r := e.do(http.MethodGet, u, nil)
		if r.status != 200 || len(r.body) > MaxListBytes+1024 {
			t.Fatalf("page %d: %d, %d bytes", pages, r.status, len(r.body))
		}
		list, _ := r.json(t).([]any)
		seen += len(list)
		pages++
		if token = r.header.Get(NextPageHeader); token == "" {
			break
		}
	}
	if seen != n || pages < 2 {
		t.Fatalf("%d pipelines in %d pages, want %d in at least 2", seen, pages, n)
	}
	r := e.do(http.MethodGet, "/v0/pipelines?selector=status", nil)
	if list, _ := r.json(t).([]any); len(list) != n || r.header.Get(NextPageHeader) != "" {
		t.Fatalf("selector=status: %d records, next %q", len(list), r.header.Get(NextPageHeader))
	}
}
