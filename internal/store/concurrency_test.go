package store

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/sluicehq/sluice/internal/domain"
)

type userAction struct {
	name   string
	decide func(domain.Pipeline, time.Time) (domain.Outcome, error)
}

var userActions = []userAction{
	{"stop?force=false", stop(false)},
	{"stop?force=true", stop(true)},
	{"start?initial=running", start},
	{"start?initial=paused", func(p domain.Pipeline, now time.Time) (domain.Outcome, error) {
		return domain.Start(p, domain.StartRequest{Initial: domain.InitialPaused, DismissError: true}, now)
	}},
	{"pause", domain.Pause},
	{"resume", domain.Resume},
	{"clear", domain.Clear},
	{"dismiss_error", domain.DismissError},
}

type workflowStep struct {
	name string
	make func(r *rand.Rand) domain.Transition
}

var observable = []domain.RuntimeStatus{domain.RuntimeRunning, domain.RuntimePaused, domain.RuntimeUnavailable, domain.RuntimeInitializing}

var workflowSteps = []workflowStep{
	{"MarkProvisioning", func(r *rand.Rand) domain.Transition { return domain.MarkProvisioning(uuid.NewString()) }},
	{"MarkProvisioned", func(r *rand.Rand) domain.Transition {
		return domain.MarkProvisioned(fmt.Sprintf("http://127.0.0.1:%d", 1000+r.IntN(100)), observable[r.IntN(3)])
	}},
	{"MarkSuspending", func(*rand.Rand) domain.Transition { return domain.MarkSuspending() }},
	{"MarkSuspended", func(r *rand.Rand) domain.Transition {
		return domain.MarkSuspended([]byte(fmt.Sprintf(`{"checkpoints":[%d]}`, r.IntN(1000))))
	}},
	{"MarkStopping", func(*rand.Rand) domain.Transition { return domain.MarkStopping() }},
	{"MarkFailed", func(*rand.Rand) domain.Transition {
		return domain.MarkFailed(&domain.ErrorBody{Message: "runtime vanished", ErrorCode: "RuntimeVanished", Details: map[string]any{}})
	}},
	{"MarkStopped", func(*rand.Rand) domain.Transition { return domain.MarkStopped() }},
	{"MarkStorageCleared", func(*rand.Rand) domain.Transition { return domain.MarkStorageCleared() }},
	{"ObserveRuntime", func(r *rand.Rand) domain.Transition {
		return domain.ObserveRuntime(observable[r.IntN(len(observable))], nil)
	}},
}

// ack is an acknowledged call: the record it returned.
type ack struct {
	requestID string
	user      bool
	before    domain.Pipeline     // user actions: the record decided on
	workflow  domain.WorkflowKind // user actions: the workflow to start
	rec       domain.Pipeline
}

type counters struct {
	userWrites, userNoops, userRejected, userStale, userGaveUp atomic.Int64
	wfWrites, wfSuperseded, wfConflict, wfGaveUp, wfStaleGen   atomic.Int64
}

