package reliability

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/sluicehq/sluice/internal/domain"
	"github.com/sluicehq/sluice/internal/store"
)

// decide runs the domain rule of a user action, as the API does.
func decide(action string, p domain.Pipeline, now time.Time) (domain.Outcome, error) {
	switch action {
	case actStartRunning:
		return domain.Start(p, domain.StartRequest{Initial: domain.InitialRunning, DismissError: true}, now)
	case actStartPaused:
		return domain.Start(p, domain.StartRequest{Initial: domain.InitialPaused, DismissError: true}, now)
	case actStop:
		return domain.Stop(p, false, now)
	case actForceStop:
		return domain.Stop(p, true, now)
	case actPause:
		return domain.Pause(p, now)
	case actResume:
		return domain.Resume(p, now)
	case actClear:
		return domain.Clear(p, now)
	case actDismiss:
		return domain.DismissError(p, now)
	}
	return domain.Outcome{}, fmt.Errorf("no domain rule for %q", action)
}

// writingActions are the actions that may write the record (the others are
// reads or are forwarded without a write).
func writingAction(action string) bool {
	switch action {
	case actGet, actCheckpoint:
		return false
	}
	return true
}

// reconstruct rebuilds from a history event the part of the record that the
// domain rules read: every status, the error, the generation, plus what the
// event does not carry: the runtime_config (never edited in these tests), the
// initial state of the last start, and a deployment location while a runtime
// is provisioned.
func reconstruct(rec domain.Pipeline, ev store.Event, initial *domain.InitialState) domain.Pipeline {
	// The definition (every field no action of these tests edits) is the
	// record's; the statuses are the event's.
	p := rec
	p.Generation, p.RefreshVersion = ev.Generation, ev.RefreshVersion
	p.ResourcesStatus, p.ResourcesDesiredStatus = ev.ResourcesStatus, ev.ResourcesDesiredStatus
	p.RuntimeStatus, p.RuntimeDesiredStatus = ev.RuntimeStatus, ev.RuntimeDesiredStatus
	p.StorageStatus, p.DeploymentError, p.DeploymentInitial = ev.StorageStatus, ev.DeploymentError, initial
	p.DeploymentID, p.DeploymentLocation, p.Workflow, p.StorageStatusDetails = nil, nil, nil, nil
	if p.ResourcesStatus == domain.ResourcesProvisioned || p.ResourcesStatus == domain.ResourcesStopping {
		loc, dep := "http://runtime.invalid", "deployment"
		p.DeploymentLocation, p.DeploymentID = &loc, &dep
	}
	return p
}

func initialOf(action string) (domain.InitialState, bool) {
	switch action {
	case actStartRunning:
		return domain.InitialRunning, true
	case actStartPaused:
		return domain.InitialPaused, true
	}
	return "", false
}

func ptrEq[T comparable](a, b *T) bool {
	if a == nil || b == nil {
		return a == nil && b == nil
	}
	return *a == *b
}

func show[T any](v *T) string {
	if v == nil {
		return "null"
	}
	return fmt.Sprint(*v)
}

func errCode(e *domain.ErrorBody) string {
	if e == nil {
		return "null"
	}
	return e.ErrorCode
}

// executionName parses "<pipeline>-<id8>-g<generation>-<kind>[-<attempt>]".
var executionName = regexp.MustCompile(`-g(\d+)-(start|suspend|stop|clear)(?:-(\d+))?$`)

// historyReport counts what checkHistory saw.
type historyReport struct {
	Events, UserWrites, WorkflowWrites, ReconcilerWrites int
	AckWrites, AckNoOps, Generations                     int
	ForcedByReconciler, SecondKind                       int
}

func (r *historyReport) add(o historyReport) {
	r.Events += o.Events
	r.UserWrites += o.UserWrites
	r.WorkflowWrites += o.WorkflowWrites
	r.ReconcilerWrites += o.ReconcilerWrites
	r.AckWrites += o.AckWrites
	r.AckNoOps += o.AckNoOps
	r.Generations += o.Generations
	r.ForcedByReconciler += o.ForcedByReconciler
	r.SecondKind += o.SecondKind
}

// noOpSlack widens the window of record versions an acknowledged no-op may
// have read (the history stamps a write when it is decided, a little before
// it commits).
const noOpSlack = 5 * time.Second

