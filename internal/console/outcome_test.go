package console

import (
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"
)

func loadHistory(t *testing.T, name string) []Event {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name+".json"))
	if err != nil {
		t.Fatal(err)
	}
	var evs []Event
	if err := json.Unmarshal(b, &evs); err != nil {
		t.Fatal(err)
	}
	return evs
}

// TestTraceHistoryRealFixtures reads histories of real executions of the
// suspend workflow on the local stack (recorded by TestConsoleInBrowser with
// SLUICE_CONSOLE_RECORD_FIXTURES=1).
func TestTraceHistoryRealFixtures(t *testing.T) {
	for _, tc := range []struct {
		fixture string
		status  string
		want    map[string]Outcome
		// the distinct states in the order first entered
		order []string
	}{
		{"suspend-succeeded", "SUCCEEDED",
			map[string]Outcome{"MarkSuspending": OutcomeSucceeded, "WaitUntilSuspended": OutcomeSucceeded, "BackOffBeforeNextSuspendCheck": OutcomeSucceeded, "MarkStopped": OutcomeSucceeded, "Stopped": OutcomeSucceeded},
			[]string{"MarkSuspending", "RequestSuspend", "WaitUntilSuspended", "WaitUntilSuspendedResult", "BackOffBeforeNextSuspendCheck", "MarkSuspended", "Deprovision", "MarkStopped", "Stopped"}},
		{"suspend-aborted", "ABORTED", map[string]Outcome{"MarkSuspending": OutcomeSucceeded, "WaitUntilSuspended": OutcomeAborted}, nil},
		{"suspend-caught", "SUCCEEDED", map[string]Outcome{"RecordError": OutcomeSucceeded}, nil},
	} {
		t.Run(tc.fixture, func(t *testing.T) {
			tr := TraceHistory(loadHistory(t, tc.fixture))
			if tr.Status != tc.status {
				t.Fatalf("status %s, want %s", tr.Status, tc.status)
			}
			for state, want := range tc.want {
				if got := tr.States[state].Outcome; got != want {
					t.Errorf("%s: %s, want %s (all %+v)", state, got, want, tr.States)
				}
			}
			if tc.order != nil {
				var order []string
				for _, v := range tr.Visits {
					if !slices.Contains(order, v.State) {
						order = append(order, v.State)
					}
				}
				if !slices.Equal(order, tc.order) {
					t.Errorf("order %v, want %v", order, tc.order)
				}
				if tr.States["WaitUntilSuspended"].Visits < 2 {
					t.Errorf("the wait loop ran %d times, want ≥ 2", tr.States["WaitUntilSuspended"].Visits)
				}
			}
			// A caught failure moves on along a Catch edge.
			if tc.fixture == "suspend-caught" {
				caught := ""
				for state, s := range tr.States {
					if s.Outcome == OutcomeCaught {
						caught = state
					}
				}
				if caught == "" || tr.States[caught].Error != "PipelineRuntimeError" {
					t.Fatalf("no caught state with PipelineRuntimeError: %+v", tr.States)
				}
				if !slices.Contains(tr.Transitions, Transition{From: caught, To: "RecordError", Caught: true}) {
					t.Fatalf("transitions %+v: want %s → RecordError caught", tr.Transitions, caught)
				}
			}
		})
	}
}