// TestConcurrentActionsAndWorkflows lets 32 goroutines race user actions and
// workflow steps on 4 pipelines, then checks the histories.
func TestConcurrentActionsAndWorkflows(t *testing.T) {
	t.Parallel()
	const (
		pipelines  = 4
		goroutines = 32
		maxOps     = 2000
	)
	duration := 3 * time.Second
	if testing.Short() {
		duration = time.Second
	}
	e := newEnv(t)
	s := NewDynamo(e.client, e.table) // the real clock
	names := make([]string, pipelines)
	for i := range names {
		names[i] = fmt.Sprintf("conc-%d", i)
		e.create(names[i])
	}

	var (
		mu   sync.Mutex
		acks = map[string][]ack{} // by pipeline
		n    counters
		seq  atomic.Int64
	)
	record := func(name string, a ack) {
		mu.Lock()
		acks[name] = append(acks[name], a)
		mu.Unlock()
	}
	// The run lasts `duration`, and longer (up to hardLimit) until it has
	// exercised enough writes and conflicts: on a loaded machine fewer
	// operations fit in the same wall time, and coverage, not time, is what
	// the assertions below need.
	const hardLimit = 45 * time.Second
	ctx, cancel := context.WithTimeout(context.Background(), hardLimit+20*time.Second)
	defer cancel()
	deadline := time.Now().Add(duration)
	hardDeadline := time.Now().Add(hardLimit)
	enough := func() bool {
		return n.userWrites.Load() >= 20 && n.wfWrites.Load() >= 20 && n.userStale.Load() > 0 && n.wfSuperseded.Load() > 0
	}
	keepGoing := func() bool {
		now := time.Now()
		return now.Before(deadline) || (!enough() && now.Before(hardDeadline))
	}
	var wg sync.WaitGroup
	for g := range goroutines {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := rand.New(rand.NewPCG(uint64(g), uint64(time.Now().UnixNano())))
			stale := map[string]domain.Pipeline{} // an old read per pipeline, to replay stale steps
			for op := 0; op < maxOps && keepGoing(); op++ {
				name := names[r.IntN(pipelines)]
				reqID := fmt.Sprintf("g%d-%d", g, seq.Add(1))
				if r.IntN(2) == 0 {
					userOp(ctx, t, s, r, name, reqID, &n, record)
					continue
				}
				cur, err := s.Get(ctx, name)
				if err != nil {
					t.Errorf("get: %v", err)
					return
				}
				gen := cur.Generation
				if old, ok := stale[name]; ok && r.IntN(4) == 0 {
					gen = old.Generation // a late step of an older workflow
				}
				if r.IntN(8) == 0 {
					stale[name] = cur
				}
				workflowOp(ctx, t, s, r, name, cur, gen, reqID, &n, record)
			}
		}()
	}
	wg.Wait()
	if t.Failed() {
		return
	}
	t.Logf("user: %d writes, %d no-ops, %d rejected, %d stale retries, %d gave up; workflow: %d acks, %d superseded (%d with a stale generation), %d conflicts, %d gave up",
		n.userWrites.Load(), n.userNoops.Load(), n.userRejected.Load(), n.userStale.Load(), n.userGaveUp.Load(),
		n.wfWrites.Load(), n.wfSuperseded.Load(), n.wfStaleGen.Load(), n.wfConflict.Load(), n.wfGaveUp.Load())
	if n.userWrites.Load() < 20 || n.wfWrites.Load() < 20 || n.userStale.Load() == 0 || n.wfSuperseded.Load() == 0 {
		t.Errorf("the run did not exercise enough conflicts")
	}
	for _, name := range names {
		checkHistory(t, e, name, acks[name])
		p := e.get(name)
		t.Logf("%s: %d writes, final %s", name, p.RefreshVersion, statusesOf(p))
	}
}

func userOp(ctx context.Context, t *testing.T, s *Dynamo, r *rand.Rand, name, reqID string, n *counters, record func(string, ack)) {
	a := userActions[r.IntN(len(userActions))]
	for attempt := 0; attempt < 30; attempt++ {
		before, err := s.Get(ctx, name)
		if err != nil {
			t.Errorf("get: %v", err)
			return
		}
		out, err := a.decide(before, time.Now().UTC())
		if err != nil {
			var de *domain.Error
			if !errors.As(err, &de) {
				t.Errorf("%s on %s: %v", a.name, statusesOf(before), err)
			}
			n.userRejected.Add(1)
			return
		}
		got, err := s.ApplyAction(ctx, before, out, Cause{Action: a.name, Actor: "user:test", RequestID: reqID})
		switch {
		case errors.Is(err, ErrStale):
			n.userStale.Add(1)
			continue
		case err != nil:
			t.Errorf("%s: %v", a.name, err)
			return
		case !out.Write:
			n.userNoops.Add(1)
			return
		}
		n.userWrites.Add(1)
		record(name, ack{requestID: reqID, user: true, before: before, rec: got, workflow: out.Workflow})
		return
	}
	n.userGaveUp.Add(1)
}

