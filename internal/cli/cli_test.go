package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// fakeAPI is a scripted Sluice API: the pipeline record moves through
// states (one per GET of the record once an action started it) and the
// events endpoint answers the history written so far.
type fakeAPI struct {
	t   *testing.T
	srv *httptest.Server

	mu       sync.Mutex
	requests []string // "METHOD path?query"
	bodies   []string
	auth     []string
	// answers for "METHOD path" (without query); default 404.
	answers map[string]answer
	// record and script: after an action, every GET of the record advances
	// one step through script.
	record   map[string]any
	script   []map[string]any
	events   []map[string]any // newest last here; served newest first
	rv       int64
	advanced bool
	// failGets: that many GETs of the record after the action answer 503
	// (transient).
	failGets int
}

type answer struct {
	status int
	body   string
}

func newFakeAPI(t *testing.T) *fakeAPI {
	f := &fakeAPI{t: t, answers: map[string]answer{}}
	f.srv = httptest.NewServer(http.HandlerFunc(f.serve))
	t.Cleanup(f.srv.Close)
	return f
}

func rec(status, desired string, extra ...any) map[string]any {
	r := map[string]any{"name": "p1", "id": "id-1", "deployment_status": status, "deployment_desired_status": desired,
		"storage_status": "InUse", "deployment_error": nil, "generation": 1}
	for i := 0; i+1 < len(extra); i += 2 {
		r[extra[i].(string)] = extra[i+1]
	}
	return r
}

// setScript sets the current record and the states it walks through.
func (f *fakeAPI) setScript(current map[string]any, script ...map[string]any) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.rv++
	current["refresh_version"] = f.rv
	f.record = current
	f.script = script
	f.advanced = false
}

// write makes r the record, with a history event.
func (f *fakeAPI) writeLocked(r map[string]any) {
	f.rv++
	r["refresh_version"] = f.rv
	f.record = r
	f.events = append(f.events, map[string]any{
		"at": time.Date(2026, 1, 2, 3, 4, 5, int(f.rv)*1e6, time.UTC).Format(time.RFC3339Nano), "generation": 1, "refresh_version": f.rv,
		"deployment_status": r["deployment_status"], "deployment_desired_status": r["deployment_desired_status"],
		"storage_status": r["storage_status"], "deployment_error": r["deployment_error"],
		"cause": map[string]any{"action": "step", "actor": "workflow"},
	})
}

func (f *fakeAPI) serve(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	defer f.mu.Unlock()
	b, _ := io.ReadAll(r.Body)
	f.requests = append(f.requests, r.Method+" "+r.URL.RequestURI())
	f.bodies = append(f.bodies, string(b))
	f.auth = append(f.auth, r.Header.Get("Authorization"))
	key := r.Method + " " + r.URL.Path
	w.Header().Set("Content-Type", "application/json")
	switch {
	case key == "GET /v0/pipelines/p1" && f.record != nil:
		if f.advanced && f.failGets > 0 {
			f.failGets--
			w.Header().Set("Retry-After", "1")
			w.WriteHeader(503)
			_, _ = io.WriteString(w, `{"message":"busy","error_code":"ServiceUnavailable","details":{}}`)
			return
		}
		if f.advanced && len(f.script) > 0 {
			// Two writes per poll: the history must show the one in between.
			for n := 0; n < 2 && len(f.script) > 0; n++ {
				f.writeLocked(f.script[0])
				f.script = f.script[1:]
			}
		}
		_ = json.NewEncoder(w).Encode(f.record)
		return
	case key == "GET /v0/pipelines/p1/events" && f.record != nil:
		out := make([]map[string]any, 0, len(f.events))
		for i := len(f.events) - 1; i >= 0; i-- {
			out = append(out, f.events[i])
		}
		_ = json.NewEncoder(w).Encode(out)
		return
	case strings.HasPrefix(key, "POST /v0/pipelines/p1/") && f.record != nil && len(f.script) > 0:
		f.advanced = true
		// The action's own write.
		f.writeLocked(f.script[0])
		f.script = f.script[1:]
		w.WriteHeader(202)
		_, _ = io.WriteString(w, `"Pipeline 'p1' is being acted on."`)
		return
	}
	a, ok := f.answers[key]
	if !ok {
		w.WriteHeader(404)
		_, _ = io.WriteString(w, `{"message":"Unknown pipeline name 'x'","error_code":"UnknownPipelineName","details":{"pipeline_name":"x"}}`)
		return
	}
	w.WriteHeader(a.status)
	_, _ = io.WriteString(w, a.body)
}

