package sampleruntime

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/getkin/kin-openapi/openapi3"

	"github.com/sluicehq/sluice/internal/testkit"
)

// controllerStatusSchema loads Feldera's current OpenAPI document (from
// shared/reference beside the repository) and returns its ControllerStatus
// schema, the answer of Feldera's GET /stats.
func controllerStatusSchema(t *testing.T) *openapi3.Schema {
	t.Helper()
	path := testkit.FelderaReference(t, "feldera-openapi-current.json")
	doc, err := openapi3.NewLoader().LoadFromFile(path)
	if err != nil {
		t.Fatalf("loading %s: %v", path, err)
	}
	ref := doc.Components.Schemas["ControllerStatus"]
	if ref == nil || ref.Value == nil {
		t.Fatalf("%s has no ControllerStatus schema", path)
	}
	return ref.Value
}

// validateStats checks one /stats answer against the schema, with format
// validation (uuid, int64) on.
func validateStats(schema *openapi3.Schema, body []byte) error {
	var v any
	if err := json.Unmarshal(body, &v); err != nil {
		return err
	}
	return schema.VisitJSON(v, openapi3.MultiErrors(), openapi3.EnableFormatValidation(),
		openapi3.WithStringFormatValidator("uuid", openapi3.NewRegexpFormatValidator(openapi3.FormatOfStringForUUIDOfRFC4122)))
}

// TestStatsMatchFelderaControllerStatus: GET /stats is a valid Feldera
// ControllerStatus (current document) while Running and Paused, and its
// Feldera metrics agree with the job's own fields.
func TestStatsMatchFelderaControllerStatus(t *testing.T) {
	schema := controllerStatusSchema(t)
	h := start(t, t.TempDir(), `{"checkpoint_interval_secs":0}`, "")
	h.waitCount(50)
	h.expect("POST", "/checkpoint", 200)

	check := func(wantState string) Stats {
		t.Helper()
		body := h.expect("GET", "/stats", 200)
		if err := validateStats(schema, body); err != nil {
			t.Fatalf("/stats is not a Feldera ControllerStatus: %v\n%s", err, body)
		}
		var s Stats
		if err := json.Unmarshal(body, &s); err != nil {
			t.Fatal(err)
		}
		g := s.GlobalMetrics
		if g.State != wantState {
			t.Errorf("global_metrics.state = %q, want %q", g.State, wantState)
		}
		if g.IncarnationUUID != h.rt.IncarnationUUID() || g.IncarnationUUID != s.IncarnationUUID {
			t.Errorf("global_metrics.incarnation_uuid %q, runtime's %q", g.IncarnationUUID, h.rt.IncarnationUUID())
		}
		if g.TotalProcessedRecords != s.Count || g.TotalInputRecords != s.Count {
			t.Errorf("total_processed_records %d, total_input_records %d, count %d", g.TotalProcessedRecords, g.TotalInputRecords, s.Count)
		}
		// Seconds since the epoch (not milliseconds), around now.
		if now := time.Now().Unix(); g.StartTime <= 0 || g.StartTime > now || now-g.StartTime > 3600 {
			t.Errorf("start_time %d is not this incarnation's start in epoch seconds (now %d)", g.StartTime, now)
		}
		if g.InitialStartTime != g.StartTime {
			t.Errorf("initial_start_time %d, start_time %d: started from scratch", g.InitialStartTime, g.StartTime)
		}
		if g.StorageBytes == 0 || s.Checkpoints != 1 {
			t.Errorf("storage_bytes %d with %d checkpoints", g.StorageBytes, s.Checkpoints)
		}
		if g.TransactionStatus != "NoTransaction" || g.TransactionID != 0 || g.PipelineComplete {
			t.Errorf("transaction %q/%d, pipeline_complete %v", g.TransactionStatus, g.TransactionID, g.PipelineComplete)
		}
		if len(s.Inputs) != 1 || s.Inputs[0].EndpointName != GeneratorEndpoint || s.Inputs[0].Metrics.TotalRecords != s.Count {
			t.Errorf("inputs %+v, count %d", s.Inputs, s.Count)
		}
		if s.Outputs == nil || len(s.Outputs) != 0 {
			t.Errorf("outputs %v, want []", s.Outputs)
		}
		return s
	}
	running := check("Running")
	if running.GlobalMetrics.TotalCompletedSteps == 0 {
		t.Errorf("no step counted after %d events", running.Count)
	}
	h.expect("POST", "/pause", 202)
	h.waitStatus(StatusPaused)
	check("Paused")
}

// TestStatsInitialStartTimeSurvivesResume: a resumed incarnation reports the
// first incarnation's start as initial_start_time, read from the checkpoint.
func TestStatsInitialStartTimeSurvivesResume(t *testing.T) {
	dir := t.TempDir()
	h1 := start(t, dir, `{"checkpoint_interval_secs":0}`, "")
	h1.waitCount(10)
	first := h1.stats().GlobalMetrics
	h1.expect("POST", "/suspend", 202)
	h1.waitStatus(StatusSuspended)
	if cp := newestCheckpoint(t, dir); cp.InitialStartTime != first.StartTime {
		t.Fatalf("checkpoint initial_start_time %d, first start %d", cp.InitialStartTime, first.StartTime)
	}
	h1.rt.Close()

	h2 := start(t, dir, `{"checkpoint_interval_secs":0}`, "")
	h2.waitStatus(StatusRunning)
	g := h2.stats().GlobalMetrics
	if g.InitialStartTime != first.StartTime || g.IncarnationUUID == first.IncarnationUUID {
		t.Fatalf("resumed: initial_start_time %d (first start %d), incarnation %s (first %s)",
			g.InitialStartTime, first.StartTime, g.IncarnationUUID, first.IncarnationUUID)
	}
}

// TestStatsSchemaValidationBites: the validation above rejects answers that
// are not Feldera's shape (the old shape, a wrong state, a missing field).
func TestStatsSchemaValidationBites(t *testing.T) {
	schema := controllerStatusSchema(t)
	h := start(t, t.TempDir(), `{"storage":false}`, "")
	h.waitCount(1)
	good := h.expect("GET", "/stats", 200)
	if err := validateStats(schema, good); err != nil {
		t.Fatalf("valid answer rejected: %v\n%s", err, good)
	}
	mutate := func(f func(m map[string]any)) []byte {
		var m map[string]any
		_ = json.Unmarshal(good, &m)
		f(m)
		b, _ := json.Marshal(m)
		return b
	}
	global := func(m map[string]any) map[string]any { return m["global_metrics"].(map[string]any) }
	bad := map[string][]byte{
		"the old shape":             []byte(`{"count":3,"sum":3,"last_sequence_number":2}`),
		"state Initializing":        mutate(func(m map[string]any) { global(m)["state"] = "Initializing" }),
		"no rss_bytes":              mutate(func(m map[string]any) { delete(global(m), "rss_bytes") }),
		"incarnation not a uuid":    mutate(func(m map[string]any) { global(m)["incarnation_uuid"] = "inc-1" }),
		"memory_pressure not enum":  mutate(func(m map[string]any) { global(m)["memory_pressure"] = "none" }),
		"input without barrier":     mutate(func(m map[string]any) { delete(m["inputs"].([]any)[0].(map[string]any), "barrier") }),
		"start_time not an integer": mutate(func(m map[string]any) { global(m)["start_time"] = 1.5 }),
	}
	for name, b := range bad {
		if err := validateStats(schema, b); err == nil {
			t.Errorf("%s: accepted: %s", name, b)
		} else if strings.TrimSpace(err.Error()) == "" {
			t.Errorf("%s: empty error", name)
		}
	}
}
