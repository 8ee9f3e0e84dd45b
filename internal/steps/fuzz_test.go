package steps

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/sluicehq/sluice/internal/compute"
	"github.com/sluicehq/sluice/internal/domain"
	"github.com/sluicehq/sluice/internal/runtimeclient"
	"github.com/sluicehq/sluice/internal/store"
)

// memStore is an in-memory store.Store for the fuzz target only (every
// other test of this package uses DynamoDB Local): Get and the fenced
// Transition and SetWorkflow, with the Dynamo store's outcomes (superseded,
// conflict, no write when nothing changes).
type memStore struct {
	mu      sync.Mutex
	records map[string]domain.Pipeline
	writes  int
}

var errNotInMemStore = errors.New("memStore: not supported")

func (m *memStore) Create(context.Context, domain.Pipeline, store.Cause) error {
	return errNotInMemStore
}

func (m *memStore) Get(_ context.Context, name string) (domain.Pipeline, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	p, ok := m.records[name]
	if !ok {
		return domain.Pipeline{}, domain.UnknownPipelineName(name)
	}
	return p, nil
}

func (m *memStore) List(context.Context, string, int) ([]domain.Pipeline, string, error) {
	return nil, "", errNotInMemStore
}

func (m *memStore) Delete(context.Context, domain.Pipeline, store.Cause) error {
	return errNotInMemStore
}

func (m *memStore) ApplyAction(context.Context, domain.Pipeline, domain.Outcome, store.Cause) (domain.Pipeline, error) {
	return domain.Pipeline{}, errNotInMemStore
}

// TransitionFrom decides on the current record, like the real store after
// its condition on read's refresh version.
func (m *memStore) TransitionFrom(ctx context.Context, read domain.Pipeline, tr domain.Transition, cause store.Cause) (domain.Pipeline, error) {
	return m.Transition(ctx, read.Name, read.Generation, tr, cause)
}

func (m *memStore) Transition(_ context.Context, name string, generation int64, tr domain.Transition, _ store.Cause) (domain.Pipeline, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	p, ok := m.records[name]
	if !ok {
		return domain.Pipeline{}, domain.UnknownPipelineName(name)
	}
	if p.Generation != generation {
		return domain.Pipeline{}, &store.SupersededError{Generation: generation, Current: p}
	}
	next, err := tr(p, time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC))
	if err != nil {
		var unexpected *domain.UnexpectedStatusError
		if errors.As(err, &unexpected) {
			return domain.Pipeline{}, &store.ConflictError{Current: p, Cause: err}
		}
		return domain.Pipeline{}, err
	}
	if next.RefreshVersion == p.RefreshVersion {
		return p, nil
	}
	if err := domain.ValidateTransition(p, next); err != nil {
		return domain.Pipeline{}, err
	}
	m.records[name] = next
	m.writes++
	return next, nil
}

func (m *memStore) SetWorkflow(_ context.Context, name string, ref domain.WorkflowRef) (domain.Pipeline, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	p, ok := m.records[name]
	if !ok {
		return domain.Pipeline{}, domain.UnknownPipelineName(name)
	}
	if p.Generation != ref.Generation {
		return domain.Pipeline{}, &store.SupersededError{Generation: ref.Generation, Current: p}
	}
	w, changed := domain.UpdateWorkflowRef(p.Workflow, ref)
	if !changed {
		return p, nil
	}
	p.Workflow = &w
	p.RefreshVersion++
	m.records[name] = p
	m.writes++
	return p, nil
}

func (m *memStore) History(context.Context, string, string, int) ([]store.Event, string, error) {
	return nil, "", nil
}

func (m *memStore) PutAPIKey(context.Context, store.APIKey) error { return errNotInMemStore }

func (m *memStore) GetAPIKey(context.Context, string) (store.APIKey, error) {
	return store.APIKey{}, store.ErrNotFound
}

func (m *memStore) GetAPIKeyByName(_ context.Context, name string) (store.APIKey, error) {
	return store.APIKey{}, domain.UnknownAPIKey(name)
}

func (m *memStore) ListAPIKeys(context.Context, string, int) ([]store.APIKey, string, error) {
	return nil, "", nil
}

