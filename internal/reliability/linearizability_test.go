package reliability

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"regexp"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/anishathalye/porcupine"

	"github.com/sluicehq/sluice/internal/domain"
	"github.com/sluicehq/sluice/internal/store"
)

// Linearizability of the API, checked with porcupine: the concurrent history
// of one pipeline's API calls (each call's invocation and return time, its
// action and its result) must be explainable by some total order of the
// calls, consistent with real time (a call that returned before another was
// sent comes first), in which every call does what the sequential rules say
// on the record as the calls before it left it.
//
// The sequential model is a pipeline record reduced to what the rules read
// and write: the generation, both desired statuses, the initial state of the
// last start, and the current statuses, storage status and whether a
// deployment error is set (mstate). The user actions are the domain's rules,
// which are SPEC §3–4's tables case by case (domain.Start, domain.Stop, …):
// a write bumps the generation exactly when it changes a desired status (or
// starts a workflow), an idempotent repeat writes nothing, and a refusal
// (IllegalPipelineAction and the other 4xx codes) changes nothing. The
// workflows and the reconciler move the current statuses (and, on failure,
// set an error and desired Stopped, within the same generation) concurrently
// with the calls, so the model is nondeterministic in exactly that way:
// before each call, any sequence of the domain's workflow transitions may
// have happened (mstate.closure). Nothing else changes a desired status or
// the generation.
//
// The result of a call is what the system said it did: for a call that
// wrote, the statuses and generation of its history event (found by its
// request id; the event is part of the same transaction as the write); for
// an acknowledged call that wrote nothing, "no-op"; for a refusal, its
// error_code; for a GET, the record it returned. A lost update (two writes
// decided on one version, both acknowledged), a stale read (a GET older than
// a write acknowledged before it was sent), a write fenced on the wrong
// version, a refusal the record never justified: none of them has a
// linearization.

// mstate is the model's pipeline record.
type mstate struct {
	Gen     int64
	RS      domain.ResourcesStatus
	RD      domain.ResourcesDesiredStatus
	RT      domain.RuntimeStatus        // "": none
	RTD     domain.RuntimeDesiredStatus // "": none
	Init    domain.InitialState         // "": none
	Storage domain.StorageStatus
	Err     bool
}

func (m mstate) String() string {
	e := ""
	if m.Err {
		e = " error"
	}
	return fmt.Sprintf("g%d %s/%s runtime %s/%s initial %s storage %s%s", m.Gen, m.RS, m.RD, orNone(m.RT), orNone(m.RTD), orNone(m.Init), m.Storage, e)
}

func orNone[T ~string](s T) string {
	if s == "" {
		return "-"
	}
	return string(s)
}

func strPtr[T ~string](s T) *T {
	if s == "" {
		return nil
	}
	return &s
}

func strOf[T ~string](p *T) T {
	if p == nil {
		return ""
	}
	return *p
}

// modelOf reduces a record to the model's state.
func modelOf(p domain.Pipeline) mstate {
	return mstate{Gen: p.Generation, RS: p.ResourcesStatus, RD: p.ResourcesDesiredStatus, RT: strOf(p.RuntimeStatus),
		RTD: strOf(p.RuntimeDesiredStatus), Init: strOf(p.DeploymentInitial), Storage: p.StorageStatus, Err: p.DeploymentError != nil}
}

// model is the sequential specification of one pipeline. The fields of the
// record that no action or workflow of the soak changes (its definition:
// runtime_config, where a graceful stop needs storage, and whatever else
// the rules read of it) come from a template, the pipeline's record.
type model struct {
	template domain.Pipeline
	mu       sync.Mutex
	closed   map[mstate][]mstate
}

func newModel(template domain.Pipeline) *model {
	return &model{template: template, closed: map[mstate][]mstate{}}
}

