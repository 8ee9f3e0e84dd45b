package localstack

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"sync"

	"github.com/sluicehq/sluice/internal/compute"
)

// fakeRuntime is a controllable pipeline runtime speaking SPEC §7.
type fakeRuntime struct {
	mu     sync.Mutex
	srv    *httptest.Server
	status string // Running, Paused, Suspending, Suspended…
	// unavailable: answer 503 to this many more requests.
	unavailable int
	// pendingChecks: /status calls that still report Suspending after a suspend request.
	pendingChecks int
	// suspendFails: after a suspend request, /status answers 500 with this message.
	suspendFails string
	// refuseSuspend: /suspend answers 400.
	refuseSuspend bool
	// statusFails: /status answers 500 with this message (error_code
	// RuntimeCrashed) whatever the state, e.g. a runtime whose circuit died.
	statusFails  string
	suspendCalls int
	statusCalls  int
	// unavailableAnswers counts the 503 answers given.
	unavailableAnswers int
	suspended          bool
}

func newFakeRuntime(status string) *fakeRuntime {
	f := &fakeRuntime{status: status}
	f.srv = httptest.NewServer(http.HandlerFunc(f.serve))
	return f
}

func (f *fakeRuntime) set(fn func(f *fakeRuntime)) {
	f.mu.Lock()
	defer f.mu.Unlock()
	fn(f)
}

func (f *fakeRuntime) counts() (suspend, status int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.suspendCalls, f.statusCalls
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(v)
}

func (f *fakeRuntime) serve(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if r.URL.Path == "/status" {
		f.statusCalls++
	}
	if r.URL.Path == "/suspend" {
		f.suspendCalls++
	}
	if f.unavailable > 0 {
		f.unavailable--
		f.unavailableAnswers++
		w.Header().Set("Retry-After", "1")
		writeJSON(w, 503, map[string]any{"message": "unavailable", "error_code": "Unavailable", "details": map[string]any{}})
		return
	}
	switch r.URL.Path {
	case "/suspend":
		if f.refuseSuspend {
			writeJSON(w, 400, map[string]any{"message": "suspend is not possible: input connector does not support it", "error_code": "SuspendNotPossible", "details": map[string]any{"connector": "kafka"}})
			return
		}
		if !f.suspended {
			f.suspended = true
			f.status = "Suspending"
		}
		w.WriteHeader(202)
	case "/status":
		if f.statusFails != "" {
			writeJSON(w, 500, map[string]any{"message": f.statusFails, "error_code": "RuntimeCrashed", "details": map[string]any{"worker": 3}})
			return
		}
		if f.suspended && f.suspendFails != "" {
			writeJSON(w, 500, map[string]any{"message": f.suspendFails, "error_code": "SuspendError", "details": map[string]any{}})
			return
		}
		if f.suspended && f.status == "Suspending" {
			if f.pendingChecks > 0 {
				f.pendingChecks--
			} else {
				f.status = "Suspended"
			}
		}
		writeJSON(w, 200, map[string]any{
			"runtime_status": f.status, "runtime_desired_status": "Running",
			"storage_status_details": map[string]any{"checkpoints": []any{map[string]any{"uuid": "c1", "sequence_number": 41}}},
		})
	case "/pause", "/start":
		// A runtime moves between Running and Paused when told (SPEC §7).
		switch {
		case r.URL.Path == "/pause" && f.status == "Running":
			f.status = "Paused"
		case r.URL.Path == "/start" && f.status == "Paused":
			f.status = "Running"
		}
		w.WriteHeader(202)
	default:
		writeJSON(w, 200, map[string]any{})
	}
}

// fakeDriver provisions fake runtimes.
type fakeDriver struct {
	mu            sync.Mutex
	runtimes      map[string]*fakeRuntime // by pipeline
	deployments   map[string]string       // deployment id → pipeline
	gone          map[string]string       // deployment id → reason
	provisioned   []string
	deprovisioned []string
	cleared       []string
	// initialStatus of new runtimes; initialFor overrides it per pipeline
	// (e.g. "Initializing": the runtime never becomes ready).
	initialStatus string
	initialFor    map[string]string
}