// checkHistory checks one pipeline's history (oldest first) against its
// current record and the requests sent to it; it returns the problems found.
//
//  1. Gap-free: the events' refresh versions are exactly 1, 2, …, n.
//  2. Replay: the last event's statuses, desired statuses, storage status,
//     error, generation and refresh version equal the record's; every
//     consecutive pair of events is a legal write by the domain's
//     ValidateTransition (status edges, invariants, the generation rule).
//  3. User writes: every event written by the API (actor user:…) carries
//     the request id of a request we sent (nothing else writes as a user),
//     and replays: the domain rule of its action, applied to the version
//     before it (the one its conditional write was fenced on), decides a
//     write with exactly the event's desired statuses, storage status and
//     generation. When requests is nil (setup by hand) only the replay is
//     checked.
//  4. No acknowledged action lost: every 2xx answer to an action that can
//     write is either exactly one event with its request id (its generation
//     is the one it produced), or a no-op by the domain rule on some version
//     of the record that was current while the request was in flight
//     (versions whose lifetime meets [sent−5 s, received]).
//  5. Workflow writes (actor workflow) are fenced and serial, per
//     generation: (a) every one comes from an execution named for that
//     generation ("-g<generation>-<kind>[-attempt]"): no execution of
//     another generation wrote; (b) status writes (all but SetWorkflow)
//     come from one execution at a time: once another execution has
//     written in the generation, an earlier one never writes again
//     (attempt suffixes name restarts and continuations, which take over
//     from an ended execution); (c) at most two kinds write in one
//     generation, and a second kind is only the forced-stop workflow that
//     the reconciler starts after force-stopping the pipeline (a reconciler
//     MarkStopping event of that generation lies between the first kind's
//     last write and the stop workflow's first).
func checkHistory(rec domain.Pipeline, events []store.Event, requests map[string]sent) ([]string, historyReport) {
	var problems []string
	var rep historyReport
	bad := func(format string, args ...any) {
		if len(problems) < 30 {
			problems = append(problems, rec.Name+": "+fmt.Sprintf(format, args...))
		}
	}
	rep.Events = len(events)
	if len(events) == 0 {
		bad("no history")
		return problems, rep
	}
	// 1. Gap-free.
	for i, ev := range events {
		if ev.RefreshVersion != int64(i+1) {
			bad("event %d has refresh version %d (gap or duplicate)", i, ev.RefreshVersion)
			return problems, rep
		}
	}
	// 2. The last event is the record.
	last := events[len(events)-1]
	if last.RefreshVersion != rec.RefreshVersion || last.Generation != rec.Generation ||
		last.ResourcesStatus != rec.ResourcesStatus || last.ResourcesDesiredStatus != rec.ResourcesDesiredStatus ||
		!ptrEq(last.RuntimeStatus, rec.RuntimeStatus) || !ptrEq(last.RuntimeDesiredStatus, rec.RuntimeDesiredStatus) ||
		last.StorageStatus != rec.StorageStatus || errCode(last.DeploymentError) != errCode(rec.DeploymentError) ||
		last.DeploymentStatus != rec.DeploymentStatus() || last.DeploymentDesiredStatus != rec.DeploymentDesiredStatus() {
		bad("last event (v%d g%d %s/%s runtime %s/%s storage %s error %s) differs from the record (v%d g%d %s/%s runtime %s/%s storage %s error %s)",
			last.RefreshVersion, last.Generation, last.ResourcesStatus, last.ResourcesDesiredStatus, show(last.RuntimeStatus), show(last.RuntimeDesiredStatus), last.StorageStatus, errCode(last.DeploymentError),
			rec.RefreshVersion, rec.Generation, rec.ResourcesStatus, rec.ResourcesDesiredStatus, show(rec.RuntimeStatus), show(rec.RuntimeDesiredStatus), rec.StorageStatus, errCode(rec.DeploymentError))
	}

	// The initial state of the last start, per version.
	initials := make([]*domain.InitialState, len(events))
	var initial *domain.InitialState
	for i, ev := range events {
		if in, ok := initialOf(ev.Cause.Action); ok && strings.HasPrefix(ev.Cause.Actor, "user:") {
			initial = &in
		}
		initials[i] = initial
	}
	recon := func(i int) domain.Pipeline { return reconstruct(rec, events[i], initials[i]) }

	byRequest := map[string][]int{}
	generations := map[int64]bool{}
	for i, ev := range events {
		generations[ev.Generation] = true
		switch {
		case strings.HasPrefix(ev.Cause.Actor, "user:"):
			rep.UserWrites++
		case ev.Cause.Actor == "workflow":
			rep.WorkflowWrites++
		case ev.Cause.Actor == "reconciler":
			rep.ReconcilerWrites++
		}
		if i == 0 {
			byRequest[ev.Cause.RequestID] = append(byRequest[ev.Cause.RequestID], i)
			continue
		}
		if err := domain.ValidateTransition(recon(i-1), recon(i)); err != nil {
			bad("v%d → v%d (%s by %s %s) is not a legal write: %v", events[i-1].RefreshVersion, ev.RefreshVersion, ev.Cause.Action, ev.Cause.Actor, ev.Cause.Execution, err)
		}
		if !strings.HasPrefix(ev.Cause.Actor, "user:") || ev.Cause.Action == "ObserveRuntime" {
			// A workflow's or the reconciler's write, or the API's
			// observation of the runtime right after forwarding a call:
			// it moves current statuses only, in the same generation.
			if ev.Generation != events[i-1].Generation {
				bad("v%d: %s by %s changed the generation %d → %d", ev.RefreshVersion, ev.Cause.Action, ev.Cause.Actor, events[i-1].Generation, ev.Generation)
			}
			continue
		}
		// 3. A user write.
		byRequest[ev.Cause.RequestID] = append(byRequest[ev.Cause.RequestID], i)
		if requests != nil {
			req, ok := requests[ev.Cause.RequestID]
			switch {
			case !ok:
				bad("v%d: user write %s with request id %q that no client sent", ev.RefreshVersion, ev.Cause.Action, ev.Cause.RequestID)
			case req.Action != ev.Cause.Action:
				bad("v%d: request %s was %s, the history says %s", ev.RefreshVersion, ev.Cause.RequestID, req.Action, ev.Cause.Action)
			}
		}
		if !writingAction(ev.Cause.Action) || ev.Cause.Action == "create" || ev.Cause.Action == "replace" {
			continue
		}
		out, err := decide(ev.Cause.Action, recon(i-1), ev.At)
		want := reconstruct(rec, ev, initials[i])
		switch {
		case err != nil:
			bad("v%d: %s replayed on v%d is refused: %v", ev.RefreshVersion, ev.Cause.Action, events[i-1].RefreshVersion, err)
		case !out.Write:
			bad("v%d: %s replayed on v%d writes nothing", ev.RefreshVersion, ev.Cause.Action, events[i-1].RefreshVersion)
		case out.Pipeline.Generation != want.Generation || out.Pipeline.ResourcesDesiredStatus != want.ResourcesDesiredStatus ||
			!ptrEq(out.Pipeline.RuntimeDesiredStatus, want.RuntimeDesiredStatus) || out.Pipeline.StorageStatus != want.StorageStatus ||
			errCode(out.Pipeline.DeploymentError) != errCode(want.DeploymentError):
			bad("v%d: %s replayed on v%d gives g%d %s runtime %s storage %s error %s; the event has g%d %s runtime %s storage %s error %s",
				ev.RefreshVersion, ev.Cause.Action, events[i-1].RefreshVersion,
				out.Pipeline.Generation, out.Pipeline.ResourcesDesiredStatus, show(out.Pipeline.RuntimeDesiredStatus), out.Pipeline.StorageStatus, errCode(out.Pipeline.DeploymentError),
				want.Generation, want.ResourcesDesiredStatus, show(want.RuntimeDesiredStatus), want.StorageStatus, errCode(want.DeploymentError))
		}
	}
	rep.Generations = len(generations)

	// 4. Acknowledged actions.
	if requests != nil {
		for _, req := range requests {
			if req.Pipeline != rec.Name || !req.acknowledged() || !writingAction(req.Action) {
				continue
			}
			idx := byRequest[req.RequestID]
			if len(idx) > 1 {
				bad("request %s (%s) wrote %d events", req.RequestID, req.Action, len(idx))
				continue
			}
			if len(idx) == 1 {
				rep.AckWrites++
				continue
			}
			if noOpOnSomeVersion(req, events, recon) {
				rep.AckNoOps++
				continue
			}
			bad("acknowledged %s (request %s, %d %s, in flight %s – %s) is not in the history and was no no-op on any version current meanwhile",
				req.Action, req.RequestID, req.Status, req.Body, req.Sent.Format(time.StampMicro), req.Received.Format(time.StampMicro))
		}
	}

	// 5. Workflow writes per generation.
	type write struct {
		i         int
		execution string
		kind      string
	}
	byGen := map[int64][]write{}
	var order []int64
	for i, ev := range events {
		if ev.Cause.Actor != "workflow" {
			continue
		}
		m := executionName.FindStringSubmatch(ev.Cause.Execution)
		if m == nil {
			bad("v%d: workflow write %s by an execution of unknown name %q", ev.RefreshVersion, ev.Cause.Action, ev.Cause.Execution)
			continue
		}
		if g, _ := strconv.ParseInt(m[1], 10, 64); g != ev.Generation {
			bad("v%d: %s by execution %s (generation %d) in generation %d: not fenced", ev.RefreshVersion, ev.Cause.Action, ev.Cause.Execution, g, ev.Generation)
		}
		if ev.Cause.Action == "SetWorkflow" {
			continue
		}
		if _, ok := byGen[ev.Generation]; !ok {
			order = append(order, ev.Generation)
		}
		byGen[ev.Generation] = append(byGen[ev.Generation], write{i: i, execution: ev.Cause.Execution, kind: m[2]})
	}
	for _, g := range order {
		ws := byGen[g]
		done := map[string]bool{}
		var kinds []string
		for j, w := range ws {
			if j > 0 && ws[j-1].execution != w.execution {
				done[ws[j-1].execution] = true
				if done[w.execution] {
					bad("generation %d: %s wrote again (v%d %s) after %s had taken over", g, w.execution, events[w.i].RefreshVersion, events[w.i].Cause.Action, ws[j-1].execution)
				}
			}
			if len(kinds) == 0 || kinds[len(kinds)-1] != w.kind {
				if len(kinds) > 0 {
					rep.SecondKind++
					prev := ws[j-1]
					forced := false
					for k := prev.i + 1; k < w.i; k++ {
						ev := events[k]
						if ev.Cause.Actor == "reconciler" && ev.Cause.Action == "MarkStopping" && ev.Generation == g {
							forced = true
						}
					}
					if w.kind != "stop" || !forced {
						bad("generation %d: %s workflow (%s, v%d) wrote after the %s workflow (%s, v%d) without a reconciler forced stop between them",
							g, w.kind, w.execution, events[w.i].RefreshVersion, prev.kind, prev.execution, events[prev.i].RefreshVersion)
					}
				}
				kinds = append(kinds, w.kind)
			}
		}
		if len(kinds) > 2 {
			bad("generation %d: workflows of kinds %v wrote", g, kinds)
		}
	}
	for _, ev := range events {
		if ev.Cause.Actor == "reconciler" && ev.Cause.Action == "MarkStopping" {
			rep.ForcedByReconciler++
		}
	}
	return problems, rep
}

