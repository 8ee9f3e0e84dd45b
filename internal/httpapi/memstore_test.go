package httpapi

import (
	"context"
	"sort"
	"strconv"
	"sync"
	"time"

	"github.com/sluicehq/sluice/internal/domain"
	"github.com/sluicehq/sluice/internal/store"
)

// memStore is an in-memory store.Store for the fuzz target only (fuzzing must
// be fast); every other test runs against DynamoDB Local. It keeps the
// contract the handlers rely on: conditional writes on the refresh version
// (StaleError with the current record), generation fencing, history newest
// first, strict page tokens.
type memStore struct {
	mu      sync.Mutex
	records map[string]domain.Pipeline
	history map[string][]store.Event
	keys    map[string]store.APIKey
}

var _ store.Store = (*memStore)(nil)

func newMemStore() *memStore {
	return &memStore{records: map[string]domain.Pipeline{}, history: map[string][]store.Event{}, keys: map[string]store.APIKey{}}
}

func (m *memStore) event(p domain.Pipeline, cause store.Cause) {
	m.history[p.Name] = append(m.history[p.Name], store.Event{At: time.Now().UTC(), Generation: p.Generation, RefreshVersion: p.RefreshVersion, Cause: cause,
		DeploymentStatus: p.DeploymentStatus(), DeploymentDesiredStatus: p.DeploymentDesiredStatus(),
		ResourcesStatus: p.ResourcesStatus, ResourcesDesiredStatus: p.ResourcesDesiredStatus,
		RuntimeStatus: p.RuntimeStatus, RuntimeDesiredStatus: p.RuntimeDesiredStatus, StorageStatus: p.StorageStatus, DeploymentError: p.DeploymentError})
}

func (m *memStore) Create(_ context.Context, p domain.Pipeline, cause store.Cause) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if _, ok := m.records[p.Name]; ok {
		return domain.DuplicateName(p.Name)
	}
	m.records[p.Name] = p
	m.history[p.Name] = nil
	m.event(p, cause)
	return nil
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

func pageStart(token string, names []string) (int, error) {
	if token == "" {
		return 0, nil
	}
	i, err := strconv.Atoi(token)
	if err != nil || i <= 0 || i > len(names) {
		return 0, domain.InvalidQueryParameter("page_token", token, "a page token returned with the previous page")
	}
	return i, nil
}

func page(limit int) int {
	if limit <= 0 {
		return store.DefaultPageLimit
	}
	return min(limit, store.MaxPageLimit)
}

func (m *memStore) List(_ context.Context, token string, limit int) ([]domain.Pipeline, string, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	names := make([]string, 0, len(m.records))
	for n := range m.records {
		names = append(names, n)
	}
	sort.Strings(names)
	start, err := pageStart(token, names)
	if err != nil {
		return nil, "", err
	}
	end := min(start+page(limit), len(names))
	var out []domain.Pipeline
	for _, n := range names[start:end] {
		out = append(out, m.records[n])
	}
	next := ""
	if end < len(names) {
		next = strconv.Itoa(end)
	}
	return out, next, nil
}

func (m *memStore) Delete(_ context.Context, p domain.Pipeline, _ store.Cause) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	cur, ok := m.records[p.Name]
	if !ok {
		return domain.UnknownPipelineName(p.Name)
	}
	if cur.RefreshVersion != p.RefreshVersion {
		return &store.StaleError{Current: cur}
	}
	if err := domain.CheckDelete(cur); err != nil {
		return err
	}
	delete(m.records, p.Name)
	delete(m.history, p.Name)
	return nil
}