// record expands a model state into a record the domain rules accept (they
// copy a record before changing it, so the template is never modified).
func (m *model) record(s mstate) domain.Pipeline {
	p := m.template
	p.RefreshVersion, p.Generation = 1, s.Gen
	p.ResourcesStatus, p.ResourcesDesiredStatus, p.StorageStatus = s.RS, s.RD, s.Storage
	p.RuntimeStatus, p.RuntimeDesiredStatus, p.DeploymentInitial = strPtr(s.RT), strPtr(s.RTD), strPtr(s.Init)
	p.DeploymentError, p.DeploymentID, p.DeploymentLocation, p.Workflow, p.StorageStatusDetails = nil, nil, nil, nil, nil
	if s.Err {
		p.DeploymentError = &domain.ErrorBody{ErrorCode: "ModelError", Message: "model", Details: map[string]any{}}
	}
	if s.RS != domain.ResourcesStopped {
		dep := "model-deployment"
		p.DeploymentID = &dep
	}
	if s.RS == domain.ResourcesProvisioned || s.RS == domain.ResourcesStopping {
		loc := "http://model.invalid"
		p.DeploymentLocation = &loc
	}
	return p
}

// hiddenMoves are the writes of the workflows and the reconciler: every
// transition they may make, within one generation.
var hiddenMoves = func() []domain.Transition {
	failure := &domain.ErrorBody{ErrorCode: "ModelError", Message: "model", Details: map[string]any{}}
	moves := []domain.Transition{
		domain.MarkProvisioning("model-deployment"),
		domain.MarkSuspending(), domain.MarkSuspended(nil),
		domain.MarkStopping(), domain.MarkFailed(failure), domain.MarkStopped(), domain.MarkStorageCleared(),
	}
	for _, rt := range []domain.RuntimeStatus{domain.RuntimeInitializing, domain.RuntimeRunning, domain.RuntimePaused, domain.RuntimeUnavailable} {
		moves = append(moves, domain.MarkProvisioned("http://model.invalid", rt), domain.ObserveRuntime(rt, nil))
	}
	return moves
}()

// closure is every state the workflows and the reconciler can take s to
// (s included), in a fixed order.
func (m *model) closure(s mstate) []mstate {
	m.mu.Lock()
	if c, ok := m.closed[s]; ok {
		m.mu.Unlock()
		return c
	}
	m.mu.Unlock()
	seen := map[mstate]bool{s: true}
	queue := []mstate{s}
	now := time.Unix(0, 0).UTC()
	for len(queue) > 0 {
		cur := queue[0]
		queue = queue[1:]
		for _, tr := range hiddenMoves {
			next, err := tr(m.record(cur), now)
			if err != nil {
				continue
			}
			n := modelOf(next)
			if n.Gen != cur.Gen {
				panic(fmt.Sprintf("model: a workflow transition changed the generation: %s → %s", cur, n))
			}
			if !seen[n] {
				seen[n] = true
				queue = append(queue, n)
			}
		}
	}
	out := make([]mstate, 0, len(seen))
	for n := range seen {
		out = append(out, n)
	}
	sortStates(out)
	m.mu.Lock()
	m.closed[s] = out
	m.mu.Unlock()
	return out
}

func sortStates(s []mstate) {
	sort.Slice(s, func(i, j int) bool { return s[i].String() < s[j].String() })
}

// Kinds of a call's result.
const (
	resWrite   = "write"    // it wrote: After is the record right after
	resNoOp    = "no-op"    // acknowledged, nothing written
	resRefused = "refused"  // a 4xx with Code
	resNoWrite = "no write" // no answer or a 5xx, and no event: nothing written
	resRead    = "read"     // a GET: After is the record returned
)

// linOp is a call's input, linResult its output.
type linOp struct {
	Action    string
	RequestID string
}

type linResult struct {
	Kind  string
	Code  string
	After mstate
}

