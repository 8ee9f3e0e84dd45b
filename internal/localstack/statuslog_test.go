package localstack

import (
	"bytes"
	"context"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/sluicehq/sluice/internal/domain"
	"github.com/sluicehq/sluice/internal/store"
)

// statusLogStub answers every write with the next record of a script.
type statusLogStub struct {
	store.Store
	next []domain.Pipeline
}

func (s *statusLogStub) pop() domain.Pipeline {
	p := s.next[0]
	s.next = s.next[1:]
	return p
}

func (s *statusLogStub) Transition(context.Context, string, int64, domain.Transition, store.Cause) (domain.Pipeline, error) {
	return s.pop(), nil
}

func (s *statusLogStub) ApplyAction(context.Context, domain.Pipeline, domain.Outcome, store.Cause) (domain.Pipeline, error) {
	return s.pop(), nil
}

func (s *statusLogStub) Delete(context.Context, domain.Pipeline, store.Cause) error { return nil }

func TestLoggingStoreLogsStatusChangesOnly(t *testing.T) {
	running := func(gen, rv int64, details string) domain.Pipeline {
		rs, rd := domain.RuntimeRunning, domain.RuntimeDesiredRunning
		return domain.Pipeline{Name: "p1", Generation: gen, RefreshVersion: rv, ResourcesStatus: domain.ResourcesProvisioned,
			ResourcesDesiredStatus: domain.ResourcesDesiredProvisioned, RuntimeStatus: &rs, RuntimeDesiredStatus: &rd,
			StorageStatus: domain.StorageInUse, StorageStatusDetails: []byte(details)}
	}
	suspending := running(2, 4, "")
	rs, rd := domain.RuntimeSuspending, domain.RuntimeDesiredSuspended
	suspending.RuntimeStatus, suspending.RuntimeDesiredStatus = &rs, &rd
	stub := &statusLogStub{next: []domain.Pipeline{
		running(1, 1, `{"checkpoints":[]}`),
		running(1, 2, `{"checkpoints":[1]}`), // the reconciler refreshed the checkpoint list: no line
		running(1, 2, `{"checkpoints":[1]}`), // a write that changed nothing: no line
		suspending,
	}}
	var logs bytes.Buffer
	s := newLoggingStore(stub, slog.New(slog.NewTextHandler(&logs, nil)))
	ctx := context.Background()
	cause := store.Cause{Action: "ObserveRuntime", Actor: "reconciler"}
	for range 3 {
		if _, err := s.Transition(ctx, "p1", 1, nil, cause); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := s.ApplyAction(ctx, domain.Pipeline{}, domain.Outcome{}, store.Cause{Action: "MarkSuspending", Actor: "workflow", Execution: "p1-x-g2-suspend"}); err != nil {
		t.Fatal(err)
	}
	if err := s.Delete(ctx, domain.Pipeline{Name: "p1", CreatedAt: time.Now()}, store.Cause{Action: "delete", Actor: "user:k"}); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(logs.String()), "\n")
	if len(lines) != 3 {
		t.Fatalf("want 3 lines (first write, the status change, the delete):\n%s", logs.String())
	}
	for i, want := range []string{
		"action=ObserveRuntime actor=reconciler deployment_status=Running deployment_desired_status=Running",
		"action=MarkSuspending actor=workflow deployment_status=Suspending deployment_desired_status=Suspended",
		"action=delete actor=user:k deleted=true",
	} {
		if !strings.Contains(lines[i], want) {
			t.Errorf("line %d = %s\nwant %s", i, lines[i], want)
		}
	}
}