func (f *fakeAPI) reqs() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.requests...)
}

type result struct {
	code           int
	stdout, stderr string
}

func run(t *testing.T, f *fakeAPI, env map[string]string, args ...string) result {
	t.Helper()
	var out, errb bytes.Buffer
	if env == nil {
		env = map[string]string{}
	}
	if _, ok := env[EnvURL]; !ok && f != nil {
		env[EnvURL] = f.srv.URL
	}
	a := &App{Stdout: &out, Stderr: &errb, Env: func(k string) string { return env[k] }, PollInterval: time.Millisecond,
		HTTP: &http.Client{Timeout: 5 * time.Second}}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	code := a.Run(ctx, args)
	return result{code, out.String(), errb.String()}
}

func TestStopWaitShowsEveryStatus(t *testing.T) {
	f := newFakeAPI(t)
	f.setScript(rec("Running", "Running"),
		rec("Running", "Suspended"),
		rec("Suspending", "Suspended"),
		rec("Stopping", "Stopped"),
		rec("Stopped", "Stopped"),
	)
	r := run(t, f, map[string]string{EnvAPIKey: "apikey:k1"}, "stop", "p1", "--wait")
	if r.code != ExitOK {
		t.Fatalf("exit %d\nstdout:\n%s\nstderr:\n%s", r.code, r.stdout, r.stderr)
	}
	want := []string{"Running      desired Suspended", "Suspending   desired Suspended", "Stopping     desired Stopped", "Stopped      desired Stopped"}
	lines := strings.Split(strings.TrimSpace(r.stdout), "\n")
	if len(lines) != 1+len(want)+1 {
		t.Fatalf("want the message, %d status lines and the summary; got:\n%s", len(want), r.stdout)
	}
	for i, w := range want {
		if !strings.HasSuffix(lines[1+i], w) {
			t.Errorf("line %d = %q, want suffix %q", 1+i, lines[1+i], w)
		}
	}
	if !strings.HasPrefix(lines[len(lines)-1], "Running → Suspending → Stopping → Stopped  (") {
		t.Errorf("summary %q", lines[len(lines)-1])
	}
	for i, a := range f.auth {
		if a != "Bearer apikey:k1" {
			t.Errorf("request %d (%s) Authorization %q", i, f.requests[i], a)
		}
	}
	if got := f.reqs(); got[0] != "GET /v0/pipelines/p1" || got[1] != "POST /v0/pipelines/p1/stop?force=false" {
		t.Errorf("requests %v", got)
	}
}

func TestStopWaitFailedSuspendExitsNonZero(t *testing.T) {
	f := newFakeAPI(t)
	derr := map[string]any{"message": "disk full (injected)", "error_code": "SuspendError", "details": map[string]any{}}
	f.setScript(rec("Running", "Running"),
		rec("Running", "Suspended"),
		rec("Suspending", "Suspended"),
		rec("Stopping", "Stopped", "deployment_error", derr),
		rec("Stopped", "Stopped", "deployment_error", derr),
	)
	r := run(t, f, nil, "stop", "--wait", "p1")
	if r.code != ExitError {
		t.Fatalf("exit %d, want %d\n%s\n%s", r.code, ExitError, r.stdout, r.stderr)
	}
	if r.stderr != "error: SuspendError: disk full (injected)\n" {
		t.Errorf("stderr %q", r.stderr)
	}
	if !strings.Contains(r.stdout, "Running → Suspending → Stopping → Stopped") {
		t.Errorf("stdout lacks the progression:\n%s", r.stdout)
	}
}

