package httpapi

import (
	"context"
	"errors"
	"time"

	"github.com/sluicehq/sluice/internal/domain"
	"github.com/sluicehq/sluice/internal/obs"
	"github.com/sluicehq/sluice/internal/store"
)

// Observation after a forwarded pause or resume: the runtime's status is read
// until it reports the wanted one, at most observeAttempts times with a short
// doubling pause between reads (about 2 s in all), and what it reported is
// recorded. Feldera observes a runtime again at once after a forwarded
// action; without this the record would show the change only at the
// reconciler's next pass (SPEC §4: "within about a second").
const (
	observeAttempts   = 12
	observeFirstPause = 20 * time.Millisecond
	observeMaxPause   = 250 * time.Millisecond
)

func (h *Handler) observeAfterForward(ctx context.Context, c *call, p domain.Pipeline, rt Runtime, want domain.RuntimeStatus) {
	log := obs.Logger(ctx).With(obs.Generation(p.Generation))
	pause := observeFirstPause
	for attempt := 1; ; attempt++ {
		rep, err := rt.Status(ctx)
		if err != nil {
			// Unreachable now: the reconciler observes it on its next pass.
			log.Info("runtime not observed after a forwarded action", "want", string(want), obs.Err(err))
			return
		}
		if rep.RuntimeStatus == want || attempt == observeAttempts {
			_, err := h.store.Transition(ctx, p.Name, p.Generation,
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
			return
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(pause):
		}
		pause = min(2*pause, observeMaxPause)
	}
}