func workflowOp(ctx context.Context, t *testing.T, s *Dynamo, r *rand.Rand, name string, cur domain.Pipeline, gen int64, reqID string, n *counters, record func(string, ack)) {
	execution := fmt.Sprintf("%s-g%d-step", name, gen)
	var got domain.Pipeline
	var err error
	if r.IntN(10) == 0 {
		got, err = s.SetWorkflow(ctx, name, domain.WorkflowRef{Kind: domain.WorkflowStart, Generation: gen,
			ExecutionName: execution, StartedAt: time.Now().UTC(), Status: []string{"RUNNING", "SUCCEEDED"}[r.IntN(2)]})
	} else {
		step := workflowSteps[r.IntN(len(workflowSteps))]
		if r.IntN(2) == 0 {
			step = nextStep(cur) // the step a live workflow would take now
		}
		got, err = s.Transition(ctx, name, gen, step.make(r), Cause{Action: step.name, Actor: "workflow", Execution: execution, RequestID: reqID})
	}
	var sup *SupersededError
	var conflict *ConflictError
	switch {
	case errors.As(err, &sup):
		n.wfSuperseded.Add(1)
		if sup.Current.Generation == gen {
			t.Errorf("superseded with the current generation %d", gen)
		}
		if sup.Current.Generation > gen+1 {
			n.wfStaleGen.Add(1)
		}
	case errors.As(err, &conflict):
		n.wfConflict.Add(1)
	case errors.Is(err, ErrStale) && errors.Is(err, ErrUnavailable):
		n.wfGaveUp.Add(1)
	case err != nil:
		t.Errorf("workflow step on %s: %v", name, err)
	default:
		if got.Generation != gen {
			t.Errorf("a step of generation %d returned a record of generation %d", gen, got.Generation)
		}
		n.wfWrites.Add(1)
		record(name, ack{requestID: reqID, rec: got})
	}
}