func TestStopWaitRetriesTransientErrors(t *testing.T) {
	f := newFakeAPI(t)
	f.setScript(rec("Running", "Running"), rec("Running", "Stopped"), rec("Stopping", "Stopped"), rec("Stopped", "Stopped"))
	f.failGets = 3 // the polls after the action
	r := run(t, f, nil, "stop", "p1", "--force", "--wait")
	if r.code != ExitOK {
		t.Fatalf("exit %d\n%s\n%s", r.code, r.stdout, r.stderr)
	}
	if !strings.Contains(r.stderr, "(polling failed: ServiceUnavailable: busy; still trying)") || !strings.Contains(r.stderr, "(the API answers again)") {
		t.Errorf("stderr %q", r.stderr)
	}
	if !strings.Contains(r.stdout, "Running → Stopping → Stopped") {
		t.Errorf("stdout:\n%s", r.stdout)
	}
	if reqs := f.reqs(); reqs[1] != "POST /v0/pipelines/p1/stop?force=true" {
		t.Errorf("requests %v", reqs)
	}
}

func TestStartWaitAndClearWait(t *testing.T) {
	f := newFakeAPI(t)
	f.setScript(rec("Stopped", "Stopped"), rec("Stopped", "Running"), rec("Provisioning", "Running"), rec("Running", "Running"))
	r := run(t, f, nil, "start", "p1", "--wait")
	if r.code != ExitOK || !strings.Contains(r.stdout, "Stopped → Provisioning → Running") {
		t.Fatalf("start: exit %d\n%s\n%s", r.code, r.stdout, r.stderr)
	}
	if reqs := f.reqs(); reqs[1] != "POST /v0/pipelines/p1/start?initial=running" {
		t.Errorf("requests %v", reqs)
	}

	f.setScript(rec("Stopped", "Stopped"), rec("Stopped", "Stopped", "storage_status", "Clearing"), rec("Stopped", "Stopped", "storage_status", "Cleared"))
	r = run(t, f, nil, "clear", "p1", "--wait")
	if r.code != ExitOK || !strings.Contains(r.stdout, "storage Clearing") || !strings.Contains(r.stdout, "storage Cleared  (") {
		t.Fatalf("clear: exit %d\n%s\n%s", r.code, r.stdout, r.stderr)
	}

	derr := map[string]any{"message": "no such image", "error_code": "ProvisioningFailed", "details": map[string]any{}}
	f.setScript(rec("Stopped", "Stopped"), rec("Stopped", "Paused"), rec("Stopping", "Stopped", "deployment_error", derr), rec("Stopped", "Stopped", "deployment_error", derr))
	r = run(t, f, nil, "start", "p1", "--paused", "--wait")
	if r.code != ExitError || r.stderr != "error: ProvisioningFailed: no such image\n" {
		t.Fatalf("failed start: exit %d\n%s\n%s", r.code, r.stdout, r.stderr)
	}
}

func TestErrorsArePrintedAsCodeAndMessage(t *testing.T) {
	f := newFakeAPI(t)
	f.answers["POST /v0/pipelines/p2/start"] = answer{400, `{"message":"Deployment resources status (current: 'Stopping', desired: 'Stopped') cannot have desired changed to 'Provisioned'.","error_code":"IllegalPipelineAction","details":{}}`}
	f.answers["GET /v0/pipelines"] = answer{502, `<html>bad gateway</html>`}
	r := run(t, f, nil, "start", "p2")
	if r.code != ExitError || r.stderr != "error: IllegalPipelineAction: Deployment resources status (current: 'Stopping', desired: 'Stopped') cannot have desired changed to 'Provisioned'.\n" {
		t.Errorf("start: %d %q", r.code, r.stderr)
	}
	r = run(t, f, nil, "delete", "nosuch")
	if r.code != ExitError || r.stderr != "error: UnknownPipelineName: Unknown pipeline name 'x'\n" {
		t.Errorf("delete: %d %q", r.code, r.stderr)
	}
	r = run(t, f, nil, "pipelines")
	if r.code != ExitError || r.stderr != "error: HTTP 502: <html>bad gateway</html>\n" {
		t.Errorf("pipelines: %d %q", r.code, r.stderr)
	}
	// Nothing listens there.
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	addr := ln.Addr().String()
	_ = ln.Close()
	r = run(t, nil, map[string]string{EnvURL: "http://" + addr}, "pipelines")
	if r.code != ExitError || !strings.Contains(r.stderr, "error: cannot reach the Sluice API at http://"+addr) {
		t.Errorf("unreachable: %d %q", r.code, r.stderr)
	}
}

