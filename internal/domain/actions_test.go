package domain

import (
	"errors"
	"fmt"
	"os"
	"testing"
)

// want is the expected outcome of one action on one record.
type want struct {
	write          bool
	workflow       WorkflowKind
	supersedes     bool
	resources      ResourcesDesiredStatus // expected resources desired status after
	runtimeDesired RuntimeDesiredStatus   // expected runtime desired after ("" = none)
	errBody        string                 // the full error body, when the action is rejected
}

func checkOutcome(t *testing.T, before Pipeline, out Outcome, err error, w want) {
	t.Helper()
	if w.errBody != "" {
		if err == nil {
			t.Fatalf("accepted (%+v), want error %s", out.Accepted, w.errBody)
		}
		jsonEqual(t, errorJSON(t, err), w.errBody)
		return
	}
	if err != nil {
		t.Fatalf("rejected: %v", err)
	}
	if out.Write != w.write || out.Workflow != w.workflow || (out.Supersedes != nil) != w.supersedes {
		t.Fatalf("outcome write=%v workflow=%q supersedes=%v, want write=%v workflow=%q supersedes=%v",
			out.Write, out.Workflow, out.Supersedes != nil, w.write, w.workflow, w.supersedes)
	}
	if out.Accepted == "" {
		t.Error("an accepted action must describe what was accepted")
	}
	p := out.Pipeline
	if p.ResourcesDesiredStatus != w.resources {
		t.Errorf("resources desired %s, want %s", p.ResourcesDesiredStatus, w.resources)
	}
	gotRD := RuntimeDesiredStatus("")
	if p.RuntimeDesiredStatus != nil {
		gotRD = *p.RuntimeDesiredStatus
	}
	if gotRD != w.runtimeDesired {
		t.Errorf("runtime desired %q, want %q", gotRD, w.runtimeDesired)
	}
	wantGen := before.Generation
	if w.write && (intentChanged(before, p) || w.workflow != "") {
		wantGen++
	}
	if p.Generation != wantGen {
		t.Errorf("generation %d, want %d", p.Generation, wantGen)
	}
	if !w.write && p.RefreshVersion != before.RefreshVersion {
		t.Errorf("unchanged outcome bumped the refresh version")
	}
	if w.write && p.RefreshVersion != before.RefreshVersion+1 {
		t.Errorf("refresh version %d, want %d", p.RefreshVersion, before.RefreshVersion+1)
	}
}

const illegalStopMsg = `{"error_code":"IllegalPipelineAction","message":"Deployment resources status (current: '%[1]s', desired: 'Stopped') cannot have desired changed to 'Suspended'. The pipeline is already being stopped: only a forced stop (force=true) is possible until it is Stopped.","details":{"status":"%[1]s","current_desired_status":"Stopped","new_desired_status":"Suspended","hint":"The pipeline is already being stopped: only a forced stop (force=true) is possible until it is Stopped."}}`

const featureNotAvailableStop = `{"error_code":"FeatureNotAvailable","message":"Feature 'stop?force=false' is not available for this pipeline: runtime_config disables storage, so no checkpoint can be written; stop with force=true","details":{"feature":"stop?force=false","reason":"runtime_config disables storage, so no checkpoint can be written; stop with force=true"}}`

