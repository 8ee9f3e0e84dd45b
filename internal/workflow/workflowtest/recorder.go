// Package workflowtest holds the tests' double of the workflow starter.
package workflowtest

import (
	"context"
	"sync"
	"time"

	"github.com/sluicehq/sluice/internal/domain"
	"github.com/sluicehq/sluice/internal/workflow"
)

// Recorder is a workflow.Starter for tests: it records what it was asked to start and
// stop, behaves like Step Functions for repeated names (the second start of a
// name returns the first execution), and can be told to fail. It is safe for
// concurrent use.
type Recorder struct {
	mu         sync.Mutex
	calls      []StartCall
	executions []StartCall // distinct execution names, in start order
	byName     map[string]domain.WorkflowRef
	finished   map[string]bool
	stops      []StopCall
	startErr   error
	startFails int // > 0: fail that many more starts; < 0: fail every start
	stopErr    error
	now        func() time.Time
}

// StartCall is one Start the Recorder received.
type StartCall struct {
	Pipeline      string
	Generation    int64
	Kind          domain.WorkflowKind
	ExecutionName string
	Input         workflow.Input
}

// StopCall is one Stop the Recorder received.
type StopCall struct {
	Ref   domain.WorkflowRef
	Cause string
}

var _ workflow.Starter = (*Recorder)(nil)

// RecorderStateMachinePrefix is the fake state machine ARN prefix of the
// executions a Recorder reports: <prefix><kind>.
const RecorderStateMachinePrefix = "arn:aws:states:us-east-1:000000000000:stateMachine:sluice-"

// NewRecorder returns an empty Recorder.
func NewRecorder() *Recorder {
	return &Recorder{byName: map[string]domain.WorkflowRef{}, finished: map[string]bool{}, now: time.Now}
}

// FailStarts makes the next n starts fail with err (n < 0: every start until
// told otherwise; n = 0: none).
func (r *Recorder) FailStarts(n int, err error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.startFails, r.startErr = n, err
}

// FailStops makes every stop fail with err (nil: succeed).
func (r *Recorder) FailStops(err error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.stopErr = err
}

// Start implements workflow.Starter.
func (r *Recorder) Start(ctx context.Context, p domain.Pipeline, kind domain.WorkflowKind) (domain.WorkflowRef, error) {
	return r.StartAttempt(ctx, p, kind, 0)
}

// StartAttempt records the attempt-th execution of a workflow.
func (r *Recorder) StartAttempt(_ context.Context, p domain.Pipeline, kind domain.WorkflowKind, attempt int) (domain.WorkflowRef, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	name := workflow.ExecutionNameFor(p, kind, attempt)
	call := StartCall{Pipeline: p.Name, Generation: p.Generation, Kind: kind, ExecutionName: name, Input: workflow.InputOfAttempt(p, kind, attempt)}
	r.calls = append(r.calls, call)
	if r.startFails != 0 {
		if r.startFails > 0 {
			r.startFails--
		}
		return domain.WorkflowRef{}, r.startErr
	}
	if ref, ok := r.byName[name]; ok {
		return ref, nil
	}
	arn, _ := workflow.ExecutionARN(RecorderStateMachinePrefix+string(kind), name)
	ref := domain.WorkflowRef{Kind: kind, Generation: p.Generation, ExecutionName: name, ExecutionArn: arn, StartedAt: r.now().UTC(), Status: "RUNNING"}
	r.byName[name] = ref
	r.executions = append(r.executions, call)
	return ref, nil
}

// PendingRef implements workflow.Starter (the ARN under the Recorder's fake
// state machine prefix, as StartAttempt reports it).
func (r *Recorder) PendingRef(p domain.Pipeline, kind domain.WorkflowKind) (domain.WorkflowRef, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	name := workflow.ExecutionNameFor(p, kind, 0)
	arn, err := workflow.ExecutionARN(RecorderStateMachinePrefix+string(kind), name)
	if err != nil {
		return domain.WorkflowRef{}, err
	}
	return domain.WorkflowRef{Kind: kind, Generation: p.Generation, ExecutionName: name, ExecutionArn: arn, StartedAt: r.now().UTC(), Status: domain.WorkflowPending}, nil
}

// Continue implements steps.Continuer.
func (r *Recorder) Continue(ctx context.Context, p domain.Pipeline, kind domain.WorkflowKind, continuation int) (domain.WorkflowRef, error) {
	return r.StartAttempt(ctx, p, kind, continuation)
}

// IsRunning: a recorded execution counts as running until Finish is called for it.
func (r *Recorder) IsRunning(_ context.Context, ref domain.WorkflowRef) (bool, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	_, ok := r.byName[ref.ExecutionName]
	return ok && !r.finished[ref.ExecutionName], nil
}

// Finish marks an execution as no longer running.
// Status: RUNNING until Finish is called, then SUCCEEDED ("" for an
// execution never started).
func (r *Recorder) Status(_ context.Context, ref domain.WorkflowRef) (string, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	switch _, ok := r.byName[ref.ExecutionName]; {
	case !ok:
		return "", nil
	case r.finished[ref.ExecutionName]:
		return "SUCCEEDED", nil
	}
	return domain.WorkflowRunning, nil
}

func (r *Recorder) Finish(executionName string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.finished[executionName] = true
}

// Stop implements workflow.Starter.
func (r *Recorder) Stop(_ context.Context, ref domain.WorkflowRef, cause string) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.stops = append(r.stops, StopCall{Ref: ref, Cause: cause})
	return r.stopErr
}

// Calls returns every Start received, failed ones and repeats included.
func (r *Recorder) Calls() []StartCall {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]StartCall(nil), r.calls...)
}

// Executions returns the distinct executions started, in order.
func (r *Recorder) Executions() []StartCall {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]StartCall(nil), r.executions...)
}

// Stops returns every Stop received.
func (r *Recorder) Stops() []StopCall {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]StopCall(nil), r.stops...)
}

// Reset forgets everything recorded (failure settings included).
func (r *Recorder) Reset() {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.calls, r.executions, r.stops = nil, nil, nil
	r.byName = map[string]domain.WorkflowRef{}
	r.startFails, r.startErr, r.stopErr = 0, nil, nil
}