// noOpOnSomeVersion: the action's domain rule answers "nothing to write" on
// a version of the record that was current while the request was in flight.
func noOpOnSomeVersion(req sent, events []store.Event, recon func(int) domain.Pipeline) bool {
	from := req.Sent.Add(-noOpSlack)
	for i, ev := range events {
		if ev.At.After(req.Received) {
			break
		}
		if i+1 < len(events) && events[i+1].At.Before(from) {
			continue // replaced before the request was sent
		}
		out, err := decide(req.Action, recon(i), ev.At)
		if err == nil && !out.Write {
			return true
		}
	}
	return false
}

// requestsByID indexes sent requests by request id.
func requestsByID(list []sent) map[string]sent {
	m := make(map[string]sent, len(list))
	for _, s := range list {
		m[s.RequestID] = s
	}
	return m
}

// compactEvents renders a history for a failure message.
func compactEvents(events []store.Event) string {
	var b strings.Builder
	for _, ev := range events {
		fmt.Fprintf(&b, "  v%d g%d %s %s/%s %s %s %s req=%s err=%s\n", ev.RefreshVersion, ev.Generation, ev.At.Format("15:04:05.000"),
			ev.DeploymentStatus, ev.DeploymentDesiredStatus, ev.Cause.Actor, ev.Cause.Action, ev.Cause.Execution, ev.Cause.RequestID, errCode(ev.DeploymentError))
	}
	return b.String()
}