// TestStopTable has one row per cell of SPEC §3's stop table, in its order.
func TestStopTable(t *testing.T) {
	const (
		RS = ResourcesDesiredStopped
		RP = ResourcesDesiredProvisioned
	)
	rows := []struct {
		name   string
		p      Pipeline
		force  bool
		expect want
	}{
		// Stopped / Stopped: nothing to do.
		{"Stopped/Stopped graceful", rec(ResourcesStopped, RS, "", ""), false, want{resources: RS}},
		{"Stopped/Stopped forced", rec(ResourcesStopped, RS, "", ""), true, want{resources: RS}},

		// Stopped or Provisioning / Provisioned: acts as a forced stop.
		{"start pending graceful", rec(ResourcesStopped, RP, "", RuntimeDesiredRunning), false, want{write: true, supersedes: true, resources: RS}},
		{"start pending forced", rec(ResourcesStopped, RP, "", RuntimeDesiredRunning), true, want{write: true, supersedes: true, resources: RS}},
		{"Provisioning graceful", rec(ResourcesProvisioning, RP, "", RuntimeDesiredRunning), false, want{write: true, workflow: WorkflowStop, supersedes: true, resources: RS, runtimeDesired: RuntimeDesiredRunning}},
		{"Provisioning forced", rec(ResourcesProvisioning, RP, "", RuntimeDesiredPaused), true, want{write: true, workflow: WorkflowStop, supersedes: true, resources: RS, runtimeDesired: RuntimeDesiredPaused}},
	}
	// Initializing, Running, Paused or Unavailable / Running or Paused.
	for _, rt := range []RuntimeStatus{RuntimeInitializing, RuntimeRunning, RuntimePaused, RuntimeUnavailable} {
		for _, rtd := range []RuntimeDesiredStatus{RuntimeDesiredRunning, RuntimeDesiredPaused} {
			rows = append(rows,
				struct {
					name   string
					p      Pipeline
					force  bool
					expect want
				}{fmt.Sprintf("%s/%s graceful", rt, rtd), rec(ResourcesProvisioned, RP, rt, rtd), false,
					want{write: true, workflow: WorkflowSuspend, resources: RP, runtimeDesired: RuntimeDesiredSuspended}},
				struct {
					name   string
					p      Pipeline
					force  bool
					expect want
				}{fmt.Sprintf("%s/%s forced", rt, rtd), rec(ResourcesProvisioned, RP, rt, rtd), true,
					want{write: true, workflow: WorkflowStop, resources: RS, runtimeDesired: rtd}},
				struct {
					name   string
					p      Pipeline
					force  bool
					expect want
				}{fmt.Sprintf("%s/%s graceful, storage disabled", rt, rtd), withStorage(rec(ResourcesProvisioned, RP, rt, rtd), false), false,
					want{errBody: featureNotAvailableStop}},
				struct {
					name   string
					p      Pipeline
					force  bool
					expect want
				}{fmt.Sprintf("%s/%s forced, storage disabled", rt, rtd), withStorage(rec(ResourcesProvisioned, RP, rt, rtd), false), true,
					want{write: true, workflow: WorkflowStop, resources: RS, runtimeDesired: rtd}},
			)
		}
	}
	rows = append(rows, []struct {
		name   string
		p      Pipeline
		force  bool
		expect want
	}{
		// Suspending or Suspended / Suspended (also: suspend accepted, not yet marked Suspending).
		{"Suspending/Suspended graceful", rec(ResourcesProvisioned, RP, RuntimeSuspending, RuntimeDesiredSuspended), false, want{resources: RP, runtimeDesired: RuntimeDesiredSuspended}},
		{"Suspending/Suspended forced", rec(ResourcesProvisioned, RP, RuntimeSuspending, RuntimeDesiredSuspended), true, want{write: true, workflow: WorkflowStop, supersedes: true, resources: RS, runtimeDesired: RuntimeDesiredSuspended}},
		{"Running/Suspended graceful", rec(ResourcesProvisioned, RP, RuntimeRunning, RuntimeDesiredSuspended), false, want{resources: RP, runtimeDesired: RuntimeDesiredSuspended}},
		{"Unavailable/Suspended forced", rec(ResourcesProvisioned, RP, RuntimeUnavailable, RuntimeDesiredSuspended), true, want{write: true, workflow: WorkflowStop, supersedes: true, resources: RS, runtimeDesired: RuntimeDesiredSuspended}},

		// Any not-Stopped status / Stopped: a stop is in progress.
		{"Stopping/Stopped graceful", rec(ResourcesStopping, RS, RuntimeRunning, RuntimeDesiredRunning), false, want{errBody: fmt.Sprintf(illegalStopMsg, "Stopping")}},
		{"Stopping/Stopped forced", rec(ResourcesStopping, RS, RuntimeRunning, RuntimeDesiredRunning), true, want{resources: RS, runtimeDesired: RuntimeDesiredRunning}},
		{"Stopping after suspend graceful", rec(ResourcesStopping, RS, RuntimeSuspended, RuntimeDesiredSuspended), false, want{errBody: fmt.Sprintf(illegalStopMsg, "Stopping")}},
		{"Stopping after suspend forced", rec(ResourcesStopping, RS, RuntimeSuspended, RuntimeDesiredSuspended), true, want{resources: RS, runtimeDesired: RuntimeDesiredSuspended}},
		{"Provisioning/Stopped graceful", rec(ResourcesProvisioning, RS, "", RuntimeDesiredRunning), false, want{errBody: fmt.Sprintf(illegalStopMsg, "Provisioning")}},
		{"Provisioning/Stopped forced", rec(ResourcesProvisioning, RS, "", RuntimeDesiredRunning), true, want{resources: RS, runtimeDesired: RuntimeDesiredRunning}},
		{"Provisioned/Stopped graceful", rec(ResourcesProvisioned, RS, RuntimeRunning, RuntimeDesiredRunning), false, want{errBody: fmt.Sprintf(illegalStopMsg, "Provisioned")}},
		{"Provisioned/Stopped forced", rec(ResourcesProvisioned, RS, RuntimeRunning, RuntimeDesiredRunning), true, want{resources: RS, runtimeDesired: RuntimeDesiredRunning}},
	}...)

	for _, r := range rows {
		t.Run(r.name, func(t *testing.T) {
			out, err := Stop(r.p, r.force, t0.Add(1))
			checkOutcome(t, r.p, out, err, r.expect)
			if err == nil && out.Write {
				if err := ValidateTransition(r.p, out.Pipeline); err != nil {
					t.Errorf("accepted outcome fails validation: %v", err)
				}
			}
		})
	}
}