func TestUsageErrors(t *testing.T) {
	f := newFakeAPI(t)
	for _, args := range [][]string{
		{},
		{"frobnicate"},
		{"stop"},
		{"stop", "a", "b"},
		{"stop", "p1", "--bogus"},
		{"create", "p1", "--config", "[1,2]"},
		{"create", "p1", "--config", "@/nonexistent/file.json"},
		{"events", "p1", "--limit", "0"},
	} {
		r := run(t, f, nil, args...)
		if r.code != ExitUsage {
			t.Errorf("%q: exit %d, want %d (stderr %q)", args, r.code, ExitUsage, r.stderr)
		}
	}
	if n := len(f.reqs()); n != 0 {
		t.Errorf("usage errors sent %d requests", n)
	}
	if r := run(t, f, nil, "help"); r.code != ExitOK || !strings.Contains(r.stdout, "stop NAME [--force] [--wait]") {
		t.Errorf("help: %d %q", r.code, r.stdout)
	}
}

func TestURLAndKeyFromFlagsOrEnvironment(t *testing.T) {
	f := newFakeAPI(t)
	f.answers["GET /v0/pipelines"] = answer{200, `[]`}
	// Flags before the command win over the environment.
	r := run(t, nil, map[string]string{EnvURL: "http://127.0.0.1:1", EnvAPIKey: "apikey:env"}, "--url", f.srv.URL, "--api-key", "apikey:flag", "pipelines")
	if r.code != ExitOK || !strings.Contains(r.stdout, "no pipelines") {
		t.Fatalf("%d %q %q", r.code, r.stdout, r.stderr)
	}
	// Flags after the command too.
	r = run(t, nil, map[string]string{EnvAPIKey: "apikey:env"}, "pipelines", "--url", f.srv.URL)
	if r.code != ExitOK {
		t.Fatalf("%d %q", r.code, r.stderr)
	}
	if got := fmt.Sprint(f.auth); got != "[Bearer apikey:flag Bearer apikey:env]" {
		t.Errorf("Authorization headers %s", got)
	}
	if got := f.reqs()[0]; got != "GET /v0/pipelines?limit=1000&selector=status" {
		t.Errorf("request %s", got)
	}
}

func TestCreateSendsTheDefinition(t *testing.T) {
	f := newFakeAPI(t)
	f.answers["POST /v0/pipelines"] = answer{201, `{"name":"p1","id":"id-1","deployment_status":"Stopped"}`}
	cfg := filepath.Join(t.TempDir(), "rc.json")
	if err := os.WriteFile(cfg, []byte(`{"events_per_sec": 500, "fault": {"suspend_error": "boom"}}`), 0o644); err != nil {
		t.Fatal(err)
	}
	r := run(t, f, nil, "create", "p1", "--description", "orders", "--config", "@"+cfg)
	if r.code != ExitOK || r.stdout != "created pipeline p1 (id id-1): Stopped\n" {
		t.Fatalf("%d %q %q", r.code, r.stdout, r.stderr)
	}
	var body map[string]any
	if err := json.Unmarshal([]byte(f.bodies[0]), &body); err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(body) != "map[description:orders name:p1 runtime_config:map[events_per_sec:500 fault:map[suspend_error:boom]]]" {
		t.Errorf("body %v", body)
	}
}

