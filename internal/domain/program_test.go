package domain

import (
	"encoding/json"
	"strings"
	"testing"
)

func TestProgramFieldsAreStoredAsGiven(t *testing.T) {
	def := Definition{Name: "p", ProgramCode: "CREATE TABLE t(x INT);\n", UdfRust: "// rust", UdfToml: "[deps]",
		ProgramConfig: []byte(`{ "profile" : "optimized", "cache": false }`), Tags: []string{"team-a"}}
	p, err := Create(def, "id", t0)
	if err != nil {
		t.Fatal(err)
	}
	if p.ProgramCode != def.ProgramCode || p.UdfRust != def.UdfRust || p.UdfToml != def.UdfToml {
		t.Errorf("program not stored as given: %+v", p)
	}
	if string(p.ProgramConfig) != `{"profile":"optimized","cache":false}` {
		t.Errorf("program_config %s", p.ProgramConfig)
	}
	if p.ProgramStatus != ProgramSuccess || p.ProgramVersion != 1 || p.ProgramError.SystemError != nil || !p.ProgramStatusSince.Equal(t0) {
		t.Errorf("a deployable program is Success, version 1: %+v", p)
	}
	if p.PlatformVersion == "" || len(p.Tags) != 1 {
		t.Errorf("platform_version %q tags %v", p.PlatformVersion, p.Tags)
	}
	// Omitted program fields are empty (a superset of Feldera, where program_code is required).
	empty, err := Create(Definition{Name: "q"}, "id", t0)
	if err != nil || empty.ProgramCode != "" || string(empty.ProgramConfig) != "{}" || empty.Tags == nil {
		t.Errorf("omitted program: %+v %v", empty, err)
	}
}

func TestProgramVersionChangesOnlyWithTheProgram(t *testing.T) {
	p, _ := Create(Definition{Name: "p1", ProgramCode: "a"}, "id", t0)
	same, err := Replace(p, Definition{Description: "new", ProgramCode: "a"}, t0.Add(1))
	if err != nil {
		t.Fatal(err)
	}
	if same.Pipeline.ProgramVersion != 1 || same.Pipeline.Version != 2 || !same.Pipeline.ProgramStatusSince.Equal(t0) {
		t.Errorf("a description edit keeps program_version: %+v", same.Pipeline)
	}
	changed, err := Replace(same.Pipeline, Definition{ProgramCode: "b"}, t0.Add(2))
	if err != nil {
		t.Fatal(err)
	}
	if changed.Pipeline.ProgramVersion != 2 || !changed.Pipeline.ProgramStatusSince.Equal(t0.Add(2)) {
		t.Errorf("a new program gets a new program_version: %+v", changed.Pipeline)
	}
}

func TestUndeployableProgram(t *testing.T) {
	p, err := Create(Definition{Name: "p1", ProgramConfig: []byte(`{"runtime_version":"v0.96.0"}`)}, "id", t0)
	if err != nil {
		t.Fatal(err)
	}
	if p.ProgramStatus != ProgramSystemError || p.ProgramError.SystemError == nil || !strings.Contains(*p.ProgramError.SystemError, "runtime_version") {
		t.Fatalf("runtime_version cannot be honoured: %+v", p.ProgramError)
	}
	out, err := Start(p, StartRequest{Initial: InitialRunning, DismissError: true}, t0.Add(1))
	if err != nil {
		t.Fatal(err)
	}
	if out.Workflow != "" || !out.Pipeline.FullyStopped() || out.Pipeline.DeploymentError == nil ||
		out.Pipeline.DeploymentError.ErrorCode != string(CodeStartFailedDueToFailedCompilation) {
		t.Fatalf("a start of an undeployable program stays Stopped with the error: %+v", out)
	}
	// The error can be dismissed, and a fixed program starts.
	fixed, err := Replace(out.Pipeline, Definition{ProgramConfig: []byte(`{}`)}, t0.Add(2))
	if err != nil || fixed.Pipeline.ProgramStatus != ProgramSuccess {
		t.Fatalf("fixed program: %+v %v", fixed.Pipeline.ProgramStatus, err)
	}
	started, err := Start(fixed.Pipeline, StartRequest{Initial: InitialRunning, DismissError: true}, t0.Add(3))
	if err != nil || started.Workflow != WorkflowStart || started.Pipeline.DeploymentError != nil {
		t.Fatalf("start after the fix: %+v %v", started, err)
	}
}

func TestProgramValidation(t *testing.T) {
	bad := []Definition{
		{Name: "p", ProgramConfig: []byte(`[1]`)},
		{Name: "p", ProgramConfig: []byte(`{"cache":"yes"}`)},
		{Name: "p", ProgramConfig: []byte(`{"profile":"fastest"}`)},
		{Name: "p", ProgramCode: strings.Repeat("x", MaxProgramBytes+1)},
		{Name: "p", ProgramCode: "bad \xff utf-8"},
		{Name: "p", Tags: []string{""}},
		{Name: "p", Tags: make([]string, MaxTags+1)},
	}
	for _, d := range bad {
		if _, err := Create(d, "id", t0); codeOf(err) != CodeInvalidRequestBody {
			t.Errorf("%.60q: got %v, want InvalidRequestBody", d, err)
		}
	}
}

func TestNormalizeFillsRecordsWrittenBeforeProgramFields(t *testing.T) {
	var p Pipeline
	if err := json.Unmarshal([]byte(`{"name":"old","id":"x","created_at":"2026-01-02T03:04:05Z"}`), &p); err != nil {
		t.Fatal(err)
	}
	p = p.Normalize()
	if p.ProgramStatus != ProgramSuccess || p.ProgramVersion != 1 || string(p.ProgramConfig) != "{}" || p.Tags == nil || p.PlatformVersion == "" {
		t.Errorf("normalized: %+v", p)
	}
	if _, err := json.Marshal(p.ProgramStatus); err != nil {
		t.Error(err)
	}
}

// Issue 14: no API caller decides what runs on a host.
func TestRuntimeConfigCannotNameWhatRuns(t *testing.T) {
	for _, rc := range []string{`{"command":["/bin/sh","-c","id > /tmp/pwned"]}`, `{"image":"evil:latest"}`, `{"entrypoint":["x"]}`, `{"command":null}`,
		`{"Command":["/bin/sh"]}`, `{"IMAGE":"evil:latest"}`, `{"EntryPoint":["x"]}`, `{"STORAGE":true}`, `{"Checkpoint_Interval_Secs":1}`} {
		if _, err := Create(Definition{Name: "x", RuntimeConfig: []byte(rc)}, "id", t0); codeOf(err) != CodeInvalidRequestBody {
			t.Errorf("%s: got %v, want InvalidRequestBody", rc, err)
		}
	}
}
