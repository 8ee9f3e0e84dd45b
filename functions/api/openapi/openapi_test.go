package openapi

import (
	"context"
	"encoding/json"
	"testing"

	"github.com/getkin/kin-openapi/openapi3"
)

func TestDocumentIsValid(t *testing.T) {
	for name, load := range map[string]func() ([]byte, error){
		"yaml": func() ([]byte, error) { return YAML(), nil },
		"json": JSON,
	} {
		t.Run(name, func(t *testing.T) {
			b, err := load()
			if err != nil {
				t.Fatal(err)
			}
			doc, err := openapi3.NewLoader().LoadFromData(b)
			if err != nil {
				t.Fatal(err)
			}
			if err := doc.Validate(context.Background()); err != nil {
				t.Fatal(err)
			}
			if doc.Paths.Find("/v0/pipelines/{pipeline_name}/stop") == nil {
				t.Fatal("no stop route")
			}
		})
	}
}

func TestJSONIsStable(t *testing.T) {
	a, err := JSON()
	if err != nil {
		t.Fatal(err)
	}
	b, _ := JSON()
	if &a[0] != &b[0] {
		t.Error("JSON converted twice")
	}
	var v map[string]any
	if err := json.Unmarshal(a, &v); err != nil || v["openapi"] != "3.0.3" {
		t.Fatalf("JSON: %v %v", err, v["openapi"])
	}
}

func TestErrorSchemaMatchesSeed(t *testing.T) {
	doc, err := openapi3.NewLoader().LoadFromData(YAML())
	if err != nil {
		t.Fatal(err)
	}
	s := doc.Components.Schemas["Error"].Value
	want := map[string]bool{"message": true, "error_code": true, "details": true}
	if len(s.Required) != len(want) {
		t.Fatalf("required %v", s.Required)
	}
	for _, r := range s.Required {
		if !want[r] {
			t.Fatalf("required %v", s.Required)
		}
	}
	// The seed's own example answer validates.
	example := map[string]any{
		"message":    "Deployment resources status (current: 'Stopping', desired: 'Stopped') cannot have desired changed to 'Provisioned'. Cannot restart the pipeline while it is stopping. Wait for it to stop before starting a new instance of the pipeline.",
		"error_code": "IllegalPipelineAction",
		"details": map[string]any{"status": "Stopping", "current_desired_status": "Stopped", "new_desired_status": "Provisioned",
			"hint": "Cannot restart the pipeline while it is stopping. Wait for it to stop before starting a new instance of the pipeline."},
	}
	if err := s.VisitJSON(example); err != nil {
		t.Fatal(err)
	}
	if err := s.VisitJSON(map[string]any{"message": "m", "error_code": "X"}); err == nil {
		t.Fatal("an error without details validates")
	}
}
