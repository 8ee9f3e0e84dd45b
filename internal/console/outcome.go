package console

import (
	"strings"
	"time"
)

// Event is one event of an execution's history, as the console shows it
// (GetExecutionHistory's event, its details flattened).
type Event struct {
	ID         int64     `json:"id"`
	PreviousID int64     `json:"previous_event_id,omitempty"`
	Type       string    `json:"type"`
	Timestamp  time.Time `json:"timestamp"`
	// State names the state of a …StateEntered or …StateExited event.
	State    string `json:"state,omitempty"`
	Input    string `json:"input,omitempty"`
	Output   string `json:"output,omitempty"`
	Error    string `json:"error,omitempty"`
	Cause    string `json:"cause,omitempty"`
	Resource string `json:"resource,omitempty"`
}

// Outcome of a state in one execution.
type Outcome string

const (
	OutcomeCurrent   Outcome = "current"   // entered, not left, the execution runs
	OutcomeSucceeded Outcome = "succeeded" // left normally
	OutcomeCaught    Outcome = "caught"    // its task failed and a Catch moved on
	OutcomeFailed    Outcome = "failed"    // the execution failed in it (a Fail state, an uncaught error)
	OutcomeAborted   Outcome = "aborted"   // the execution was stopped (StopExecution) in it
	OutcomeTimedOut  Outcome = "timed_out" // the execution timed out in it
)

// Visit is one entry into a state (a loop enters the same state again).
type Visit struct {
	State   string  `json:"state"`
	Outcome Outcome `json:"outcome"`
	// Retries counts the task attempts after the first within this entry.
	Retries   int        `json:"retries"`
	Error     string     `json:"error,omitempty"`
	Cause     string     `json:"cause,omitempty"`
	EnteredAt time.Time  `json:"entered_at"`
	ExitedAt  *time.Time `json:"exited_at,omitempty"`
	// EnteredEvent and ExitedEvent are history event ids (0: none).
	EnteredEvent int64 `json:"entered_event"`
	ExitedEvent  int64 `json:"exited_event,omitempty"`
}

// StateSummary folds the visits of one state: the outcome of its latest
// visit, how often it was entered and retried in all.
type StateSummary struct {
	Outcome Outcome `json:"outcome"`
	Visits  int     `json:"visits"`
	Retries int     `json:"retries"`
	Error   string  `json:"error,omitempty"`
}

// Transition is a move from one state to the next; Caught when it was a
// Catch edge.
type Transition struct {
	From   string `json:"from"`
	To     string `json:"to"`
	Caught bool   `json:"caught,omitempty"`
}

// Trace is the path one execution took, read from its history.
type Trace struct {
	// Status: RUNNING, SUCCEEDED, FAILED, ABORTED or TIMED_OUT.
	Status      string                  `json:"status"`
	Error       string                  `json:"error,omitempty"`
	Cause       string                  `json:"cause,omitempty"`
	Visits      []Visit                 `json:"visits"`
	States      map[string]StateSummary `json:"states"`
	Transitions []Transition            `json:"transitions"`
}

// TraceHistory maps history events (oldest first) to per-state outcomes:
// a state entry ends with its …StateExited event or, when the engine does
// not send one (a caught failure, a Succeed or Fail state), with the next
// state's entry or the execution's end. Within an entry every
// TaskScheduled/LambdaFunctionScheduled after the first is a retry; a
// failed last attempt followed by a move on is a caught failure.
func TraceHistory(events []Event) Trace {
	t := Trace{Status: "RUNNING", States: map[string]StateSummary{}, Visits: []Visit{}, Transitions: []Transition{}}
	open := -1    // index of the visit not yet ended
	attempts := 0 // task attempts scheduled in the open visit
	lastFailed := false
	closeOpen := func(outcome Outcome, at *time.Time, exitEvent int64) {
		if open < 0 {
			return
		}
		v := &t.Visits[open]
		v.Outcome = outcome
		v.ExitedAt = at
		v.ExitedEvent = exitEvent
		v.Retries = max(attempts-1, 0)
		open, attempts, lastFailed = -1, 0, false
	}
	for _, ev := range events {
		ts := ev.Timestamp
		switch {
		case strings.HasSuffix(ev.Type, "StateEntered"):
			if open >= 0 { // left without an exit event: moved on
				closeOpen(leftOutcome(lastFailed), &ts, 0)
			}
			if n := len(t.Visits); n > 0 {
				prev := t.Visits[n-1]
				t.Transitions = append(t.Transitions, Transition{From: prev.State, To: ev.State, Caught: prev.Outcome == OutcomeCaught})
			}
			t.Visits = append(t.Visits, Visit{State: ev.State, Outcome: OutcomeCurrent, EnteredAt: ts, EnteredEvent: ev.ID})
			open = len(t.Visits) - 1
		case strings.HasSuffix(ev.Type, "StateExited"):
			if open >= 0 && t.Visits[open].State == ev.State {
				closeOpen(leftOutcome(lastFailed), &ts, ev.ID)
			}
		case ev.Type == "TaskScheduled" || ev.Type == "LambdaFunctionScheduled":
			attempts++
			lastFailed = false
		case isTaskFailure(ev.Type):
			lastFailed = true
			if open >= 0 {
				t.Visits[open].Error, t.Visits[open].Cause = ev.Error, ev.Cause
			}
		case ev.Type == "ExecutionSucceeded":
			t.Status = "SUCCEEDED"
			closeOpen(OutcomeSucceeded, &ts, 0)
		case ev.Type == "ExecutionFailed":
			t.Status, t.Error, t.Cause = "FAILED", ev.Error, ev.Cause
			if open >= 0 && t.Visits[open].Error == "" {
				t.Visits[open].Error, t.Visits[open].Cause = ev.Error, ev.Cause
			}
			closeOpen(OutcomeFailed, &ts, 0)
		case ev.Type == "ExecutionAborted":
			t.Status, t.Error, t.Cause = "ABORTED", ev.Error, ev.Cause
			closeOpen(OutcomeAborted, &ts, 0)
		case ev.Type == "ExecutionTimedOut":
			t.Status, t.Error, t.Cause = "TIMED_OUT", ev.Error, ev.Cause
			closeOpen(OutcomeTimedOut, &ts, 0)
		}
	}
	if open >= 0 { // still running: the retries so far
		t.Visits[open].Retries = max(attempts-1, 0)
	}
	for _, v := range t.Visits {
		s := t.States[v.State]
		s.Outcome = v.Outcome
		s.Visits++
		s.Retries += v.Retries
		if v.Error != "" {
			s.Error = v.Error
		}
		t.States[v.State] = s
	}
	return t
}

func leftOutcome(lastAttemptFailed bool) Outcome {
	if lastAttemptFailed {
		return OutcomeCaught
	}
	return OutcomeSucceeded
}

func isTaskFailure(typ string) bool {
	switch typ {
	case "TaskFailed", "TaskTimedOut", "TaskStartFailed", "TaskSubmitFailed",
		"LambdaFunctionFailed", "LambdaFunctionTimedOut", "LambdaFunctionStartFailed", "LambdaFunctionScheduleFailed":
		return true
	}
	return false
}