func (m *memStore) ApplyAction(_ context.Context, before domain.Pipeline, out domain.Outcome, cause store.Cause) (domain.Pipeline, error) {
	if !out.Write {
		return before, nil
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	cur, ok := m.records[before.Name]
	if !ok {
		return domain.Pipeline{}, domain.UnknownPipelineName(before.Name)
	}
	if cur.RefreshVersion != before.RefreshVersion {
		return domain.Pipeline{}, &store.StaleError{Current: cur}
	}
	if err := domain.ValidateTransition(before, out.Pipeline); err != nil {
		return domain.Pipeline{}, err
	}
	m.records[before.Name] = out.Pipeline
	m.event(out.Pipeline, cause)
	return out.Pipeline, nil
}

// TransitionFrom decides on the current record, like the real store after
// its condition on read's refresh version.
func (m *memStore) TransitionFrom(ctx context.Context, read domain.Pipeline, tr domain.Transition, cause store.Cause) (domain.Pipeline, error) {
	return m.Transition(ctx, read.Name, read.Generation, tr, cause)
}

func (m *memStore) Transition(_ context.Context, name string, generation int64, tr domain.Transition, cause store.Cause) (domain.Pipeline, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	cur, ok := m.records[name]
	if !ok {
		return domain.Pipeline{}, domain.UnknownPipelineName(name)
	}
	if cur.Generation != generation {
		return domain.Pipeline{}, &store.SupersededError{Generation: generation, Current: cur}
	}
	next, err := tr(cur, time.Now().UTC())
	if err != nil {
		return domain.Pipeline{}, &store.ConflictError{Current: cur, Cause: err}
	}
	if next.RefreshVersion == cur.RefreshVersion {
		return cur, nil
	}
	m.records[name] = next
	m.event(next, cause)
	return next, nil
}

func (m *memStore) SetWorkflow(_ context.Context, name string, ref domain.WorkflowRef) (domain.Pipeline, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	cur, ok := m.records[name]
	if !ok {
		return domain.Pipeline{}, domain.UnknownPipelineName(name)
	}
	if cur.Generation != ref.Generation {
		return domain.Pipeline{}, &store.SupersededError{Generation: ref.Generation, Current: cur}
	}
	w, changed := domain.UpdateWorkflowRef(cur.Workflow, ref)
	if !changed {
		return cur, nil
	}
	cur.Workflow = &w
	cur.RefreshVersion++
	m.records[name] = cur
	m.event(cur, store.Cause{Action: "SetWorkflow", Actor: "workflow", Execution: ref.ExecutionName})
	return cur, nil
}

func (m *memStore) History(_ context.Context, name, token string, limit int) ([]store.Event, string, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if _, ok := m.records[name]; !ok {
		return nil, "", domain.UnknownPipelineName(name)
	}
	h := m.history[name]
	newest := make([]store.Event, len(h))
	for i, e := range h {
		newest[len(h)-1-i] = e
	}
	names := make([]string, len(newest))
	start, err := pageStart(token, names)
	if err != nil {
		return nil, "", err
	}
	end := min(start+page(limit), len(newest))
	next := ""
	if end < len(newest) {
		next = strconv.Itoa(end)
	}
	return newest[start:end], next, nil
}

func (m *memStore) PutAPIKey(_ context.Context, key store.APIKey) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if key.Name == "" {
		key.Name = key.ID
	}
	if _, ok := m.keys[key.Hash]; ok {
		return store.ErrAlreadyExists
	}
	for _, k := range m.keys {
		if k.Name == key.Name {
			return domain.DuplicateAPIKeyName(key.Name)
		}
	}
	m.keys[key.Hash] = key
	return nil
}

func (m *memStore) GetAPIKeyByName(_ context.Context, name string) (store.APIKey, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, k := range m.keys {
		if k.Name == name {
			return k, nil
		}
	}
	return store.APIKey{}, domain.UnknownAPIKey(name)
}

func (m *memStore) ListAPIKeys(_ context.Context, token string, limit int) ([]store.APIKey, string, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	keys := make([]store.APIKey, 0, len(m.keys))
	for _, k := range m.keys {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool { return keys[i].Name < keys[j].Name })
	start, err := pageStart(token, make([]string, len(keys)))
	if err != nil {
		return nil, "", err
	}
	end := min(start+page(limit), len(keys))
	next := ""
	if end < len(keys) {
		next = strconv.Itoa(end)
	}
	return keys[start:end], next, nil
}

func (m *memStore) DeleteAPIKey(_ context.Context, name string) (store.APIKey, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	for h, k := range m.keys {
		if k.Name == name {
			delete(m.keys, h)
			return k, nil
		}
	}
	return store.APIKey{}, domain.UnknownAPIKey(name)
}

func (m *memStore) GetAPIKey(_ context.Context, hash string) (store.APIKey, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	k, ok := m.keys[hash]
	if !ok {
		return store.APIKey{}, store.ErrNotFound
	}
	return k, nil
}
