package localstack

import (
	"context"
	"fmt"
	"log/slog"
	"sync"

	"github.com/sluicehq/sluice/internal/domain"
	"github.com/sluicehq/sluice/internal/store"
)

// MsgStatus is the message of the log line written for every status write of
// the local stack's store (see loggingStore).
const MsgStatus = "status"

// loggingStore logs one line per write that changed a pipeline record
// ("status": pipeline, generation, cause, the combined statuses after the
// write), so the terminal of `make run` can show every step of a workflow
// (`steps MarkSuspending p1 g3 → Suspending`). Reads pass through.
type loggingStore struct {
	store.Store
	log *slog.Logger

	mu   sync.Mutex
	seen map[string]string // pipeline → signature of the last line
}

func newLoggingStore(s store.Store, log *slog.Logger) *loggingStore {
	return &loggingStore{Store: s, log: log, seen: map[string]string{}}
}

func (s *loggingStore) Create(ctx context.Context, p domain.Pipeline, cause store.Cause) error {
	err := s.Store.Create(ctx, p, cause)
	if err == nil {
		s.logged(ctx, p, cause)
	}
	return err
}

func (s *loggingStore) Delete(ctx context.Context, p domain.Pipeline, cause store.Cause) error {
	err := s.Store.Delete(ctx, p, cause)
	if err == nil {
		s.mu.Lock()
		delete(s.seen, p.Name)
		s.mu.Unlock()
		s.log.LogAttrs(ctx, slog.LevelInfo, MsgStatus, slog.String("pipeline", p.Name), slog.Int64("generation", p.Generation),
			slog.String("action", cause.Action), slog.String("actor", cause.Actor), slog.Bool("deleted", true))
	}
	return err
}

func (s *loggingStore) ApplyAction(ctx context.Context, before domain.Pipeline, out domain.Outcome, cause store.Cause) (domain.Pipeline, error) {
	p, err := s.Store.ApplyAction(ctx, before, out, cause)
	if err == nil {
		s.logged(ctx, p, cause)
	}
	return p, err
}

func (s *loggingStore) Transition(ctx context.Context, name string, generation int64, tr domain.Transition, cause store.Cause) (domain.Pipeline, error) {
	p, err := s.Store.Transition(ctx, name, generation, tr, cause)
	if err == nil {
		s.logged(ctx, p, cause)
	}
	return p, err
}

func (s *loggingStore) TransitionFrom(ctx context.Context, read domain.Pipeline, tr domain.Transition, cause store.Cause) (domain.Pipeline, error) {
	p, err := s.Store.TransitionFrom(ctx, read, tr, cause)
	if err == nil {
		s.logged(ctx, p, cause)
	}
	return p, err
}

// logged writes the line when the generation, a status or the error changed
// since the last line of that pipeline (not for the reconciler's refresh of
// the checkpoint list every pass, nor for a write that changed nothing).
func (s *loggingStore) logged(ctx context.Context, p domain.Pipeline, cause store.Cause) {
	sig := fmt.Sprintf("%d|%s|%s|%s|%s|%s|%s", p.Generation, p.DeploymentStatus(), p.DeploymentDesiredStatus(),
		p.ResourcesStatus, p.ResourcesDesiredStatus, p.StorageStatus, errorCode(p.DeploymentError))
	s.mu.Lock()
	if s.seen[p.Name] == sig {
		s.mu.Unlock()
		return
	}
	s.seen[p.Name] = sig
	s.mu.Unlock()
	attrs := []slog.Attr{
		slog.String("pipeline", p.Name),
		slog.Int64("generation", p.Generation),
		slog.String("action", cause.Action),
		slog.String("actor", cause.Actor),
		slog.String("deployment_status", string(p.DeploymentStatus())),
		slog.String("deployment_desired_status", string(p.DeploymentDesiredStatus())),
		slog.String("storage_status", string(p.StorageStatus)),
		slog.Int64("refresh_version", p.RefreshVersion),
	}
	if cause.Execution != "" {
		attrs = append(attrs, slog.String("execution", cause.Execution))
	}
	if e := p.DeploymentError; e != nil {
		attrs = append(attrs, slog.String("deployment_error", e.ErrorCode+": "+e.Message))
	}
	s.log.LogAttrs(ctx, slog.LevelInfo, MsgStatus, attrs...)
}

func errorCode(e *domain.ErrorBody) string {
	if e == nil {
		return ""
	}
	return e.ErrorCode + ":" + e.Message
}
