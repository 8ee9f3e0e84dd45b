package samtemplate

import (
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"testing"
)

type aslCatch struct {
	ErrorEquals []string `json:"ErrorEquals"`
	Next        string   `json:"Next"`
}

type aslRetry struct {
	ErrorEquals []string `json:"ErrorEquals"`
	MaxAttempts int      `json:"MaxAttempts"`
}

type aslState struct {
	Type           string     `json:"Type"`
	TimeoutSeconds int        `json:"TimeoutSeconds"`
	Retry          []aslRetry `json:"Retry"`
	Catch          []aslCatch `json:"Catch"`
}

// TestTaskErrorRouting checks the retry contract of every Task state: a
// timeout, Lambda's service errors and TemporaryError are retried, and a
// superseded step ends the execution. Where every other error goes is the rule
// of asl_routing_test.go.
func TestTaskErrorRouting(t *testing.T) {
	files, err := filepath.Glob(filepath.Join(repoRoot(t), "statemachine", "*.asl.json"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no state machines: %v", err)
	}
	infra := []string{"TemporaryError", "States.Timeout", "Lambda.ServiceException", "Lambda.TooManyRequestsException"}
	for _, f := range files {
		raw, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		var m struct {
			States map[string]aslState `json:"States"`
		}
		if err := json.Unmarshal(raw, &m); err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		for name, st := range m.States {
			if st.Type != "Task" {
				continue
			}
			where := filepath.Base(f) + " " + name
			if st.TimeoutSeconds <= 0 {
				t.Errorf("%s: a Task needs TimeoutSeconds", where)
			}
			for _, e := range infra {
				if !slices.ContainsFunc(st.Retry, func(r aslRetry) bool { return slices.Contains(r.ErrorEquals, e) && r.MaxAttempts > 0 }) {
					t.Errorf("%s: %s is not retried", where, e)
				}
			}
			if len(st.Catch) == 0 || !slices.Contains(st.Catch[0].ErrorEquals, "SupersededError") {
				t.Errorf("%s: SupersededError must be caught first (the execution ends without writing)", where)
			}
		}
	}
}