func TestListingsAndEvents(t *testing.T) {
	f := newFakeAPI(t)
	f.answers["GET /v0/pipelines"] = answer{200, `[{"name":"a","deployment_status":"Running","deployment_desired_status":"Running","storage_status":"InUse","deployment_error":null},
		{"name":"b","deployment_status":"Stopped","deployment_desired_status":"Stopped","storage_status":"InUse","deployment_error":{"message":"m","error_code":"SuspendError","details":{}}}]`}
	f.answers["GET /v0/pipelines/a/events"] = answer{200, `[
		{"at":"2026-01-02T03:04:06Z","generation":2,"refresh_version":3,"deployment_status":"Running","deployment_desired_status":"Suspended","storage_status":"InUse","deployment_error":null,"cause":{"action":"stop?force=false","actor":"user:k1"}},
		{"at":"2026-01-02T03:04:05Z","generation":1,"refresh_version":2,"deployment_status":"Running","deployment_desired_status":"Running","storage_status":"InUse","deployment_error":null,"cause":{"action":"MarkProvisioned","actor":"workflow"}}]`}
	f.answers["GET /v0/pipelines/a/stats"] = answer{200, `{"count":3,"sum":3,"last_sequence_number":2}`}
	r := run(t, f, nil, "pipelines")
	want := "NAME  STATUS   DESIRED  STORAGE  ERROR\na     Running  Running  InUse    -\nb     Stopped  Stopped  InUse    SuspendError\n"
	if r.code != ExitOK || r.stdout != want {
		t.Errorf("pipelines: %d\n%s\nwant\n%s", r.code, r.stdout, want)
	}
	r = run(t, f, nil, "events", "a", "--limit", "2")
	lines := strings.Split(strings.TrimSpace(r.stdout), "\n")
	if r.code != ExitOK || len(lines) != 3 || !strings.Contains(lines[1], "MarkProvisioned (workflow)") || !strings.Contains(lines[2], "stop?force=false (user:k1)") {
		t.Errorf("events (oldest first): %d\n%s", r.code, r.stdout)
	}
	if !strings.HasSuffix(f.reqs()[1], "/events?limit=2") {
		t.Errorf("request %s", f.reqs()[1])
	}
	r = run(t, f, nil, "stats", "a")
	if r.code != ExitOK || !strings.Contains(r.stdout, "\"last_sequence_number\": 2") {
		t.Errorf("stats: %d %q", r.code, r.stdout)
	}
}

func TestParseInterleaved(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"p1", "--wait", "--force"}, "[p1] wait=true force=true"},
		{[]string{"--force", "p1"}, "[p1] wait=false force=true"},
		{[]string{"--wait", "p1", "--", "--force"}, "[p1 --force] wait=true force=false"},
	} {
		fs := newFlagSet()
		pos, err := parseInterleaved(fs, tc.args)
		if err != nil {
			t.Fatal(err)
		}
		got := fmt.Sprintf("%v wait=%v force=%v", pos, boolFlag(fs, "wait"), boolFlag(fs, "force"))
		if got != tc.want {
			t.Errorf("%q: %s, want %s", tc.args, got, tc.want)
		}
	}
}

func newFlagSet() *flag.FlagSet {
	fs := flag.NewFlagSet("t", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	stopFlags(fs)
	return fs
}

// A write that changes no status (the reconciler refreshing the checkpoint
// list) shows no line: only changes from the state before the action do.
func TestWaitShowsOnlyChanges(t *testing.T) {
	f := newFakeAPI(t)
	f.setScript(rec("Running", "Running"),
		rec("Running", "Running", "storage_status_details", map[string]any{"checkpoints": []any{}}),
		rec("Running", "Stopped"),
		rec("Stopping", "Stopped"),
		rec("Stopped", "Stopped"),
	)
	r := run(t, f, nil, "stop", "p1", "--force", "--wait")
	if r.code != ExitOK || strings.Contains(r.stdout, "Running      desired Running") || strings.Count(r.stdout, "\n") != 5 {
		t.Fatalf("exit %d\n%s", r.code, r.stdout)
	}
}
