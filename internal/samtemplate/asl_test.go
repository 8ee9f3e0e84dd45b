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

// TestTaskErrorRouting checks the error contract of every Task state: a
// timeout, Lambda's service errors and TemporaryError are retried; a
// superseded step ends the execution; and where a Task's catch-all records the
// error and force-stops the pipeline, the control plane's own outages
// (TemporaryError, timeouts, Lambda service errors) are routed to a Fail state
// first: a pipeline is never force-stopped because DynamoDB or ECS was down,
// the reconciler restarts the workflow instead.
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
			last := st.Catch[len(st.Catch)-1]
			if !slices.Contains(last.ErrorEquals, "States.ALL") || last.Next != "RecordError" {
				continue
			}
			routed := false
			for _, c := range st.Catch[:len(st.Catch)-1] {
				if m.States[c.Next].Type == "Fail" && slices.Contains(c.ErrorEquals, "TemporaryError") && slices.Contains(c.ErrorEquals, "States.Timeout") {
					routed = true
				}
			}
			if !routed {
				t.Errorf("%s: its catch-all force-stops the pipeline, but the control plane's own outages are not routed to a Fail state before it", where)
			}
		}
	}
}
