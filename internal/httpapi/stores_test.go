package httpapi

import (
	"context"
	"net/http/httptest"
	"sync/atomic"
	"testing"

	"github.com/sluicehq/sluice/internal/domain"
	"github.com/sluicehq/sluice/internal/store"
	"github.com/sluicehq/sluice/internal/workflow/workflowtest"
)

// failingStore wraps a store and fails some of its calls (after the API key
// lookup, which keeps working so that requests authenticate).
type failingStore struct {
	store.Store
	err      error // every pipeline call
	getErr   error // Get
	applyErr error // ApplyAction
	panicGet bool
	applies  atomic.Int64
}

func (f *failingStore) Get(ctx context.Context, name string) (domain.Pipeline, error) {
	if f.panicGet {
		panic("store exploded")
	}
	if f.err != nil {
		return domain.Pipeline{}, f.err
	}
	if f.getErr != nil {
		return domain.Pipeline{}, f.getErr
	}
	return f.Store.Get(ctx, name)
}

func (f *failingStore) ApplyAction(ctx context.Context, before domain.Pipeline, out domain.Outcome, cause store.Cause) (domain.Pipeline, error) {
	f.applies.Add(1)
	if f.err != nil {
		return domain.Pipeline{}, f.err
	}
	if f.applyErr != nil {
		return domain.Pipeline{}, f.applyErr
	}
	return f.Store.ApplyAction(ctx, before, out, cause)
}

func newServer(t *testing.T, h *Handler) string {
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return srv.URL
}

// panickingStarter panics on every call.
type panickingStarter struct{}

func (panickingStarter) Start(context.Context, domain.Pipeline, domain.WorkflowKind) (domain.WorkflowRef, error) {
	panic("starter exploded")
}

// PendingRef works: the panic comes after the write, from StartExecution.
func (panickingStarter) PendingRef(p domain.Pipeline, kind domain.WorkflowKind) (domain.WorkflowRef, error) {
	return workflowtest.NewRecorder().PendingRef(p, kind)
}

func (panickingStarter) Stop(context.Context, domain.WorkflowRef, string) error {
	panic("starter exploded")
}
