package runtimeclient

import (
	"context"
	"time"

	"github.com/sluicehq/sluice/internal/ctxutil"
	"github.com/sluicehq/sluice/internal/domain"
)

// Reading a runtime's status right after telling it to pause or run: at
// most AwaitAttempts reads, with a pause doubling from 20 ms to 250 ms
// between them (about 2 s in all).
const (
	AwaitAttempts   = 12
	awaitFirstPause = 20 * time.Millisecond
	awaitMaxPause   = 250 * time.Millisecond
)

// AwaitStatus reads status until it reports want or AwaitAttempts reads were
// made, and returns the last report (which is want unless the runtime was
// slower). The error is a read's, or the context's.
func AwaitStatus(ctx context.Context, status func(context.Context) (StatusReport, error), want domain.RuntimeStatus) (StatusReport, error) {
	pause := awaitFirstPause
	for attempt := 1; ; attempt++ {
		rep, err := status(ctx)
		if err != nil || rep.RuntimeStatus == want || attempt == AwaitAttempts {
			return rep, err
		}
		if err := ctxutil.Sleep(ctx, pause); err != nil {
			return rep, err
		}
		pause = min(2*pause, awaitMaxPause)
	}
}