func (m *memStore) DeleteAPIKey(_ context.Context, name string) (store.APIKey, error) {
	return store.APIKey{}, domain.UnknownAPIKey(name)
}

type stubContinuer struct{}

func (stubContinuer) Continue(_ context.Context, p domain.Pipeline, kind domain.WorkflowKind, n int) (domain.WorkflowRef, error) {
	return domain.WorkflowRef{Kind: kind, Generation: p.Generation, ExecutionName: fmt.Sprintf("%s-g%d-%s-%d", p.Name, p.Generation, kind, n), Status: "RUNNING"}, nil
}

// fuzzRecords are pipelines in every status a workflow meets, all of
// generation 1 and id "id-<name>" (the seeds address them).
func fuzzRecords(tb testing.TB) map[string]domain.Pipeline {
	tb.Helper()
	now := time.Date(2026, 11, 26, 11, 0, 0, 0, time.UTC)
	must := func(p domain.Pipeline, err error) domain.Pipeline {
		if err != nil {
			tb.Fatal(err)
		}
		return p
	}
	act := func(p domain.Pipeline, out domain.Outcome, err error) domain.Pipeline {
		if err != nil {
			tb.Fatal(err)
		}
		return out.Pipeline
	}
	apply := func(p domain.Pipeline, tr domain.Transition) domain.Pipeline { return must(tr(p, now)) }
	base := func(name string) domain.Pipeline {
		return must(domain.Create(domain.Definition{Name: name, RuntimeConfig: []byte(`{}`)}, "id-"+name, now))
	}
	start := func(p domain.Pipeline) domain.Pipeline {
		out, err := domain.Start(p, domain.StartRequest{Initial: domain.InitialRunning, DismissError: true}, now)
		return act(p, out, err)
	}
	out := map[string]domain.Pipeline{}
	out["stopped"] = base("stopped")
	out["starting"] = start(base("starting"))
	out["provisioning"] = apply(start(base("provisioning")), domain.MarkProvisioning("dep"))
	running := apply(apply(start(base("running")), domain.MarkProvisioning("dep")), domain.MarkProvisioned("http://rt", domain.RuntimeRunning))
	out["running"] = running
	stop := func(p domain.Pipeline) domain.Pipeline {
		out, err := domain.Stop(p, false, now)
		return act(p, out, err)
	}
	suspending := apply(stop(apply(apply(start(base("suspending")), domain.MarkProvisioning("dep")), domain.MarkProvisioned("http://rt", domain.RuntimeRunning))), domain.MarkSuspending())
	out["suspending"] = suspending
	stopping := apply(apply(apply(start(base("stopping")), domain.MarkProvisioning("dep")), domain.MarkProvisioned("http://rt", domain.RuntimeRunning)),
		domain.MarkFailed(&domain.ErrorBody{ErrorCode: "X", Message: "x", Details: map[string]any{}}))
	out["stopping"] = stopping
	for name, p := range out {
		p.Generation = 1 // the fences in the seeds
		out[name] = p
	}
	return out
}

