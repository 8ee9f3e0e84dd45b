package bench

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/sluicehq/sluice/internal/compute"
)

// InstantCompute is the compute.Driver of `make bench` and of the reliability
// tests (never a production driver: the local stack runs localproc, AWS runs
// ecsfargate). Its runtimes are instant, in-process stand-ins
// speaking the runtime protocol (SPEC §7) over HTTP. One HTTP server on
// loopback serves every runtime under /rt/<deployment id>, so hundreds of
// pipelines cost one listener. It isolates the control plane's own latency
// (the benchmark) and gives the reliability tests runtimes in exact states.
//
// A fake runtime is ready at once (Running, or Paused when started paused),
// suspends at the first status check after POST /suspend (an instant
// checkpoint), and is unreachable once deprovisioned. Per-pipeline behaviours
// are set with SetBehaviour before the pipeline is provisioned.
type InstantCompute struct {
	URL string

	srv *http.Server
	ln  net.Listener

	mu         sync.Mutex
	runtimes   map[string]*fakeRuntime // by deployment id
	behaviours map[string]Behaviour    // by pipeline
	provisions int
	deprovs    int
	clears     int
}

// Behaviour tunes the fake runtimes of one pipeline.
type Behaviour struct {
	// NeverSuspends: after POST /suspend the runtime stays Suspending.
	NeverSuspends bool
	// ForwardedUnavailable: pause, start, checkpoint, checkpoint_status and
	// stats answer 503 (GET /status keeps answering).
	ForwardedUnavailable bool
}

type fakeRuntime struct {
	pipeline  string
	status    string
	desired   string
	behaviour Behaviour
	gone      bool
	seq       uint64
}

var _ compute.Driver = (*InstantCompute)(nil)

// NewInstantCompute starts the fake runtimes' HTTP server on 127.0.0.1.
func NewInstantCompute() (*InstantCompute, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	f := &InstantCompute{ln: ln, URL: "http://" + ln.Addr().String(), runtimes: map[string]*fakeRuntime{}, behaviours: map[string]Behaviour{}}
	f.srv = &http.Server{Handler: http.HandlerFunc(f.serve), ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = f.srv.Serve(ln) }()
	return f, nil
}

// Close stops the HTTP server.
func (f *InstantCompute) Close() error {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	return f.srv.Shutdown(ctx)
}

// SetBehaviour sets the behaviour of the pipeline's future runtimes.
func (f *InstantCompute) SetBehaviour(pipeline string, b Behaviour) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.behaviours[pipeline] = b
}

// Location is where the runtime of a deployment answers.
func (f *InstantCompute) Location(deploymentID string) string { return f.URL + "/rt/" + deploymentID }

// Counts returns how many provisions, deprovisions and storage clears were asked.
func (f *InstantCompute) Counts() (provisions, deprovisions, clears int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.provisions, f.deprovs, f.clears
}

// Provision starts (or finds) the fake runtime of a deployment.
func (f *InstantCompute) Provision(_ context.Context, req compute.ProvisionRequest) (compute.Deployment, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if _, ok := f.runtimes[req.DeploymentID]; !ok {
		status := "Running"
		if req.Initial == "Paused" {
			status = "Paused"
		}
		f.runtimes[req.DeploymentID] = &fakeRuntime{pipeline: req.Pipeline, status: status, desired: status, behaviour: f.behaviours[req.Pipeline]}
		f.provisions++
	}
	return compute.Deployment{Location: f.Location(req.DeploymentID), Handle: req.DeploymentID}, nil
}

// Deprovision makes the deployment's runtime unreachable (idempotent).
func (f *InstantCompute) Deprovision(_ context.Context, _, deploymentID string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.deprovs++
	if rt, ok := f.runtimes[deploymentID]; ok {
		rt.gone = true
	}
	return nil
}

// Check reports a provisioned runtime as running, anything else as gone.
func (f *InstantCompute) Check(_ context.Context, _, deploymentID string) (compute.CheckResult, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	rt, ok := f.runtimes[deploymentID]
	switch {
	case !ok:
		return compute.CheckResult{State: compute.StateGone, Reason: "no such deployment"}, nil
	case rt.gone:
		return compute.CheckResult{State: compute.StateGone, Reason: "deprovisioned"}, nil
	}
	return compute.CheckResult{State: compute.StateRunning, Location: f.Location(deploymentID)}, nil
}

// ClearStorage does nothing (the fakes keep no storage).
func (f *InstantCompute) ClearStorage(context.Context, string, string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.clears++
	return nil
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	b, _ := json.Marshal(v)
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_, _ = w.Write(b)
}

func errorBody(message, code string) map[string]any {
	return map[string]any{"message": message, "error_code": code, "details": map[string]any{}}
}

func (f *InstantCompute) serve(w http.ResponseWriter, r *http.Request) {
	rest, ok := strings.CutPrefix(r.URL.Path, "/rt/")
	id, op, ok2 := strings.Cut(rest, "/")
	if !ok || !ok2 {
		writeJSON(w, http.StatusNotFound, errorBody("unknown path", "UnknownEndpoint"))
		return
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	rt, ok := f.runtimes[id]
	if !ok || rt.gone {
		// A deprovisioned process answers nothing.
		panic(http.ErrAbortHandler)
	}
	if rt.behaviour.ForwardedUnavailable && op != "status" && op != "suspend" {
		w.Header().Set("Retry-After", "1")
		writeJSON(w, http.StatusServiceUnavailable, errorBody("temporarily unavailable", "PipelineUnavailable"))
		return
	}
	checkpoints := []any{map[string]any{"uuid": fmt.Sprintf("ck-%s-%d", id, rt.seq), "sequence_number": rt.seq}}
	switch op {
	case "status":
		if rt.status == "Suspending" && !rt.behaviour.NeverSuspends {
			rt.status = "Suspended" // the final checkpoint is instant
			rt.seq++
		}
		writeJSON(w, http.StatusOK, map[string]any{"runtime_status": rt.status, "runtime_desired_status": rt.desired,
			"storage_status_details": map[string]any{"checkpoints": checkpoints}})
	case "suspend":
		if rt.status != "Suspended" {
			rt.status, rt.desired = "Suspending", "Suspended"
		}
		writeJSON(w, http.StatusAccepted, "suspending")
	case "pause", "start":
		if rt.desired == "Suspended" {
			writeJSON(w, http.StatusBadRequest, errorBody("suspending", "IllegalPipelineAction"))
			return
		}
		rt.status, rt.desired = "Running", "Running"
		if op == "pause" {
			rt.status, rt.desired = "Paused", "Paused"
		}
		writeJSON(w, http.StatusAccepted, "ok")
	case "checkpoint":
		rt.seq++
		writeJSON(w, http.StatusOK, map[string]any{"checkpoint_sequence_number": rt.seq, "incarnation_uuid": id})
	case "checkpoint_status":
		writeJSON(w, http.StatusOK, map[string]any{"success": rt.seq, "failure": nil})
	case "stats":
		writeJSON(w, http.StatusOK, map[string]any{"pipeline": rt.pipeline, "runtime_status": rt.status, "checkpoints": rt.seq})
	default:
		writeJSON(w, http.StatusNotFound, errorBody("unknown endpoint", "UnknownEndpoint"))
	}
}
