package domain

import (
	"encoding/json"
	"testing"
	"time"
)

var t0 = time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC)

// rec builds a consistent record in the given statuses. runtime and
// runtimeDesired may be "" for none.
func rec(rs ResourcesStatus, rd ResourcesDesiredStatus, runtime RuntimeStatus, runtimeDesired RuntimeDesiredStatus) Pipeline {
	p, err := Create(Definition{Name: "p1", Description: "d", RuntimeConfig: []byte(`{"checkpoint_interval_secs":1}`)}, "00000000-0000-4000-8000-000000000001", t0)
	if err != nil {
		panic(err)
	}
	p.Generation = 7
	p.RefreshVersion = 20
	p.ResourcesStatus = rs
	p.ResourcesDesiredStatus = rd
	if runtime != "" {
		p.RuntimeStatus = ptr(runtime)
		p.DeploymentLocation = ptr("http://127.0.0.1:9999")
		p.DeploymentID = ptr("dep-1")
	}
	if runtimeDesired != "" {
		p.RuntimeDesiredStatus = ptr(runtimeDesired)
		initial := InitialRunning
		if runtimeDesired == RuntimeDesiredPaused {
			initial = InitialPaused
		}
		p.DeploymentInitial = ptr(initial)
	}
	if rs != ResourcesStopped {
		p.StorageStatus = StorageInUse
		p.DeploymentID = ptr("dep-1")
	}
	p.Workflow = &WorkflowRef{Kind: WorkflowStart, Generation: 7, ExecutionName: "p1-g7-start", StartedAt: t0, Status: "RUNNING"}
	return p
}

func withStorage(p Pipeline, enabled bool) Pipeline {
	if enabled {
		p.RuntimeConfig = json.RawMessage(`{"storage":true}`)
	} else {
		p.RuntimeConfig = json.RawMessage(`{"storage":false}`)
	}
	return p
}

func withError(p Pipeline) Pipeline {
	p.DeploymentError = &ErrorBody{Message: "boom", ErrorCode: "SuspendFailed", Details: map[string]any{}}
	return p
}

func withInitial(p Pipeline, initial InitialState) Pipeline {
	p.DeploymentInitial = ptr(initial)
	return p
}

func withStorageStatus(p Pipeline, s StorageStatus) Pipeline {
	p.StorageStatus = s
	return p
}

// errorJSON renders an error as the response body it becomes.
func errorJSON(t *testing.T, err error) string {
	t.Helper()
	de, ok := err.(*Error)
	if !ok {
		t.Fatalf("error %T (%v) is not a catalogue error", err, err)
	}
	b, mErr := json.Marshal(de)
	if mErr != nil {
		t.Fatal(mErr)
	}
	return string(b)
}

// jsonEqual compares two JSON documents semantically.
func jsonEqual(t *testing.T, got, want string) {
	t.Helper()
	var g, w any
	if err := json.Unmarshal([]byte(got), &g); err != nil {
		t.Fatalf("got is not JSON: %v: %s", err, got)
	}
	if err := json.Unmarshal([]byte(want), &w); err != nil {
		t.Fatalf("want is not JSON: %v: %s", err, want)
	}
	gb, _ := json.Marshal(g)
	wb, _ := json.Marshal(w)
	if string(gb) != string(wb) {
		t.Errorf("JSON differs\n got: %s\nwant: %s", gb, wb)
	}
}