// FuzzStepRequest feeds arbitrary JSON to the steps Lambda's handler, decoded
// as aws-lambda-go decodes the event. It must never panic, and every error a
// decoded request yields is one of the named errors the ASL routes on.
func FuzzStepRequest(f *testing.F) {
	for _, seed := range []string{
		`{"step":"MarkProvisioning","execution":"e","state":{"pipeline":"starting","pipeline_id":"id-starting","generation":1,"kind":"start"}}`,
		`{"step":"Provision","execution":"e","state":{"pipeline":"provisioning","generation":1,"kind":"start","deployment_id":"dep"}}`,
		`{"step":"CheckReadiness","execution":"e","state":{"pipeline":"provisioning","generation":1,"kind":"start","deployment_id":"dep","deadline":"2030-01-01T00:00:00Z","attempt":999}}`,
		`{"step":"MarkProvisioned","execution":"e","state":{"pipeline":"provisioning","generation":1,"kind":"start","location":"http://rt","observed":"Paused"}}`,
		`{"step":"MarkSuspending","execution":"e","state":{"pipeline":"running","generation":1,"kind":"suspend"}}`,
		`{"step":"RequestSuspend","execution":"e","state":{"pipeline":"suspending","generation":1,"kind":"suspend","location":"http://rt"}}`,
		`{"step":"CheckSuspend","execution":"e","state":{"pipeline":"suspending","generation":1,"kind":"suspend","location":"http://rt","attempt":-5}}`,
		`{"step":"MarkSuspended","execution":"e","state":{"pipeline":"suspending","generation":1,"kind":"suspend","storage_details":{"checkpoints":[]}}}`,
		`{"step":"MarkStopping","execution":"e","state":{"pipeline":"running","generation":1,"kind":"stop"}}`,
		`{"step":"RecordError","execution":"e","state":{"pipeline":"running","generation":1,"kind":"suspend","error":{"Error":"PipelineRuntimeError","Cause":"{\"errorMessage\":\"{\\\"message\\\":\\\"m\\\",\\\"error_code\\\":\\\"C\\\"}\",\"errorType\":\"PipelineRuntimeError\"}"}}}`,
		`{"step":"RecordError","execution":"e","state":{"pipeline":"stopping","generation":1,"kind":"stop","error":{"Error":"States.Timeout","Cause":"\u00ff\u0000"}}}`,
		`{"step":"Deprovision","execution":"e","state":{"pipeline":"stopping","generation":1,"kind":"stop"}}`,
		`{"step":"MarkStopped","execution":"e","state":{"pipeline":"stopping","generation":1,"kind":"stop"}}`,
		`{"step":"ClearStorage","execution":"e","state":{"pipeline":"stopped","generation":0,"kind":"clear"}}`,
		`{"step":"MarkStorageCleared","execution":"e","state":{"pipeline":"stopped","generation":0,"kind":"clear"}}`,
		`{"step":"ContinueAsNew","execution":"e","state":{"pipeline":"suspending","generation":1,"kind":"suspend","continuation":41}}`,
		`{"step":"MarkStopped","state":{"pipeline":"running","pipeline_id":"other","generation":1,"kind":"stop"}}`,
		`{"step":"MarkStopped","state":{"pipeline":"nope","generation":1,"kind":"stop"}}`,
		`{"step":"Nope","state":{"pipeline":"running"}}`,
		`{"step":"MarkStopped","state":{}}`,
		`{"state":{"kind":"unknown"}}`,
		`{"state":{"deadline":"yesterday"}}`,
		`{"step":["x"]}`,
		`null`, `{}`, `[]`, `"x"`, ``, `{`,
	} {
		f.Add([]byte(seed))
	}
	records := fuzzRecords(f)
	f.Fuzz(func(t *testing.T, data []byte) {
		recs := make(map[string]domain.Pipeline, len(records))
		for k, v := range records {
			recs[k] = v
		}
		rt := &stubRuntime{report: runtimeclient.StatusReport{RuntimeStatus: domain.RuntimeSuspended}}
		s := &Steps{
			Store:      &memStore{records: recs},
			Driver:     &stubDriver{check: compute.CheckResult{State: compute.StateRunning, Location: "http://rt"}, location: "http://rt"},
			RuntimeFor: func(string) (Runtime, error) { return rt, nil },
			Continuer:  stubContinuer{},
			Config:     Config{MaxIterations: 3},
			Logger:     discard,
			Rand:       fixedRand(0.5),
		}
		var req Request
		if err := json.Unmarshal(data, &req); err != nil {
			return // aws-lambda-go answers a decoding error itself; the ASL catches it
		}
		out, err := s.Handle(context.Background(), req)
		var (
			sup *SupersededError
			na  *NotApplicableError
			tmp *TemporaryError
			pre *PipelineRuntimeError
			pce *PipelineComputeError
			cpe *ControlPlaneError
		)
		switch {
		case err == nil:
			if _, merr := json.Marshal(out); merr != nil && out.Kind != "" {
				t.Fatalf("the output state does not encode: %v", merr)
			}
		case errors.As(err, &sup), errors.As(err, &na), errors.As(err, &tmp),
			errors.As(err, &pre), errors.As(err, &pce), errors.As(err, &cpe):
		default:
			t.Fatalf("step %q: error %T %v is none of the named errors the ASL routes on", req.Step, err, err)
		}
	})
}