// checkHistory checks one pipeline's history against its record and the
// acknowledged writes.
func checkHistory(t *testing.T, e *env, name string, acks []ack) {
	t.Helper()
	rec := e.get(name)
	newest := e.history(name)
	evs := make([]Event, len(newest)) // oldest first
	for i, ev := range newest {
		evs[len(newest)-1-i] = ev
	}
	// Gap-free: one event per write, refresh versions 1..N.
	if int64(len(evs)) != rec.RefreshVersion {
		t.Errorf("%s: %d events for refresh version %d", name, len(evs), rec.RefreshVersion)
	}
	for i, ev := range evs {
		if ev.RefreshVersion != int64(i+1) {
			t.Fatalf("%s: event %d has refresh version %d", name, i, ev.RefreshVersion)
		}
	}
	// The last event is the record.
	if got, want := statusesOfEvent(evs[len(evs)-1]), statusesOf(rec); got != want {
		t.Errorf("%s: last event %s, record %s", name, got, want)
	}
	// Generations: +1 only on user actions, never on workflow writes; a
	// workflow write carries the generation of the record it changed.
	userBumps := int64(0)
	byRequest := map[string]Event{}
	for i, ev := range evs {
		if ev.Cause.RequestID != "" {
			if _, dup := byRequest[ev.Cause.RequestID]; dup {
				t.Errorf("%s: two events of request %s", name, ev.Cause.RequestID)
			}
			byRequest[ev.Cause.RequestID] = ev
		}
		if i == 0 {
			continue
		}
		prev := evs[i-1]
		d := ev.Generation - prev.Generation
		switch {
		case ev.Cause.Actor == "workflow":
			if d != 0 {
				t.Errorf("%s: workflow write %s changed generation %d → %d", name, ev.Cause.Action, prev.Generation, ev.Generation)
			}
			if g := executionGeneration(ev.Cause.Execution); g != ev.Generation {
				t.Errorf("%s: a step of generation %d landed on generation %d (rv %d, %s)", name, g, ev.Generation, ev.RefreshVersion, ev.Cause.Action)
			}
		case d == 1:
			userBumps++
		case d != 0:
			t.Errorf("%s: generation %d → %d in one user write", name, prev.Generation, ev.Generation)
		}
		if !domain.ValidResourcesMove(prev.ResourcesStatus, ev.ResourcesStatus) || !domain.ValidStorageMove(prev.StorageStatus, ev.StorageStatus) {
			t.Errorf("%s: illegal move %s → %s", name, statusesOfEvent(prev), statusesOfEvent(ev))
		}
	}
	if userBumps != rec.Generation {
		t.Errorf("%s: generation %d after %d generation-bumping user writes", name, rec.Generation, userBumps)
	}
	// Every acknowledged write is in the history, as acknowledged; every
	// user write that bumped the generation was acknowledged as such.
	acked := map[string]bool{}
	ackedBumps := int64(0)
	for _, a := range acks {
		acked[a.requestID] = true
		if a.user {
			// A Running↔Paused swap keeps the generation (domain.IntentChanged).
			desiredChanged := domain.IntentChanged(a.before, a.rec)
			want := a.before.Generation
			if desiredChanged || a.workflow != "" {
				want++
				ackedBumps++
			}
			if a.rec.Generation != want {
				t.Errorf("%s: user write %s: generation %d → %d (desired changed %t, workflow %q)",
					name, a.requestID, a.before.Generation, a.rec.Generation, desiredChanged, a.workflow)
			}
		}
		ev := evs[a.rec.RefreshVersion-1]
		if got, want := statusesOfEvent(ev), statusesOf(a.rec); got != want {
			t.Errorf("%s: acknowledged %s, history has %s", name, want, got)
		}
		if a.user && ev.Cause.RequestID != a.requestID {
			t.Errorf("%s: acknowledged user write %s is event of %s", name, a.requestID, ev.Cause.RequestID)
		}
	}
	if ackedBumps != rec.Generation {
		t.Errorf("%s: generation %d, %d acknowledged generation bumps", name, rec.Generation, ackedBumps)
	}
	// No write landed without being acknowledged (a superseded, conflicting
	// or failed call wrote nothing).
	for id, ev := range byRequest {
		if !acked[id] {
			t.Errorf("%s: unacknowledged write landed: %s %+v", name, id, ev.Cause)
		}
	}
}

// executionGeneration parses "<name>-g<generation>-step".
func executionGeneration(execution string) int64 {
	i := strings.LastIndex(execution, "-g")
	j := strings.LastIndex(execution, "-")
	if i < 0 || j <= i {
		return -1
	}
	g, err := strconv.ParseInt(execution[i+2:j], 10, 64)
	if err != nil {
		return -1
	}
	return g
}

// nextStep is the step the pending workflow of p would take next.
func nextStep(p domain.Pipeline) workflowStep {
	byName := func(n string) workflowStep {
		for _, s := range workflowSteps {
			if s.name == n {
				return s
			}
		}
		panic(n)
	}
	rs := p.ResourcesStatus
	switch p.PendingWorkflow() {
	case domain.WorkflowStart:
		if rs == domain.ResourcesStopped {
			return byName("MarkProvisioning")
		}
		return byName("MarkProvisioned")
	case domain.WorkflowSuspend:
		switch {
		case rs == domain.ResourcesStopping:
			return byName("MarkStopped")
		case p.RuntimeStatus != nil && *p.RuntimeStatus == domain.RuntimeSuspending:
			return byName("MarkSuspended")
		}
		return byName("MarkSuspending")
	case domain.WorkflowStop:
		if rs == domain.ResourcesStopping {
			return byName("MarkStopped")
		}
		return byName("MarkStopping")
	case domain.WorkflowClear:
		return byName("MarkStorageCleared")
	}
	return byName("ObserveRuntime")
}