// TestSeedExample reproduces the seed document's example response field for
// field: a start requested while the pipeline is Stopping / desired Stopped.
func TestSeedExample(t *testing.T) {
	seed, err := os.ReadFile("testdata/seed_example_response.json")
	if err != nil {
		t.Fatal(err)
	}
	p := rec(ResourcesStopping, ResourcesDesiredStopped, RuntimeRunning, RuntimeDesiredRunning)
	_, err = Start(p, StartRequest{Initial: InitialRunning, DismissError: true}, t0)
	jsonEqual(t, errorJSON(t, err), string(seed))
	var de *Error
	if !errors.As(err, &de) || de.HTTPStatus() != 400 {
		t.Fatalf("want a 400, got %v", err)
	}
}

func TestStartRules(t *testing.T) {
	const (
		RS = ResourcesDesiredStopped
		RP = ResourcesDesiredProvisioned
	)
	running := StartRequest{Initial: InitialRunning, DismissError: true}
	paused := StartRequest{Initial: InitialPaused, DismissError: true}
	keepError := StartRequest{Initial: InitialRunning, DismissError: false}
	seed, _ := os.ReadFile("testdata/seed_example_response.json")
	rows := []struct {
		name   string
		p      Pipeline
		req    StartRequest
		expect want
	}{
		{"from Stopped/Stopped, running", rec(ResourcesStopped, RS, "", ""), running, want{write: true, workflow: WorkflowStart, resources: RP, runtimeDesired: RuntimeDesiredRunning}},
		{"from Stopped/Stopped, paused", rec(ResourcesStopped, RS, "", ""), paused, want{write: true, workflow: WorkflowStart, resources: RP, runtimeDesired: RuntimeDesiredPaused}},
		{"repeat while start pending, same initial", rec(ResourcesStopped, RP, "", RuntimeDesiredRunning), running, want{resources: RP, runtimeDesired: RuntimeDesiredRunning}},
		{"repeat while provisioning, same initial", rec(ResourcesProvisioning, RP, "", RuntimeDesiredRunning), running, want{resources: RP, runtimeDesired: RuntimeDesiredRunning}},
		{"repeat while running, same initial", rec(ResourcesProvisioned, RP, RuntimeRunning, RuntimeDesiredRunning), running, want{resources: RP, runtimeDesired: RuntimeDesiredRunning}},
		{"repeat while paused (initial paused)", rec(ResourcesProvisioned, RP, RuntimePaused, RuntimeDesiredPaused), paused, want{resources: RP, runtimeDesired: RuntimeDesiredPaused}},
		{"different initial while provisioning", rec(ResourcesProvisioning, RP, "", RuntimeDesiredRunning), paused, want{errBody: `{"error_code":"InitialImmutableUnlessStopped","message":"The pipeline was started with initial 'Running'; it cannot be changed to 'Paused' until the pipeline is stopped.","details":{"current_initial":"Running","requested_initial":"Paused"}}`}},
		{"different initial while running", rec(ResourcesProvisioned, RP, RuntimeRunning, RuntimeDesiredRunning), paused, want{errBody: `{"error_code":"InitialImmutableUnlessStopped","message":"The pipeline was started with initial 'Running'; it cannot be changed to 'Paused' until the pipeline is stopped.","details":{"current_initial":"Running","requested_initial":"Paused"}}`}},
		{"while a stop is in progress (seed example)", rec(ResourcesStopping, RS, RuntimeRunning, RuntimeDesiredRunning), running, want{errBody: string(seed)}},
		{"while a forced stop of a provisioning pipeline is in progress", rec(ResourcesProvisioning, RS, "", RuntimeDesiredRunning), running, want{errBody: `{"error_code":"IllegalPipelineAction","message":"Deployment resources status (current: 'Provisioning', desired: 'Stopped') cannot have desired changed to 'Provisioned'. Cannot restart the pipeline while it is stopping. Wait for it to stop before starting a new instance of the pipeline.","details":{"status":"Provisioning","current_desired_status":"Stopped","new_desired_status":"Provisioned","hint":"Cannot restart the pipeline while it is stopping. Wait for it to stop before starting a new instance of the pipeline."}}`}},
		{"while suspending", rec(ResourcesProvisioned, RP, RuntimeSuspending, RuntimeDesiredSuspended), running, want{errBody: `{"error_code":"IllegalPipelineAction","message":"Deployment runtime status (current: 'Suspending', desired: 'Suspended') cannot have desired changed to 'Running'. Cannot start the pipeline while it is suspending. Wait for it to stop, or cancel the suspend with stop?force=true.","details":{"status":"Suspending","current_desired_status":"Suspended","new_desired_status":"Running","hint":"Cannot start the pipeline while it is suspending. Wait for it to stop, or cancel the suspend with stop?force=true."}}`}},
		{"while a suspend is accepted but not yet marked", rec(ResourcesProvisioned, RP, RuntimeRunning, RuntimeDesiredSuspended), paused, want{errBody: `{"error_code":"IllegalPipelineAction","message":"Deployment runtime status (current: 'Running', desired: 'Suspended') cannot have desired changed to 'Paused'. Cannot start the pipeline while it is suspending. Wait for it to stop, or cancel the suspend with stop?force=true.","details":{"status":"Running","current_desired_status":"Suspended","new_desired_status":"Paused","hint":"Cannot start the pipeline while it is suspending. Wait for it to stop, or cancel the suspend with stop?force=true."}}`}},
		{"error set, dismiss_error=false", withError(rec(ResourcesStopped, RS, "", "")), keepError, want{errBody: `{"error_code":"CannotStartWithUndismissedError","message":"Cannot start the pipeline while its deployment error is not dismissed. Dismiss it first (POST /dismiss_error) or start with dismiss_error=true.","details":{"pipeline_name":"p1","status":"Stopped","desired_status":"Stopped","storage_status":"Cleared"}}`}},
		{"error set, dismiss_error=true (default) clears it", withError(rec(ResourcesStopped, RS, "", "")), running, want{write: true, workflow: WorkflowStart, resources: RP, runtimeDesired: RuntimeDesiredRunning}},
		{"on a provisioned Paused pipeline, initial running resumes it (Feldera 0.148's /start)", rec(ResourcesProvisioned, RP, RuntimePaused, RuntimeDesiredPaused), running, want{write: true, resources: RP, runtimeDesired: RuntimeDesiredRunning}},
		{"started paused, resumed, then /start: no-op", withInitial(rec(ResourcesProvisioned, RP, RuntimeRunning, RuntimeDesiredRunning), InitialPaused), running, want{resources: RP, runtimeDesired: RuntimeDesiredRunning}},
		{"started paused, still provisioning, initial running (0.148's /pause then /start)", rec(ResourcesProvisioning, RP, "", RuntimeDesiredPaused), running, want{write: true, resources: RP, runtimeDesired: RuntimeDesiredRunning}},
		{"started paused, start pending, initial running", rec(ResourcesStopped, RP, "", RuntimeDesiredPaused), running, want{write: true, resources: RP, runtimeDesired: RuntimeDesiredRunning}},
		{"storage Clearing", withStorageStatus(rec(ResourcesStopped, RS, "", ""), StorageClearing), running, want{errBody: `{"error_code":"CannotStartWhileClearingStorage","message":"Cannot start the pipeline while its storage is being cleared. Wait for storage status Cleared.","details":{"pipeline_name":"p1","status":"Stopped","desired_status":"Stopped","storage_status":"Clearing"}}`}},
	}
	for _, r := range rows {
		t.Run(r.name, func(t *testing.T) {
			out, err := Start(r.p, r.req, t0.Add(1))
			checkOutcome(t, r.p, out, err, r.expect)
			if err == nil && out.Write && out.Workflow == WorkflowStart {
				if out.Pipeline.DeploymentError != nil {
					t.Error("start must clear the dismissed error")
				}
				if *out.Pipeline.DeploymentInitial != r.req.Initial {
					t.Errorf("deployment_initial %s, want %s", *out.Pipeline.DeploymentInitial, r.req.Initial)
				}
			}
		})
	}
}

func TestStartBadInitialIs405(t *testing.T) {
	for _, v := range [][]string{{"Running"}, {"stopped"}, {""}, {"running", "paused"}} {
		_, err := ParseInitial(v)
		var de *Error
		if !errors.As(err, &de) || de.Code != CodeUnsupportedPipelineAction || de.HTTPStatus() != 405 {
			t.Errorf("initial=%q: got %v, want 405 UnsupportedPipelineAction", v, err)
		}
	}
	for v, wantInitial := range map[string]InitialState{"running": InitialRunning, "paused": InitialPaused} {
		got, err := ParseInitial([]string{v})
		if err != nil || got != wantInitial {
			t.Errorf("initial=%s: %v %v", v, got, err)
		}
	}
	if got, err := ParseInitial(nil); err != nil || got != InitialRunning {
		t.Errorf("default initial: %v %v", got, err)
	}
}
