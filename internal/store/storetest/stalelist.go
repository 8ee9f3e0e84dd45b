// Package storetest has test doubles of store.Store. It is imported by tests
// only; no production code may use it.
package storetest

import (
	"context"
	"slices"
	"strings"
	"sync"

	"github.com/sluicehq/sluice/internal/domain"
	"github.com/sluicehq/sluice/internal/store"
)

// StaleList wraps a store.Store so that List, the one read of the store
// that goes to the global secondary index gsi1, serves what an eventually
// consistent index may serve: the records as they were some writes ago.
// Every other call (Get and all writes, strongly consistent in the real
// store) goes to the wrapped store unchanged.
//
// DynamoDB documents that "all reads from GSIs and streams are eventually
// consistent" and that strongly consistent reads are "not supported on
// global secondary indexes"; such a read "may not reflect the results of a
// recently completed write operation"
// (https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/HowItWorks.ReadConsistency.html).
// DynamoDB Local updates its indexes at once, so without this wrapper a test
// never sees the lag production can show.
//
// The lag is controlled by the test, never by a clock: SetLag(n) makes List
// serve the state before the last n writes made through the wrapper, and
// Freeze serves the current state until Thaw, whatever is written meanwhile.
// Only writes made through the wrapper are seen; the wrapped store's
// contents when the wrapper is made are its first state (New lists them).
type StaleList struct {
	store.Store

	mu     sync.Mutex
	states []map[string]domain.Pipeline // states[i]: the records after i writes seen by the wrapper
	lag    int
	frozen map[string]domain.Pipeline // non-nil: List serves this
	lists  int
}

// New wraps s; its current records (listed through s) are the first state.
func New(ctx context.Context, s store.Store) (*StaleList, error) {
	first := map[string]domain.Pipeline{}
	token := ""
	for {
		page, next, err := s.List(ctx, token, store.MaxPageLimit)
		if err != nil {
			return nil, err
		}
		for _, p := range page {
			first[p.Name] = p
		}
		if next == "" {
			break
		}
		token = next
	}
	return &StaleList{Store: s, states: []map[string]domain.Pipeline{first}}, nil
}

// SetLag makes List serve the state before the last n writes (0: current).
func (s *StaleList) SetLag(n int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.lag = max(n, 0)
}

// Freeze makes List serve the current state until Thaw.
func (s *StaleList) Freeze() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.frozen = s.states[len(s.states)-1]
}

// Thaw ends Freeze.
func (s *StaleList) Thaw() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.frozen = nil
}

// Writes is the number of writes seen so far.
func (s *StaleList) Writes() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.states) - 1
}

// Lists is the number of List calls served.
func (s *StaleList) Lists() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.lists
}

// wrote records the state after a write: set (or, with p nil, delete) name.
func (s *StaleList) wrote(name string, p *domain.Pipeline) {
	s.mu.Lock()
	defer s.mu.Unlock()
	cur := s.states[len(s.states)-1]
	if q, ok := cur[name]; p != nil && ok && q.RefreshVersion == p.RefreshVersion && q.ID == p.ID {
		return // nothing was written (an idempotent repeat)
	}
	next := make(map[string]domain.Pipeline, len(cur)+1)
	for k, v := range cur {
		next[k] = v
	}
	if p == nil {
		delete(next, name)
	} else {
		next[name] = *p
	}
	s.states = append(s.states, next)
}

// List serves the lagging (or frozen) state in name order. Page tokens are
// the last name of the previous page.
func (s *StaleList) List(_ context.Context, pageToken string, limit int) ([]domain.Pipeline, string, error) {
	return s.list("", pageToken, limit)
}

// list serves the names >= from after pageToken.
func (s *StaleList) list(from, pageToken string, limit int) ([]domain.Pipeline, string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.lists++
	state := s.frozen
	if state == nil {
		state = s.states[max(len(s.states)-1-s.lag, 0)]
	}
	if limit <= 0 {
		limit = store.DefaultPageLimit
	}
	names := make([]string, 0, len(state))
	for n := range state {
		if strings.Compare(n, pageToken) > 0 && n >= from {
			names = append(names, n)
		}
	}
	slices.Sort(names)
	next := ""
	if len(names) > limit {
		names = names[:limit]
		next = names[limit-1]
	}
	out := make([]domain.Pipeline, 0, len(names))
	for _, n := range names {
		out = append(out, state[n])
	}
	return out, next, nil
}

func (s *StaleList) Create(ctx context.Context, p domain.Pipeline, cause store.Cause) error {
	err := s.Store.Create(ctx, p, cause)
	if err == nil {
		s.wrote(p.Name, &p)
	}
	return err
}

func (s *StaleList) Delete(ctx context.Context, p domain.Pipeline, cause store.Cause) error {
	err := s.Store.Delete(ctx, p, cause)
	if err == nil {
		s.wrote(p.Name, nil)
	}
	return err
}

func (s *StaleList) ApplyAction(ctx context.Context, before domain.Pipeline, out domain.Outcome, cause store.Cause) (domain.Pipeline, error) {
	after, err := s.Store.ApplyAction(ctx, before, out, cause)
	if err == nil {
		s.wrote(after.Name, &after)
	}
	return after, err
}

func (s *StaleList) Transition(ctx context.Context, name string, generation int64, tr domain.Transition, cause store.Cause) (domain.Pipeline, error) {
	after, err := s.Store.Transition(ctx, name, generation, tr, cause)
	if err == nil {
		s.wrote(name, &after)
	}
	return after, err
}

func (s *StaleList) TransitionFrom(ctx context.Context, read domain.Pipeline, tr domain.Transition, cause store.Cause) (domain.Pipeline, error) {
	after, err := s.Store.TransitionFrom(ctx, read, tr, cause)
	if err == nil {
		s.wrote(read.Name, &after)
	}
	return after, err
}

func (s *StaleList) SetWorkflow(ctx context.Context, name string, ref domain.WorkflowRef) (domain.Pipeline, error) {
	after, err := s.Store.SetWorkflow(ctx, name, ref)
	if err == nil {
		s.wrote(name, &after)
	}
	return after, err
}