// step is the model's transition: the states s may be in after the call,
// given that the call returned res.
func (m *model) step(s mstate, op linOp, res linResult) []mstate {
	var out []mstate
	for _, c := range m.closure(s) {
		if res.Kind == resRead {
			if c == res.After {
				out = append(out, c)
			}
			continue
		}
		if res.Kind == resNoWrite {
			out = append(out, c)
			continue
		}
		dec, err := decide(op.Action, m.record(c), time.Unix(0, 0).UTC())
		var de *domain.Error
		switch {
		case res.Kind == resRefused:
			if errors.As(err, &de) && string(de.Code) == res.Code {
				out = append(out, c)
			}
		case err != nil:
		case res.Kind == resNoOp:
			if !dec.Write {
				out = append(out, c)
			}
		case res.Kind == resWrite:
			if dec.Write && sameWrite(modelOf(dec.Pipeline), res.After) {
				out = append(out, modelOf(dec.Pipeline))
			}
		}
	}
	return out
}

// sameWrite compares a decided write with the event of the write (which
// does not carry the initial state).
func sameWrite(decided, event mstate) bool {
	event.Init = decided.Init
	return decided == event
}

// stateSet is the porcupine state: the set of model states the pipeline may
// be in, sorted, with its key.
type stateSet struct {
	states []mstate
	key    string
}

func setOf(states []mstate) stateSet {
	m := map[mstate]bool{}
	var u []mstate
	for _, s := range states {
		if !m[s] {
			m[s] = true
			u = append(u, s)
		}
	}
	sortStates(u)
	parts := make([]string, len(u))
	for i, s := range u {
		parts[i] = s.String()
	}
	return stateSet{states: u, key: strings.Join(parts, "|")}
}

// porcupineModel is the model as porcupine takes it, from the pipeline's
// initial record.
func (m *model) porcupineModel(initial mstate) porcupine.Model {
	return porcupine.Model{
		Init: func() interface{} { return setOf([]mstate{initial}) },
		Step: func(state, input, output interface{}) (bool, interface{}) {
			var next []mstate
			for _, s := range state.(stateSet).states {
				next = append(next, m.step(s, input.(linOp), output.(linResult))...)
			}
			if len(next) == 0 {
				return false, state
			}
			return true, setOf(next)
		},
		Equal: func(a, b interface{}) bool { return a.(stateSet).key == b.(stateSet).key },
		DescribeOperation: func(input, output interface{}) string {
			in, out := input.(linOp), output.(linResult)
			switch out.Kind {
			case resWrite, resRead:
				return fmt.Sprintf("%s (%s) → %s %s", in.Action, in.RequestID, out.Kind, out.After)
			case resRefused:
				return fmt.Sprintf("%s (%s) → %s", in.Action, in.RequestID, out.Code)
			}
			return fmt.Sprintf("%s (%s) → %s", in.Action, in.RequestID, out.Kind)
		},
		DescribeState: func(state interface{}) string { return "{" + state.(stateSet).key + "}" },
	}
}

var clientOfRequest = regexp.MustCompile(`^soak-c(\d+)-`)

