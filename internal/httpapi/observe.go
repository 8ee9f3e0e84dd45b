package httpapi

import (
	"context"
	"errors"

	"github.com/sluicehq/sluice/internal/domain"
	"github.com/sluicehq/sluice/internal/obs"
	"github.com/sluicehq/sluice/internal/runtimeclient"
	"github.com/sluicehq/sluice/internal/store"
)

// observeAfterForward reads the runtime's status after a forwarded pause or
// resume until it reports the wanted one (runtimeclient.AwaitStatus: about
// 2 s at most) and records what it reported. Feldera observes a runtime again
// at once after a forwarded action; without this the record would show the
// change only at the reconciler's next pass (SPEC §4: "within about a
// second").
func (h *Handler) observeAfterForward(ctx context.Context, c *call, p domain.Pipeline, rt Runtime, want domain.RuntimeStatus) {
	log := obs.Logger(ctx).With(obs.Generation(p.Generation))
	rep, err := runtimeclient.AwaitStatus(ctx, rt.Status, want)
	if err != nil {
		// Unreachable now: the reconciler observes it on its next pass.
		log.Info("runtime not observed after a forwarded action", "want", string(want), obs.Err(err))
		return
	}
	_, err = h.store.Transition(ctx, p.Name, p.Generation,
		domain.ObserveRuntime(rep.RuntimeStatus, rep.StorageStatusDetails), c.cause("ObserveRuntime"))
	var sup *store.SupersededError
	var conflict *store.ConflictError
	switch {
	case errors.As(err, &sup), errors.As(err, &conflict):
		// A newer action or a workflow moved the record on: its
		// observation is theirs to make.
	case err != nil:
		log.Warn("could not record the runtime status observed after a forwarded action", obs.Err(err))
	}
}