// TestTraceHistoryTable covers the rules on small synthetic histories.
func TestTraceHistoryTable(t *testing.T) {
	at := time.Date(2026, 12, 2, 0, 0, 0, 0, time.UTC)
	ev := func(typ, state string) Event {
		at = at.Add(time.Millisecond)
		return Event{Type: typ, State: state, Timestamp: at}
	}
	fail := func(typ, errName string) Event { e := ev(typ, ""); e.Error = errName; return e }
	for _, tc := range []struct {
		name    string
		events  []Event
		status  string
		want    map[string]StateSummary
		caughts int
	}{
		{"retried then succeeded", []Event{ev("ExecutionStarted", ""), ev("TaskStateEntered", "A"), ev("LambdaFunctionScheduled", ""),
			fail("LambdaFunctionFailed", "TemporaryError"), ev("LambdaFunctionScheduled", ""), fail("LambdaFunctionFailed", "TemporaryError"),
			ev("LambdaFunctionScheduled", ""), ev("LambdaFunctionSucceeded", ""), ev("TaskStateExited", "A"), ev("SucceedStateEntered", "Done"),
			ev("SucceedStateExited", "Done"), ev("ExecutionSucceeded", "")},
			"SUCCEEDED", map[string]StateSummary{"A": {Outcome: OutcomeSucceeded, Visits: 1, Retries: 2, Error: "TemporaryError"}, "Done": {Outcome: OutcomeSucceeded, Visits: 1}}, 0},
		{"caught without an exit event", []Event{ev("TaskStateEntered", "A"), ev("TaskScheduled", ""), fail("TaskFailed", "PipelineRuntimeError"),
			ev("TaskStateEntered", "RecordError"), ev("TaskScheduled", "")},
			"RUNNING", map[string]StateSummary{"A": {Outcome: OutcomeCaught, Visits: 1, Error: "PipelineRuntimeError"}, "RecordError": {Outcome: OutcomeCurrent, Visits: 1}}, 1},
		{"current while running, retries so far", []Event{ev("TaskStateEntered", "A"), ev("LambdaFunctionScheduled", ""), fail("LambdaFunctionFailed", "TemporaryError"), ev("LambdaFunctionScheduled", "")},
			"RUNNING", map[string]StateSummary{"A": {Outcome: OutcomeCurrent, Visits: 1, Retries: 1, Error: "TemporaryError"}}, 0},
		{"fail state", []Event{ev("ChoiceStateEntered", "C"), ev("ChoiceStateExited", "C"), ev("FailStateEntered", "F"), fail("ExecutionFailed", "WorkflowInterrupted")},
			"FAILED", map[string]StateSummary{"C": {Outcome: OutcomeSucceeded, Visits: 1}, "F": {Outcome: OutcomeFailed, Visits: 1, Error: "WorkflowInterrupted"}}, 0},
		{"aborted", []Event{ev("WaitStateEntered", "W"), fail("ExecutionAborted", "Superseded")},
			"ABORTED", map[string]StateSummary{"W": {Outcome: OutcomeAborted, Visits: 1}}, 0},
		{"timed out", []Event{ev("TaskStateEntered", "A"), ev("ExecutionTimedOut", "")},
			"TIMED_OUT", map[string]StateSummary{"A": {Outcome: OutcomeTimedOut, Visits: 1}}, 0},
		{"loop", []Event{ev("TaskStateEntered", "A"), ev("TaskStateExited", "A"), ev("WaitStateEntered", "W"), ev("WaitStateExited", "W"),
			ev("TaskStateEntered", "A"), ev("TaskStateExited", "A"), ev("ExecutionSucceeded", "")},
			"SUCCEEDED", map[string]StateSummary{"A": {Outcome: OutcomeSucceeded, Visits: 2}, "W": {Outcome: OutcomeSucceeded, Visits: 1}}, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tr := TraceHistory(tc.events)
			if tr.Status != tc.status {
				t.Fatalf("status %s, want %s", tr.Status, tc.status)
			}
			if len(tr.States) != len(tc.want) {
				t.Fatalf("states %+v, want %+v", tr.States, tc.want)
			}
			for s, want := range tc.want {
				if got := tr.States[s]; got != want {
					t.Errorf("%s: %+v, want %+v", s, got, want)
				}
			}
			n := 0
			for _, tn := range tr.Transitions {
				if tn.Caught {
					n++
				}
			}
			if n != tc.caughts {
				t.Errorf("caught transitions %d, want %d (%+v)", n, tc.caughts, tr.Transitions)
			}
		})
	}
}