// linearizabilityOps turns one pipeline's calls and history into porcupine
// operations. Checkpoints (forwarded, never written) and the create (the
// initial state) are left out.
func linearizabilityOps(name string, calls []sent, events []store.Event) ([]porcupine.Operation, error) {
	// The write of a call is the user event with its request id and its
	// action (a request may write more than that, e.g. an observation of
	// the runtime it forwarded to: a move of the current statuses, which the
	// model allows at any time).
	type key struct{ request, action string }
	byRequest := map[key]store.Event{}
	for _, ev := range events {
		k := key{ev.Cause.RequestID, ev.Cause.Action}
		if _, dup := byRequest[k]; strings.HasPrefix(ev.Cause.Actor, "user:") && !dup {
			byRequest[k] = ev
		}
	}
	var ops []porcupine.Operation
	other := 1000
	for _, s := range calls {
		if s.Pipeline != name || s.Action == "create" || s.Action == actCheckpoint || s.Action == "get-invalid" {
			continue
		}
		op := porcupine.Operation{Input: linOp{Action: s.Action, RequestID: s.RequestID}, Call: s.Sent.UnixNano(), Return: s.Received.UnixNano()}
		if m := clientOfRequest.FindStringSubmatch(s.RequestID); m != nil {
			fmt.Sscan(m[1], &op.ClientId)
		} else {
			op.ClientId = other
			other++
		}
		var res linResult
		ev, wrote := byRequest[key{s.RequestID, s.Action}]
		switch {
		case s.Action == actGet && s.Status == 200:
			var p domain.Pipeline
			if err := json.Unmarshal([]byte(s.Body), &p); err != nil {
				return nil, fmt.Errorf("GET %s (%s): %v", name, s.RequestID, err)
			}
			res = linResult{Kind: resRead, After: modelOf(p)}
		case s.Action == actGet:
			res = linResult{Kind: resNoWrite}
		case wrote:
			res = linResult{Kind: resWrite, After: mstate{Gen: ev.Generation, RS: ev.ResourcesStatus, RD: ev.ResourcesDesiredStatus,
				RT: strOf(ev.RuntimeStatus), RTD: strOf(ev.RuntimeDesiredStatus), Storage: ev.StorageStatus, Err: ev.DeploymentError != nil}}
			if s.Err != "" || s.Status == 0 {
				op.Return = math.MaxInt64 // no answer: it may have landed after the client gave up
			}
		case s.acknowledged():
			res = linResult{Kind: resNoOp}
		case s.Status >= 400 && s.Status < 500:
			code := errorCodeOf(s.Body)
			if code == "" {
				return nil, fmt.Errorf("%s %s (%s): %d without an error_code: %s", s.Action, name, s.RequestID, s.Status, s.Body)
			}
			res = linResult{Kind: resRefused, Code: code}
		case errorCodeOf(s.Body) == string(domain.CodePipelineInteractionNotDeployed):
			// A refusal by the domain rules answered 503 (SPEC §5).
			res = linResult{Kind: resRefused, Code: errorCodeOf(s.Body)}
		default:
			res = linResult{Kind: resNoWrite} // a 5xx or no answer, and no event
		}
		op.Output = res
		ops = append(ops, op)
	}
	slices.SortFunc(ops, func(a, b porcupine.Operation) int {
		switch {
		case a.Call < b.Call:
			return -1
		case a.Call > b.Call:
			return 1
		}
		return 0
	})
	return ops, nil
}

func errorCodeOf(body string) string {
	var e struct {
		ErrorCode string `json:"error_code"`
	}
	if json.Unmarshal([]byte(body), &e) != nil {
		return ""
	}
	return e.ErrorCode
}

// checkLinearizable checks one pipeline's calls against the model, starting
// from its created record. The timeout only bounds the search (Unknown is
// treated as a failure by the callers).
func checkLinearizable(created domain.Pipeline, ops []porcupine.Operation, timeout time.Duration) (porcupine.CheckResult, porcupine.LinearizationInfo) {
	m := newModel(created)
	return porcupine.CheckOperationsVerbose(m.porcupineModel(modelOf(created)), ops, timeout)
}

// createdRecord is the record as created: rec (its definition) with the
// statuses of its first history event.
func createdRecord(rec domain.Pipeline, events []store.Event) domain.Pipeline {
	first := events[0]
	p := rec
	p.Generation, p.RefreshVersion = first.Generation, first.RefreshVersion
	p.ResourcesStatus, p.ResourcesDesiredStatus = first.ResourcesStatus, first.ResourcesDesiredStatus
	p.RuntimeStatus, p.RuntimeDesiredStatus = first.RuntimeStatus, first.RuntimeDesiredStatus
	p.StorageStatus, p.DeploymentError = first.StorageStatus, first.DeploymentError
	p.DeploymentInitial, p.DeploymentID, p.DeploymentLocation, p.Workflow, p.StorageStatusDetails = nil, nil, nil, nil, nil
	return p
}