var _ compute.Driver = (*fakeDriver)(nil)

func newFakeDriver() *fakeDriver {
	return &fakeDriver{runtimes: map[string]*fakeRuntime{}, deployments: map[string]string{}, gone: map[string]string{},
		initialStatus: "Running", initialFor: map[string]string{}}
}

func (d *fakeDriver) runtime(pipeline string) *fakeRuntime {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.runtimes[pipeline]
}

func (d *fakeDriver) Provision(_ context.Context, req compute.ProvisionRequest) (compute.Deployment, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	rt, ok := d.runtimes[req.Pipeline]
	if !ok || d.deployments[req.DeploymentID] == "" {
		status := d.initialStatus
		if s, ok := d.initialFor[req.Pipeline]; ok {
			status = s
		}
		if req.Initial == "Paused" && status == "Running" {
			status = "Paused"
		}
		if ok {
			rt.srv.Close()
		}
		rt = newFakeRuntime(status)
		d.runtimes[req.Pipeline] = rt
		d.deployments[req.DeploymentID] = req.Pipeline
		d.provisioned = append(d.provisioned, req.DeploymentID)
	}
	return compute.Deployment{Location: rt.srv.URL, Handle: req.DeploymentID}, nil
}

func (d *fakeDriver) Deprovision(_ context.Context, pipeline, deploymentID string) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.deprovisioned = append(d.deprovisioned, deploymentID)
	if _, ok := d.deployments[deploymentID]; ok {
		d.gone[deploymentID] = "deprovisioned"
	}
	return nil
}

func (d *fakeDriver) Check(_ context.Context, pipeline, deploymentID string) (compute.CheckResult, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if reason, ok := d.gone[deploymentID]; ok {
		return compute.CheckResult{State: compute.StateGone, Reason: reason}, nil
	}
	if d.deployments[deploymentID] == "" {
		return compute.CheckResult{State: compute.StateGone, Reason: "no such deployment"}, nil
	}
	return compute.CheckResult{State: compute.StateRunning, Location: d.runtimes[pipeline].srv.URL}, nil
}

func (d *fakeDriver) ClearStorage(_ context.Context, pipeline, pipelineID string) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.cleared = append(d.cleared, pipeline)
	return nil
}

// kill makes a deployment's process vanish.
func (d *fakeDriver) kill(deploymentID, reason string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.gone[deploymentID] = reason
}

func (d *fakeDriver) deprovisionCount(deploymentID string) int {
	d.mu.Lock()
	defer d.mu.Unlock()
	n := 0
	for _, id := range d.deprovisioned {
		if id == deploymentID {
			n++
		}
	}
	return n
}

// setInitial makes the next runtimes of a pipeline start in status.
func (d *fakeDriver) setInitial(pipeline, status string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.initialFor[pipeline] = status
}

// deploymentsOf lists the deployment ids provisioned for a pipeline, in order.
func (d *fakeDriver) deploymentsOf(pipeline string) []string {
	d.mu.Lock()
	defer d.mu.Unlock()
	var out []string
	for _, id := range d.provisioned {
		if d.deployments[id] == pipeline {
			out = append(out, id)
		}
	}
	return out
}

// clearCount counts the ClearStorage calls for a pipeline.
func (d *fakeDriver) clearCount(pipeline string) int {
	d.mu.Lock()
	defer d.mu.Unlock()
	n := 0
	for _, p := range d.cleared {
		if p == pipeline {
			n++
		}
	}
	return n
}

func (d *fakeDriver) close() {
	d.mu.Lock()
	defer d.mu.Unlock()
	for _, rt := range d.runtimes {
		rt.srv.Close()
	}
}

func (d *fakeDriver) String() string { return fmt.Sprintf("fakeDriver(%d runtimes)", len(d.runtimes)) }
